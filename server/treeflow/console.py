"""How the CLI shows a run: a live display in a terminal, one plain line per event elsewhere."""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from treeflow.core.events import (
    AgentWaiting,
    Event,
    RunFinished,
    RunStarted,
    RunWarning,
    StepFinished,
    StepOutput,
    StepProgress,
    StepRetrying,
    StepStarted,
)
from treeflow.core.model import RunResult, StepResult, StepStatus

_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "red",
    StepStatus.TIMED_OUT: "red",
    StepStatus.CANCELLED: "yellow",
    StepStatus.SKIPPED: "dim",
    StepStatus.RUNNING: "cyan",
    StepStatus.PENDING: "dim",
    StepStatus.INTERRUPTED: "magenta",
}
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


def _relative(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _log_tail(path: Path | None, lines: int = _TAIL_LINES) -> list[str]:
    if path is None or not path.is_file():
        return []
    with path.open("rb") as handle:
        tail = deque(handle, maxlen=lines)
    return [raw.decode("utf-8", errors="replace").rstrip("\n") for raw in tail]


class PlainSink:
    """One line per event, for logs and CI: nothing is redrawn."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            run = event.run
            self._write(f"treeflow: run {run.run_id} of {run.workflow} ({len(run.steps)} steps)")
        elif isinstance(event, StepStarted):
            attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            self._write(f"[{event.step_id}] started{attempt}, log: {_relative(event.log)}")
        elif isinstance(event, StepOutput):
            self._write(f"[{event.step_id}] | {event.line}")
        elif isinstance(event, StepProgress):
            self._write(f"[{event.step_id}] agent: {describe_progress(event.progress, event.message)}")
        elif isinstance(event, AgentWaiting):
            self._write(f"[{event.step_id}] {describe_waiting(event)}")
        elif isinstance(event, StepRetrying):
            self._write(
                f"[{event.step_id}] {event.reason}; attempt {event.next_attempt} in {event.delay_s:.2f}s"
            )
        elif isinstance(event, StepFinished):
            self._write(f"[{event.step_id}] " + describe_step(event.step_id, event.result).split(" ", 1)[1])
        elif isinstance(event, RunWarning):
            where = f"[{event.step_id}] " if event.step_id else ""
            self._write(f"{where}warning: {event.message}")
        elif isinstance(event, RunFinished):
            branch = describe_result_branch(event.run)
            if branch:
                self._write(branch)
            self._write(describe_run(event.run))


class LiveSink:
    """A live terminal display: a progress bar, one line per running step, a summary table at the end."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._run: RunResult | None = None
        self._started: dict[str, float] = {}
        self._last_line: dict[str, str] = {}
        self._live = Live(console=console, refresh_per_second=8, transient=True, get_renderable=self._render)

    def __enter__(self) -> LiveSink:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()
        if self._run is not None and self._run.ended_at is not None:
            self._console.print(summary_table(self._run))
            self._print_failures(self._run)
            branch = describe_result_branch(self._run)
            if branch:
                self._console.print(Text(branch))
            self._console.print(Text(describe_run(self._run), style=_run_style(self._run)))

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._run = event.run
        elif isinstance(event, StepStarted):
            self._started.setdefault(event.step_id, time.monotonic())
        elif isinstance(event, StepOutput):
            self._last_line[event.step_id] = event.line
        elif isinstance(event, StepProgress):
            self._last_line[event.step_id] = "agent: " + describe_progress(event.progress, event.message)
        elif isinstance(event, AgentWaiting):
            self._live.console.print(Text(f"{event.step_id}: {describe_waiting(event)}", style="cyan"))
        elif isinstance(event, StepFinished):
            self._started.pop(event.step_id, None)
            self._live.console.print(
                Text(describe_step(event.step_id, event.result), style=_STYLE[event.result.status])
            )
        elif isinstance(event, RunWarning):
            self._live.console.print(Text(f"warning: {event.message}", style="yellow"))

    def _render(self) -> RenderableType:
        run = self._run
        if run is None:
            return Text("starting…")
        total = len(run.steps)
        done = sum(1 for step in run.steps.values() if step.status.is_final)
        header = Table.grid(padding=(0, 1))
        header.add_row(
            Text(run.workflow, style="bold"),
            ProgressBar(total=max(total, 1), completed=done, width=30),
            Text(f"{done}/{total}"),
        )
        rows = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for step_id, started in sorted(self._started.items(), key=lambda item: item[1]):
            last = self._last_line.get(step_id, "")
            rows.add_row(
                Text("⠿ " + step_id, style="cyan"),
                Text(format_duration(now - started)),
                Text(last[:100], style="dim", overflow="ellipsis", no_wrap=True),
            )
        return Group(header, rows)

    def _print_failures(self, run: RunResult) -> None:
        for step_id, step in run.steps.items():
            if step.status not in (StepStatus.FAILED, StepStatus.TIMED_OUT):
                continue
            tail = _log_tail(step.log)
            if not tail:
                continue
            self._console.print(Text(f"── last lines of {step_id} ({_relative(step.log)})", style="red"))
            for line in tail:
                self._console.print(Text(line), highlight=False)


def summary_table(run: RunResult) -> Table:
    table = Table(title=f"{escape(run.workflow)} · run {run.run_id}", title_justify="left")
    table.add_column("step")
    table.add_column("status")
    table.add_column("tries", justify="right")
    table.add_column("time", justify="right")
    table.add_column("branch", overflow="fold")
    table.add_column("log", overflow="fold")
    for step_id, step in run.steps.items():
        table.add_row(
            step_id,
            Text(step.status.value, style=_STYLE[step.status]),
            str(step.attempts) if step.attempts else "-",
            format_duration(step.duration_s),
            step.branch or "-",
            _relative(step.log),
        )
    return table


def runs_table(runs: list[RunResult]) -> Table:
    table = Table()
    table.add_column("run")
    table.add_column("workflow")
    table.add_column("status")
    table.add_column("steps", justify="right")
    table.add_column("started")
    table.add_column("time", justify="right")
    table.add_column("result branch", overflow="fold")
    for run in runs:
        succeeded = sum(1 for step in run.steps.values() if step.status is StepStatus.SUCCEEDED)
        started = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at)) if run.started_at else "-"
        )
        table.add_row(
            run.run_id,
            run.workflow,
            Text(run.status.value, style=_run_style(run)),
            f"{succeeded}/{len(run.steps)}",
            started,
            format_duration(run.duration_s),
            run.result_branch or "-",
        )
    return table


def _run_style(run: RunResult) -> str:
    return {
        "succeeded": "bold green",
        "failed": "bold red",
        "cancelled": "bold yellow",
        "interrupted": "bold magenta",
    }.get(run.status.value, "")
