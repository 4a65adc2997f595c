"""How the CLI tells about a run in plain text, for logs, CI and pipes: one line per event, and
the tables of `runs` and `show` as aligned columns without lines drawn around them.

The live display of a terminal and its tables are in `treeflow.cli.live_output`, which alone
imports rich. Text that a step, an agent or a workflow file supplied goes through
`treeflow.cli.terminal_text` in both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, assert_never

from treeflow.cli.broken_pipe import discard_output
from treeflow.cli.terminal_text import shown, shown_line, shown_lines
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
from treeflow.core.model import AgentUsage, FixRound, RunResult, StepResult, StepStatus

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
        return f"{step_id} skipped: {shown_lines(result.error)}" if result.error else f"{step_id} skipped"
    text = f"{step_id} {words} in {format_duration(result.duration_s)}"
    if result.attempts > 1:
        text += f" after {result.attempts} attempts"
    if result.worker:
        text += f" on worker {shown_line(result.worker)}"
    if result.cached_from:
        text += f" (from {result.cached_from})"
    if result.rounds:
        last = result.rounds[-1]
        text += f" in round {last.number} of {last.of}"
    if not result.status.is_success and result.error:
        text += f" ({shown_lines(result.error)})"
    return text


def describe_round(step_id: str, fix_round: FixRound, *, over: bool = False) -> str | None:
    """A line for a moment of a fix loop worth telling: a round that goes to its fixer, a round
    after the first that begins, a round that ended (every round, with ``over``, of a run that
    is over); None for the rest."""
    label = f"{step_id} round {fix_round.number} of {fix_round.of}"
    if fix_round.ended_at is not None or over:
        text = f"{label} {_said(fix_round.status)}"
        if fix_round.fix_status is not None:
            text += f", fixer `{shown_line(fix_round.fixer or '')}` {_said(fix_round.fix_status)}"
        return text + (f"; its work: {fix_round.branch}" if fix_round.branch else "; no work")
    if fix_round.fix_status is StepStatus.RUNNING:
        code = "" if fix_round.exit_code is None else f" (exit {fix_round.exit_code})"
        fixer = shown_line(fix_round.fixer or "")
        return f"{label} {_said(fix_round.status)}{code}; fixer `{fixer}` runs on top of it"
    if fix_round.status is StepStatus.RUNNING and fix_round.number > 1:
        return f"{label}: runs again on top of the fix"
    return None


def round_lines(run: RunResult) -> list[str]:
    """A line for each round of each step with a fix loop that ran in ``run``."""
    return [
        line
        for step_id, step in run.steps.items()
        for fix_round in step.rounds
        if (line := describe_round(step_id, fix_round, over=True)) is not None
    ]


def _said(status: StepStatus) -> str:
    return status.value.replace("_", " ")


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
    parts = [f"{progress:.0%}" if progress is not None else "", shown_line(message or "")]
    return " ".join(part for part in parts if part)


def describe_usage(usage: AgentUsage) -> str:
    """``6 turns, 12.3k tokens in, 1.2k out, $0.0412``: what an agent CLI reported of its work."""
    parts = []
    if usage.turns is not None:
        parts.append(f"{usage.turns} turn{'' if usage.turns == 1 else 's'}")
    if usage.input_tokens is not None or usage.output_tokens is not None:
        parts.append(f"{_count(usage.input_tokens)} tokens in, {_count(usage.output_tokens)} out")
    if usage.cost_usd is not None:
        parts.append(f"${usage.cost_usd:.4f}")
    return ", ".join(parts)


def describe_agent(usage: AgentUsage) -> str:
    """``claude session 1f2e…, 6 turns, …``: an agent step's totals, as `show` prints them."""
    session = f" session {shown_line(usage.session_id)}" if usage.session_id else ""
    totals = describe_usage(usage)
    return f"{shown_line(usage.cli)}{session}" + (f", {totals}" if totals else "")


def agent_lines(run: RunResult) -> list[str]:
    """A line for each step of ``run`` that ran an agent CLI."""
    return [
        f"agent of {step_id}: {describe_agent(step.agent)}"
        for step_id, step in run.steps.items()
        if step.agent is not None
    ]


def worker_lines(run: RunResult) -> list[str]:
    """A line for each step of ``run`` whose commands ran on another machine, naming the last one."""
    return [
        f"{step_id} ran on worker {shown_line(step.worker)}"
        for step_id, step in run.steps.items()
        if step.worker is not None
    ]


def _count(tokens: int | None) -> str:
    if tokens is None:
        return "?"
    if tokens < 1000:
        return str(tokens)
    if tokens < 1_000_000:
        return f"{tokens / 1000:.1f}k"
    return f"{tokens / 1_000_000:.1f}M"


def describe_waiting(event: AgentWaiting) -> str:
    return f"waiting for an agent to take the task {event.task_file} (worktree {event.worktree})"


def describe_request(event: ApprovalRequested) -> str:
    """``waiting for approval: Deploy to staging? (treeflow approve RUN deploy [--reject])``."""
    command = f"treeflow approve {event.run_id} {event.step_id}"
    return f"waiting for approval: {shown_line(event.approval.message)} ({command} [--reject])"


def approval_lines(run: RunResult) -> list[str]:
    """A line for each step of ``run`` that reached its approval gate."""
    lines = []
    for step_id, step in run.steps.items():
        approval = step.approval
        if approval is None:
            continue
        when = (
            time.strftime(" at %Y-%m-%d %H:%M:%S", time.localtime(approval.decided_at))
            if approval.decided_at and approval.decision is not None
            else ""
        )
        asked = shown_line(approval.message)
        lines.append(f"approval of {step_id} ({asked}): {shown_line(approval.describe())}{when}")
    return lines


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
    return [shown(raw.decode("utf-8", errors="replace").rstrip("\n")) for raw in tail]


class PlainSink:
    """One line per event, for logs and CI: nothing is redrawn.

    If the reader goes away, the run goes on to its end without printing: a closed pipe says
    nothing about the work, and stopping would leave it half done.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._reader_gone = False
        # What each agent CLI was last said to be doing: its token counts change far more often.
        self._agent_doing: dict[str, str] = {}

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
                self._write(f"[{event.step_id}] | {shown(event.line)}")
            case StepStarted():
                # The log is only made on the step's first output: its path is told once it exists.
                attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
                self._write(f"[{event.step_id}] started{attempt}")
            case StepFinished():
                line = describe_step(event.step_id, event.result).split(" ", 1)[1]
                if event.result.agent is not None:
                    line += f" ({describe_agent(event.result.agent)})"
                if event.result.log is not None:
                    line += f", log: {relative_path(event.result.log)}"
                self._write(f"[{event.step_id}] {line}")
            case StepProgress() if event.agent is not None:
                doing = shown_line(event.message or "")
                if doing and self._agent_doing.get(event.step_id) != doing:
                    self._agent_doing[event.step_id] = doing
                    self._write(f"[{event.step_id}] {shown_line(event.agent.cli)}: {doing}")
            case StepProgress():
                progress = describe_progress(event.progress, event.message)
                if progress:
                    self._write(f"[{event.step_id}] agent: {progress}")
            case AgentWaiting():
                self._write(f"[{event.step_id}] {describe_waiting(event)}")
            case ApprovalRequested():
                self._write(f"[{event.step_id}] {describe_request(event)}")
            case ApprovalDecided():
                self._write(f"[{event.step_id}] {shown_line(event.approval.describe())}")
            case StepRetrying():
                self._write(
                    f"[{event.step_id}] {shown_line(event.reason)}; "
                    f"attempt {event.next_attempt} in {event.delay_s:.2f}s"
                )
            case RunWarning():
                where = f"[{event.step_id}] " if event.step_id else ""
                self._write(f"{where}warning: {shown(event.message)}")
            case RunStarted():
                run = event.run
                self._write(
                    f"treeflow: run {run.run_id} of {shown_line(run.workflow)} ({len(run.steps)} steps)"
                )
            case RunFinished():
                branch = describe_result_branch(event.run)
                if branch:
                    self._write(branch)
                self._write(describe_run(event.run))
            case StepRound():
                told = describe_round(event.step_id, event.round)
                if told:
                    self._write(f"[{event.step_id}] {told.removeprefix(event.step_id + ' ')}")
            case StepPlaced() | ProcessStarted() | StepOnWorker() | ProcessEnded():
                pass
            case _:
                assert_never(event)


@dataclass(frozen=True)
class Column:
    title: str
    right_aligned: bool = False


SUMMARY_COLUMNS = (
    Column("step"),
    Column("status"),
    Column("tries", right_aligned=True),
    Column("time", right_aligned=True),
    Column("branch"),
    Column("log"),
)
RUNS_COLUMNS = (
    Column("run"),
    Column("workflow"),
    Column("status"),
    Column("steps", right_aligned=True),
    Column("started"),
    Column("time", right_aligned=True),
    Column("result branch"),
)


def summary_rows(run: RunResult) -> list[tuple[str, ...]]:
    """A row of SUMMARY_COLUMNS for each step of ``run``."""
    return [
        (
            step_id,
            f"{step.status.value} from {step.cached_from}" if step.cached_from else step.status.value,
            str(step.attempts) if step.attempts else "-",
            format_duration(step.duration_s),
            step.branch or "-",
            relative_path(step.log),
        )
        for step_id, step in run.steps.items()
    ]


def runs_rows(runs: list[RunResult], discarded: Set[str] = frozenset()) -> list[tuple[str, ...]]:
    """A row of RUNS_COLUMNS for each of ``runs``; the runs whose ids are in ``discarded`` had their
    branches deleted by `treeflow discard`, so they name none."""
    rows: list[tuple[str, ...]] = []
    for run in runs:
        succeeded = sum(1 for step in run.steps.values() if step.status.is_success)
        started = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.started_at)) if run.started_at else "-"
        )
        rows.append(
            (
                run.run_id,
                shown_line(run.workflow),
                run.status.value,
                f"{succeeded}/{len(run.steps)}",
                started,
                format_duration(run.duration_s),
                "(discarded)" if run.run_id in discarded else run.result_branch or "-",
            )
        )
    return rows


def format_table(columns: Sequence[Column], rows: list[tuple[str, ...]]) -> list[str]:
    """The lines of a table as plain text: a header line, then a line per row, each column as wide
    as its widest cell and two spaces apart; no trailing spaces, so that a program can split it."""
    cells: list[tuple[str, ...]] = [tuple(column.title for column in columns), *rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
    return [
        "  ".join(
            cell.rjust(width) if column.right_aligned else cell.ljust(width)
            for column, cell, width in zip(columns, row, widths, strict=True)
        ).rstrip()
        for row in cells
    ]


def output_lines(run: RunResult) -> list[str]:
    """``<step> output <name>=<value>`` for each output a step of ``run`` set, each on one line."""
    return [
        f"{step_id} output {name}={shown_line(value)}"
        for step_id, step in run.steps.items()
        for name, value in step.outputs.items()
    ]


def write_runs(runs: list[RunResult], stream: TextIO, discarded: Set[str] = frozenset()) -> None:
    """`treeflow runs` for a reader that is not a terminal."""
    stream.write("".join(line + "\n" for line in format_table(RUNS_COLUMNS, runs_rows(runs, discarded))))


def write_run(run: RunResult, stream: TextIO) -> None:
    """`treeflow show` for a reader that is not a terminal."""
    lines = [f"run {run.run_id} of {shown_line(run.workflow)}"]
    lines += format_table(SUMMARY_COLUMNS, summary_rows(run))
    lines += worker_lines(run)
    lines += agent_lines(run)
    lines += approval_lines(run)
    lines += round_lines(run)
    lines += output_lines(run)
    lines += [f"warning: {shown(warning)}" for warning in run.warnings]
    lines.append(describe_run(run))
    branch = describe_result_branch(run)
    if branch:
        lines.append(branch)
    stream.write("".join(line + "\n" for line in lines))


def print_json(value: object) -> None:
    """``value`` as JSON on stdout."""
    # Indented for a person at a terminal; compact for a program, which is also several times
    # faster to write (json's C encoder does not indent).
    indent = 2 if sys.stdout.isatty() else None
    print(json.dumps(value, indent=indent))
