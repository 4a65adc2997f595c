"""Child processes that end with their whole tree.

Each command runs through the shell as the leader of a new session, so everything it starts shares
its process group. When the command ends, is cancelled or times out, the group gets SIGTERM, then
SIGKILL after a grace period, and treeflow waits until no member is left. Cancelling the task that
awaits a child does not stop the child by itself, and killing only the direct child lets
grandchildren (``sh -c 'sleep 60 & wait'``) live on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import ByteReceiveStream

log = logging.getLogger(__name__)

DEFAULT_KILL_GRACE_S = 5.0
_MAX_LINE = 64 * 1024
_EXTRA_WAIT_AFTER_KILL_S = 2.0


async def run_shell(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_file: IO[bytes],
    on_line: Callable[[str], None],
    on_start: Callable[[int], None] | None = None,
    kill_grace_s: float = DEFAULT_KILL_GRACE_S,
) -> int:
    """Run ``command`` with ``/bin/sh -e -c`` and return its exit status (negative: killed by that signal).

    Output (stdout and stderr, interleaved as written) goes to ``log_file`` as it arrives and to
    ``on_line`` one line at a time. Background processes the command leaves behind belong to the
    step and are ended with it.
    """
    _use_pidfd_child_watcher()
    process = await anyio.open_process(
        ["/bin/sh", "-e", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    group = process.pid
    if on_start is not None:
        on_start(group)
    try:
        assert process.stdout is not None
        output_done = anyio.Event()
        async with anyio.create_task_group() as pumps:
            pumps.start_soon(_pump_lines, process.stdout, log_file, on_line, output_done)
            exit_code = await process.wait()
            await end_process_group(group, kill_grace_s)
            # A member that left the group (setsid) may still hold the pipe open; do not wait on it forever.
            with anyio.move_on_after(kill_grace_s) as waiting:
                await output_done.wait()
            if waiting.cancelled_caught:
                log.warning("output of %r still open after its process group ended; stopped reading", command)
                pumps.cancel_scope.cancel()
        return exit_code
    finally:
        with anyio.CancelScope(shield=True):
            await end_process_group(group, kill_grace_s)
            await process.aclose()
            log_file.flush()


async def _pump_lines(
    stream: ByteReceiveStream, log_file: IO[bytes], on_line: Callable[[str], None], done: anyio.Event
) -> None:
    pending = b""
    try:
        async for chunk in stream:
            log_file.write(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                on_line(line.decode("utf-8", errors="replace"))
            if len(pending) > _MAX_LINE:
                on_line(pending.decode("utf-8", errors="replace"))
                pending = b""
        if pending:
            on_line(pending.decode("utf-8", errors="replace"))
    finally:
        done.set()


async def end_process_group(group: int, grace_s: float = DEFAULT_KILL_GRACE_S) -> bool:
    """SIGTERM every process of ``group``, SIGKILL what is left after ``grace_s``; wait until none is.

    Returns True once the group is empty (at once when it already was).
    """
    if not process_group_alive(group):
        return True
    _signal_group(group, signal.SIGTERM)
    if await _wait_group_gone(group, grace_s):
        return True
    log.info("process group %d outlived SIGTERM by %.1fs; sending SIGKILL", group, grace_s)
    _signal_group(group, signal.SIGKILL)
    if await _wait_group_gone(group, _EXTRA_WAIT_AFTER_KILL_S):
        return True
    log.error("process group %d still has live members after SIGKILL", group)
    return False


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


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
    return _has_live_member(group)


def _has_live_member(group: int) -> bool:
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; the fields after its last ')' do not.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in ("Z", "X"):
            return True
    return False


def _use_pidfd_child_watcher() -> None:
    """On Python 3.11, use the pidfd child watcher instead of asyncio's thread-per-child default.

    Starting a thread for every child roughly doubles the cost of short steps. Python 3.12 and later
    use pidfds by default. The watcher is bound to one event loop, so rebind it when the loop changes.
    """
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
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


_PIDFD_WORKS = _pidfd_works()
