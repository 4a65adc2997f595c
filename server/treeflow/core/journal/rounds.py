"""The `step_rounds` table: one row per round of a step's fix loop, replaced as the round goes on.

Rows of a step that runs again in a resumed run are kept: the loop goes on from the last of them,
numbering its rounds after it (see `treeflow.core.fix_loop`).

The reader is blocking: call it from a worker thread in async code.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import NamedTuple

from treeflow.core.model import FixRound, StepStatus

TABLE = """
CREATE TABLE IF NOT EXISTS step_rounds (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    of_rounds INTEGER NOT NULL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT,
    fixer TEXT,
    fix_status TEXT,
    fix_error TEXT,
    branch TEXT,
    commit_id TEXT,
    started_at REAL,
    ended_at REAL,
    PRIMARY KEY (run_id, step_id, round)
) WITHOUT ROWID;
"""


class RoundRow(NamedTuple):
    run_id: str
    step_id: str
    round: int
    of_rounds: int
    status: str
    exit_code: int | None
    error: str | None
    fixer: str | None
    fix_status: str | None
    fix_error: str | None
    branch: str | None
    commit_id: str | None
    started_at: float | None
    ended_at: float | None

    @classmethod
    def of(cls, run_id: str, step_id: str, fix_round: FixRound) -> RoundRow:
        return cls(
            run_id,
            step_id,
            fix_round.number,
            fix_round.of,
            fix_round.status.value,
            fix_round.exit_code,
            fix_round.error,
            fix_round.fixer,
            None if fix_round.fix_status is None else fix_round.fix_status.value,
            fix_round.fix_error,
            fix_round.branch,
            fix_round.commit,
            fix_round.started_at,
            fix_round.ended_at,
        )

    def fix_round(self) -> FixRound:
        return FixRound(
            number=self.round,
            of=self.of_rounds,
            status=_status(self.status) or StepStatus.INTERRUPTED,
            exit_code=self.exit_code,
            error=self.error,
            fixer=self.fixer,
            fix_status=_status(self.fix_status),
            fix_error=self.fix_error,
            branch=self.branch,
            commit=self.commit_id,
            started_at=self.started_at,
            ended_at=self.ended_at,
        )


_COLUMNS = ", ".join(RoundRow._fields)
_MARKS = ", ".join("?" * len(RoundRow._fields))
UPSERT_ROUND = f"INSERT OR REPLACE INTO step_rounds ({_COLUMNS}) VALUES ({_MARKS})"
_SELECT = f"SELECT {_COLUMNS} FROM step_rounds WHERE run_id = ? ORDER BY step_id, round"


def rounds_of_run(connection: sqlite3.Connection, run_id: str) -> dict[str, tuple[FixRound, ...]]:
    """The rounds of each step of the run that has any, in order."""
    found: dict[str, list[FixRound]] = {}
    for values in connection.execute(_SELECT, (run_id,)):
        row = RoundRow._make(values)
        found.setdefault(row.step_id, []).append(row.fix_round())
    return {step_id: tuple(rounds) for step_id, rounds in found.items()}


def settled(fix_round: FixRound) -> FixRound:
    """A round of a step that is no longer running: what was still running in it when its
    treeflow process died is `interrupted`."""
    if fix_round.status is StepStatus.RUNNING:
        fix_round = replace(fix_round, status=StepStatus.INTERRUPTED)
    if fix_round.fix_status is StepStatus.RUNNING:
        fix_round = replace(fix_round, fix_status=StepStatus.INTERRUPTED)
    return fix_round


def _status(value: str | None) -> StepStatus | None:
    if value is None:
        return None
    try:
        return StepStatus(value)
    except ValueError:
        return None
