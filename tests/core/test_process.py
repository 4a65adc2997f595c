"""Process trees: what a step starts ends with it, however the step ends."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.helpers import pid_alive, wait_for_files
from treeflow.core.process import end_process_group, process_group_alive, run_shell

pytestmark = pytest.mark.anyio


async def _run(command: str, cwd: Path, grace: float = 5.0) -> tuple[int, list[str], int]:
    lines: list[str] = []
    groups: list[int] = []
    code = await run_shell(
        command,
        cwd=cwd,
        env=dict(os.environ),
        log_file=io.BytesIO(),
        on_line=lines.append,
        on_start=groups.append,
        kill_grace_s=grace,
    )
    return code, lines, groups[0]


async def test_exit_status_and_output(tmp_path: Path) -> None:
    code, lines, _ = await _run("echo one; echo two >&2; exit 4", tmp_path)
    assert code == 4
    assert lines == ["one", "two"]


async def test_stderr_lines_go_to_their_own_callback_and_both_streams_to_the_log(tmp_path: Path) -> None:
    out: list[str] = []
    err: list[str] = []
    log = io.BytesIO()
    code = await run_shell(
        "echo one; echo two >&2; printf 'three'",
        cwd=tmp_path,
        env=dict(os.environ),
        log_file=log,
        on_line=out.append,
        on_error_line=err.append,
    )
    assert code == 0
    assert (out, err) == (["one", "three"], ["two"])
    # Lines of the two streams may swap places in the log, but a line is never cut by the other's.
    assert sorted(log.getvalue().splitlines()) == [b"one", b"three", b"two"]


async def test_background_children_left_behind_end_with_the_step(tmp_path: Path) -> None:
    code, _, group = await _run("sleep 60 > /dev/null 2>&1 & echo $! > bg; exit 0", tmp_path)
    assert code == 0
    assert not pid_alive(int((tmp_path / "bg").read_text()))
    assert not process_group_alive(group)


async def test_cancelling_kills_grandchildren(tmp_path: Path) -> None:
    command = "sh -c 'sleep 60 & echo $! > grandchild; wait' & echo $! > child; wait"
    with anyio.move_on_after(20) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, command, tmp_path)
            await anyio.to_thread.run_sync(wait_for_files, [tmp_path / "grandchild", tmp_path / "child"])
            scope.cancel()
    assert scope.cancelled_caught
    for name in ("child", "grandchild"):
        assert not pid_alive(int((tmp_path / name).read_text())), name


async def test_a_tree_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    # An ignored signal stays ignored across exec, so `sleep` inherits the shell's trap.
    command = "trap '' TERM; sleep 60 & echo $! > stubborn; wait"
    with anyio.move_on_after(20) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(_run, command, tmp_path, 0.3)
            await anyio.to_thread.run_sync(wait_for_files, [tmp_path / "stubborn"])
            scope.cancel()
    assert scope.cancelled_caught
    assert not pid_alive(int((tmp_path / "stubborn").read_text()))


async def test_a_process_that_leaves_the_group_cannot_hold_the_step_open(tmp_path: Path) -> None:
    # `setsid` moves the sleeper out of the step's group while it keeps the output pipe open.
    command = "setsid sleep 30 & echo $! > escaped"
    with anyio.fail_after(10):
        code, _, _ = await _run(command, tmp_path, grace=0.3)
    assert code == 0
    escaped = int((tmp_path / "escaped").read_text())
    if pid_alive(escaped):
        os.kill(escaped, signal.SIGKILL)


async def test_ending_an_empty_group_returns_at_once(tmp_path: Path) -> None:
    _, _, group = await _run("true", tmp_path)
    with anyio.fail_after(1):
        assert await end_process_group(group, 5.0)


class _HeldStart:
    """Stands in for `subprocess.Popen`: each start waits until ``release`` is set, as a start on
    a busy machine waits for the child to be scheduled, then starts the child for real."""

    def __init__(self) -> None:
        self.waiting = threading.Event()
        self.release = threading.Event()
        self._popen = subprocess.Popen

    def __call__(self, *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        self.waiting.set()
        if not self.release.wait(20):
            raise AssertionError("the start was never released")
        return self._popen(*args, **kwargs)


async def test_the_event_loop_goes_on_while_a_child_is_being_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _HeldStart()
    monkeypatch.setattr(subprocess, "Popen", held)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(_run, "true", tmp_path)
            await anyio.to_thread.run_sync(held.waiting.wait)
            # Only a loop that is not stuck in the start can get here and let it go on.
            held.release.set()


async def test_a_child_started_as_its_step_is_cancelled_is_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = _HeldStart()
    monkeypatch.setattr(subprocess, "Popen", held)
    ended: list[tuple[int, int | None]] = []

    async def run() -> None:
        await run_shell(
            "sleep 60",
            cwd=tmp_path,
            env=dict(os.environ),
            log_file=io.BytesIO(),
            on_line=lambda line: None,
            on_end=lambda group, status: ended.append((group, status)),
        )

    with anyio.move_on_after(20) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await anyio.to_thread.run_sync(held.waiting.wait)
            scope.cancel()
            held.release.set()
    assert scope.cancelled_caught
    [(leader, status)] = ended
    assert status == -signal.SIGTERM
    assert not process_group_alive(leader)
