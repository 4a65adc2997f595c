"""The journal's rows, one class per kind, and the statements that write them.

A row class's fields are the columns it writes, in the order its values are written: the field
list is the only place that maps a row to its columns, and the statements that write and read
rows are built from it. A column added to a table is a field added here (the type checker then
shows each place a row is built) and a column added to `schema.SCHEMA`.

An entry of a `step_outcomes` list is a JSON list in the order of `OUTCOME_ENTRY_COLUMNS`: the
step, its position, then `StepState`'s fields, then `Place`'s. Journals already written hold
entries of that order and length, which `OutcomeEntry.from_json` checks: a field added to either
class must go at the end of the entry, and the reader must then accept the shorter entries
written before it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from treeflow.core.model import AgentUsage, RunResult, RunStatus, StepResult, StepStatus
from treeflow.core.process import process_start_ticks

StepKey = tuple[str, str]
Values = tuple[Any, ...]


def _columns(row_class: type) -> tuple[str, ...]:
    names: tuple[str, ...] = row_class._fields  # type: ignore[attr-defined]
    return names


def _getter(columns: Sequence[str]) -> Callable[[Any], Values]:
    """Reads the values of ``columns`` off a row in one C call: rows are written by the thousand."""
    return attrgetter(*columns)


class RunRow(NamedTuple):
    """A row of `runs`."""

    run_id: str
    workflow: str
    workflow_path: str
    status: str
    base_commit: str | None
    result_branch: str | None
    selected: str  # a JSON list of the run's steps in order: one that never started has no row
    warnings: str  # a JSON list
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    owner_pid: int | None
    owner_start: int | None

    @classmethod
    def of(cls, run: RunResult, status: RunStatus) -> RunRow:
        """The row of ``run`` as it stands now, owned by this process."""
        owner = os.getpid()
        return cls(
            run_id=run.run_id,
            workflow=run.workflow,
            workflow_path=str(run.workflow_path),
            status=status.value,
            base_commit=run.base_commit,
            result_branch=run.result_branch,
            selected=json.dumps(list(run.steps)),
            warnings=json.dumps(run.warnings),
            started_at=run.started_at,
            ended_at=run.ended_at,
            duration_s=run.duration_s,
            owner_pid=owner,
            owner_start=process_start_ticks(owner),
        )

    def values(self) -> Values:
        return _run_values(self)

    def result(self, steps: Mapping[str, StepResult]) -> RunResult:
        """The run, with the results of its ``steps`` (which its row does not hold)."""
        return RunResult(
            run_id=self.run_id,
            workflow=self.workflow,
            workflow_path=Path(self.workflow_path),
            status=RunStatus(self.status),
            base_commit=self.base_commit,
            result_branch=self.result_branch,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_s=self.duration_s,
            steps=steps,
            warnings=tuple(json.loads(self.warnings)),
        )

    def step_ids(self) -> list[str]:
        ids: list[str] = json.loads(self.selected)
        return ids


RUN_COLUMNS = _columns(RunRow)
_run_values = _getter(RUN_COLUMNS)


class StepState(NamedTuple):
    """A step's result as the journal keeps it: what it came to, and where its work is."""

    status: str
    attempts: int
    exit_code: int | None
    started_at: float | None
    ended_at: float | None
    duration_s: float | None
    branch: str | None
    commit_id: str | None
    log: str | None
    error: str | None
    summary: str | None

    @classmethod
    def of(cls, result: StepResult) -> StepState:
        return cls(
            status=result.status.value,
            attempts=result.attempts,
            exit_code=result.exit_code,
            started_at=result.started_at,
            ended_at=result.ended_at,
            duration_s=result.duration_s,
            branch=result.branch,
            commit_id=result.commit,
            log=str(result.log) if result.log else None,
            error=result.error,
            summary=result.summary,
        )

    def values(self) -> Values:
        return _state_values(self)

    def result(self) -> StepResult:
        return StepResult(
            status=StepStatus(self.status),
            attempts=self.attempts,
            exit_code=self.exit_code,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_s=self.duration_s,
            branch=self.branch,
            commit=self.commit_id,
            log=Path(self.log) if self.log else None,
            error=self.error,
            summary=self.summary,
        )


STATE_COLUMNS = _columns(StepState)
_state_values = _getter(STATE_COLUMNS)


class Place(NamedTuple):
    """Where a step runs: its worktree, the branch it works on and the commit it started from."""

    worktree: str | None = None
    work_branch: str | None = None
    start_commit: str | None = None

    def values(self) -> Values:
        return _place_values(self)

    def or_else(self, other: Place) -> Place:
        """This place, with what it does not know taken from ``other``."""
        return Place(
            worktree=self.worktree or other.worktree,
            work_branch=self.work_branch or other.work_branch,
            start_commit=self.start_commit or other.start_commit,
        )


PLACE_COLUMNS = _columns(Place)
_place_values = _getter(PLACE_COLUMNS)
NOWHERE = Place()


def _state_and_place(values: Sequence[Any], start: int) -> tuple[StepState, Place]:
    """The step state and place that ``values`` hold from ``start`` on, in the order of their columns."""
    split = start + len(STATE_COLUMNS)
    if len(values) != split + len(PLACE_COLUMNS):
        raise ValueError(f"a step of {len(values)} values, not {split + len(PLACE_COLUMNS)}")
    return StepState(*values[start:split]), Place(*values[split:])


class OutcomeEntry(NamedTuple):
    """One step's entry in a `step_outcomes` list: where it stands in the run, its state and place."""

    step_id: str
    position: int
    state: StepState
    place: Place

    def to_json(self) -> list[Any]:
        return [self.step_id, self.position, *self.state.values(), *self.place.values()]

    @classmethod
    def from_json(cls, entry: Sequence[Any]) -> OutcomeEntry:
        state, place = _state_and_place(entry, 2)
        return cls(step_id=entry[0], position=entry[1], state=state, place=place)


OUTCOME_ENTRY_COLUMNS = ("step_id", "position", *STATE_COLUMNS, *PLACE_COLUMNS)


class StepRow(NamedTuple):
    """A row of `steps`: a step's state and place, as recovery or a final write leaves them."""

    run_id: str
    step_id: str
    position: int
    state: StepState
    place: Place

    def values(self) -> Values:
        return (self.run_id, self.step_id, self.position, *self.state.values(), *self.place.values())

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> StepRow:
        state, place = _state_and_place(values, 3)
        return cls(run_id=values[0], step_id=values[1], position=values[2], state=state, place=place)


STEP_COLUMNS = ("run_id", "step_id", "position", *STATE_COLUMNS, *PLACE_COLUMNS)


class PlaceRow(NamedTuple):
    """The row of `steps` that says where a running step is and since when."""

    run_id: str
    step_id: str
    position: int
    place: Place
    started_at: float

    def values(self) -> Values:
        return (self.run_id, self.step_id, self.position, *self.place.values(), self.started_at)


PLACE_ROW_COLUMNS = ("run_id", "step_id", "position", *PLACE_COLUMNS, "started_at")


class ProcessRow(NamedTuple):
    """A row of `processes`: a process group a step started, told apart from a later one by its
    start time. Its `ended` column is set by the statements that see it end."""

    run_id: str
    step_id: str
    pgid: int
    start_ticks: int | None

    def values(self) -> Values:
        return _process_values(self)


PROCESS_COLUMNS = _columns(ProcessRow)
_process_values = _getter(PROCESS_COLUMNS)


class AttemptRow(NamedTuple):
    """A row of `attempts`: an attempt that started again (a retry) or that failed and was retried."""

    run_id: str
    step_id: str
    attempt: int
    started_at: float | None
    outcome: str | None

    def values(self) -> Values:
        return _attempt_values(self)


ATTEMPT_COLUMNS = _columns(AttemptRow)
_attempt_values = _getter(ATTEMPT_COLUMNS)


class AgentRow(NamedTuple):
    """A row of `agent_sessions`: what an agent CLI's stream said of a step's session, the last
    word kept (its totals once the step ended). A step whose kind runs no agent CLI has none."""

    run_id: str
    step_id: str
    cli: str
    session_id: str | None
    turns: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None

    @classmethod
    def of(cls, run_id: str, step_id: str, usage: AgentUsage) -> AgentRow:
        return cls(
            run_id,
            step_id,
            usage.cli,
            usage.session_id,
            usage.turns,
            usage.input_tokens,
            usage.output_tokens,
            usage.cost_usd,
        )

    def values(self) -> Values:
        return _agent_values(self)

    def usage(self) -> AgentUsage:
        return AgentUsage(
            cli=self.cli,
            session_id=self.session_id,
            turns=self.turns,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost_usd,
        )


AGENT_COLUMNS = _columns(AgentRow)
_agent_values = _getter(AGENT_COLUMNS)


def _insert(
    table: str, columns: Sequence[str], verb: str = "INSERT", constants: Mapping[str, str] | None = None
) -> str:
    """A statement that writes one row of ``columns``, and of ``constants`` (column: SQL value);
    the writer widens its VALUES clause to several rows."""
    constants = constants or {}
    names = [*columns, *constants]
    marks = [*(["?"] * len(columns)), *constants.values()]
    return f"{verb} INTO {table} ({', '.join(names)}) VALUES ({', '.join(marks)})"


def _update(table: str, columns: Sequence[str], keep_if_null: Sequence[str] = ()) -> str:
    """What an upsert changes in a row already there: ``columns`` take the new row's values, but a
    NULL in one of ``keep_if_null`` leaves the value stored."""
    return ", ".join(
        f"{name} = coalesce(excluded.{name}, {table}.{name})"
        if name in keep_if_null
        else f"{name} = excluded.{name}"
        for name in columns
    )


# What the first write of a run says of it stays, whatever a later one (a resume) says.
_RUN_KEPT = ("run_id", "workflow", "selected", "started_at")
UPSERT_RUN = (
    f"{_insert('runs', RUN_COLUMNS)} ON CONFLICT (run_id) DO UPDATE SET"
    f" {_update('runs', [name for name in RUN_COLUMNS if name not in _RUN_KEPT])}"
)
# A step's final row keeps the start and place of its earlier one where it does not know them.
UPSERT_STEP = (
    f"{_insert('steps', STEP_COLUMNS)} ON CONFLICT (run_id, step_id) DO UPDATE SET"
    f" {_update('steps', [*STATE_COLUMNS, *PLACE_COLUMNS], keep_if_null=('started_at', *PLACE_COLUMNS))}"
)
# A step that starts again after a resume or a retry is running again, from its new place.
_RUNNING = {"status": "'running'"}
PLACE_STEP = (
    f"{_insert('steps', PLACE_ROW_COLUMNS, constants=_RUNNING)}"
    f" ON CONFLICT (run_id, step_id) DO UPDATE SET status = 'running',"
    f" {_update('steps', [*PLACE_COLUMNS, 'started_at'])}"
)
INSERT_PROCESS = _insert("processes", PROCESS_COLUMNS, verb="INSERT OR REPLACE")
END_PROCESSES = "UPDATE processes SET ended = 1 WHERE (run_id, step_id) IN (VALUES (?, ?))"
# An attempt's row is replaced whole: its start, then its outcome, each with the other left NULL.
UPSERT_ATTEMPT = _insert("attempts", ATTEMPT_COLUMNS, verb="INSERT OR REPLACE")
INSERT_OUTCOMES = "INSERT INTO step_outcomes (run_id, steps) VALUES (?, ?)"
UPSERT_AGENT = _insert("agent_sessions", AGENT_COLUMNS, verb="INSERT OR REPLACE")
