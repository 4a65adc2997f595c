"""The `approvals` table: each request of an approval gate, its decision, and whether the run acted on it.

A row is *open* until the run that asked settles it (`settled_at`). A decision can be written on an
open row by any process; the first one wins. A row left open by a run that stopped without settling
it (its process died, or a language server stopped it) is taken up again by the run's next
execution: a decision made meanwhile is acted on at once, and an undecided request is asked again
with a new deadline.

These are blocking: call them from a worker thread in async code.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from treeflow.core.gates import Approval, Channel, Decision
from treeflow.core.journal.rows import OutcomeEntry
from treeflow.core.journal.schema import connect


class ApprovalRow(NamedTuple):
    request: int
    step_id: str
    message: str
    requested_at: float
    expires_at: float | None
    decision: str | None
    decided_by: str | None
    via: str | None
    decided_at: float | None
    note: str | None

    def approval(self) -> Approval:
        return Approval(
            message=self.message,
            requested_at=self.requested_at,
            expires_at=self.expires_at,
            decision=None if self.decision is None else Decision(self.decision),
            decided_by=self.decided_by,
            via=None if self.via is None else Channel(self.via),
            decided_at=self.decided_at,
            note=self.note,
        )


_COLUMNS = ", ".join(ApprovalRow._fields)
_LATEST_OPEN = (
    f"SELECT {_COLUMNS} FROM approvals WHERE run_id = ? AND step_id = ? AND settled_at IS NULL "
    "ORDER BY request DESC LIMIT 1"
)
_LATEST = f"SELECT {_COLUMNS} FROM approvals WHERE run_id = ? AND step_id = ? ORDER BY request DESC LIMIT 1"


class NotWaiting(Exception):
    """The step has no request waiting for a decision; ``latest`` is its last request, if any."""

    def __init__(self, message: str, latest: Approval | None) -> None:
        super().__init__(message)
        self.latest = latest


def open_request(
    path: Path, run_id: str, step_id: str, message: str, timeout_s: float | None
) -> tuple[int, Approval]:
    """The step's open request, asked again with a new deadline if still undecided, or else a new one."""
    now = time.time()
    expires_at = None if timeout_s is None else now + timeout_s
    with connect(path) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = _row(connection, _LATEST_OPEN, (run_id, step_id))
            if row is None:
                cursor = connection.execute(
                    "INSERT INTO approvals (run_id, step_id, message, requested_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (run_id, step_id, message, now, expires_at),
                )
                request = int(cursor.lastrowid or 0)
            elif row.decision is None:
                request = row.request
                connection.execute(
                    "UPDATE approvals SET message = ?, expires_at = ? WHERE request = ?",
                    (message, expires_at, request),
                )
            else:
                request = row.request
            found = _row(connection, f"SELECT {_COLUMNS} FROM approvals WHERE request = ?", (request,))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    assert found is not None
    return request, found.approval()


def read_request(path: Path, request: int) -> Approval:
    with connect(path) as connection:
        row = _row(connection, f"SELECT {_COLUMNS} FROM approvals WHERE request = ?", (request,))
    if row is None:
        # `treeflow clean` forgets only ended runs; a row gone under a waiting run was removed by hand.
        raise LookupError(f"approval request {request} is no longer in the journal {path}")
    return row.approval()


def decide(
    path: Path,
    run_id: str,
    step_id: str,
    decision: Decision,
    by: str,
    via: Channel,
    note: str | None,
) -> Approval:
    """Write ``decision`` on the step's open, undecided request. Raises NotWaiting when it has none."""
    with connect(path) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = _row(connection, _LATEST_OPEN, (run_id, step_id))
            if row is None or row.decision is not None:
                latest = row or _row(connection, _LATEST, (run_id, step_id))
                connection.execute("ROLLBACK")
                approval = None if latest is None else latest.approval()
                raise NotWaiting(_not_waiting(run_id, step_id, approval), approval)
            connection.execute(
                "UPDATE approvals SET decision = ?, decided_by = ?, via = ?, decided_at = ?, note = ? "
                "WHERE request = ?",
                (decision.value, by, via.value, time.time(), note, row.request),
            )
            decided = _row(connection, f"SELECT {_COLUMNS} FROM approvals WHERE request = ?", (row.request,))
            connection.execute("COMMIT")
        except NotWaiting:
            raise
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
    assert decided is not None
    return decided.approval()


def settle(path: Path, request: int, otherwise: Decision | None = None) -> Approval:
    """Mark the request acted on; one still undecided gets ``otherwise`` (a timeout, a withdrawal),
    made by treeflow. A person's decision that came first stands."""
    now = time.time()
    with connect(path) as connection:
        connection.execute("BEGIN IMMEDIATE")
        if otherwise is not None:
            connection.execute(
                "UPDATE approvals SET decision = ?, decided_by = ?, via = ?, decided_at = ? "
                "WHERE request = ? AND decision IS NULL",
                (otherwise.value, "treeflow", Channel.TREEFLOW.value, now, request),
            )
        connection.execute(
            "UPDATE approvals SET settled_at = coalesce(settled_at, ?) WHERE request = ?", (now, request)
        )
        row = _row(connection, f"SELECT {_COLUMNS} FROM approvals WHERE request = ?", (request,))
        connection.execute("COMMIT")
    if row is None:
        raise LookupError(f"approval request {request} is no longer in the journal {path}")
    return row.approval()


def approvals_of_run(connection: sqlite3.Connection, run_id: str) -> dict[str, Approval]:
    """Each step's latest request."""
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM approvals WHERE run_id = ? ORDER BY request", (run_id,)
    )
    return {row.step_id: row.approval() for row in (ApprovalRow(*tuple(values)) for values in rows)}


def forget_settled_approvals(
    connection: sqlite3.Connection, run_id: str, carried: Sequence[OutcomeEntry], started_at: float | None
) -> None:
    """On a resume, forget the requests an earlier execution settled for the steps that run again:
    they ask anew. Open ones stay (a decision made while the run was stopped is acted on)."""
    if started_at is None:
        return
    kept = [entry.step_id for entry in carried]
    connection.execute(
        "DELETE FROM approvals WHERE run_id = ? AND settled_at < ? "
        f"AND step_id NOT IN ({', '.join('?' * len(kept))})",
        (run_id, started_at, *kept),
    )


def _row(connection: sqlite3.Connection, sql: str, parameters: tuple[object, ...]) -> ApprovalRow | None:
    values = connection.execute(sql, parameters).fetchone()
    return None if values is None else ApprovalRow(*tuple(values))


def _not_waiting(run_id: str, step_id: str, latest: Approval | None) -> str:
    where = f"step {step_id} of run {run_id}"
    if latest is None:
        return f"{where} is not waiting for approval: it has not reached its gate"
    if latest.decision is not None and latest.decision not in (Decision.TIMED_OUT, Decision.WITHDRAWN):
        return f"{where} is not waiting for approval: {latest.describe()}"
    if latest.decision is Decision.TIMED_OUT:
        return f"{where} is not waiting for approval: its gate timed out"
    return f"{where} is not waiting for approval: the run stopped waiting"
