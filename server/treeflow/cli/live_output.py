"""How the CLI shows a run in a terminal: a live display, and the tables of `runs` and `show`.

Only for a terminal: where stdout is not one, `treeflow.cli.plain_output` says the same in plain
text, without rich.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence, Set
from contextlib import contextmanager
from typing import assert_never

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from treeflow.cli.plain_output import (
    RUNS_COLUMNS,
    SUMMARY_COLUMNS,
    Column,
    agent_lines,
    approval_lines,
    describe_progress,
    describe_request,
    describe_result_branch,
    describe_round,
    describe_run,
    describe_step,
    describe_usage,
    describe_waiting,
    format_duration,
    log_tail,
    output_lines,
    relative_path,
    round_lines,
    runs_rows,
    summary_rows,
    worker_lines,
)
from treeflow.cli.terminal_text import shown, shown_line
from treeflow.core.events import (
    AgentWaiting,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    ProcessEnded,
    ProcessStarted,
    RunFinished,
    RunStarted,
    RunWarning,
    StepFinished,
    StepOnWorker,
    StepOutput,
    StepPlaced,
    StepProgress,
    StepRetrying,
    StepRound,
    StepStarted,
)
from treeflow.core.model import RunResult, StepStatus

# A running step's last line, as the live display shows it beside the step.
_LAST_LINE_LIMIT = 100

_STYLE = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.CACHED: "green",
    StepStatus.FAILED: "red",
    StepStatus.TIMED_OUT: "red",
    StepStatus.CANCELLED: "yellow",
    StepStatus.SKIPPED: "dim",
    StepStatus.RUNNING: "cyan",
    StepStatus.PENDING: "dim",
    StepStatus.INTERRUPTED: "magenta",
}


class LiveSink:
    """A live terminal display: a progress bar, one line per running step, a summary table at the end."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._run: RunResult | None = None  # as it started
        self._done = 0  # steps in a final state
        self._final: RunResult | None = None
        self._started: dict[str, float] = {}
        self._last_line: dict[str, str] = {}
        # Where each step with a fix loop stands: `round 2/3`, `· fixing` while its fixer runs.
        self._round: dict[str, str] = {}
        self._live = Live(console=console, refresh_per_second=8, transient=True, get_renderable=self._render)

    def __enter__(self) -> LiveSink:
        self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._live.stop()
        final = self._final
        if final is not None:
            self._console.print(summary_table(final))
            for line in [*worker_lines(final), *agent_lines(final), *round_lines(final)]:
                self._console.print(Text(line))
            self._print_failures(final)
            branch = describe_result_branch(final)
            if branch:
                self._console.print(Text(branch))
            self._console.print(Text(describe_run(final), style=_run_style(final)))

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The display taken off the screen, so that a question and its answer can be typed."""
        self._live.stop()
        try:
            yield
        finally:
            self._live.start()

    def emit(self, event: Event) -> None:
        match event:
            case StepOutput():
                self._last_line[event.step_id] = shown_line(event.line, _LAST_LINE_LIMIT)
            case StepStarted():
                self._started.setdefault(event.step_id, time.monotonic())
            case StepProgress() if event.agent is not None:
                usage = describe_usage(event.agent)
                doing = shown_line(event.message or "", _LAST_LINE_LIMIT)
                self._last_line[event.step_id] = f"{shown_line(event.agent.cli)}: {doing}" + (
                    f" · {usage}" if usage else ""
                )
            case StepProgress():
                self._last_line[event.step_id] = "agent: " + describe_progress(event.progress, event.message)
            case AgentWaiting():
                self._live.console.print(Text(f"{event.step_id}: {describe_waiting(event)}", style="cyan"))
            case ApprovalRequested():
                self._live.console.print(Text(f"{event.step_id}: {describe_request(event)}", style="cyan"))
            case ApprovalDecided():
                self._live.console.print(Text(f"{event.step_id}: {shown_line(event.approval.describe())}"))
            case StepFinished():
                self._started.pop(event.step_id, None)
                self._done += 1
                self._live.console.print(
                    Text(describe_step(event.step_id, event.result), style=_STYLE[event.result.status])
                )
            case RunWarning():
                self._live.console.print(Text(f"warning: {shown(event.message)}", style="yellow"))
            case RunStarted():
                # A resumed run's carried-over steps are final from the start.
                self._done = sum(1 for step in event.run.steps.values() if step.status.is_final)
                self._run = event.run
            case RunFinished():
                self._final = event.run
            case StepRound():
                fix_round = event.round
                self._round[event.step_id] = f"round {fix_round.number}/{fix_round.of}" + (
                    " · fixing" if fix_round.fix_status is StepStatus.RUNNING else ""
                )
                line = describe_round(event.step_id, fix_round)
                if line:
                    self._live.console.print(Text(line, style="cyan"))
            case StepPlaced() | ProcessStarted() | StepOnWorker() | ProcessEnded() | StepRetrying():
                pass
            case _:
                assert_never(event)

    def _render(self) -> RenderableType:
        # Called from rich's refresh thread: it reads only what one assignment on the loop replaces.
        run = self._run
        if run is None:
            return Text("starting…")
        total = len(run.steps)
        done = self._done
        header = Table.grid(padding=(0, 1))
        header.add_row(
            Text(shown_line(run.workflow), style="bold"),
            ProgressBar(total=max(total, 1), completed=done, width=30),
            Text(f"{done}/{total}"),
        )
        rows = Table.grid(padding=(0, 2))
        now = time.monotonic()
        for step_id, started in sorted(self._started.items(), key=lambda item: item[1]):
            last = self._last_line.get(step_id, "")
            fix_round = self._round.get(step_id)
            rows.add_row(
                Text("⠿ " + step_id + (f" ({fix_round})" if fix_round else ""), style="cyan"),
                Text(format_duration(now - started)),
                Text(last, style="dim", overflow="ellipsis", no_wrap=True),
            )
        return Group(header, rows)

    def _print_failures(self, run: RunResult) -> None:
        for step_id, step in run.steps.items():
            if step.status not in (StepStatus.FAILED, StepStatus.TIMED_OUT):
                continue
            tail = log_tail(step.log)
            if not tail:
                continue
            self._console.print(Text(f"── last lines of {step_id} ({relative_path(step.log)})", style="red"))
            for line in tail:
                self._console.print(Text(line), highlight=False)


def summary_table(run: RunResult) -> Table:
    title = f"{escape(shown_line(run.workflow))} · run {run.run_id}"
    table = _table(SUMMARY_COLUMNS, title=title)
    for row in summary_rows(run):
        step_id, status, *rest = row
        table.add_row(step_id, Text(status, style=_STYLE[StepStatus(status.split()[0])]), *rest)
    return table


def runs_table(runs: list[RunResult], discarded: Set[str] = frozenset()) -> Table:
    table = _table(RUNS_COLUMNS)
    # However narrow the terminal, a run id comes out whole, to be copied.
    table.columns[0].min_width = max((len(run.run_id) for run in runs), default=0)
    for run, row in zip(runs, runs_rows(runs, discarded), strict=True):
        run_id, workflow, status, *rest = row
        table.add_row(run_id, workflow, Text(status, style=_run_style(run)), *rest)
    return table


def _table(columns: Sequence[Column], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(
            column.title,
            justify="right" if column.right_aligned else "left",
            # Branch names and paths fold onto a next line rather than be cut.
            no_wrap=column.title == "run",
            overflow="fold",
        )
    return table


def _run_style(run: RunResult) -> str:
    return {
        "succeeded": "bold green",
        "failed": "bold red",
        "cancelled": "bold yellow",
        "interrupted": "bold magenta",
    }.get(run.status.value, "")


def print_runs(runs: list[RunResult], discarded: Set[str] = frozenset()) -> None:
    Console().print(runs_table(runs, discarded))


def print_run(run: RunResult) -> None:
    console = Console()
    console.print(summary_table(run))
    extra = [*worker_lines(run), *agent_lines(run), *approval_lines(run), *round_lines(run)]
    for line in [*extra, *output_lines(run)]:
        console.print(Text(line))
    for warning in run.warnings:
        console.print(Text(f"warning: {shown(warning)}", style="yellow"))
    console.print(Text(describe_run(run)))
    branch = describe_result_branch(run)
    if branch:
        console.print(Text(branch))
