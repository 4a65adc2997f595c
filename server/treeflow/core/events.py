"""What the engine tells the outside world while a run goes on.

The engine never prints: it hands typed events to an `EventSink`. The CLI display, the language
server and the journal are sinks. `emit` is called on the event loop and must return quickly;
a sink with slow consumers coalesces instead of queueing without bound.

An event is a value: the results it carries (`RunResult`, `StepResult`) are snapshots that never
change, so a sink may keep one or hand it to another thread as it is. A sink dispatches with
``match`` over the event classes and ends with ``case _: assert_never(event)``, so that an event
class added to `Event` is a type error in every sink that does not handle it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from treeflow.core.gates import Approval
from treeflow.core.model import AgentUsage, FixRound, RunResult, StepResult


class OutputStream(StrEnum):
    """Which of a step's output streams a line came from. An agent CLI's stderr shares its stdout,
    which treeflow reads as the CLI's own stream of events."""

    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True)
class RunStarted:
    """The run has begun: its steps, those a resumed run carries over already final."""

    run: RunResult


@dataclass(frozen=True)
class StepStarted:
    run_id: str
    step_id: str
    attempt: int
    log: Path


@dataclass(frozen=True)
class StepPlaced:
    """A step has its place: the folder it runs in and, in a worktree, its branch and start commit."""

    run_id: str
    step_id: str
    cwd: Path
    worktree: Path | None
    branch: str | None
    start_commit: str | None


@dataclass(frozen=True)
class ProcessStarted:
    """A step's command started as the leader of process group ``group``; ``start_ticks`` (its start
    time, from /proc) tells it apart from a later process that reuses the number."""

    run_id: str
    step_id: str
    group: int
    start_ticks: int | None


@dataclass(frozen=True)
class ProcessEnded:
    run_id: str
    step_id: str
    group: int


@dataclass(frozen=True)
class StepOutput:
    run_id: str
    step_id: str
    line: str
    stream: OutputStream = OutputStream.STDOUT


@dataclass(frozen=True)
class StepProgress:
    """An agent step reported progress (a fraction from 0 to 1, or None) and/or a message; an agent
    CLI's step also what its stream says of its session, turns, tokens and cost (``agent``)."""

    run_id: str
    step_id: str
    progress: float | None
    message: str | None
    agent: AgentUsage | None = None


@dataclass(frozen=True)
class AgentWaiting:
    """An agent step without a launcher waits for an agent started elsewhere to take its task."""

    run_id: str
    step_id: str
    worktree: Path
    task_file: Path


@dataclass(frozen=True)
class ApprovalRequested:
    """A step waits at its approval gate for a person to approve or reject it."""

    run_id: str
    step_id: str
    approval: Approval


@dataclass(frozen=True)
class ApprovalDecided:
    """A step's approval gate is decided: approved, rejected, timed out, or withdrawn."""

    run_id: str
    step_id: str
    approval: Approval


@dataclass(frozen=True)
class StepRetrying:
    run_id: str
    step_id: str
    next_attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class StepRound:
    """A round of a step's fix loop began, failed and went to its fixer, or ended (its branch known)."""

    run_id: str
    step_id: str
    round: FixRound


@dataclass(frozen=True)
class StepFinished:
    """A step reached its final state; ``result`` is the step's result at that moment."""

    run_id: str
    step_id: str
    result: StepResult


@dataclass(frozen=True)
class RunFinished:
    """The run is over, its work gathered; ``run`` is its final result."""

    run: RunResult


@dataclass(frozen=True)
class RunWarning:
    """Something the user should know that does not change the outcome, such as a leftover worktree."""

    run_id: str
    step_id: str | None
    message: str


Event = (
    RunStarted
    | StepStarted
    | StepPlaced
    | ProcessStarted
    | ProcessEnded
    | StepOutput
    | StepProgress
    | AgentWaiting
    | ApprovalRequested
    | ApprovalDecided
    | StepRetrying
    | StepRound
    | StepFinished
    | RunFinished
    | RunWarning
)


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class NullSink:
    def emit(self, event: Event) -> None:
        return None


class FanOut:
    """Sends every event to several sinks, in order."""

    def __init__(self, sinks: Sequence[EventSink]) -> None:
        self._sinks = tuple(sinks)

    def emit(self, event: Event) -> None:
        for sink in self._sinks:
            sink.emit(event)
