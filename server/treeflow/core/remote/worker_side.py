"""What Dask runs on a worker: one command of a remote step, and the calls that stop it or clean up.

Everything asynchronous runs on one event loop per worker process, in a thread of its own (a
blocking portal that lives as long as the process): on Python 3.11 asyncio's child watcher, which
git commands use, belongs to one loop at a time, so one loop per task thread would steal it from
the others. A task thread blocks on the portal until its command has ended and its work is saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.from_thread
from distributed import get_worker

from treeflow.core.executor import run_local_command
from treeflow.core.git import environ_without_repository, git
from treeflow.core.process import end_marked_processes
from treeflow.core.remote.messages import OUTPUT, STARTED, KeptWork, RemoteCommand, RemoteResult
from treeflow.core.remote.worker_cache import WorkerCache, cache_root, place_files

Publish = Callable[[dict[str, Any]], None]
T = TypeVar("T")

_PIECE_BYTES = 64 * 1024
_PIECE_INTERVAL_S = 0.05


class _Portal:
    """The worker process's one event loop for treeflow's work, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._context: contextlib.AbstractContextManager[anyio.from_thread.BlockingPortal] | None = None

    def get(self) -> anyio.from_thread.BlockingPortal:
        with self._lock:
            if self._portal is None:
                # Never exited: the loop serves every later task of this worker process (and the
                # context is kept, since dropping it would stop the loop).
                self._context = anyio.from_thread.start_blocking_portal()
                self._portal = self._context.__enter__()
            return self._portal


_PORTAL = _Portal()


async def _on_portal(work: Callable[..., Awaitable[T]], *args: object) -> T:
    """Run ``work`` on the portal's loop from another loop (Dask's own), awaiting it there."""
    return await asyncio.wrap_future(_PORTAL.get().start_task_soon(work, *args))


@dataclass(frozen=True)
class _Running:
    loop: asyncio.AbstractEventLoop
    scope: anyio.CancelScope
    session: str


class _Calls:
    """The commands running in this worker process, so that a stop from the coordinator reaches
    them; a stop that comes before its command started is remembered, and the command never starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._stopped: set[str] = set()

    def begin(self, call: str, running: _Running) -> bool:
        with self._lock:
            if call in self._stopped:
                self._stopped.discard(call)
                return False
            self._running[call] = running
            return True

    def end(self, call: str) -> None:
        with self._lock:
            self._running.pop(call, None)

    def stop_session(self, session: str) -> None:
        """Stop every command of ``session`` that runs here."""
        with self._lock:
            running = [each for each in self._running.values() if each.session == session]
        for each in running:
            each.loop.call_soon_threadsafe(each.scope.cancel)

    def stop(self, call: str) -> bool:
        with self._lock:
            running = self._running.get(call)
            if running is None:
                self._stopped.add(call)
                return False
        running.loop.call_soon_threadsafe(running.scope.cancel)
        return True


_CALLS = _Calls()


class _BusySessions:
    """The sessions with a command running or saving its work in this worker process, so that
    recovery takes a session's work only once what makes it is done. Used on the portal's loop."""

    def __init__(self) -> None:
        self._commands: dict[str, int] = {}
        self._idle: dict[str, anyio.Event] = {}

    @contextlib.contextmanager
    def holding(self, session: str) -> Iterator[None]:
        self._commands[session] = self._commands.get(session, 0) + 1
        self._idle.setdefault(session, anyio.Event())
        try:
            yield
        finally:
            self._commands[session] -= 1
            if not self._commands[session]:
                del self._commands[session]
                self._idle.pop(session).set()

    async def wait_idle(self, session: str) -> None:
        idle = self._idle.get(session)
        if idle is not None:
            await idle.wait()


_BUSY = _BusySessions()
# How long, beyond the kill grace, recovery waits for a stopped command of a session to save its work.
_SAVE_WAIT_S = 30.0


class _PublishedOutput:
    """A step's output as the coordinator receives it: in pieces of at most 64 KiB, sent as they
    fill or every 50 ms, numbered so that the coordinator can tell when it has them all."""

    def __init__(self, publish: Publish, call: str) -> None:
        self._publish = publish
        self._call = call
        self._pending = bytearray()
        self.sent = 0

    def write(self, data: bytes, /) -> int:
        self._pending += data
        if len(self._pending) >= _PIECE_BYTES:
            self.flush()
        return len(data)

    def flush(self) -> None:
        while self._pending:
            piece = bytes(self._pending[:_PIECE_BYTES])
            del self._pending[:_PIECE_BYTES]
            self._publish({"kind": OUTPUT, "call": self._call, "seq": self.sent, "data": piece})
            self.sent += 1

    async def flush_regularly(self) -> None:
        while True:
            await anyio.sleep(_PIECE_INTERVAL_S)
            self.flush()


def run_remote_command(request: RemoteCommand, *bundles: bytes) -> RemoteResult:
    """The Dask task: run ``request`` in its session's worktree on this worker and return how it
    ended with the work it left (see `RemoteResult`)."""
    worker = get_worker()
    address = worker.address

    def publish(message: dict[str, Any]) -> None:
        worker.log_event(request.topic, message)

    return _PORTAL.get().call(_run, request, bundles, address, publish)


async def stop_command(call: str) -> bool:
    """Stop the command ``call`` if it runs here (its process tree ended as when a local step is
    cancelled, its work still saved and returned), or keep it from starting; True if it ran here."""
    return _CALLS.stop(call)


async def release_session(repo_key: str, session: str) -> None:
    """Remove what a step's session left on this machine once the coordinator has its work."""
    await _on_portal(WorkerCache(cache_root(), repo_key).release, session)


async def kept_work(repo_key: str, session: str, have: str, grace_s: float) -> KeptWork | None:
    """The work step session ``session`` keeps on this machine for a coordinator that died before
    it fetched it, from ``have`` (what the coordinator has) on; None when it keeps none. A command
    of the session still running here is stopped first and its work saved, as on a cancel."""
    return await _on_portal(_kept_work, repo_key, session, have, grace_s)


async def _kept_work(repo_key: str, session: str, have: str, grace_s: float) -> KeptWork | None:
    _CALLS.stop_session(session)
    with anyio.move_on_after(grace_s + _SAVE_WAIT_S) as waiting:
        await _BUSY.wait_idle(session)
    if waiting.cancelled_caught:
        # Its work is still being saved: answering now would report the work before it.
        raise OSError(f"session {session} is still saving its work")
    return await WorkerCache(cache_root(), repo_key).kept(session, have)


async def end_step_processes(marks: Mapping[str, str], grace_s: float) -> int:
    """End the processes on this machine that carry a step's marks (what a dead worker process
    left behind); return how many process groups were ended."""
    return len(await _on_portal(end_marked_processes, marks, grace_s))


async def _run(
    request: RemoteCommand, bundles: tuple[bytes, ...], address: str, publish: Publish
) -> RemoteResult:
    with _BUSY.holding(request.session):
        return await _run_in_session(request, bundles, address, publish)


async def _run_in_session(
    request: RemoteCommand, bundles: tuple[bytes, ...], address: str, publish: Publish
) -> RemoteResult:
    cache = WorkerCache(cache_root(), request.repo_key)
    await cache.ensure()
    if not await cache.has_commit(request.start):
        if request.base is not None and not request.carries_base and not await cache.has_commit(request.base):
            known = await cache.known_bases()
            return RemoteResult(
                address, 0, request.start, request.start, None, 0, needs_base=True, known_bases=known
            )
        await cache.receive(bundles)
        if request.carries_base and request.base is not None:
            await cache.keep_base(request.base)
    path, fresh = await cache.worktree(request.session, request.start)
    if not fresh and await git(path, "rev-parse", "HEAD") != request.start:
        # The coordinator moved on without this worktree (its answer was lost): start it anew.
        await cache.release(request.session)
        path, fresh = await cache.worktree(request.session, request.start)
    if fresh and request.files:
        await anyio.to_thread.run_sync(place_files, path, request.files)
    env = {**environ_without_repository()}
    env.update(
        {name: str(path) if value == request.local_cwd else value for name, value in request.env.items()}
    )
    outputs = cache.outputs_path(request.session)
    if request.outputs_variable is not None:
        await anyio.to_thread.run_sync(lambda: outputs.parent.mkdir(parents=True, exist_ok=True))
        await anyio.to_thread.run_sync(outputs.write_bytes, b"")
        env[request.outputs_variable] = str(outputs)
    output = _PublishedOutput(publish, request.call)
    publish({"kind": STARTED, "call": request.call, "worker": address, "host": socket.gethostname()})
    groups: list[int] = []
    exit_code = await _run_stoppable(request, path, env, output, groups)
    output.flush()
    saved = await cache.save(
        request.session,
        request.start,
        request.commit_message,
        request.identity,
        [f.path for f in request.files],
    )
    written = None
    if request.outputs_variable is not None:
        written = await anyio.to_thread.run_sync(outputs.read_bytes)
    return RemoteResult(
        worker=address,
        exit_code=exit_code,
        start=request.start,
        commit=saved.commit,
        bundle=saved.bundle,
        chunks=output.sent,
        outputs=written,
        error=saved.error,
        group=groups[-1] if groups else None,
    )


async def _run_stoppable(
    request: RemoteCommand, path: Any, env: dict[str, str], output: _PublishedOutput, groups: list[int]
) -> int:
    """The command's exit status; stopped, the status it was killed with. The process group it
    started is added to ``groups``."""
    ended: list[int | None] = []
    exit_code = -signal.SIGTERM
    with anyio.CancelScope() as scope:
        if not _CALLS.begin(request.call, _Running(asyncio.get_running_loop(), scope, request.session)):
            return exit_code
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(output.flush_regularly)
                try:
                    exit_code = await run_local_command(
                        request.command,
                        cwd=path,
                        env=env,
                        log=output,
                        on_line=lambda line: None,
                        on_start=lambda group, ticks: groups.append(group),
                        on_end=lambda group, code: ended.append(code),
                        kill_grace_s=request.kill_grace_s,
                    )
                finally:
                    group.cancel_scope.cancel()
        finally:
            _CALLS.end(request.call)
    if scope.cancelled_caught and ended and ended[-1] is not None:
        exit_code = ended[-1]
    return exit_code
