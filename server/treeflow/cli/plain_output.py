"""How the CLI tells about a run in plain text: one line per event, for logs and CI.

The live display of a terminal is in `treeflow.cli.live_output`, which alone imports rich.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import TextIO, assert_never

from treeflow.cli.broken_pipe import discard_output
from treeflow.core.events import (
    AgentWaiting,
    Event,
    ProcessEnded,
    ProcessStarted,
    RunFinished,
    RunStarted,
    RunWarning,
    StepFinished,
    StepOutput,
    StepPlaced,
    StepProgress,
    StepRetrying,
    StepStarted,
)
from treeflow.core.model import RunResult, StepResult, StepStatus

_TAIL_LINES = 15


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def describe_step(step_id: str, result: StepResult) -> str:
    """One line saying how a step ended, as shown in both display modes."""
    words = result.status.value.replace("_", " ")
    if result.status is StepStatus.SKIPPED:
        return f"{step_id} skipped: {result.error}" if result.error else f"{step_id} skipped"
    text = f"{step_id} {words} in {format_duration(result.duration_s)}"
    if result.attempts > 1:
        text += f" after {result.attempts} attempts"
    if result.status is not StepStatus.SUCCEEDED and result.error:
        text += f" ({result.error})"
    return text


def describe_run(run: RunResult) -> str:
    counts: dict[str, int] = {}
    for step in run.steps.values():
        counts[step.status.value] = counts.get(step.status.value, 0) + 1
    parts = ", ".join(f"{count} {status.replace('_', ' ')}" for status, count in counts.items())
    return f"run {run.run_id} {run.status.value} in {format_duration(run.duration_s)}: {parts}"


def describe_result_branch(run: RunResult) -> str | None:
    if run.result_branch is None:
        return None
    base = (run.base_commit or "")[:12]
    return f"result: branch {run.result_branch} (inspect: git diff {base}..{run.result_branch})"


def describe_progress(progress: float | None, message: str | None) -> str:
    parts = [f"{progress:.0%}" if progress is not None else "", message or ""]
    return " ".join(part for part in parts if part)


def describe_waiting(event: AgentWaiting) -> str:
    return f"waiting for an agent to take the task {event.task_file} (worktree {event.worktree})"


def relative_path(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def log_tail(path: Path | None, lines: int = _TAIL_LINES) -> list[str]:
    if path is None or not path.is_file():
        return []
    with path.open("rb") as handle:
        tail = deque(handle, maxlen=lines)
    return [raw.decode("utf-8", errors="replace").rstrip("\n") for raw in tail]


class PlainSink:
    """One line per event, for logs and CI: nothing is redrawn.

    If the reader goes away, the run goes on to its end without printing: a closed pipe says
    nothing about the work, and stopping would leave it half done.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._reader_gone = False

    def _write(self, text: str) -> None:
        if self._reader_gone:
            return
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone = True
            discard_output(self._stream)

    def emit(self, event: Event) -> None:
        match event:
            case StepOutput():
                self._write(f"[{event.step_id}] | {event.line}")
            case StepStarted():
                # The log is only made on the step's first output: its path is told once it exists.
                attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                self._write(f"[{event.step_id}] started{attempt}")
            case StepFinished():
                line = describe_step(event.step_id, event.result).split(" ", 1)[1]
                if event.result.log is not None:
                    line += f", log: {relative_path(event.result.log)}"
                self._write(f"[{event.step_id}] {line}")
            case StepProgress():
                progress = describe_progress(event.progress, event.message)
                if progress:
                    self._write(f"[{event.step_id}] agent: {progress}")
            case AgentWaiting():
                self._write(f"[{event.step_id}] {describe_waiting(event)}")
            case StepRetrying():
                self._write(
                    f"[{event.step_id}] {event.reason}; attempt {event.next_attempt} in {event.delay_s:.2f}s"
                )
            case RunWarning():
                where = f"[{event.step_id}] " if event.step_id else ""
                self._write(f"{where}warning: {event.message}")
            case RunStarted():
                run = event.run
                self._write(f"treeflow: run {run.run_id} of {run.workflow} ({len(run.steps)} steps)")
            case RunFinished():
                branch = describe_result_branch(event.run)
                if branch:
                    self._write(branch)
                self._write(describe_run(event.run))
            case StepPlaced() | ProcessStarted() | ProcessEnded():
                pass
            case _:
                assert_never(event)
