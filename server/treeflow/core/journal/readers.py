"""Reading the journal: runs with their steps, and the process groups a run left running.

The readers are blocking: call them from a worker thread in async code.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from treeflow.core.journal.approvals import approvals_of_run
from treeflow.core.journal.rounds import rounds_of_run, settled
from treeflow.core.journal.rows import (
    AGENT_COLUMNS,
    OUTPUTS_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    AgentRow,
    OutcomeEntry,
    OutputsRow,
    RunRow,
    StepRow,
)
from treeflow.core.journal.schema import connect
from treeflow.core.journal.workers import remote_places_of_run, workers_of_run
from treeflow.core.model import RemotePlace, RunResult, StepResult, StepStatus
from treeflow.core.process import process_start_ticks

_SELECT_RUNS = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
_SELECT_STEPS = f"SELECT {', '.join(STEP_COLUMNS)} FROM steps WHERE run_id = ? ORDER BY position"
_SELECT_OUTCOMES = "SELECT steps FROM step_outcomes WHERE run_id = ? ORDER BY batch"
_SELECT_AGENTS = f"SELECT {', '.join(AGENT_COLUMNS)} FROM agent_sessions WHERE run_id = ?"
_SELECT_LAST_ATTEMPTS = "SELECT step_id, max(attempt) FROM attempts WHERE run_id = ? GROUP BY step_id"
_SELECT_OUTPUTS = f"SELECT {', '.join(OUTPUTS_COLUMNS)} FROM step_outputs WHERE run_id = ?"
_SELECT_CACHED = "SELECT step_id, cached_from FROM cached_steps WHERE run_id = ?"
_SELECT_DISCARDED = "SELECT discarded_at FROM discarded_runs WHERE run_id = ?"


@dataclass(frozen=True)
class StepRecord:
    """What the journal knows of a step beyond its result: where it ran and what it started from."""

    result: StepResult
    start_commit: str | None
    work_branch: str | None
    worktree: Path | None


@dataclass(frozen=True)
class RunRecord:
    run: RunResult
    owner_pid: int | None
    owner_start: int | None
    steps: dict[str, StepRecord]
    discarded_at: float | None = None  # when `treeflow discard` deleted its branches

    def owner_alive(self) -> bool:
        if self.owner_pid is None:
            return False
        if self.owner_pid == os.getpid() and self.owner_start == process_start_ticks(os.getpid()):
            return True
        return process_start_ticks(self.owner_pid) == self.owner_start is not None


def read_runs(path: Path, limit: int | None = None, status: str | None = None) -> list[RunRecord]:
    """Runs, newest first."""
    if not path.exists():
        return []
    where = " WHERE status = ?" if status else ""
    parameters: tuple[Any, ...] = (status,) if status else ()
    query = f"{_SELECT_RUNS}{where} ORDER BY started_at DESC, run_id DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    with connect(path) as connection, _snapshot_of(connection):
        return [_run_record(connection, row) for row in connection.execute(query, parameters).fetchall()]


def read_run(path: Path, run_id: str) -> RunRecord | None:
    if not path.exists():
        return None
    with connect(path) as connection, _snapshot_of(connection):
        return read_run_from(connection, run_id)


def matching_run_ids(path: Path, given: str, limit: int) -> list[str]:
    """The ids of the runs ``given`` may mean, newest first, at most ``limit``: the newest run for
    ``last``, the run of that exact id, or else every run whose id begins with ``given``."""
    if not path.exists() or not given:
        return []
    with connect(path) as connection, _snapshot_of(connection):
        if given == "last":
            query = "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            return [row[0] for row in connection.execute(query).fetchall()]
        if connection.execute("SELECT 1 FROM runs WHERE run_id = ?", (given,)).fetchone():
            return [given]
        # substr, not LIKE: an id may hold `_`, which LIKE takes for any character.
        query = (
            "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? "
            f"ORDER BY started_at DESC, run_id DESC LIMIT {int(limit)}"
        )
        return [row[0] for row in connection.execute(query, (len(given), given)).fetchall()]


def read_run_from(connection: sqlite3.Connection, run_id: str) -> RunRecord | None:
    row = connection.execute(f"{_SELECT_RUNS} WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else _run_record(connection, row)


def live_process_groups(path: Path, run_id: str) -> list[tuple[str, int, int | None]]:
    """(step, group, start ticks) of the process groups the run started and did not see end."""
    with connect(path) as connection:
        rows = connection.execute(
            "SELECT step_id, pgid, start_ticks FROM processes WHERE run_id = ? AND ended = 0", (run_id,)
        ).fetchall()
    return [(row[0], int(row[1]), row[2]) for row in rows]


def remote_places(path: Path, run_id: str) -> dict[str, RemotePlace]:
    """Where the last attempt of each step of the run that ran on another machine sent its
    commands: where crash recovery looks for its work."""
    with connect(path) as connection:
        return remote_places_of_run(connection, run_id)


@contextmanager
def _snapshot_of(connection: sqlite3.Connection) -> Iterator[None]:
    """Reads of one moment: a run's rows are read by several queries while writers go on committing."""
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _run_record(connection: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
    run_row = RunRow(*row)
    run_id = run_row.run_id
    rows = {
        step.step_id: step
        for step in (
            StepRow.from_values(tuple(values)) for values in connection.execute(_SELECT_STEPS, (run_id,))
        )
    }
    # An outcome is final, so it wins over the step's row, which tells where it was running.
    outcomes: dict[str, OutcomeEntry] = {}
    for (batch,) in connection.execute(_SELECT_OUTCOMES, (run_id,)):
        for entry in json.loads(batch):
            outcome = OutcomeEntry.from_json(entry)
            outcomes[outcome.step_id] = outcome
    # A running step's row was written when it started; since then, each attempt that failed and
    # each retry that started has a row of its own.
    retried: dict[str, int] = dict(connection.execute(_SELECT_LAST_ATTEMPTS, (run_id,)).fetchall())
    agents = {row.step_id: row for row in map(AgentRow._make, connection.execute(_SELECT_AGENTS, (run_id,)))}
    outputs = {
        row.step_id: row.mapping()
        for row in map(OutputsRow._make, connection.execute(_SELECT_OUTPUTS, (run_id,)))
    }
    approvals = approvals_of_run(connection, run_id)
    cached: dict[str, str] = dict(connection.execute(_SELECT_CACHED, (run_id,)).fetchall())
    rounds = rounds_of_run(connection, run_id)
    workers = workers_of_run(connection, run_id)
    steps: dict[str, StepRecord] = {}
    # The run's row lists its steps in order; one that never started has no row of its own.
    for step_id in [*run_row.step_ids(), *rows, *outcomes]:
        if step_id not in steps:
            record = _step_record(outcomes.get(step_id), rows.get(step_id), retried.get(step_id, 1))
            if step_id in agents:
                record = replace(record, result=replace(record.result, agent=agents[step_id].usage()))
            if outputs.get(step_id):
                record = replace(record, result=replace(record.result, outputs=outputs[step_id]))
            if step_id in approvals:
                record = replace(record, result=replace(record.result, approval=approvals[step_id]))
            if step_id in cached:
                record = replace(record, result=replace(record.result, cached_from=cached[step_id]))
            if step_id in workers:
                record = replace(record, result=replace(record.result, worker=workers[step_id]))
            if step_id in rounds:
                step_rounds = rounds[step_id]
                if record.result.status is not StepStatus.RUNNING:
                    step_rounds = tuple(settled(fix_round) for fix_round in step_rounds)
                record = replace(record, result=replace(record.result, rounds=step_rounds))
            steps[step_id] = record
    run = run_row.result({step_id: step.result for step_id, step in steps.items()})
    discarded = connection.execute(_SELECT_DISCARDED, (run_id,)).fetchone()
    return RunRecord(
        run=run,
        owner_pid=run_row.owner_pid,
        owner_start=run_row.owner_start,
        steps=steps,
        discarded_at=None if discarded is None else discarded[0],
    )


def _step_record(outcome: OutcomeEntry | None, row: StepRow | None, last_attempt: int) -> StepRecord:
    known = outcome if outcome is not None else row
    if known is None:
        return StepRecord(result=StepResult(), start_commit=None, work_branch=None, worktree=None)
    # The outcome of a step placed in an earlier batch leaves its place to the step's row.
    place = known.place if row is None else known.place.or_else(row.place)
    result = known.state.result()
    if result.status is StepStatus.RUNNING:
        result = replace(result, attempts=max(result.attempts, last_attempt))
    return StepRecord(
        result=result,
        start_commit=place.start_commit,
        work_branch=place.work_branch,
        worktree=Path(place.worktree) if place.worktree else None,
    )
