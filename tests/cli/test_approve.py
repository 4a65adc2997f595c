"""Approval gates from the command line: `treeflow approve` from another process while a run waits,
rejections, steps not waiting, a run killed at its gate and resumed, and the terminal's prompt."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from treeflow.core.gatekeeper import current_user

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

WORKFLOW = """\
    name: release
    steps:
      build: {run: echo built}
      deploy:
        needs: [build]
        approve: {message: "Deploy to staging?", timeout: 10m}
        run: echo deploying
      announce: {run: echo announced, needs: [deploy]}
    """

pytestmark = pytest.mark.slow


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def show(repo: Path) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(treeflow(repo, "show", "last", "--json").stdout)
    return shown


@pytest.fixture
def gated(repo: Path) -> Path:
    (repo / "treeflow.yml").write_text(textwrap.dedent(WORKFLOW))
    return repo


def start_waiting(repo: Path) -> subprocess.Popen[str]:
    """`treeflow run`, its output piped, once it says its gate waits."""
    process = subprocess.Popen(
        [*TREEFLOW, "run"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "waiting for approval" in line:
            assert "Deploy to staging?" in line
            assert "treeflow approve " in line and " deploy [--reject]" in line
            return process
    process.wait()
    raise AssertionError(f"the run never waited for approval: {''.join(seen)}")


def test_a_run_waits_at_its_gate_until_approve_from_another_process(gated: Path) -> None:
    process = start_waiting(gated)
    try:
        approved = treeflow(gated, "approve", "last", "deploy", "--message", "go ahead")
        assert approved.returncode == 0, approved.stderr
        assert f"deploy of run {show(gated)['run_id']}: approved by {current_user()} (cli): go ahead" in (
            approved.stdout
        )
        assert "not running" not in approved.stdout
        rest, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, rest
    assert f"[deploy] approved by {current_user()} (cli): go ahead" in rest
    shown = show(gated)
    assert shown["steps"]["deploy"]["status"] == "succeeded"
    assert shown["steps"]["announce"]["status"] == "succeeded"
    approval = shown["steps"]["deploy"]["approval"]
    assert approval["message"] == "Deploy to staging?"
    assert (approval["decision"], approval["decided_by"], approval["via"]) == (
        "approved",
        current_user(),
        "cli",
    )
    assert approval["note"] == "go ahead"
    assert approval["decided_at"] >= approval["requested_at"]
    text = treeflow(gated, "show", "last").stdout
    assert (
        f"approval of deploy (Deploy to staging?): approved by {current_user()} (cli): go ahead at " in text
    )


def test_a_rejection_fails_the_step_with_its_message_and_the_run(gated: Path) -> None:
    process = start_waiting(gated)
    try:
        rejected = treeflow(gated, "approve", "last", "deploy", "--reject", "--message", "-- not on a Friday")
        assert rejected.returncode == 0, rejected.stderr
        rest, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, rest
    shown = show(gated)
    deploy = shown["steps"]["deploy"]
    assert deploy["status"] == "failed"
    assert deploy["error"] == f"rejected by {current_user()} (cli): -- not on a Friday"
    assert deploy["attempts"] == 0 and deploy["log"] is None
    assert shown["steps"]["announce"]["status"] == "skipped"
    # Decided once: a second decision is refused with its own exit status.
    again = treeflow(gated, "approve", "last", "deploy")
    assert again.returncode == 3
    assert f"is not waiting for approval: rejected by {current_user()} (cli)" in again.stderr


def test_approve_names_what_it_cannot_decide(gated: Path) -> None:
    (gated / "treeflow.yml").write_text(textwrap.dedent(WORKFLOW).replace("echo built", "exit 1"))
    assert treeflow(gated, "run").returncode == 1
    never = treeflow(gated, "approve", "last", "deploy")
    assert never.returncode == 3
    assert "deploy of run" in never.stderr and "has not reached its gate" in never.stderr
    unknown = treeflow(gated, "approve", "last", "deplyo")
    assert unknown.returncode == 2
    assert "has no step deplyo (its steps: build" in unknown.stderr
    assert treeflow(gated, "approve", "nosuchrun", "deploy").returncode == 2


def test_a_run_killed_at_its_gate_goes_on_with_a_decision_made_meanwhile(gated: Path) -> None:
    process = start_waiting(gated)
    process.kill()
    process.communicate()
    approved = treeflow(gated, "approve", "last", "deploy")
    assert approved.returncode == 0, approved.stderr
    run_id = show(gated)["run_id"]
    assert f"run {run_id} is not running: `treeflow resume {run_id}` goes on with this decision" in (
        approved.stdout
    )
    assert show(gated)["steps"]["deploy"]["approval"]["decision"] == "approved"
    resumed = treeflow(gated, "resume", "last")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "waiting for approval" not in resumed.stdout
    shown = show(gated)
    assert shown["steps"]["deploy"]["status"] == "succeeded"
    assert shown["steps"]["deploy"]["approval"]["decided_by"] == current_user()


def test_a_run_killed_at_its_gate_asks_again_when_resumed(gated: Path) -> None:
    process = start_waiting(gated)
    process.kill()
    process.communicate()
    resumed = subprocess.Popen(
        [*TREEFLOW, "resume", "last"], cwd=gated, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert resumed.stdout is not None
        for line in resumed.stdout:
            if "waiting for approval: Deploy to staging?" in line:
                break
        assert treeflow(gated, "approve", "last", "deploy").returncode == 0
        rest, _ = resumed.communicate(timeout=60)
    finally:
        resumed.kill()
    assert resumed.returncode == 0, rest
    assert show(gated)["status"] == "succeeded"


def test_at_a_terminal_the_run_asks_and_takes_the_answer(gated: Path) -> None:
    terminal, secondary = pty.openpty()
    process = subprocess.Popen(
        [*TREEFLOW, "run"], cwd=gated, stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True
    )
    os.close(secondary)
    try:
        screen = _read_until(terminal, b"Approve with y, reject with n")
        assert b"Deploy to staging?" in screen
        os.write(terminal, b"y looks good\n")
        _read_until(terminal, b"release", deadline_s=60, until_exit=process)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        os.close(terminal)
    approval = show(gated)["steps"]["deploy"]["approval"]
    assert (approval["decision"], approval["via"], approval["note"]) == ("approved", "terminal", "looks good")


def _read_until(
    fd: int, wanted: bytes, deadline_s: float = 60, until_exit: subprocess.Popen[bytes] | None = None
) -> bytes:
    """What the terminal shows until ``wanted`` (or, with ``until_exit``, until that process ends)."""
    seen = b""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                return seen
            if not chunk:
                return seen
            seen += chunk
            if until_exit is None and wanted in seen:
                return seen
        if until_exit is not None and until_exit.poll() is not None:
            return seen
    raise AssertionError(f"the terminal never showed {wanted!r}: {seen[-2000:]!r}")
