"""The terminal's prompt for approval gates: `treeflow run` at a terminal asks its user to decide.

It is an event sink (it hears which gates wait and which are decided) and a task that asks about
each waiting gate in turn, reading the terminal's input without blocking the event loop. A gate
decided elsewhere meanwhile (`treeflow approve`, the editor) ends its question. The live display
is paused while a question waits, so that what the user types is not drawn over.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TextIO, assert_never

import anyio

from treeflow.cli.terminal_text import shown_line
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
from treeflow.core.gatekeeper import NotWaiting, decide
from treeflow.core.gates import Approval, Channel
from treeflow.core.git import Repository

_YES = ("y", "yes")
_NO = ("n", "no")


class TerminalApprovals:
    """Asks at the terminal about each approval gate of the run as it comes to wait."""

    def __init__(
        self,
        repo: Repository,
        pause_display: Callable[[], AbstractContextManager[object]] = nullcontext,
        stdin_fd: int | None = None,
        out: TextIO | None = None,
    ) -> None:
        self._repo = repo
        self._pause_display = pause_display
        self._stdin = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        self._out = out or sys.stdout
        self._waiting: dict[tuple[str, str], Approval] = {}
        self._asking: tuple[tuple[str, str], anyio.CancelScope] | None = None
        self._changed = anyio.Event()
        self._buffer = b""
        self._closed = False

    def emit(self, event: Event) -> None:
        match event:
            case ApprovalRequested():
                self._waiting[(event.run_id, event.step_id)] = event.approval
                self._changed.set()
            case ApprovalDecided():
                key = (event.run_id, event.step_id)
                self._waiting.pop(key, None)
                if self._asking is not None and self._asking[0] == key:
                    self._asking[1].cancel()
            case (
                RunStarted()
                | StepStarted()
                | StepPlaced()
                | ProcessStarted()
                | StepOnWorker()
                | ProcessEnded()
                | StepOutput()
                | StepProgress()
                | AgentWaiting()
                | StepRetrying()
                | StepRound()
                | StepFinished()
                | RunFinished()
                | RunWarning()
            ):
                pass
            case _:
                assert_never(event)

    async def serve(self) -> None:
        """Ask about each waiting gate, one at a time, until cancelled or the input ends."""
        while not self._closed:
            if not self._waiting:
                await self._changed.wait()
                self._changed = anyio.Event()
                continue
            key, approval = next(iter(self._waiting.items()))
            with anyio.CancelScope() as scope, self._pause_display():
                self._asking = (key, scope)
                try:
                    answer = await self._ask(key[1], approval)
                finally:
                    self._asking = None
            if scope.cancelled_caught:
                self._say("")  # the question was answered elsewhere: end its line
                continue
            if answer is None:
                return
            await self._decide(key, *answer)

    async def _ask(self, step_id: str, approval: Approval) -> tuple[bool, str | None] | None:
        """The user's answer: approve or not, and a message; None when the input has ended."""
        while True:
            self._say(
                f"{step_id}: {shown_line(approval.message)} "
                "Approve with y, reject with n (a message may follow): ",
                end="",
            )
            line = await self._read_line()
            if line is None:
                self._closed = True
                return None
            word, _, rest = line.strip().partition(" ")
            note = rest.strip() or None
            if word.lower() in _YES:
                return True, note
            if word.lower() in _NO:
                return False, note

    async def _decide(self, key: tuple[str, str], approve: bool, note: str | None) -> None:
        run_id, step_id = key
        try:
            await decide(self._repo, run_id, step_id, approve=approve, via=Channel.TERMINAL, note=note)
        except NotWaiting as exc:
            self._say(f"treeflow: {shown_line(str(exc))}")
        self._waiting.pop(key, None)

    async def _read_line(self) -> str | None:
        while b"\n" not in self._buffer:
            await anyio.wait_readable(self._stdin)
            try:
                chunk = os.read(self._stdin, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace")

    def _say(self, text: str, end: str = "\n") -> None:
        try:
            self._out.write(text + end)
            self._out.flush()
        except OSError:
            self._closed = True
