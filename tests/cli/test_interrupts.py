"""Ctrl-C while `treeflow` is still starting: a quiet exit with status 130, never a traceback."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import treeflow
from tests.cli.test_run import write_workflow

PACKAGE = Path(treeflow.__file__).parent
# The console script, as users start treeflow; `python -m` where it is not installed as one.
SCRIPT = Path(sys.executable).with_name("treeflow")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "treeflow.cli"]
POINTS = 24


def start_run(repo: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, "run"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def time_to_start(repo: Path) -> float:
    """How long treeflow takes from its start until its run holds the run's lock."""
    locks = repo / ".git" / "treeflow" / "runs"
    started = time.monotonic()
    with start_run(repo) as process:
        while not list(locks.glob("*.lock")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() - started < 30
            time.sleep(0.001)
        elapsed = time.monotonic() - started
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    return elapsed


def frames_in_treeflow(stderr: str) -> list[str]:
    return [path for path in re.findall(r'File "([^"]+)"', stderr) if Path(path).is_relative_to(PACKAGE)]


@pytest.mark.slow
def test_ctrl_c_while_treeflow_loads_exits_130_without_a_traceback(repo: Path) -> None:
    write_workflow(repo, "steps:\n  wait: {run: 'sleep 30'}\n")
    loading = time_to_start(repo)
    outcomes = []
    # The delays are the points of the interrupt, spread over the whole start, not waits.
    for point in range(POINTS):
        with start_run(repo) as process:
            time.sleep(loading * point / POINTS)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        outcomes.append(process.returncode)
        # The interpreter's own start (its `site` module, then the console script's import of the
        # package) comes before any code of treeflow's and is out of its reach; a Ctrl-C there
        # ends it the interpreter's way. Once treeflow's first line runs, the exit is treeflow's.
        assert frames_in_treeflow(stderr) == [], stderr
        if "Traceback" in stderr:
            continue
        # Before the interpreter has a handler, SIGINT ends it, which its parent sees as -2 and
        # a shell as 130.
        assert process.returncode in (130, -signal.SIGINT), (process.returncode, stderr)
    assert 130 in outcomes, outcomes


def signal_masks(pid: int) -> dict[str, int]:
    """The signals process ``pid`` ignores (`SigIgn`) and catches (`SigCgt`), as /proc shows them."""
    masks = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("SigIgn", "SigCgt"):
            masks[name] = int(value.strip(), 16)
    return masks


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads signal masks from /proc")
def test_a_run_started_with_ctrl_c_ignored_keeps_ignoring_it(repo: Path) -> None:
    started, go = repo.parent / "started", repo.parent / "go"
    write_workflow(
        repo, f"steps:\n  wait: {{run: 'touch {started}; while [ ! -f {go} ]; do sleep 0.02; done'}}\n"
    )
    # As a shell starts a background job, or nohup a command: with SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = start_run(repo)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sigint = 1 << (signal.SIGINT - 1)
        masks = signal_masks(process.pid)
        assert masks["SigIgn"] & sigint and not masks["SigCgt"] & sigint, masks
        process.send_signal(signal.SIGINT)
        go.touch()
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == 0, stderr
