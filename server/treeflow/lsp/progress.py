"""What the client sees of a run: work-done progress, `treeflow/runUpdated` and `treeflow/log`.

Engine events arrive far faster than an editor can use them (a 200-step run, a chatty step), and a
client that stops reading would otherwise make the server queue without bound. So events only mark
the run dirty and buffer log lines; `pump` sends what changed at most every `INTERVAL_S`, skips a
turn while the client has not drained what it was sent, and the final state is always sent last.
Step output alone changes neither the run object nor the progress text, so an update or a report
the same as the one before it is not sent again. Each update is the whole run as one snapshot taken
when it is sent, never pieced together from events.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

import anyio
from lsprotocol import types

from treeflow.core.events import (
    AgentWaiting,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    OutputStream,
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
    StepRound,
    StepStarted,
)
from treeflow.core.model import RunResult, RunStatus, StepStatus
from treeflow.lsp.protocol import (
    LOG,
    RUN_UPDATED,
    LogParams,
    RunPayload,
    RunUpdatedParams,
    done_steps,
    run_payload,
    to_json,
)

INTERVAL_S = 0.1
MAX_LOG_LINES_PER_STEP = 2000
# Past this many bytes waiting for the client, only the final state is worth sending.
_BACKLOG_LIMIT = 1024 * 1024
_NO_RUN = RunResult(run_id="", workflow="", workflow_path=Path())


@dataclass
class Client:
    """How the reporter reaches the client; the server supplies these."""

    notify: Callable[[str, Any], None]
    progress: Callable[
        [str, types.WorkDoneProgressBegin | types.WorkDoneProgressReport | types.WorkDoneProgressEnd], None
    ]
    backlog: Callable[[], int]


@dataclass
class _StepLog:
    lines: deque[tuple[OutputStream, str]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOG_LINES_PER_STEP)
    )
    dropped: int = 0


def progress_message(run: RunResult, *, cancelling: bool = False) -> str:
    """``3/6 · running: lint, review (40% tests pass) · waiting for approval: deploy``; while a
    cancel stops the run, ``cancelling · stopping: lint`` (a count would go up as steps are stopped)."""
    if cancelling:
        stopping = [step_id for step_id, step in run.steps.items() if step.status is StepStatus.RUNNING]
        return f"cancelling · stopping: {', '.join(stopping)}" if stopping else "cancelling"
    running = []
    for step_id, step in run.steps.items():
        if step.status is not StepStatus.RUNNING:
            continue
        detail = " ".join(
            part
            for part in (f"{step.progress:.0%}" if step.progress is not None else "", step.message or "")
            if part
        )
        running.append(f"{step_id} ({detail})" if detail else step_id)
    text = f"{done_steps(run)}/{len(run.steps)}"
    if running:
        text += f" · running: {', '.join(running)}"
    waiting = [step_id for step_id, step in run.steps.items() if step.approval and step.approval.waiting]
    return f"{text} · waiting for approval: {', '.join(waiting)}" if waiting else text


def _is_final(run: RunResult) -> bool:
    return run.status is not RunStatus.RUNNING


def outcome_message(run: RunResult) -> str:
    if run.status is RunStatus.SUCCEEDED:
        return f"succeeded in {run.duration_s or 0:.1f}s"
    if run.status is RunStatus.CANCELLED:
        return "cancelled"
    failed = [
        step_id
        for step_id, step in run.steps.items()
        if step.status in (StepStatus.FAILED, StepStatus.TIMED_OUT)
    ]
    return f"failed: {', '.join(failed)}" if failed else "failed"


class RunReporter:
    """The event sink of one run in the language server.

    Events only say that something changed; what goes out is the run as `follow`'s ``snapshot``
    gives it at the moment of sending.
    """

    def __init__(self, client: Client) -> None:
        self._snapshot: Callable[[], RunResult] = lambda: _NO_RUN
        self._cancelling: Callable[[], bool] = lambda: False
        self._client = client
        self.token: str | None = None
        self._dirty = anyio.Event()
        self._logs: dict[str, _StepLog] = {}
        self._finished = False
        self._last_sent = 0.0
        self.sent_updates = 0
        self._last_update: Any = None
        # The run object as the client was last told it; None until the first update.
        self.sent: RunPayload | None = None
        self._last_report: tuple[str, int] | None = None

    def follow(self, snapshot: Callable[[], RunResult], cancelling: Callable[[], bool]) -> None:
        """Report the run that ``snapshot`` returns as it stands when called, and whether a cancel
        is stopping it."""
        self._snapshot = snapshot
        self._cancelling = cancelling

    def changed(self) -> None:
        """Something the engine's events do not tell changed (a cancel was asked for)."""
        self._dirty.set()

    def emit(self, event: Event) -> None:
        match event:
            case StepOutput():
                log = self._logs.setdefault(event.step_id, _StepLog())
                if len(log.lines) == log.lines.maxlen:
                    log.dropped += 1
                log.lines.append((event.stream, event.line))
                self._dirty.set()
            case (
                StepStarted()
                | StepFinished()
                | StepProgress()
                | ApprovalRequested()
                | ApprovalDecided()
                | StepRound()
            ):
                self._dirty.set()
            case RunFinished():
                self._finished = True
                self._dirty.set()
            case (
                RunStarted()
                | StepPlaced()
                | ProcessStarted()
                | ProcessEnded()
                | AgentWaiting()
                | StepRetrying()
                | RunWarning()
            ):
                pass
            case _:
                assert_never(event)

    def begin(self, title: str) -> None:
        if self.token is not None:
            message = progress_message(self._snapshot(), cancelling=self._cancelling())
            self._last_report = (message, 0)
            self._client.progress(
                self.token,
                types.WorkDoneProgressBegin(title=title, cancellable=True, message=message, percentage=0),
            )

    async def pump(self) -> None:
        """Send what changed, at most every INTERVAL_S, until the run has finished."""
        while not self._finished:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            if self._finished:
                break
            if self._client.backlog() > _BACKLOG_LIMIT:
                self._dirty.set()
            else:
                self._send_update()
            await anyio.sleep(INTERVAL_S)

    async def wait_turn(self) -> None:
        """Wait until the next update may go out, so that the final one keeps the rate too."""
        remaining = self._last_sent + INTERVAL_S - time.monotonic()
        if remaining > 0:
            await anyio.sleep(remaining)

    def end(self, error: str | None = None) -> None:
        """Send the final state: the last logs, the end of the progress, then the run, so that a
        client seeing the final `runUpdated` has everything else already. Always called."""
        run = self._snapshot()
        self._flush_logs(run.run_id)
        if self.token is not None:
            message = f"failed: {error}" if error else outcome_message(run)
            self._client.progress(self.token, types.WorkDoneProgressEnd(message=message))
        self.sent = run_payload(run, error)
        self._client.notify(RUN_UPDATED, to_json(RunUpdatedParams(run=self.sent)))
        self.sent_updates += 1

    def _send_update(self) -> None:
        self._last_sent = time.monotonic()
        run = self._snapshot()
        self._flush_logs(run.run_id)
        cancelling = self._cancelling()
        payload = run_payload(run, cancelling=cancelling)
        update = to_json(RunUpdatedParams(run=payload))
        # A final state goes out only from `end`, after the progress end, as the last word on the run.
        if update != self._last_update and not _is_final(run):
            self._last_update, self.sent = update, payload
            self._client.notify(RUN_UPDATED, update)
            self.sent_updates += 1
        if self.token is not None:
            total = max(len(run.steps), 1)
            report = (progress_message(run, cancelling=cancelling), int(100 * done_steps(run) / total))
            if report != self._last_report:
                self._last_report = report
                message, percentage = report
                self._client.progress(
                    self.token,
                    types.WorkDoneProgressReport(message=message, percentage=percentage, cancellable=True),
                )

    def _flush_logs(self, run_id: str) -> None:
        for step_id, log in self._logs.items():
            if not log.lines and not log.dropped:
                continue
            lines = list(log.lines)
            if log.dropped:
                notice = f"[treeflow: {log.dropped} earlier lines not shown here; see the step's log]"
                lines.insert(0, (OutputStream.STDOUT, notice))
            log.lines.clear()
            log.dropped = 0
            # One notification per stretch of lines from the same stream, in the order they came.
            for stream, stretch in itertools.groupby(lines, key=lambda item: item[0]):
                text = "\n".join(line for _, line in stretch) + "\n"
                params = LogParams(run_id=run_id, step_id=step_id, text=text, stream=stream)
                self._client.notify(LOG, to_json(params))
