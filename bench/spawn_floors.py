"""What starting N `true` children costs before any scheduler runs, each way a Python program can.

Every way starts the same number of children, at most P at once, each the leader of a new session
(as treeflow starts a step's command), and waits for all of them. Each is timed by the wall clock
and, where this process starts the children itself, by this process's CPU time (its threads
included, its children not): the least a scheduler built that way can cost per step.

- `anyio.open_process`, and asyncio's `create_subprocess_exec` (with the pidfd child watcher): the
  event-loop subprocess APIs, output on a pipe.
- `Popen` on the event loop, exit seen through a pidfd, output on a pipe: how treeflow started
  children before; the loop stands still until each child has called exec.
- `Popen` in worker threads (`anyio.to_thread`), the rest as above: how treeflow starts them now.
- A pool of P worker processes, each running `Popen` and `wait` (output discarded): how `doit -n P`
  runs its tasks' commands, without doit's own bookkeeping.
- A synchronous loop of `os.posix_spawn` and `os.waitpid`: no event loop, no threads, no output.

`--busy N` keeps N other processes spinning meanwhile, to show how each way fares on a loaded machine.

    .venv/bin/python bench/spawn_floors.py [--steps 1000] [--parallel 8] [--repeat 3] [--busy 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import anyio

from _common import print_header

TIMEOUT_S = 120.0
TRUE = shutil.which("true") or "/bin/true"


@dataclass(frozen=True)
class Spent:
    wall_s: float
    # None where the children are started by other processes, whose CPU time this one cannot see.
    cpu_s: float | None


@dataclass(frozen=True)
class Floor:
    key: str
    label: str
    measure: Callable[[int, int], Spent]


def _timed_async(make: Callable[[int, int], Awaitable[None]]) -> Callable[[int, int], Spent]:
    def measure(steps: int, parallel: int) -> Spent:
        cpu, started = time.process_time(), time.perf_counter()
        anyio.run(make, steps, parallel)
        return Spent(time.perf_counter() - started, time.process_time() - cpu)

    return measure


async def _each(steps: int, parallel: int, one: Callable[[], Awaitable[None]]) -> None:
    limiter = anyio.CapacityLimiter(parallel)

    async def limited() -> None:
        async with limiter:
            await one()

    with anyio.fail_after(TIMEOUT_S):
        async with anyio.create_task_group() as group:
            for _ in range(steps):
                group.start_soon(limited)


async def _anyio_open_process(steps: int, parallel: int) -> None:
    async def one() -> None:
        process = await anyio.open_process(
            [TRUE],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        async with process:
            assert process.stdout is not None
            async for _ in process.stdout:
                pass
            _check(await process.wait())

    await _each(steps, parallel, one)


async def _asyncio_subprocess_exec(steps: int, parallel: int) -> None:
    _use_pidfd_child_watcher()

    async def one() -> None:
        process = await asyncio.create_subprocess_exec(
            TRUE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert process.stdout is not None
        await process.stdout.read()
        _check(await process.wait())

    await _each(steps, parallel, one)


def _use_pidfd_child_watcher() -> None:
    # Python 3.12 uses pidfds by itself; 3.11's default watcher starts a thread per child.
    if sys.version_info < (3, 12):
        watcher = asyncio.PidfdChildWatcher()
        asyncio.set_child_watcher(watcher)
        watcher.attach_loop(asyncio.get_running_loop())


Starter = Callable[[Callable[[], "subprocess.Popen[bytes]"]], Awaitable["subprocess.Popen[bytes]"]]


def _popen_with_pidfd(start: Starter) -> Callable[[int, int], Awaitable[None]]:
    async def run(steps: int, parallel: int) -> None:
        loop = asyncio.get_running_loop()

        async def one() -> None:
            read_fd, write_fd = os.pipe()
            try:
                process = await start(
                    lambda: subprocess.Popen(
                        [TRUE],
                        stdin=subprocess.DEVNULL,
                        stdout=write_fd,
                        stderr=write_fd,
                        start_new_session=True,
                    )
                )
            finally:
                os.close(write_fd)
            pidfd = os.pidfd_open(process.pid)
            exited, drained = asyncio.Event(), asyncio.Event()

            def on_output() -> None:
                if not os.read(read_fd, 65536):
                    loop.remove_reader(read_fd)
                    drained.set()

            loop.add_reader(pidfd, exited.set)
            loop.add_reader(read_fd, on_output)
            try:
                await exited.wait()
                await drained.wait()
            finally:
                loop.remove_reader(pidfd)
                loop.remove_reader(read_fd)
                os.close(pidfd)
                os.close(read_fd)
            _reap(process)

        await _each(steps, parallel, one)

    return run


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Collect a child its pidfd said has exited (so this does not block)."""
    process.returncode = os.waitstatus_to_exitcode(os.waitpid(process.pid, 0)[1])
    _check(process.returncode)


async def _on_the_loop(start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    return start()


async def _in_a_thread(start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    return await anyio.to_thread.run_sync(start)


def _popen_and_wait(_: int) -> int:
    return subprocess.Popen(
        [TRUE], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
    ).wait()


def _process_pool(steps: int, parallel: int) -> Spent:
    started = time.perf_counter()
    with ProcessPoolExecutor(parallel) as pool:
        for status in pool.map(_popen_and_wait, range(steps), timeout=TIMEOUT_S):
            _check(status)
    return Spent(time.perf_counter() - started, None)


def _posix_spawn_loop(steps: int, parallel: int) -> Spent:
    environ = dict(os.environ)
    cpu, started = time.process_time(), time.perf_counter()
    spawned = running = 0
    while spawned < steps or running:
        while running < parallel and spawned < steps:
            os.posix_spawn(TRUE, ["true"], environ, setsid=True)
            spawned += 1
            running += 1
        _, status = os.waitpid(-1, 0)
        running -= 1
        _check(os.waitstatus_to_exitcode(status))
    return Spent(time.perf_counter() - started, time.process_time() - cpu)


def _check(status: int) -> None:
    if status != 0:
        raise RuntimeError(f"`true` exited {status}")


ANYIO = Floor("anyio", "anyio.open_process", _timed_async(_anyio_open_process))
ASYNCIO = Floor("asyncio", "asyncio create_subprocess_exec", _timed_async(_asyncio_subprocess_exec))
POPEN_ON_LOOP = Floor(
    "popen_loop", "Popen on the event loop + pidfd", _timed_async(_popen_with_pidfd(_on_the_loop))
)
TREEFLOW_WAY = Floor(
    "popen_threads", "Popen in worker threads + pidfd", _timed_async(_popen_with_pidfd(_in_a_thread))
)
DOIT_WAY = Floor("pool", "process pool, Popen + wait", _process_pool)
POSIX_SPAWN = Floor("posix_spawn", "posix_spawn + waitpid loop", _posix_spawn_loop)
FLOORS = (ANYIO, ASYNCIO, POPEN_ON_LOOP, TREEFLOW_WAY, DOIT_WAY, POSIX_SPAWN)


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` processes that spin on a core until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=1000, help="children to start (default 1000)")
    parser.add_argument("--parallel", type=int, default=8, help="at most this many at once (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="processes that keep a core busy meanwhile, as a loaded machine does (default 0)",
    )
    args = parser.parse_args(argv)
    print_header(
        "spawn floors",
        [
            f"children : {args.steps} x `true`, at most {args.parallel} at once, {args.repeat} rounds",
            f"load     : {args.busy} busy processes beside them",
        ],
    )
    spent: dict[str, list[Spent]] = {floor.key: [] for floor in FLOORS}
    with busy_processes(args.busy):
        for _ in range(args.repeat):
            for floor in FLOORS:
                spent[floor.key].append(floor.measure(args.steps, args.parallel))
    print(f"   {'':36} {'wall':>8} {'CPU/child':>10}   wall samples (s)")
    for floor in FLOORS:
        samples = spent[floor.key]
        wall = statistics.median(sample.wall_s for sample in samples)
        cpus = [sample.cpu_s for sample in samples if sample.cpu_s is not None]
        cpu = f"{statistics.median(cpus) / args.steps * 1e3:8.3f}ms" if cpus else f"{'-':>10}"
        series = " ".join(f"{sample.wall_s:.3f}" for sample in samples)
        print(f"   {floor.label:36} {wall:7.3f}s {cpu}   {series}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
