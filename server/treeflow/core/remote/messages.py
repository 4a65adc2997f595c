"""What travels between the coordinator and a worker: plain frozen values, pickled by Dask."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ShippedFile:
    """A file `setup.copy` put into the step's worktree: its content, or for a link, its target."""

    path: str
    data: bytes = b""
    link: str | None = None
    executable: bool = False


@dataclass(frozen=True)
class RemoteCommand:
    """One command of one step, to run in the step's worktree on a worker.

    ``session`` names the step's place: the commands of one place share one worktree on the worker
    that runs them. ``start`` is the commit the worktree starts from when the worker has none for
    the session yet; the task's other arguments are bundles that, unpacked in order, give it.
    ``env`` holds only the variables the workflow names and treeflow's own; values equal to
    ``local_cwd`` are the worktree's path on the coordinator and are replaced by the worker's.
    """

    repo_key: str
    session: str
    call: str  # this command's own name: its Dask task key, and what its messages carry
    topic: str
    command: str
    start: str
    base: str | None
    env: Mapping[str, str]
    local_cwd: str
    kill_grace_s: float
    commit_message: str
    identity: Mapping[str, str] = field(default_factory=dict)
    files: tuple[ShippedFile, ...] = ()
    outputs_variable: str | None = None  # the variable naming the step's outputs file, if it has one
    # Whether the task's bundles start with one of ``base``; without it, a worker that lacks the
    # base answers `RemoteResult.needs_base` at once, and the coordinator sends it there.
    carries_base: bool = False


@dataclass(frozen=True)
class RemoteResult:
    """How a command ended on a worker, and the work it left in the worktree.

    ``bundle`` holds the commits from ``start`` to ``commit`` (None when nothing was committed);
    ``chunks`` is how many output messages were sent, so the coordinator knows when it has all.
    """

    worker: str
    exit_code: int
    start: str
    commit: str
    bundle: bytes | None
    chunks: int
    outputs: bytes | None = None
    error: str | None = None  # why the work could not be committed on the worker, if it could not
    needs_base: bool = False  # nothing ran: the worker has not got the run's base yet
    group: int | None = None  # the command's process group on the worker, once it started
    # With ``needs_base``: earlier bases the worker's machine has, newest first, so that the base
    # can travel as only what they lack.
    known_bases: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeptWork:
    """The work a step's session keeps on a worker, for a coordinator that did not fetch it: the
    commit the session's worktree reached, and a bundle of it beyond what the coordinator has
    (None when it has it already)."""

    commit: str
    bundle: bytes | None


OUTPUT = "output"
STARTED = "started"
"""The kinds of messages a worker publishes on a run's topic, each a dict with ``kind`` and
``session``: ``started`` (``worker``, ``host``) once the command runs, ``output`` (``seq``,
``data``) for each piece of output, in order."""
