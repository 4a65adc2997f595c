"""The `step_workers` table: where the commands of a step's attempt went when they ran on another
machine: the scheduler, the step's session there, and the worker that took them.

It tells `treeflow show`, `--json` and the editor which worker ran a step, and tells crash recovery
where the work of a step whose treeflow process died waits to be fetched. A step that ran here has
no row. A row is written when a command is sent (its worker still unknown) and again once a worker
has taken it; a later command of the same session keeps the worker known until its own is.

The readers are blocking: call them from a worker thread in async code.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from treeflow.core.events import StepOnWorker
from treeflow.core.model import RemotePlace

TABLE = """
CREATE TABLE IF NOT EXISTS step_workers (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    scheduler TEXT NOT NULL,
    session TEXT NOT NULL,
    worker TEXT,
    PRIMARY KEY (run_id, step_id, attempt)
) WITHOUT ROWID;
"""


class WorkerRow(NamedTuple):
    run_id: str
    step_id: str
    attempt: int
    scheduler: str
    session: str
    worker: str | None

    @classmethod
    def of(cls, event: StepOnWorker) -> WorkerRow:
        remote = event.remote
        return cls(
            event.run_id, event.step_id, event.attempt, remote.scheduler, remote.session, remote.worker
        )

    def remote(self) -> RemotePlace:
        return RemotePlace(self.scheduler, self.session, self.worker)


_COLUMNS = ", ".join(WorkerRow._fields)
UPSERT_WORKER = (
    f"INSERT INTO step_workers ({_COLUMNS}) VALUES ({', '.join('?' * len(WorkerRow._fields))})"
    " ON CONFLICT (run_id, step_id, attempt) DO UPDATE SET scheduler = excluded.scheduler,"
    " worker = CASE WHEN excluded.session = step_workers.session"
    " THEN coalesce(excluded.worker, step_workers.worker) ELSE excluded.worker END,"
    " session = excluded.session"
)
_SELECT = f"SELECT {_COLUMNS} FROM step_workers WHERE run_id = ? ORDER BY step_id, attempt"


def workers_of_run(connection: sqlite3.Connection, run_id: str) -> dict[str, str]:
    """The worker that took the last command of each step that ran elsewhere, by step."""
    return {
        row.step_id: row.worker
        for row in map(WorkerRow._make, connection.execute(_SELECT, (run_id,)))
        if row.worker is not None
    }


def remote_places_of_run(connection: sqlite3.Connection, run_id: str) -> dict[str, RemotePlace]:
    """Where the last attempt of each step that ran elsewhere sent its commands, by step."""
    return {row.step_id: row.remote() for row in map(WorkerRow._make, connection.execute(_SELECT, (run_id,)))}
