"""Workflows as parsed from YAML, and the results of running them."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from treeflow.core.expressions import Condition
from treeflow.core.gates import Approval, Gate


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    # Succeeded without running: the work of an earlier run with the same cache key was replayed.
    CACHED = "cached"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # treeflow itself was killed while the step was pending or running

    @property
    def is_final(self) -> bool:
        return self not in (StepStatus.PENDING, StepStatus.RUNNING)

    @property
    def is_success(self) -> bool:
        """Succeeded, by running or from the cache: its dependents start from its work."""
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # the treeflow process running it died; see `treeflow resume`


class ChangeStatus(StrEnum):
    """How a file changed between two commits."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    MODE = "mode"  # only the file's mode changed (its executable bit)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is tried, and how long to wait between tries.

    The wait before try ``n`` (n >= 2) is ``backoff * 2**(n-2)``, capped at ``max_backoff``,
    then spread by up to ``jitter`` (a fraction) either way so that retries of parallel steps
    do not hit a shared resource in lockstep.
    """

    attempts: int = 1
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    jitter: float = 0.1

    def delay_before(self, attempt: int, rng: random.Random) -> float:
        if attempt < 2:
            return 0.0
        # The exponent is capped so that a very long retry series cannot overflow a float.
        base = min(self.max_backoff_s, self.backoff_s * 2.0 ** min(attempt - 2, 64))
        spread: float = rng.uniform(-self.jitter, self.jitter)
        return max(0.0, base * (1.0 + spread))


@dataclass(frozen=True)
class SetupSpec:
    copy: tuple[str, ...] = ()
    run: str | None = None
    # Files whose content decides whether `run` has to run again in a worktree it already ran in.
    when_changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoolSettings:
    """The warm worktree pool (see `treeflow.core.worktree_pool`): on or off, how many worktrees it
    keeps (None: the run's max_parallel), how long one may stay idle, and the ignored folders
    (gitignore patterns) that survive from one step to the next."""

    enabled: bool = True
    size: int | None = None
    idle_s: float = 3600.0
    keep: tuple[str, ...] = ()


EXECUTORS = ("local", "dask")
"""Where steps can run: on this machine, or on the workers of a Dask cluster."""


@dataclass(frozen=True)
class Resources:
    """What one attempt of a step holds on a Dask worker while it runs, in the worker resources of
    the same names (``memory`` in bytes); None asks for none of it. Local steps ignore them."""

    cpu: float | None = None
    gpu: float | None = None
    memory: int | None = None

    def as_dask(self) -> dict[str, float]:
        wanted = {"cpu": self.cpu, "gpu": self.gpu, "memory": self.memory}
        return {name: float(amount) for name, amount in wanted.items() if amount is not None}


@dataclass(frozen=True)
class Combination:
    """What makes a step one combination of a matrix (see `treeflow.core.matrix`): the id of the
    step written in the file, and the values of this combination, under every key of the matrix
    (the empty text under a key an `include` gave other combinations only)."""

    of: str
    values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheSpec:
    """`cache:` on a step: the files its result depends on (glob patterns, as `setup.copy` takes
    them), or None for the whole tree (`cache: true`)."""

    inputs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FixLoop:
    """A step's `on_failure:`: when it fails, step ``fixer`` runs in its place on top of the failed
    work, then the step runs again there; at most ``max_rounds`` runs of the step in all (see
    `treeflow.core.fix_loop`)."""

    fixer: str
    max_rounds: int = 3


@dataclass(frozen=True)
class Step:
    id: str
    kind: str = ""  # the step key that selects its kind (`run`, `agent`, …; see `treeflow.core.kinds`)
    spec: object = None  # the kind's own frozen description of the step (`ShellSpec` for `run`, …)
    needs: tuple[str, ...] = ()
    timeout_s: float | None = None
    retry: RetryPolicy = RetryPolicy()
    worktree: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    line: int = 0  # of the step's id in the workflow file, 1-based
    condition: Condition | None = None  # its `if:`; without one, it runs when its needs succeeded
    matrix: Combination | None = None  # set on each step a `matrix:` expanded into
    gate: Gate | None = None  # its `approve:`: a person decides before it starts
    cache: CacheSpec | None = None  # its `cache:`; None: it always runs
    executor: str | None = None  # `local` or `dask`; None: the run's executor
    resources: Resources = Resources()
    on_failure: FixLoop | None = None  # its fix loop; None: a failure is final


@dataclass(frozen=True)
class Workflow:
    name: str
    path: Path
    steps: Mapping[str, Step]
    max_parallel: int | None = None
    fail_fast: bool = True
    base: str = "working"
    setup: SetupSpec = SetupSpec()
    env: Mapping[str, str] = field(default_factory=dict)
    pool: PoolSettings = PoolSettings()
    executor: str | None = None  # where steps run unless the command line says otherwise; None: local


@dataclass(frozen=True, slots=True)
class AgentUsage:
    """What a coding-agent CLI's own stream said of its work: the session it can be resumed by, its
    turns, tokens and cost as far as the CLI reports them (None where it does not), and what it is
    doing now (``action``, while it runs) and the last thing it said (``last_message``)."""

    cli: str  # the `use:` value: claude, codex, …
    session_id: str | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    action: str | None = None
    last_message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cli": self.cli,
            "session_id": self.session_id,
            "turns": self.turns,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "action": self.action,
            "last_message": self.last_message,
        }


@dataclass(frozen=True, slots=True)
class RemotePlace:
    """Where a command of a step runs on another machine: the scheduler it went through, the step's
    session there (its worktree on the worker, which keeps the work the command commits until this
    side has fetched it), and the worker that took it, once one has."""

    scheduler: str
    session: str
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class FixRound:
    """One round of a step's fix loop: the step's run in its own worktree and branch, and, when
    that failed and rounds were left, its fixer's run on top of it, in the same worktree."""

    number: int  # 1 for the step's first run
    of: int  # the last round this execution of the run may reach
    status: StepStatus = StepStatus.RUNNING  # how the step's run in this round ended
    exit_code: int | None = None
    error: str | None = None
    fixer: str | None = None  # the fixer's step id, once it began
    fix_status: StepStatus | None = None
    fix_error: str | None = None
    branch: str | None = None  # the round's work: the step's, then the fixer's on top
    commit: str | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "of": self.of,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "error": self.error,
            "fixer": self.fixer,
            "fix_status": None if self.fix_status is None else self.fix_status.value,
            "fix_error": self.fix_error,
            "branch": self.branch,
            "commit": self.commit,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
        }


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's result as it stood at one moment: a value, never changed once made."""

    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    exit_code: int | None = None
    started_at: float | None = None  # wall clock, for display; durations come from a monotonic clock
    ended_at: float | None = None
    branch: str | None = None
    commit: str | None = None
    log: Path | None = None
    error: str | None = None
    duration_s: float | None = None
    progress: float | None = None
    message: str | None = None
    summary: str | None = None
    agent: AgentUsage | None = None
    # What the step set for the steps after it (its `$TREEFLOW_OUTPUT` file, an agent's report).
    outputs: Mapping[str, str] = field(default_factory=dict, hash=False)
    # Its approval gate's request and decision, once the step has reached its gate.
    approval: Approval | None = None
    # For a `cached` step: where its work was replayed from, as `<run_id>/<step_id>`.
    cached_from: str | None = None
    # The rounds of its fix loop (`on_failure:`), earlier executions' included; empty without one.
    rounds: tuple[FixRound, ...] = ()
    # The machine that ran its last command, when that was not this one (a Dask worker's address).
    worker: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "attempts": self.attempts,
            "exit_code": self.exit_code,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_s": _round(self.duration_s),
            "branch": self.branch,
            "commit": self.commit,
            "log": str(self.log) if self.log else None,
            "error": self.error,
            "progress": self.progress,
            "message": self.message,
            "summary": self.summary,
            "agent": None if self.agent is None else self.agent.to_json(),
            "outputs": dict(self.outputs),
            "approval": None if self.approval is None else self.approval.to_json(),
            "cached_from": self.cached_from,
            "worker": self.worker,
            "rounds": [fix_round.to_json() for fix_round in self.rounds],
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """A run's result as it stood at one moment, its steps' results included: a value, never
    changed once made, so that whoever holds one can read it at leisure."""

    run_id: str
    workflow: str
    workflow_path: Path
    status: RunStatus = RunStatus.RUNNING
    base_commit: str | None = None
    result_branch: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    steps: Mapping[str, StepResult] = field(default_factory=dict, hash=False)
    duration_s: float | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A copy of its own, read-only: the mapping it was given may go on changing.
        object.__setattr__(self, "steps", MappingProxyType(dict(self.steps)))

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "workflow_path": str(self.workflow_path),
            "status": self.status.value,
            "base_commit": self.base_commit,
            "result_branch": self.result_branch,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_s": _round(self.duration_s),
            "steps": {step_id: result.to_json() for step_id, result in self.steps.items()},
            "warnings": list(self.warnings),
        }


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
