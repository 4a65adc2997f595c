"""What one batch of the writer's changes becomes: as few writes as recovery and history allow.

A short step often starts, runs and ends within one batch: then its place and its process groups
need no rows of their own (the step's outcome gets the place; ended processes need no killing
after a crash), and the step costs one entry in its batch's `step_outcomes` row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, assert_never

from treeflow.core.events import (
    ProcessStarted,
    StepFinished,
    StepOnWorker,
    StepPlaced,
    StepProgress,
    StepRetrying,
    StepRound,
    StepStarted,
)
from treeflow.core.journal.rounds import UPSERT_ROUND, RoundRow
from treeflow.core.journal.rows import (
    END_PROCESSES,
    INSERT_OUTCOMES,
    INSERT_PROCESS,
    NOWHERE,
    PLACE_STEP,
    UPSERT_AGENT,
    UPSERT_ATTEMPT,
    UPSERT_OUTPUTS,
    UPSERT_RUN,
    AgentRow,
    AttemptRow,
    OutcomeEntry,
    OutputsRow,
    Place,
    PlaceRow,
    ProcessRow,
    RunRow,
    StepKey,
    StepState,
    Values,
)
from treeflow.core.journal.workers import UPSERT_WORKER, WorkerRow


@dataclass(frozen=True, slots=True)
class RunBegins:
    """A run started, or started again on resume, with the steps it carries over already final."""

    run: RunRow
    steps: tuple[str, ...]
    carried: tuple[OutcomeEntry, ...]


@dataclass(frozen=True, slots=True)
class RunEnds:
    run: RunRow


# What the writer is handed: events, a finished step's with a copy of its result, the progress of an
# agent whose session became known, and the rows of runs.
Change = (
    StepPlaced
    | ProcessStarted
    | StepOnWorker
    | StepRetrying
    | StepStarted
    | StepFinished
    | StepProgress
    | StepRound
    | RunBegins
    | RunEnds
)


@dataclass(frozen=True, slots=True)
class Rows:
    """Rows that one statement writes, several to an execution."""

    sql: str
    values: list[Values]


@dataclass(frozen=True, slots=True)
class BeginAgain:
    """Forget what an earlier attempt of a run wrote of the steps it does not carry over."""

    run_id: str
    carried: tuple[OutcomeEntry, ...]
    # When this execution began: what an earlier one settled before it is that one's history.
    started_at: float | None = None


Write = Rows | BeginAgain


@dataclass(slots=True)
class _Batch:
    """A batch's changes gathered by kind, the last word on each step kept. Rows are made only
    for what is written: most steps end in the batch that places them."""

    runs_begun: list[RunBegins] = field(default_factory=list)
    placed: dict[StepKey, StepPlaced] = field(default_factory=dict)
    placed_at: dict[StepKey, float] = field(default_factory=dict)
    processes: dict[StepKey, list[ProcessStarted]] = field(default_factory=dict)
    ended: dict[StepKey, StepFinished] = field(default_factory=dict)
    retries_started: list[AttemptRow] = field(default_factory=list)
    attempts_failed: list[AttemptRow] = field(default_factory=list)
    agents: dict[StepKey, AgentRow] = field(default_factory=dict)
    rounds: dict[tuple[str, str, int], RoundRow] = field(default_factory=dict)
    workers: dict[tuple[str, str, int], WorkerRow] = field(default_factory=dict)
    runs_ended: list[RunRow] = field(default_factory=list)


def _gather(changes: Iterable[Change]) -> _Batch:
    batch = _Batch()
    for change in changes:
        match change:
            case ProcessStarted():
                batch.processes.setdefault((change.run_id, change.step_id), []).append(change)
            case StepPlaced():
                key = (change.run_id, change.step_id)
                batch.placed[key] = change
                batch.placed_at[key] = time.time()
            case StepFinished():
                key = (change.run_id, change.step_id)
                batch.ended[key] = change
                if change.result.agent is not None:
                    batch.agents[key] = AgentRow.of(*key, change.result.agent)
            case StepProgress():
                if change.agent is not None:
                    key = (change.run_id, change.step_id)
                    batch.agents[key] = AgentRow.of(*key, change.agent)
            case StepRetrying():
                failed = AttemptRow(
                    change.run_id, change.step_id, change.next_attempt - 1, None, change.reason
                )
                batch.attempts_failed.append(failed)
            case StepStarted():
                batch.retries_started.append(
                    AttemptRow(change.run_id, change.step_id, change.attempt, time.time(), None)
                )
            case StepRound():
                batch.rounds[(change.run_id, change.step_id, change.round.number)] = RoundRow.of(
                    change.run_id, change.step_id, change.round
                )
            case StepOnWorker():
                attempt_key = (change.run_id, change.step_id, change.attempt)
                row = WorkerRow.of(change)
                known = batch.workers.get(attempt_key)
                if row.worker is None and known is not None and known.session == row.session:
                    # A later command of the attempt, not yet taken: the worker of the one before stays.
                    row = row._replace(worker=known.worker)
                batch.workers[attempt_key] = row
            case RunBegins():
                batch.runs_begun.append(change)
            case RunEnds():
                batch.runs_ended.append(change.run)
            case _:
                assert_never(change)
    return batch


def _place(placed: StepPlaced | None) -> Place:
    if placed is None or (placed.worktree is None and placed.branch is None and placed.start_commit is None):
        # A step that runs in the user's checkout has no place to record.
        return NOWHERE
    worktree = str(placed.worktree) if placed.worktree else None
    return Place(worktree=worktree, work_branch=placed.branch, start_commit=placed.start_commit)


def _rows(sql: str, values: list[Values]) -> list[Write]:
    return [Rows(sql, values)] if values else []


class Coalescer:
    """Turns batches of changes into writes, remembering across batches what later ones need."""

    def __init__(self) -> None:
        # Where each step of a run stands in the workflow, for the rows of steps as they end.
        self._positions: dict[str, dict[str, int]] = {}
        # Steps with process rows already committed: only those need them marked ended.
        self._steps_with_processes: set[StepKey] = set()

    def writes(self, changes: Iterable[Change]) -> list[Write]:
        """The writes for a batch of changes, with what a later change in the batch makes moot left out."""
        batch = _gather(changes)
        return [
            *self._runs_begun(batch),
            *self._places_still_open(batch),
            *self._processes_still_running(batch),
            *self._processes_of_ended_steps(batch),
            *self._outcomes_of_ended_steps(batch),
            *_attempts(batch),
            *_rows(UPSERT_AGENT, [agent.values() for agent in batch.agents.values()]),
            *_outputs(batch),
            *_rows(UPSERT_ROUND, [row for row in batch.rounds.values()]),
            *_rows(UPSERT_WORKER, [row for row in batch.workers.values()]),
            *self._runs_ended(batch),
        ]

    def _runs_begun(self, batch: _Batch) -> list[Write]:
        for begun in batch.runs_begun:
            self._positions[begun.run.run_id] = {
                step_id: position for position, step_id in enumerate(begun.steps)
            }
        if not batch.runs_begun:
            return []
        return [
            Rows(UPSERT_RUN, [begun.run.values() for begun in batch.runs_begun]),
            *(
                BeginAgain(begun.run.run_id, begun.carried, begun.run.started_at)
                for begun in batch.runs_begun
            ),
        ]

    def _places_still_open(self, batch: _Batch) -> list[Write]:
        """Where the steps that are still running run: recovery saves the work in those worktrees."""
        rows = [
            PlaceRow(*key, self._position(key), _place(placed), batch.placed_at[key]).values()
            for key, placed in batch.placed.items()
            if key not in batch.ended
        ]
        return _rows(PLACE_STEP, rows)

    def _processes_still_running(self, batch: _Batch) -> list[Write]:
        """The process groups of steps still running: recovery ends them."""
        running = {key: groups for key, groups in batch.processes.items() if key not in batch.ended}
        self._steps_with_processes.update(running)
        return _rows(
            INSERT_PROCESS,
            [
                ProcessRow(*key, started.group, started.start_ticks).values()
                for key, groups in running.items()
                for started in groups
            ],
        )

    def _processes_of_ended_steps(self, batch: _Batch) -> list[Write]:
        """A finished step's process groups have all ended (the runner waits for that): only those
        with rows from an earlier batch need saying so."""
        with_rows = [key for key in batch.ended if key in self._steps_with_processes]
        self._steps_with_processes.difference_update(with_rows)
        return _rows(END_PROCESSES, with_rows)

    def _outcomes_of_ended_steps(self, batch: _Batch) -> list[Write]:
        """One row per run for the steps that ended, each with its place if it was placed in this batch."""
        entries: dict[str, list[list[Any]]] = {}
        for key, ended in batch.ended.items():
            state = StepState.of(ended.result)
            entry = OutcomeEntry(ended.step_id, self._position(key), state, _place(batch.placed.get(key)))
            entries.setdefault(ended.run_id, []).append(entry.to_json())
        return _rows(INSERT_OUTCOMES, [(run_id, json.dumps(steps)) for run_id, steps in entries.items()])

    def _runs_ended(self, batch: _Batch) -> list[Write]:
        for run in batch.runs_ended:
            self._positions.pop(run.run_id, None)
        return _rows(UPSERT_RUN, [run.values() for run in batch.runs_ended])

    def _position(self, key: StepKey) -> int:
        run_id, step_id = key
        return self._positions.get(run_id, {}).get(step_id, 0)


def _outputs(batch: _Batch) -> list[Write]:
    """The outputs of the steps that ended having set some."""
    return _rows(
        UPSERT_OUTPUTS,
        [
            OutputsRow.of(ended.run_id, ended.step_id, ended.result.outputs).values()
            for ended in batch.ended.values()
            if ended.result.outputs
        ],
    )


def _attempts(batch: _Batch) -> list[Write]:
    """Retries that started, then attempts that failed: a retry that ends in this batch keeps its
    outcome. A step's only attempt is told by its own row; attempts get rows when there were several."""
    failed = [
        *batch.attempts_failed,
        *(
            AttemptRow(
                ended.run_id,
                ended.step_id,
                ended.result.attempts,
                None,
                ended.result.error or ended.result.status.value,
            )
            for ended in batch.ended.values()
            if ended.result.attempts > 1
        ),
    ]
    return [
        *_rows(UPSERT_ATTEMPT, [started.values() for started in batch.retries_started]),
        *_rows(UPSERT_ATTEMPT, [attempt.values() for attempt in failed]),
    ]
