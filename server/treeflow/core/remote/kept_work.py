"""Crash recovery's side of remote steps: the work a step's session keeps on its Dask worker,
fetched into the step's local worktree as the coordinator would have fetched it, then dropped there.

A worker keeps what a session's commands committed (its ref in the worker's cache repository) until
the coordinator releases the session, which it does once the step's work has arrived. A coordinator
that died before that leaves the work on the worker; recovery reads from the journal where the step
ran (`RemotePlace`) and calls `fetch_kept_work`. Only recovery of a run with remote steps imports
this module, and with it `distributed`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio

from treeflow.core.git import Repository, git
from treeflow.core.model import RemotePlace
from treeflow.core.remote import worker_side
from treeflow.core.remote.bundles import repository_key, take_work
from treeflow.core.remote.cluster import Cluster
from treeflow.core.remote.messages import KeptWork

log = logging.getLogger(__name__)

# Recovery runs at the start of every command: a scheduler that is gone costs it this much, once.
_CONNECT_TIMEOUT_S = 5.0
# How long a command still running on the worker may take to be stopped and save its work.
_STOP_GRACE_S = 5.0
_ANSWER_TIMEOUT_S = 60.0


class WorkNotFetched(Exception):
    """The work a step keeps on a worker could not be fetched; the message says why."""


async def fetch_kept_work(repo: Repository, worktree: Path, remote: RemotePlace) -> str | None:
    """Move ``worktree`` and its branch to the work ``remote``'s session keeps on its worker (a
    command of it still running there is stopped first, its work saved), then let the worker drop
    it. Return the commit fetched, or None when the worker keeps nothing beyond what the worktree
    has. Raises WorkNotFetched when the scheduler or the worker cannot be reached."""
    have = await git(worktree, "rev-parse", "HEAD")
    try:
        with anyio.fail_after(_CONNECT_TIMEOUT_S + 5):
            client = await Cluster.connect(remote.scheduler, _CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise WorkNotFetched(f"the Dask scheduler {remote.scheduler} cannot be reached ({exc})") from exc
    try:
        return await _fetch(client, repo, worktree, remote, have)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            try:
                await client.close()
            except Exception:
                log.debug("closing the Dask client failed", exc_info=True)


async def _fetch(
    client: Cluster, repo: Repository, worktree: Path, remote: RemotePlace, have: str
) -> str | None:
    key = repository_key(repo)
    known = await client.workers()
    if remote.worker is not None and remote.worker not in known:
        raise WorkNotFetched(f"Dask worker {remote.worker} is no longer in the cluster at {remote.scheduler}")
    asked = [remote.worker] if remote.worker is not None else list(known)
    answers: dict[str, KeptWork | None] = {}
    with anyio.move_on_after(_ANSWER_TIMEOUT_S):
        answers = await client.run_on_workers(
            worker_side.kept_work, key, remote.session, have, _STOP_GRACE_S, worker=remote.worker
        )
    holder = next((worker for worker, answer in answers.items() if answer is not None), None)
    if holder is None and len(answers) < len(asked):
        # A worker that did not answer (or failed to) may be the one keeping the work: nothing is
        # released anywhere, so that a later recovery can still fetch it.
        silent = [worker for worker in asked if worker not in answers]
        raise WorkNotFetched(
            f"Dask worker {', '.join(silent)} did not answer within {_ANSWER_TIMEOUT_S:.0f}s"
        )
    kept = None if holder is None else answers[holder]
    if kept is not None and kept.bundle is not None:
        await take_work(repo, worktree, have, kept.commit, kept.bundle)
    with anyio.move_on_after(_ANSWER_TIMEOUT_S):
        await client.run_on_workers(
            worker_side.release_session, key, remote.session, worker=holder or remote.worker
        )
    return kept.commit if kept is not None and kept.bundle is not None else None
