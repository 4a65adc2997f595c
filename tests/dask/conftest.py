"""Dask clusters on 127.0.0.1 for the tests of remote steps: one `LocalCluster` with worker
processes shared by the tests of a module, and `dask scheduler` with `dask worker` processes
started from the command line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import has_text, wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Cluster:
    address: str
    cache: Path


def _environment(cache: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TREEFLOW_WORKER_CACHE": str(cache),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def _end(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process group, SIGKILL to what is left after a while; nothing survives."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def started_cluster(folder: Path, workers: int) -> Iterator[tuple[Cluster, subprocess.Popen[bytes]]]:
    """A `LocalCluster` of ``workers`` worker processes in a process group of its own, ended on exit."""
    pytest.importorskip("distributed")
    address = folder / "address"
    with (folder / "cluster.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.dask.local_cluster", str(address), str(workers)],
            cwd=ROOT,
            env=_environment(folder / "cache"),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        wait_until(lambda: has_text(address) or process.poll() is not None, "the cluster", timeout_s=60)
        assert process.poll() is None, (folder / "cluster.log").read_text()
        yield Cluster(address.read_text().strip(), folder / "cache"), process
    finally:
        _end([process])


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with started_cluster(tmp_path_factory.mktemp("local-cluster"), 2) as (cluster, _):
        yield cluster


@pytest.fixture(scope="module")
def command_line_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`dask scheduler` and two `dask worker` processes, as a user starts them on one machine."""
    pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("command-line-cluster")
    scheduler_file = folder / "scheduler.json"
    env = _environment(folder / "cache")
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str, log: str) -> None:
        with (folder / log).open("wb") as output:
            started.append(
                subprocess.Popen(
                    [str(BIN / "dask"), *args],
                    cwd=folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=output,
                    start_new_session=True,
                )
            )

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            log="scheduler.log",
        )
        wait_until(lambda: has_text(scheduler_file), "the scheduler file", timeout_s=60)
        address = json.loads(scheduler_file.read_text())["address"]
        for number in (1, 2):
            start(
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "2",
                "--no-dashboard",
                "--name",
                f"worker-{number}",
                log=f"worker-{number}.log",
            )
        wait_until(lambda: _workers_up(address) >= 2, "two workers", timeout_s=60)
        yield Cluster(address, folder / "cache")
    finally:
        _end(list(reversed(started)))


def _workers_up(address: str) -> int:
    found = subprocess.run(
        [sys.executable, "-c", _COUNT_WORKERS, address], capture_output=True, text=True, timeout=60
    )
    return int(found.stdout.strip() or 0)


_COUNT_WORKERS = """
import sys
from distributed import Client
with Client(sys.argv[1], timeout=20) as client:
    print(len(client.scheduler_info()["workers"]))
"""
