"""Agent steps with scripted agents that misbehave, in both watch modes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import Recorder, has_text, make_run, pid_alive, run_workflow
from treeflow.core.events import AgentWaiting, StepProgress
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.watch import PollingWatcher, PollPolicy

pytestmark = pytest.mark.anyio

AGENT = Path(__file__).parent.parent / "agents" / "scripted_agent.py"


@pytest.fixture(params=["events", pytest.param("poll", marks=pytest.mark.slow)], autouse=True)
def watch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TREEFLOW_WATCH", request.param)
    return str(request.param)


def progress_of(recorder: Recorder) -> list[tuple[float | None, str | None]]:
    return [(e.progress, e.message) for e in recorder.events if isinstance(e, StepProgress)]


def agent_step(mode: str, heartbeat: str = "30s", extra: str = "", timeout: str = "5m") -> str:
    return f"""\
        steps:
          agent:
            timeout: {timeout}
            agent:
              prompt: do the thing
              command: {sys.executable} {AGENT} {mode} {extra}
              heartbeat: {heartbeat}
        """


async def test_a_reporting_agent_succeeds_with_progress(repo: Path, watch_mode: str) -> None:
    recorder = Recorder()
    # Each state shows for 0.2 s; adaptive polling may step over one once its interval has grown
    # past that, which is as designed but not what this test is about.
    watcher = PollingWatcher(PollPolicy(start_s=0.01, cap_s=0.05)) if watch_mode == "poll" else None
    result = await run_workflow(repo, agent_step("succeed"), recorder, worktrees=True, watcher=watcher)
    step = result.steps["agent"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.summary == "all done"
    progress = progress_of(recorder)
    assert (0.25, "quarter") in progress
    assert (0.75, "three quarters") in progress
    assert progress[-1][0] == 1.0


async def test_the_task_files_are_written_and_never_committed(repo: Path) -> None:
    result = await run_workflow(
        repo,
        """\
        steps:
          agent:
            agent:
              prompt: "Write the answer"
              command: cp .treeflow/PROMPT.md prompt-copy.md && cp .treeflow/task.json task-copy.json && treeflow_fail_if_missing=1 false || true; echo '{}' > /dev/null; exit 0
              heartbeat: 5s
        """,
        worktrees=True,
    )
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert "without a final state" in (step.error or "")
    branch = step.branch or "?"
    task = json.loads(git(repo, "show", f"{branch}:task-copy.json"))
    assert task["protocol"] == 1
    assert task["run_id"] == result.run_id
    assert task["step_id"] == "agent"
    assert task["prompt"] == "Write the answer"
    assert task["heartbeat_s"] == 5
    assert len(task["nonce"]) >= 16
    assert git(repo, "show", f"{branch}:prompt-copy.md") == "Write the answer"
    files = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert not any(name.startswith(".treeflow/") for name in files)


async def test_a_tracked_treeflow_link_is_refused_and_nothing_is_written_through_it(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "status.json").write_text('{"protocol": 1, "state": "succeeded"}\n')
    (repo / ".treeflow").symlink_to(outside)
    git(repo, "add", ".treeflow")
    git(repo, "commit", "-qm", ".treeflow is a link")
    result = await run_workflow(
        repo,
        agent_step("succeed"),
        worktrees=True,
        workflow_path=tmp_path / "w.yml",
    )
    step = result.steps["agent"]
    assert result.status is RunStatus.FAILED
    assert step.status is StepStatus.FAILED
    assert step.error == (
        f"cannot write the agent's task: .treeflow is a symbolic link (to {outside}) in the step's "
        "worktree, and treeflow never writes through one"
    )
    assert sorted(path.name for path in outside.iterdir()) == ["status.json"]


async def test_half_written_status_is_no_update(repo: Path) -> None:
    result = await run_workflow(repo, agent_step("partial"), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.summary == "written in two halves"
    assert len([w for w in result.warnings if "not valid JSON" in w]) <= 1


@pytest.mark.slow
async def test_a_stale_status_with_another_nonce_is_ignored(repo: Path) -> None:
    stale = json.dumps({"protocol": 1, "nonce": "old", "state": "succeeded"})
    result = await run_workflow(
        repo,
        f"""\
        setup:
          run: |
            mkdir -p .treeflow && echo '{stale}' > .treeflow/status.json
        steps:
          agent:
            agent: {{prompt: wait, heartbeat: 1s}}
        """,
        worktrees=True,
    )
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert "stopped reporting" in (step.error or "")


@pytest.mark.slow
async def test_a_silent_agent_fails_at_its_heartbeat_and_is_killed(repo: Path) -> None:
    pid_file = repo.parent / "agent.pid"
    started = time.monotonic()
    result = await run_workflow(repo, agent_step("silent", "1s", str(pid_file)), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert "stopped reporting: no status update for 1s" in (step.error or "")
    assert time.monotonic() - started < 20
    assert not pid_alive(int(pid_file.read_text()))


async def test_a_silent_agent_is_stopped_at_its_heartbeat_without_the_final_report_grace(
    repo: Path,
) -> None:
    # The grace an agent gets to exit after its final report is 5 s; one gone silent gets SIGTERM
    # at once, and this one dies of it.
    result = await run_workflow(repo, agent_step("silent", "1s"), worktrees=True, kill_grace_s=5.0)
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert "stopped reporting" in (step.error or "")
    assert step.exit_code == -signal.SIGTERM
    assert step.duration_s is not None and step.duration_s < 1 + 2.5


async def test_an_agent_that_exits_without_a_final_state_fails_with_its_last_output(repo: Path) -> None:
    result = await run_workflow(repo, agent_step("exit-without-status"), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert step.exit_code == 0
    assert "without a final state" in (step.error or "")
    assert "oops, forgot to report" in (step.error or "")


async def test_an_agent_that_reports_failure_fails_the_step(repo: Path) -> None:
    result = await run_workflow(repo, agent_step("fail"), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED
    assert "tests do not pass" in (step.error or "")


@pytest.mark.slow
async def test_a_flooding_agent_is_coalesced_and_the_loop_stays_responsive(repo: Path) -> None:
    recorder = Recorder()
    run = await make_run(repo, agent_step("flood"), recorder, worktrees=True)
    worst_lag = 0.0

    async def measure_lag() -> None:
        nonlocal worst_lag
        while True:
            before = time.monotonic()
            await anyio.sleep(0.01)
            worst_lag = max(worst_lag, time.monotonic() - before - 0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(measure_lag)
        await run.execute()
        group.cancel_scope.cancel()
    step = run.snapshot().steps["agent"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    sent = int((step.summary or "sent 0").split()[1])
    updates = [e for e in recorder.events if isinstance(e, StepProgress)]
    assert sent > 300
    assert len(updates) < sent / 3
    assert worst_lag < 0.5


async def test_an_oversize_status_file_is_rejected_with_a_message(repo: Path) -> None:
    result = await run_workflow(repo, agent_step("oversize"), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.summary == "small again"
    assert [w for w in result.warnings if "over 1024 KiB" in w] != []


async def test_cancelling_an_agent_step_kills_the_agent(repo: Path) -> None:
    pid_file = repo.parent / "agent.pid"
    run = await make_run(repo, agent_step("sleep", "30s", str(pid_file)), worktrees=True)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(20):
            while not has_text(pid_file):
                await anyio.sleep(0.02)
        run.cancel()
    assert run.snapshot().steps["agent"].status is StepStatus.CANCELLED
    assert not pid_alive(int(pid_file.read_text()))


@pytest.mark.slow
async def test_a_timeout_kills_the_agent(repo: Path) -> None:
    pid_file = repo.parent / "agent.pid"
    workflow = agent_step("sleep", "30s", str(pid_file), timeout="1s")
    result = await run_workflow(repo, workflow, worktrees=True)
    assert result.steps["agent"].status is StepStatus.TIMED_OUT
    assert not pid_alive(int(pid_file.read_text()))


async def test_an_external_agent_reports_with_the_cli(repo: Path) -> None:
    recorder = Recorder()
    run = await make_run(
        repo, "steps:\n  agent: {agent: {prompt: external, heartbeat: 30s}}\n", recorder, worktrees=True
    )

    async def external_agent() -> None:
        with anyio.fail_after(20):
            while not recorder.of(AgentWaiting):
                await anyio.sleep(0.02)
        waiting = recorder.of(AgentWaiting)[0]
        assert isinstance(waiting, AgentWaiting)
        inside = waiting.worktree / "some" / "folder"
        inside.mkdir(parents=True)
        (inside / "answer.txt").write_text("42\n")

        async def report(*args: str) -> None:
            done = await anyio.run_process(
                [sys.executable, "-m", "treeflow.cli", "agent", "report", *args], cwd=inside, check=False
            )
            assert done.returncode == 0, done.stderr

        await report("--state", "running", "--progress", "0.5", "--message", "halfway")
        # The next report replaces this one; a watcher reading only after that would never see it.
        with anyio.fail_after(20):
            while (0.5, "halfway") not in progress_of(recorder):
                await anyio.sleep(0.02)
        await report("--state", "succeeded", "--summary", "answered")

    async with anyio.create_task_group() as group:
        group.start_soon(external_agent)
        await run.execute()
    step = run.snapshot().steps["agent"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.summary == "answered"
    assert (0.5, "halfway") in progress_of(recorder)
    assert git(repo, "show", f"{step.branch}:some/folder/answer.txt") == "42"


def test_agent_report_outside_a_worktree_exits_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "agent", "report", "--state", "running"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "no treeflow task here" in done.stderr


def test_init_cursor_writes_the_rule(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "init", "--cursor"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    rule = (tmp_path / ".cursor" / "rules" / "treeflow.mdc").read_text()
    assert "treeflow agent report --state succeeded" in rule
    assert ".treeflow/task.json" in rule


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("fifo", "is not a regular file"),
        ("directory", "is not a regular file"),
        ("symlink-loop", "is a symbolic link"),
        ("deep-nesting", "is not valid JSON"),
        ("encoded-surrogate", "is not UTF-8 text"),
    ],
)
async def test_a_status_file_that_cannot_be_taken_is_no_update(repo: Path, mode: str, said: str) -> None:
    started = time.monotonic()
    result = await run_workflow(repo, agent_step(mode, "1s"), worktrees=True)
    step = result.steps["agent"]
    assert step.status is StepStatus.FAILED, step.summary
    assert "stopped reporting: no status update for 1s" in (step.error or "")
    assert [w for w in result.warnings if said in w] != [], result.warnings
    assert time.monotonic() - started < 30


def test_a_message_that_is_not_utf8_reaches_the_journal_and_the_terminal(repo: Path) -> None:
    report = f"{sys.executable} -m treeflow.cli agent report"
    (repo / "treeflow.yml").write_text(
        "steps:\n"
        "  agent:\n"
        "    agent:\n"
        "      prompt: say it in Latin-1\n"
        "      heartbeat: 30s\n"
        f"      command: >-\n"
        f"        {report} --state running --message \"$(printf 'caf\\351')\" &&\n"
        f"        {report} --state succeeded --summary \"$(printf 'na\\357ve')\"\n"
    )

    def treeflow(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "treeflow.cli", *args],
            cwd=repo,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert b"Traceback" not in done.stderr
        return done.stdout.decode("utf-8")

    printed = treeflow("run")
    assert "caf\ufffd" in printed
    run_id = json.loads(treeflow("runs", "--json"))[0]["run_id"]
    step = json.loads(treeflow("show", run_id, "--json"))["steps"]["agent"]
    assert step["status"] == "succeeded"
    assert step["summary"] == "na\ufffdve"
