"""What recovery and `treeflow clean` write: statements applied in one transaction, outside any run.

These are blocking: call them from a worker thread in async code.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from treeflow.core.journal.rows import NOWHERE, UPSERT_RUN, UPSERT_STEP, RunRow, StepRow, StepState
from treeflow.core.journal.schema import RUN_TABLES, connect
from treeflow.core.model import RunResult, RunStatus, StepResult

Statement = tuple[str, tuple[Any, ...]]


def execute(path: Path, statements: list[Statement]) -> None:
    """Apply ``statements`` in one transaction."""
    with connect(path) as connection:
        connection.execute("BEGIN IMMEDIATE")
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")


def mark_step(run_id: str, step_id: str, position: int, result: StepResult) -> Statement:
    """The step's row as ``result`` says, keeping the place its row held."""
    row = StepRow(
        run_id=run_id, step_id=step_id, position=position, state=StepState.of(result), place=NOWHERE
    )
    return (UPSERT_STEP, row.values())


def record_run(run: RunResult) -> Statement:
    """The run's row as it stands, for a run the journal never heard of."""
    return (UPSERT_RUN, RunRow.of(run, run.status).values())


def mark_run(run_id: str, status: RunStatus) -> Statement:
    return (
        "UPDATE runs SET status = ?, ended_at = coalesce(ended_at, ?) WHERE run_id = ?",
        (status.value, time.time(), run_id),
    )


def mark_discarded(run_id: str, branches: list[str]) -> Statement:
    """The run's branches were deleted by `treeflow discard`; its rows stay, as history."""
    return (
        "INSERT OR REPLACE INTO discarded_runs (run_id, discarded_at, branches) VALUES (?, ?, ?)",
        (run_id, time.time(), json.dumps(branches)),
    )


def processes_ended(run_id: str) -> Statement:
    return ("UPDATE processes SET ended = 1 WHERE run_id = ?", (run_id,))


def forget_runs_before(path: Path, cutoff: float) -> list[str]:
    """Delete the rows of runs that ended before ``cutoff``; return their ids."""
    with connect(path) as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT run_id FROM runs WHERE status != 'running' AND coalesce(ended_at, started_at) < ?",
                (cutoff,),
            ).fetchall()
        ]
        connection.execute("BEGIN IMMEDIATE")
        for run_id in ids:
            for table in RUN_TABLES:
                connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        connection.execute("COMMIT")
    return ids
