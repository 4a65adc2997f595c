"""Wait for a file to change: kernel file events where there are some, adaptive polling elsewhere.

On Linux one inotify descriptor serves the whole process: each watched directory is added to it,
and the event loop calls back when it is readable, so an idle watcher costs no wake-ups at all.
Elsewhere, or with ``TREEFLOW_WATCH=poll``, each subscription stats its file at an interval that
starts small, grows by a factor up to a cap, carries jitter so many watchers do not wake in step,
and drops back to the start whenever the file changes: a busy writer is followed closely and an idle
one costs almost nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import logging
import os
import random
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

log = logging.getLogger(__name__)

_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_DELETE = 0x00000200
_IN_IGNORED = 0x00008000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
# A finished write (close), an atomic replace (rename into the folder) or a removal; not every
# modification, which would wake treeflow mid-write to read half a file.
_MASK = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_DELETE
_EVENT_HEADER = struct.Struct("iIII")


@dataclass(frozen=True)
class PollPolicy:
    """Adaptive polling: ``start`` seconds, times ``factor`` after each quiet check, at most ``cap``."""

    start_s: float = 0.05
    factor: float = 1.5
    cap_s: float = 1.0
    jitter: float = 0.1

    def next_interval(self, current: float) -> float:
        return min(self.cap_s, current * self.factor)

    def spread(self, interval: float, rng: random.Random) -> float:
        # Jitter only shortens the wait, so the cap stays a bound on how late a change is noticed.
        return interval * (1.0 - rng.uniform(0.0, self.jitter))


class Subscription(Protocol):
    async def wait_changed(self, timeout_s: float | None) -> bool:
        """Return True once the file may have changed since the last call, False after ``timeout_s``."""
        ...


class FileWatcher(Protocol):
    mode: str
    wakeups: int

    def watch(self, path: Path) -> AbstractContextManager[Subscription]: ...


class _InotifySubscription:
    def __init__(self, name: str) -> None:
        self.name = name
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait_changed(self, timeout_s: float | None) -> bool:
        with anyio.move_on_after(timeout_s):
            await self._event.wait()
            self._event = anyio.Event()
            return True
        return False


class InotifyWatcher:
    """One inotify descriptor for the process; directories are watched while someone subscribes."""

    mode = "events"

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._fd: int = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._by_wd: dict[int, list[_InotifySubscription]] = {}
        self.wakeups = 0

    @contextmanager
    def watch(self, path: Path) -> Iterator[Subscription]:
        self._attach()
        directory = bytes(path.parent)
        wd = self._libc.inotify_add_watch(self._fd, directory, _MASK)
        if wd < 0:
            error = ctypes.get_errno()
            raise OSError(error, f"cannot watch {path.parent}: {os.strerror(error)}")
        subscription = _InotifySubscription(path.name)
        self._by_wd.setdefault(wd, []).append(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._by_wd.get(wd, [])
            if subscription in subscribers:
                subscribers.remove(subscription)
            if not subscribers:
                self._by_wd.pop(wd, None)
                # The watch is gone already when its directory was deleted; that is fine.
                self._libc.inotify_rm_watch(self._fd, wd)

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        loop.add_reader(self._fd, self._on_readable)
        self._loop = loop

    def _on_readable(self) -> None:
        self.wakeups += 1
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno != errno.EINTR:
                log.error("reading file events failed: %s", exc)
            return
        offset = 0
        while offset + _EVENT_HEADER.size <= len(data):
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
            raw = data[offset + _EVENT_HEADER.size : offset + _EVENT_HEADER.size + length]
            offset += _EVENT_HEADER.size + length
            name = raw.rstrip(b"\0").decode(errors="replace")
            for subscription in self._by_wd.get(wd, []):
                if mask & _IN_IGNORED or name == subscription.name:
                    subscription.notify()


class _PollSubscription:
    def __init__(self, path: Path, policy: PollPolicy, watcher: PollingWatcher) -> None:
        self._path = path
        self._policy = policy
        self._watcher = watcher
        self._rng = random.Random()
        self._interval = policy.start_s
        self._seen = _signature(path)

    async def wait_changed(self, timeout_s: float | None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            pause = self._policy.spread(self._interval, self._rng)
            if deadline is not None:
                pause = min(pause, max(0.0, deadline - time.monotonic()))
            await anyio.sleep(pause)
            self._watcher.wakeups += 1
            current = _signature(self._path)
            if current != self._seen:
                self._seen = current
                self._interval = self._policy.start_s
                return True
            self._interval = self._policy.next_interval(self._interval)
            if deadline is not None and time.monotonic() >= deadline:
                return False


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


class PollingWatcher:
    mode = "poll"

    def __init__(self, policy: PollPolicy | None = None) -> None:
        self.policy = policy or PollPolicy()
        self.wakeups = 0

    @contextmanager
    def watch(self, path: Path) -> Iterator[Subscription]:
        yield _PollSubscription(path, self.policy, self)


_shared: dict[str, FileWatcher] = {}


def process_watcher() -> FileWatcher:
    """The watcher of this process: file events on Linux, adaptive polling where there are none or
    when ``TREEFLOW_WATCH=poll`` asks for it."""
    wanted = "poll" if os.environ.get("TREEFLOW_WATCH", "").lower() == "poll" else "events"
    if wanted not in _shared:
        _shared[wanted] = _new_watcher(wanted)
    return _shared[wanted]


def _new_watcher(mode: str) -> FileWatcher:
    if mode == "events" and sys.platform.startswith("linux"):
        try:
            return InotifyWatcher()
        except (OSError, AttributeError) as exc:
            log.warning("file events unavailable (%s); polling instead", exc)
    return PollingWatcher()
