"""Waiting at approval gates, and deciding them from any process.

The journal is where a waiting run and whoever decides meet: the run writes its request as a row
of `approvals`, a decision is written on that row (by `decide`, from the same process or another:
`treeflow approve`, the language server, the terminal's prompt), and the run reads it back. So
that the run notices at once without polling the database, whoever decides then *rings* a doorbell
file, `<state dir>/approvals/<run id>.<step id>`, which the waiting run watches with the process's
file watcher (`treeflow.core.watch`: inotify on Linux, about 10 ms; elsewhere adaptive polling of
the file, at most 1 s late). As a backstop for a ring that never comes (a decision written by
hand, a watcher that missed it), the waiting run also reads its row every `RECHECK_S` seconds: one
indexed query, never more often.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import anyio

from treeflow.core.gates import Approval, Channel, Decision, Gate
from treeflow.core.git import Repository
from treeflow.core.journal import approvals as rows
from treeflow.core.journal.approvals import NotWaiting
from treeflow.core.journal.schema import journal_path
from treeflow.core.watch import Subscription, process_watcher

__all__ = ["Gatekeeper", "NotWaiting", "current_user", "decide"]

log = logging.getLogger(__name__)

RECHECK_S = 5.0


def doorbell(state_dir: Path, run_id: str, step_id: str) -> Path:
    # One folder for every run, never removed, so that a watch on it never races its removal; a
    # run id holds no dot.
    return state_dir / "approvals" / f"{run_id}.{step_id}"


def current_user() -> str:
    """The name of the user deciding, as the system knows it."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return os.environ.get("USER") or "unknown"


async def decide(
    repo: Repository,
    run_id: str,
    step_id: str,
    *,
    approve: bool,
    via: Channel,
    note: str | None = None,
    by: str | None = None,
) -> Approval:
    """Approve or reject the request waiting at ``step_id`` of ``run_id``, and wake the run.

    Raises NotWaiting when the step has no undecided request (never reached its gate, decided
    already, timed out, or its run stopped waiting).
    """
    decision = Decision.APPROVED if approve else Decision.REJECTED
    approval = await anyio.to_thread.run_sync(
        rows.decide, journal_path(repo), run_id, step_id, decision, by or current_user(), via, note
    )
    _ring(doorbell(repo.state_dir, run_id, step_id))
    return approval


def _ring(bell: Path) -> None:
    # No folder, no run waiting here: the run will find the decision when it asks again.
    if not bell.parent.is_dir():
        return
    try:
        bell.write_text(str(time.time_ns()))
    except OSError as exc:
        log.warning("could not ring %s (the run reads its decision within %gs): %s", bell, RECHECK_S, exc)


class Gatekeeper:
    """The approval gates of one run: each step's request, asked and waited for."""

    def __init__(self, repo: Repository, run_id: str) -> None:
        self._journal = journal_path(repo)
        self._state_dir = repo.state_dir
        self._run_id = run_id
        # Set when the process stops while the run waits (a language server shutting down): the
        # requests then stay open, to be offered again when the run is resumed.
        self.keep_open = False

    async def pass_gate(self, step_id: str, gate: Gate, changed: Callable[[Approval], None]) -> Approval:
        """Ask for a decision on ``step_id`` and wait for it: approved, rejected, or timed out.

        ``changed`` hears the request as it is asked and as it ends. Cancelled, the request is
        withdrawn (unless `keep_open`) and the cancellation goes on.
        """
        bell = doorbell(self._state_dir, self._run_id, step_id)
        bell.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Watching first, so that a decision right after the request cannot ring unheard.
            with process_watcher().watch(bell) as rings:
                request, approval = await anyio.to_thread.run_sync(
                    rows.open_request, self._journal, self._run_id, step_id, gate.message, gate.timeout_s
                )
                changed(approval)
                try:
                    await self._wait_decided(request, approval, rings)
                    settled = await anyio.to_thread.run_sync(
                        rows.settle, self._journal, request, Decision.TIMED_OUT
                    )
                except anyio.get_cancelled_exc_class():
                    if not self.keep_open:
                        with anyio.CancelScope(shield=True):
                            await self._withdraw(request, changed)
                    raise
        finally:
            _remove_bell(bell)
        changed(settled)
        return settled

    async def _wait_decided(self, request: int, approval: Approval, rings: Subscription) -> None:
        """Until the request is decided or its deadline has passed."""
        while approval.decision is None:
            left = None if approval.expires_at is None else approval.expires_at - time.time()
            if left is not None and left <= 0:
                return
            await rings.wait_changed(RECHECK_S if left is None else min(RECHECK_S, left))
            approval = await anyio.to_thread.run_sync(rows.read_request, self._journal, request)

    async def _withdraw(self, request: int, changed: Callable[[Approval], None]) -> None:
        try:
            withdrawn = await anyio.to_thread.run_sync(
                rows.settle, self._journal, request, Decision.WITHDRAWN
            )
        except Exception as exc:
            # The cancellation that got here matters more; the request stays open, as after a crash.
            log.warning("run %s: approval request %s could not be withdrawn: %s", self._run_id, request, exc)
            return
        changed(withdrawn)


def _remove_bell(bell: Path) -> None:
    with contextlib.suppress(OSError):
        bell.unlink(missing_ok=True)
