"""One try of one step: everything a step kind needs to run it, and where it reports what happens."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from treeflow.core.events import (
    Event,
    EventSink,
    OutputStream,
    ProcessEnded,
    ProcessStarted,
    StepOutput,
    StepProgress,
)
from treeflow.core.executor import Executor
from treeflow.core.model import AgentUsage, Step, StepResult, StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.steplog import StepLog
from treeflow.core.workspace import StepPlace


@dataclass(frozen=True, slots=True)
class Attempt:
    """Attempt ``number`` of ``step`` (0 for the workflow's `setup.run` before the first) in ``place``.

    A kind starts processes with `run_command`, which goes through the run's executor, and reports
    progress, warnings and events through the methods here; the run keeps the step's result.
    """

    run_id: str
    step: Step
    number: int
    place: StepPlace
    env: Mapping[str, str]
    log: StepLog
    kill_grace_s: float
    executor: Executor
    sink: EventSink
    # Keeps the step's progress in the run's result, as (fraction, message, summary).
    note_progress: Callable[[float | None, str | None, str | None], None]
    # Keeps the exit status of each process of the step as it ends, stopped ones included.
    note_exit: Callable[[int | None], None]
    warn: Callable[[str], None]
    # Keeps what an agent CLI's stream said of its session, tokens and cost in the step's result.
    note_agent: Callable[[AgentUsage], None] = lambda usage: None
    # How the step's previous try ended: the attempt before this one, or on resume, the step in the
    # run's earlier execution; None for a first try.
    earlier: StepResult | None = None

    @property
    def cwd(self) -> Path:
        return self.place.cwd

    def emit(self, event: Event) -> None:
        self.sink.emit(event)

    def output(self, line: str) -> None:
        """A line the step printed, for whoever follows the run live (the log has it already)."""
        self.sink.emit(StepOutput(self.run_id, self.step.id, line))

    def error_output(self, line: str) -> None:
        """A line the step printed on stderr, for whoever follows the run live."""
        self.sink.emit(StepOutput(self.run_id, self.step.id, line, OutputStream.STDERR))

    def progress(self, fraction: float | None, message: str | None, summary: str | None = None) -> None:
        """How far the step has come, in its own words; shown while it runs and kept in its result."""
        self.note_progress(fraction, message, summary)
        self.sink.emit(StepProgress(self.run_id, self.step.id, fraction, message))

    def agent_progress(self, usage: AgentUsage, message: str | None) -> None:
        """What an agent CLI is doing, from its stream; shown while it runs, its totals kept."""
        self.note_agent(usage)
        self.note_progress(None, message, None)
        self.sink.emit(StepProgress(self.run_id, self.step.id, None, message, usage))

    def process_started(self, group: int, start_ticks: int | None) -> None:
        self.sink.emit(ProcessStarted(self.run_id, self.step.id, group, start_ticks))

    def process_ended(self, group: int, exit_code: int | None) -> None:
        self.note_exit(exit_code)
        self.sink.emit(ProcessEnded(self.run_id, self.step.id, group))

    async def run_command(
        self,
        command: str,
        *,
        on_line: Callable[[str], None] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> int:
        """Run ``command`` in the step's place through the executor and return its exit status.

        Its output goes to the step's log, and each line to ``on_line`` (by default, `output`, and
        then each stderr line to `error_output`; a caller's own ``on_line`` hears both streams).
        Cancelling the call ends the command's whole process tree. Raises OSError when the command
        cannot be started.
        """
        return await self.executor.run_command(
            command,
            cwd=self.place.cwd,
            env=self.env if extra_env is None else {**self.env, **extra_env},
            log=self.log,
            on_line=self.output if on_line is None else on_line,
            on_error_line=self.error_output if on_line is None else None,
            on_start=self.process_started,
            on_end=self.process_ended,
            kill_grace_s=self.kill_grace_s,
        )

    async def run_to_outcome(self, command: str) -> StepOutcome:
        """`run_command`, its exit status taken as the outcome; a command that cannot start fails."""
        try:
            exit_code = await self.run_command(command)
        except OSError as exc:
            return StepOutcome(StepStatus.FAILED, error=f"could not start the command: {exc}")
        return StepOutcome.of_exit(exit_code)
