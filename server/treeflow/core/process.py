"""Child processes that end with their whole tree.

Each command runs as the leader of a new session, so everything it starts shares its process
group. When the command ends, is cancelled or times out, the group gets SIGTERM, then SIGKILL after
a grace period, and treeflow waits until no member is left. Cancelling the task that awaits a child
does not stop the child by itself, and killing only the direct child lets grandchildren
(``sh -c 'sleep 60 & wait'``) live on.

The child is started with `subprocess.Popen` (vfork and exec, as asyncio does internally) in a
worker thread, then its exit is watched through a pidfd and its output through a non-blocking pipe,
both as event-loop readers. That skips asyncio's subprocess transports and per-child watcher
machinery, which cost more than the spawn itself for short steps. Popen returns only once the child
has called exec, and on a busy machine that wait is most of a short step's time: in worker threads
several children wait at once and the event loop goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

import anyio

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE_S = 5.0
_MAX_LINE = 64 * 1024
_EXTRA_WAIT_AFTER_KILL_S = 2.0
# Words made only of these characters carry no shell syntax (no quoting, globbing, expansion,
# redirection or control operators), so such a command means the same with or without a shell.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./,:@%+=-]+")


class OutputLog(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


def command_argv(command: str, env: Mapping[str, str]) -> list[str]:
    """How to execute ``command``: directly when it is one plain program call, as make does, else
    through ``/bin/sh -e -c`` (``-e``: a multi-line script stops at its first failing command)."""
    words = command.split()
    if words and "=" not in words[0] and all(_PLAIN_WORD.fullmatch(word) for word in words):
        program = _which(words[0], env.get("PATH", os.defpath))
        if program is not None:
            return [program, *words[1:]]
    return ["/bin/sh", "-e", "-c", command]


_which_cache: dict[tuple[str, str], str | None] = {}


def _which(name: str, path: str) -> str | None:
    key = (name, path)
    if key not in _which_cache:
        _which_cache[key] = shutil.which(name, path=path)
    return _which_cache[key]


async def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_file: OutputLog,
    on_line: Callable[[str], None],
    on_error_line: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_end: Callable[[int, int | None], None] | None = None,
    kill_grace_s: float = DEFAULT_KILL_GRACE_S,
) -> int:
    """Run ``command`` and return its exit status (negative: killed by that signal).

    Output (stdout and stderr, interleaved as written) goes to ``log_file`` as it arrives and to
    ``on_line`` one line at a time. With ``on_error_line``, stderr has a pipe of its own and its
    lines go there: the log then interleaves the two streams line by line as they are read, so
    lines a command writes to both within the same instant may land in either order (each stream's
    own bytes and order are kept). Background processes the command leaves behind belong to the
    step and are ended with it. ``on_end`` hears the group's id and the command's exit status
    (None if it could not be reaped), also when the call was cancelled. Raises OSError when the
    command cannot be started.
    """
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    error_read_fd, error_write_fd = os.pipe() if on_error_line is not None else (None, write_fd)
    try:
        process = await _start(command_argv(command, env), cwd, dict(env), write_fd, error_write_fd)
    except BaseException:
        os.close(read_fd)
        if error_read_fd is not None:
            os.close(error_read_fd)
        raise
    finally:
        os.close(write_fd)
        if error_write_fd != write_fd:
            os.close(error_write_fd)
    group = process.pid
    exit_watch = _ExitWatch(loop, process)
    output = _OutputPump(loop, read_fd, log_file, on_line, whole_lines=error_read_fd is not None)
    error_output = None
    if error_read_fd is not None and on_error_line is not None:
        error_output = _OutputPump(loop, error_read_fd, log_file, on_error_line, whole_lines=True)
    if on_start is not None:
        on_start(group)
    try:
        exit_code = await exit_watch.wait()
        await end_process_group(group, kill_grace_s)
        pumps = [output] if error_output is None else [output, error_output]
        if not all(pump.done for pump in pumps):
            # A member that left the group (setsid) may still hold a pipe open; do not wait on it
            # forever.
            with anyio.move_on_after(kill_grace_s) as waiting:
                for pump in pumps:
                    await pump.wait()
            if waiting.cancelled_caught:
                log.warning("output of %r still open after its process group ended; stopped reading", command)
        return exit_code
    finally:
        with anyio.CancelScope(shield=True):
            await end_process_group(group, kill_grace_s)
            if not exit_watch.exited:
                with anyio.move_on_after(_EXTRA_WAIT_AFTER_KILL_S):
                    await exit_watch.wait()
            exit_watch.close()
            output.close()
            if error_output is not None:
                error_output.close()
            log_file.flush()
            if on_end is not None:
                on_end(group, process.returncode)


async def _start(
    argv: list[str], cwd: Path, env: dict[str, str], output: int, errors: int
) -> subprocess.Popen[bytes]:
    """Start ``argv`` as the leader of a new session, its stdout on ``output``, its stderr on
    ``errors`` (which may be the same descriptor).

    The worker thread is not abandoned when the caller is cancelled meanwhile: a child that was
    started is always returned, so that the caller ends its group.
    """

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=errors,
            start_new_session=True,
        )

    return await anyio.to_thread.run_sync(start)


class _ExitWatch:
    """Notices the child's exit through a pidfd and reaps it, without a thread or a SIGCHLD handler."""

    def __init__(self, loop: asyncio.AbstractEventLoop, process: subprocess.Popen[bytes]) -> None:
        self._loop = loop
        self._process = process
        # asyncio's own events: this module works on asyncio's loop anyway, and they cost less per child.
        self._exited = asyncio.Event()
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        if self._pidfd is not None:
            loop.add_reader(self._pidfd, self._reap)
            self._reap()

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self._process.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self._process.pid, 0
        if pid == 0:
            return
        # Popen must learn the status, or it would try to reap the pid again later.
        self._process.returncode = os.waitstatus_to_exitcode(status)
        self.close()
        self._exited.set()

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    async def wait(self) -> int:
        if self._pidfd is None and not self._exited.is_set():
            # No pidfds on this system: wait in a worker thread instead.
            self._process.returncode = await anyio.to_thread.run_sync(
                self._process.wait, abandon_on_cancel=True
            )
            self._exited.set()
        await self._exited.wait()
        assert self._process.returncode is not None
        return self._process.returncode

    def close(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


class _OutputPump:
    """Copies the child's output to the log and splits it into lines, as the event loop sees it arrive.

    With ``whole_lines`` (two pumps sharing one log), the log gets a line only once it is complete,
    so that a line one stream has not finished is never cut by the other stream's output.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        log_file: OutputLog,
        on_line: Callable[[str], None],
        *,
        whole_lines: bool = False,
    ) -> None:
        self._loop = loop
        self._fd: int | None = fd
        self._log_file = log_file
        self._on_line = on_line
        self._whole_lines = whole_lines
        self._pending = b""
        # What of `_pending` the log has not had yet (only with whole_lines).
        self._unlogged = b""
        self._done = asyncio.Event()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            chunk = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._finish()
            return
        self._log(chunk)
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._on_line(line.decode("utf-8", errors="replace"))
        if len(self._pending) > _MAX_LINE:
            self._log_rest()
            self._on_line(self._pending.decode("utf-8", errors="replace"))
            self._pending = b""

    def _log(self, chunk: bytes) -> None:
        if not self._whole_lines:
            self._log_file.write(chunk)
            return
        self._unlogged += chunk
        cut = self._unlogged.rfind(b"\n") + 1
        if cut:
            self._log_file.write(self._unlogged[:cut])
            self._unlogged = self._unlogged[cut:]

    def _log_rest(self) -> None:
        if self._unlogged:
            self._log_file.write(self._unlogged)
            self._unlogged = b""

    def _finish(self) -> None:
        if self._pending:
            self._on_line(self._pending.decode("utf-8", errors="replace"))
            self._pending = b""
        self.close()
        self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def wait(self) -> None:
        await self._done.wait()

    def close(self) -> None:
        self._log_rest()
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None


async def end_process_group(group: int, grace_s: float = DEFAULT_KILL_GRACE_S) -> bool:
    """SIGTERM every process of ``group``, SIGKILL what is left after ``grace_s``; wait until none is.

    Returns True once the group is empty (at once when it already was).
    """
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if await _wait_group_gone(group, grace_s):
        return True
    log.info("process group %d outlived SIGTERM by %.1fs; sending SIGKILL", group, grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    if await _wait_group_gone(group, _EXTRA_WAIT_AFTER_KILL_S):
        return True
    log.error("process group %d still has live members after SIGKILL", group)
    return False


async def _wait_group_gone(group: int, timeout_s: float) -> bool:
    interval = 0.001
    with anyio.move_on_after(timeout_s):
        while process_group_alive(group):
            await anyio.sleep(interval)
            interval = min(interval * 2, 0.02)
        return True
    return not process_group_alive(group)


def process_group_alive(group: int) -> bool:
    """Whether any process of ``group`` still runs (zombies waiting to be reaped do not count)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Orphaned members that exited stay as zombies until their new parent reaps them, and some
    # init processes in containers never do; only live members matter.
    live = _live_groups()
    return True if live is None else group in live


# A stat line is at most 52 numbers and a command name of 64 bytes: far less than this.
_STAT_MAX = 4096


class ProcessState(NamedTuple):
    """What /proc/<pid>/stat says of a process that treeflow needs."""

    letter: str
    group: int
    start_ticks: int

    @property
    def live(self) -> bool:
        """Running or sleeping, not a zombie waiting to be reaped, and not the kernel's (group 0)."""
        return self.letter not in ("Z", "X") and self.group > 1


def process_state(pid: int | str) -> ProcessState | None:
    """The state of process ``pid`` (None if it is gone or unreadable)."""
    try:
        # Unbuffered: this runs once per step and for every process of a scan.
        descriptor = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        stat = os.read(descriptor, _STAT_MAX)
    except OSError:
        return None
    finally:
        os.close(descriptor)
    # The command name may hold spaces and parentheses; the fields after its last ')' do not.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) <= 19:
        return None
    return ProcessState(fields[0].decode(errors="replace"), int(fields[2]), int(fields[19]))


def process_environ(pid: int | str) -> list[bytes] | None:
    """The ``NAME=value`` entries of process ``pid``'s environment (None if gone or someone else's)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return handle.read().split(b"\0")
    except OSError:
        return None


def process_ids() -> list[str]:
    """The ids of the processes /proc shows (none where there is no /proc)."""
    try:
        with os.scandir("/proc") as entries:
            return [entry.name for entry in entries if entry.name.isdigit()]
    except OSError:
        return []


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (None if it is gone or unknown).

    Together with the pid this names one process for good: a later process that gets the same pid
    has a later start time.
    """
    state = process_state(pid)
    return None if state is None else state.start_ticks


_scan_cache: tuple[float, frozenset[int]] = (0.0, frozenset())
_SCAN_TTL_S = 0.001


def _live_groups() -> frozenset[int] | None:
    """Process groups with at least one live member, from /proc (None where there is no /proc).

    One scan serves every group being waited on in the same millisecond: when a fail-fast ends
    eight trees at once, that is one scan instead of eight.
    """
    global _scan_cache
    now = time.monotonic()
    if now - _scan_cache[0] < _SCAN_TTL_S:
        return _scan_cache[1]
    if not os.path.isdir("/proc/self"):
        return None
    groups: set[int] = set()
    for pid in process_ids():
        state = process_state(pid)
        if state is not None and state.live:
            groups.add(state.group)
    _scan_cache = (time.monotonic(), frozenset(groups))
    return _scan_cache[1]


def process_groups_with_env(name: str, value: str) -> set[int]:
    """Process groups with a live member whose environment has ``name=value`` (blocking; reads /proc).

    Every process a step starts inherits the step's environment, so this finds a run's processes
    even where no record of them was written, and never a process of anyone else.
    """
    return process_groups_marked({name: value})


def process_groups_marked(marks: Mapping[str, str]) -> set[int]:
    """Process groups with a live member whose environment has every ``name=value`` of ``marks``
    (blocking; reads /proc). Nothing when ``marks`` is empty."""
    wanted = {f"{name}={value}".encode() for name, value in marks.items()}
    groups: set[int] = set()
    if not wanted:
        return groups
    for pid in process_ids():
        environ = process_environ(pid)
        if environ is None or not wanted.issubset(environ):
            continue  # gone, someone else's, or not marked
        state = process_state(pid)
        if state is not None and state.live:
            groups.add(state.group)
    return groups


async def end_marked_processes(marks: Mapping[str, str], grace_s: float = DEFAULT_KILL_GRACE_S) -> set[int]:
    """End, as `end_process_group` does, every process group with a live member whose environment
    has all of ``marks``, but treeflow's own; return their ids.

    This reaches what left a command's process group on purpose (``setsid``, a daemon's double
    fork) but kept the environment it was started with.
    """
    groups = await anyio.to_thread.run_sync(process_groups_marked, marks)
    groups.discard(os.getpgrp())
    if groups:
        async with anyio.create_task_group() as ending:
            for group in groups:
                ending.start_soon(end_process_group, group, grace_s)
    return groups


def use_pidfd_child_watcher() -> None:
    """On Python 3.11, make asyncio's own subprocesses (git commands) use the pidfd child watcher
    instead of the default that starts a thread per child. Python 3.12 does this by itself."""
    if sys.version_info >= (3, 12) or not _PIDFD_WORKS:
        return
    loop = asyncio.get_running_loop()
    watcher = asyncio.get_child_watcher()
    if not isinstance(watcher, asyncio.PidfdChildWatcher):
        watcher = asyncio.PidfdChildWatcher()
        asyncio.set_child_watcher(watcher)
    if getattr(watcher, "_loop", None) is not loop:
        watcher.attach_loop(loop)


def _pidfd_works() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


_PIDFD_WORKS = _pidfd_works()
