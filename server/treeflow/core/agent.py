"""Background-agent steps: the status-file protocol (version 1).

treeflow writes `.treeflow/task.json` and `.treeflow/PROMPT.md` into the step's worktree, with a
fresh nonce, then follows `.treeflow/status.json`, which the agent replaces atomically as it works.
A status with another nonce is a leftover and ignored; unreadable JSON is no update; no update
within the heartbeat while running means the agent is gone. With `agent.command`, treeflow also
starts the agent (as a process tree of its own, through the run's executor), and an agent that
exits without a final state fails the step. Completion is noticed through a file watcher (`watch.py`).
The agent step kind (`kinds/agent.py`) drives this for the runner.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import anyio

from treeflow.core.agent_protocol import (
    FINAL_STATES,
    MAX_STATUS_BYTES,
    MAX_STATUS_TEXT,
    PROMPT_FILE,
    PROTOCOL,
    STATES,
    STATUS_FILE,
    TASK_FILE,
    TREEFLOW_DIR,
)
from treeflow.core.model import StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.step_outputs import OUTPUT_NAME, OUTPUT_NAME_RULE
from treeflow.core.watch import FileWatcher
from treeflow.core.worktree_writes import writable_folder
from treeflow.quoting import quoted

log = logging.getLogger(__name__)

# A writer flooding the status file is read at most this often; the latest state wins.
_MIN_READ_INTERVAL_S = 0.02
_OUTPUT_TAIL_LINES = 20

DEFAULT_HEARTBEAT_S = 120.0

Launch = Callable[[Callable[[str], None]], Awaitable[int]]
"""Starts the agent's command, handing each line it prints to the callable, and returns its exit status."""


@dataclass(frozen=True)
class AgentSpec:
    prompt: str
    command: str | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S


@dataclass(frozen=True)
class AgentStatus:
    state: str
    progress: float | None = None
    message: str | None = None
    summary: str | None = None
    error: str | None = None
    updated_at: str | None = None
    # Outputs for the steps after it, given with its final state (`treeflow agent report --output`).
    outputs: Mapping[str, str] | None = None


class StatusProblem(Exception):
    """A status file that cannot be taken as an update; the message says why, ``kind`` what sort."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class Task:
    folder: Path
    nonce: str

    @property
    def task_file(self) -> Path:
        return self.folder / TASK_FILE

    @property
    def status_file(self) -> Path:
        return self.folder / STATUS_FILE


def now_iso() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds")


def write_task(worktree: Path, run_id: str, step_id: str, agent: AgentSpec) -> Task:
    """Write the task into ``worktree``; raises UnsafeWrite if `.treeflow` there is not a real folder
    (a tracked link would send the task, and the agent's status, outside the worktree)."""
    folder = writable_folder(worktree, PurePosixPath(TREEFLOW_DIR))
    task = Task(folder=folder, nonce=os.urandom(16).hex())
    body = {
        "protocol": PROTOCOL,
        "run_id": run_id,
        "step_id": step_id,
        "nonce": task.nonce,
        "prompt": agent.prompt,
        "heartbeat_s": agent.heartbeat_s,
        "created_at": now_iso(),
        "worktree": str(worktree),
        "status_file": str(task.status_file),
    }
    write_atomically(folder / PROMPT_FILE, agent.prompt.rstrip("\n") + "\n")
    write_atomically(task.task_file, json.dumps(body, indent=2) + "\n")
    return task


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``: readers see the old
    or the new content, never half of it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_status(path: Path, nonce: str) -> AgentStatus | None:
    """The agent's status, or None when there is none yet or it belongs to another task.

    Raises StatusProblem for a file that cannot be read, is not a regular file, is too big, is not
    UTF-8 JSON, or is not a version 1 status.
    """
    data = _read_status_bytes(path)
    if data is None:
        return None
    if len(data) > MAX_STATUS_BYTES:
        raise StatusProblem("size", f"{path} is over {MAX_STATUS_BYTES // 1024} KiB and is ignored")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StatusProblem(
            "encoding", f"{path} is not UTF-8 text (byte {exc.start}) and is ignored"
        ) from exc
    try:
        body = json.loads(text)
    # ValueError covers integers too long to convert; RecursionError, arrays nested too deep.
    except (ValueError, RecursionError) as exc:
        raise StatusProblem(
            "json", f"{path} is not valid JSON ({quoted(str(exc))}); waiting for a complete status"
        ) from exc
    if not isinstance(body, dict):
        raise StatusProblem("json", f"{path} must hold a JSON object")
    if body.get("nonce") != nonce:
        return None
    return parse_status(body, path)


def _read_status_bytes(path: Path) -> bytes | None:
    """Up to MAX_STATUS_BYTES + 1 bytes of ``path``, or None when it does not exist.

    Agents rename a regular file into place, so anything else is refused without waiting on it:
    O_NONBLOCK keeps a FIFO from blocking the open (and with it the event loop), and O_NOFOLLOW
    keeps a symlink from pointing the read anywhere outside the worktree.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StatusProblem("file", f"{path} is a symbolic link and is ignored") from exc
        raise StatusProblem("file", f"{path} cannot be read ({exc.strerror}) and is ignored") from exc
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise StatusProblem("file", f"{path} is not a regular file and is ignored")
        chunks: list[bytes] = []
        wanted = MAX_STATUS_BYTES + 1
        while wanted > 0:
            chunk = os.read(descriptor, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise StatusProblem("file", f"{path} cannot be read ({exc.strerror}) and is ignored") from exc
    finally:
        os.close(descriptor)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_text(value: str) -> str:
    """``value`` with each lone surrogate (JSON may escape one, as in ``"caf\\udce9"``) replaced by
    U+FFFD, so that the message can be written as UTF-8 and printed wherever it goes next."""
    return _LONE_SURROGATE.sub("\ufffd", value)


def parse_status(body: Mapping[str, Any], path: Path) -> AgentStatus:
    if body.get("protocol") != PROTOCOL:
        raise StatusProblem(
            "content", f"{path}: protocol must be {PROTOCOL}, not {quoted(repr(body.get('protocol')))}"
        )
    state = body.get("state")
    if state not in STATES:
        raise StatusProblem(
            "content", f"{path}: state must be one of {', '.join(STATES)}, not {quoted(repr(state))}"
        )
    progress = body.get("progress")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int | float) or not 0 <= progress <= 1
    ):
        raise StatusProblem(
            "content", f"{path}: progress must be a number from 0 to 1, not {quoted(repr(progress))}"
        )
    texts = {}
    for key in ("message", "summary", "error", "updated_at"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise StatusProblem("content", f"{path}: {key} must be a string")
        texts[key] = None if value is None else _valid_text(quoted(value, MAX_STATUS_TEXT))
    return AgentStatus(
        state=state,
        progress=None if progress is None else float(progress),
        outputs=_outputs(body.get("outputs"), path),
        **texts,
    )


def _outputs(value: object, path: Path) -> dict[str, str] | None:
    """The `outputs` of a status: an object of output names and texts."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise StatusProblem("content", f"{path}: outputs must be an object of names and texts")
    outputs: dict[str, str] = {}
    for name, text in value.items():
        if not OUTPUT_NAME.fullmatch(name):
            raise StatusProblem(
                "content", f"{path}: bad output name {quoted(repr(name))}: use {OUTPUT_NAME_RULE}"
            )
        if not isinstance(text, str) or "\0" in text:
            raise StatusProblem("content", f"{path}: output {name} must be a text without NUL bytes")
        outputs[name] = _valid_text(text)
    return outputs


class AgentStep:
    """Follows one agent step to a final state."""

    def __init__(
        self,
        *,
        agent: AgentSpec,
        task: Task,
        watcher: FileWatcher,
        on_status: Callable[[AgentStatus], None],
        warn: Callable[[str], None],
    ) -> None:
        self._agent = agent
        self._task = task
        self._watcher = watcher
        self._on_status = on_status
        self._warn = warn
        self._last: AgentStatus | None = None
        self._problems_seen: set[str] = set()

    async def run(self, *, launch: Launch | None, kill_grace_s: float) -> StepOutcome:
        """Follow the agent to a final state; with ``launch``, start the agent with it first."""
        if launch is None:
            return await self._follow()
        tail: deque[str] = deque(maxlen=_OUTPUT_TAIL_LINES)
        exit_code: int | None = None
        exited = anyio.Event()
        outcome: StepOutcome | None = None

        async def start() -> None:
            nonlocal exit_code
            exit_code = await launch(tail.append)
            exited.set()

        async with anyio.create_task_group() as group:
            group.start_soon(start)
            outcome = await self._follow(exited)
            if not exited.is_set():
                if self._final() is not None:
                    # The agent has reported its end; give it the grace to exit on its own first.
                    with anyio.move_on_after(kill_grace_s):
                        await exited.wait()
                # Otherwise it went silent: it is stopped at once (SIGTERM, then the kill grace).
                group.cancel_scope.cancel()
        if outcome is not None and outcome.status is not StepStatus.RUNNING:
            return outcome
        last_lines = "\n".join(tail) or "(no output)"
        return StepOutcome(
            StepStatus.FAILED,
            exit_code,
            f"the agent exited (status {exit_code}) without a final state; last output:\n{last_lines}",
        )

    async def _follow(self, exited: anyio.Event | None = None) -> StepOutcome:
        """Wait for a final state. When ``exited`` is set, read the status a last time and return
        (RUNNING, …) if it is still not final."""
        heartbeat = self._agent.heartbeat_s
        last_update = time.monotonic()
        last_read = 0.0
        with self._watcher.watch(self._task.status_file) as subscription:
            while True:
                since_read = time.monotonic() - last_read
                if since_read < _MIN_READ_INTERVAL_S:
                    await anyio.sleep(_MIN_READ_INTERVAL_S - since_read)
                last_read = time.monotonic()
                if self._poll():
                    last_update = time.monotonic()
                final = self._final()
                if final is not None:
                    return final
                if exited is not None and exited.is_set():
                    return StepOutcome(StepStatus.RUNNING)
                remaining = heartbeat - (time.monotonic() - last_update)
                if remaining <= 0:
                    return StepOutcome(
                        StepStatus.FAILED,
                        error=f"agent stopped reporting: no status update for {heartbeat:g}s",
                    )
                await self._wait(subscription, remaining, exited)

    async def _wait(self, subscription: Any, timeout_s: float, exited: anyio.Event | None) -> None:
        async with anyio.create_task_group() as group:

            async def on_exit() -> None:
                assert exited is not None
                await exited.wait()
                group.cancel_scope.cancel()

            if exited is not None:
                group.start_soon(on_exit)
            await subscription.wait_changed(timeout_s)
            group.cancel_scope.cancel()

    def _poll(self) -> bool:
        """Read the status file; True when it held a new update for this task."""
        try:
            status = read_status(self._task.status_file, self._task.nonce)
        except StatusProblem as problem:
            # Said once per kind of problem: an agent that writes non-atomically would otherwise
            # produce a warning for every half-written file treeflow happens to read.
            if problem.kind not in self._problems_seen:
                self._problems_seen.add(problem.kind)
                log.warning("%s", problem)
                self._warn(str(problem))
            return False
        if status is None or status == self._last:
            return False
        self._last = status
        self._on_status(status)
        return True

    def _final(self) -> StepOutcome | None:
        status = self._last
        if status is None or status.state not in FINAL_STATES:
            return None
        outputs = status.outputs or {}
        if status.state == "succeeded":
            return StepOutcome(StepStatus.SUCCEEDED, 0, outputs=outputs)
        return StepOutcome(
            StepStatus.FAILED,
            error=f"the agent reported failure: {status.error or status.message or 'no reason'}",
            outputs=outputs,
        )


def find_task(start: Path) -> Task | None:
    """The treeflow task of the worktree holding ``start``, found by walking up from it."""
    for folder in [start, *start.parents]:
        task_file = folder / TREEFLOW_DIR / TASK_FILE
        if task_file.is_file():
            try:
                body = json.loads(task_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                return None
            nonce = body.get("nonce") if isinstance(body, dict) else None
            return Task(folder=task_file.parent, nonce=nonce) if isinstance(nonce, str) else None
    return None


def report(task: Task, status: AgentStatus) -> None:
    """Write ``status`` for ``task`` the way the protocol asks: atomically, with the task's nonce."""
    body: dict[str, Any] = {"protocol": PROTOCOL, "nonce": task.nonce, "state": status.state}
    for key in ("progress", "message", "summary", "error"):
        value = getattr(status, key)
        if isinstance(value, str):
            value = quoted(value, MAX_STATUS_TEXT)
        if value is not None:
            body[key] = value
    if status.outputs:
        body["outputs"] = dict(status.outputs)
    body["updated_at"] = now_iso()
    write_atomically(task.status_file, json.dumps(body) + "\n")
