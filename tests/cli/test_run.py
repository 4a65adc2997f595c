"""`treeflow run` as users call it: a real process, its output, exit codes and Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import pty
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import pid_alive, read_pids, wait_for_files, worktrees_left
from treeflow.cli.plain_output import PlainSink
from treeflow.core.events import StepProgress

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def write_workflow(repo: Path, text: str, name: str = "treeflow.yml") -> Path:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def test_success_prints_one_line_per_event_and_exits_0(repo: Path) -> None:
    write_workflow(
        repo,
        """\
        steps:
          hello: {run: "echo hello world"}
          after: {run: "true", needs: [hello]}
        """,
    )
    done = treeflow(repo, "run")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("treeflow: run ")
    assert "[hello] | hello world" in lines
    assert any(line.startswith("[after] succeeded in ") for line in lines)
    assert "succeeded" in lines[-1] and "2 succeeded" in lines[-1]


@pytest.mark.slow
def test_a_reader_that_leaves_does_not_stop_the_run(repo: Path) -> None:
    # `treeflow run | head -1`: the run goes on to its end, quietly, and its work is kept.
    write_workflow(
        repo,
        """\
        steps:
          first: {run: "seq 1 100; sleep 0.3"}
          second: {run: "seq 1 100; echo done > second.txt", needs: [first]}
        """,
    )
    with subprocess.Popen(
        [*TREEFLOW, "run"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as running:
        assert running.stdout is not None and running.stderr is not None
        assert running.stdout.readline().startswith("treeflow: run ")
        running.stdout.close()
        assert running.wait(timeout=60) == 0
        assert running.stderr.read() == ""
    runs = json.loads(treeflow(repo, "runs", "--json").stdout)
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["steps"]["second"]["branch"]


def test_a_failed_step_exits_1_and_says_why(repo: Path) -> None:
    write_workflow(repo, "steps:\n  broken: {run: 'exit 5'}\n")
    done = treeflow(repo, "run")
    assert done.returncode == 1
    assert "[broken] failed" in done.stdout
    assert "exit status 5" in done.stdout


def test_json_prints_the_result_object_only(repo: Path) -> None:
    write_workflow(
        repo,
        """\
        steps:
          a: {run: "echo noise"}
          b: {run: "exit 2", needs: [a]}
          c: {run: "true", needs: [b]}
        """,
    )
    done = treeflow(repo, "run", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert set(result) >= {
        "run_id",
        "workflow",
        "status",
        "base_commit",
        "result_branch",
        "started_at",
        "ended_at",
        "duration_s",
        "steps",
    }
    assert result["status"] == "failed"
    assert (
        result["base_commit"]
        == subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    steps = result["steps"]
    assert [steps[s]["status"] for s in "abc"] == ["succeeded", "failed", "skipped"]
    for field in (
        "status",
        "attempts",
        "exit_code",
        "started_at",
        "ended_at",
        "duration_s",
        "branch",
        "commit",
        "log",
    ):
        assert field in steps["a"]
    assert steps["b"]["exit_code"] == 2
    assert Path(steps["a"]["log"]).read_text() == "noise\n"


def test_step_option_runs_the_step_and_what_it_needs(repo: Path) -> None:
    write_workflow(
        repo,
        """\
        steps:
          base: {run: "true"}
          wanted: {run: "true", needs: [base]}
          other: {run: "true"}
        """,
        name=".treeflow/checks.yml",
    )
    done = treeflow(repo, "run", "--step", "wanted", "--json")
    assert done.returncode == 0, done.stderr
    assert list(json.loads(done.stdout)["steps"]) == ["base", "wanted"]


def test_sigint_cancels_the_run_kills_every_tree_and_exits_130(repo: Path) -> None:
    pids = repo / "pids"
    pids.mkdir()
    write_workflow(
        repo,
        f"""\
        steps:
          sleeper: {{run: "echo $$ > {pids}/sleeper; exec sleep 60"}}
          tree: {{run: "sh -c 'sleep 60 & echo $! > {pids}/grandchild; wait' & echo $! > {pids}/tree; wait"}}
          later: {{run: "true", needs: [tree]}}
        """,
    )
    process = subprocess.Popen(
        [*TREEFLOW, "run", "--json"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_files([repo / "pids" / name for name in ("sleeper", "tree", "grandchild")])
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    result = json.loads(stdout)
    assert result["status"] == "cancelled"
    assert result["steps"]["sleeper"]["status"] == "cancelled"
    assert result["steps"]["later"]["status"] == "skipped"
    assert [name for name, pid in read_pids(repo / "pids").items() if pid_alive(pid)] == []


@pytest.mark.slow
def test_ctrl_c_while_worktrees_are_made_leaves_no_worktree_and_no_branch(repo: Path) -> None:
    # A terminal's Ctrl-C reaches the whole process group, git commands included, at any moment;
    # early on, that is while step worktrees are being registered and checked out.
    for index in range(200):
        (repo / f"f{index}.txt").write_text(f"{index}\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "many files")
    write_workflow(repo, "steps:\n" + "".join(f"  s{i}: {{run: 'sleep 0.5'}}\n" for i in range(4)))
    pacing = random.Random(7)
    run_locks = repo / ".git" / "treeflow" / "runs"
    for _ in range(16):
        with subprocess.Popen(
            [*TREEFLOW, "run", "--max-parallel", "4"],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            # From the moment the run holds its lock, right before it makes the worktrees; a
            # machine slow enough could otherwise deliver the signal while Python is still starting.
            deadline = time.monotonic() + 30
            while not list(run_locks.glob("*.lock")) and process.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            time.sleep(pacing.uniform(0.0, 0.3))
            os.killpg(process.pid, signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        assert process.returncode in (0, 130), stderr
        assert "Traceback" not in stderr
    assert worktrees_left(repo) == []
    assert git(repo, "branch", "--list", "treeflow/*") == ""
    assert git(repo, "status", "--porcelain") == "?? treeflow.yml"


def test_a_run_from_a_git_hook_leaves_the_users_commit_and_index_alone(repo: Path) -> None:
    # git gives its hooks GIT_INDEX_FILE (and more) naming the user's index; neither treeflow's own
    # git commands nor a step's may write there.
    write_workflow(repo, "steps:\n  s: {run: 'echo s > s.txt && git add s.txt'}\n")
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "-qm", "workflow")
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} -m treeflow.cli run --json > ../hook-result.json\n")
    hook.chmod(0o755)
    (repo / "README.md").write_text("changed by the user\n")
    git(repo, "commit", "-qam", "user commit")
    assert json.loads((repo.parent / "hook-result.json").read_text())["status"] == "succeeded"
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "README.md"
    assert git(repo, "status", "--porcelain") == ""


def run_in_terminal(repo: Path, *args: str, columns: int = 160) -> tuple[int, str]:
    """``treeflow`` with a pseudo-terminal as stdin, stdout and stderr: its exit status and output."""
    parent, child = pty.openpty()
    process = subprocess.Popen(
        [*TREEFLOW, *args],
        cwd=repo,
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "COLUMNS": str(columns), "TERM": "xterm"},
    )
    os.close(child)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(parent, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(parent)
    return process.wait(timeout=30), output.decode(errors="replace")


def test_terminal_shows_a_summary_table(repo: Path) -> None:
    write_workflow(repo, "steps:\n  one: {run: 'echo hi'}\n  two: {run: 'echo boom-line; exit 3'}\n")
    exit_code, text = run_in_terminal(repo, "run", columns=120)
    assert exit_code == 1
    assert "step" in text and "status" in text and "log" in text
    assert "two failed" in text
    assert "last lines of two" in text
    assert text.index("boom-line", text.index("last lines of two")) > 0


def test_an_agent_report_with_nothing_to_say_prints_no_line() -> None:
    out = io.StringIO()
    sink = PlainSink(out)
    sink.emit(StepProgress("run", "review", None, None))
    sink.emit(StepProgress("run", "review", 0.5, "halfway"))
    assert out.getvalue() == "[review] agent: 50% halfway\n"


def assert_no_step_running(repo: Path) -> dict[str, object]:
    """The journal's record of the newest run, which has ended, and every step of it too."""
    shown = treeflow(repo, "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    run: dict[str, object] = json.loads(shown.stdout)
    assert run["status"] not in ("running", "pending")
    steps = run["steps"]
    assert isinstance(steps, dict)
    assert [step_id for step_id, step in steps.items() if step["status"] in ("running", "pending")] == []
    return run


def test_a_failing_clean_filter_fails_the_run_with_a_clear_message(repo: Path) -> None:
    # A required clean filter that fails (as git-lfs's would without its program) on a dirty
    # tracked file: the working tree cannot be snapshot, so the run cannot start.
    (repo / ".gitattributes").write_text("*.txt filter=broken\n")
    (repo / "data.txt").write_text("one\n")
    git(repo, "add", ".gitattributes", "data.txt")
    git(repo, "commit", "-qm", "data")
    git(repo, "config", "filter.broken.clean", "false")
    git(repo, "config", "filter.broken.smudge", "cat")
    git(repo, "config", "filter.broken.required", "true")
    (repo / "data.txt").write_text("two, and longer\n")
    write_workflow(repo, "steps:\n  a: {run: 'true'}\n  b: {run: 'true', needs: [a]}\n")
    done = treeflow(repo, "run")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "warning: the run could not start:" in done.stdout
    assert "clean filter 'broken' failed" in done.stdout
    assert "[a] skipped: not started: the run could not start" in done.stdout
    run = assert_no_step_running(repo)
    assert run["status"] == "failed"
    as_json = treeflow(repo, "run", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["status"] == "failed"


def test_a_full_disk_under_a_log_still_gives_the_json_result(repo: Path, tmp_path: Path) -> None:
    # The run id is only known once a run has begun: a first run fails, then its log is pointed
    # at /dev/full (every write there fails with ENOSPC, as on a full disk) before it is resumed.
    go_ahead = tmp_path / "go-ahead"
    write_workflow(repo, f"steps:\n  talk: {{run: 'seq 1 20000; test -e {go_ahead}'}}\n")
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    log = Path(first["steps"]["talk"]["log"])
    log.unlink()
    log.symlink_to("/dev/full")
    go_ahead.touch()
    done = treeflow(repo, "resume", first["run_id"], "--json")
    assert "Traceback" not in done.stderr
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["steps"]["talk"]["status"] == "succeeded"
    assert any("No space left on device" in warning for warning in result["warnings"])
    assert_no_step_running(repo)


def test_log_paths_are_printed_only_for_logs_that_exist(repo: Path) -> None:
    write_workflow(
        repo,
        """\
        steps:
          quiet: {run: "true"}
          loud: {run: "echo hello"}
          never: {run: "true", needs: [broken]}
          broken: {run: "exit 1", needs: [loud]}
        """,
    )
    done = treeflow(repo, "run")
    printed = [line.split(", log: ")[1] for line in done.stdout.splitlines() if ", log: " in line]
    assert printed and all((repo / path).is_file() for path in printed)
    result = assert_no_step_running(repo)
    steps = result["steps"]
    assert isinstance(steps, dict)
    logged = {step_id for step_id, step in steps.items() if step["log"]}
    assert logged == {"loud"}
    assert all(Path(steps[step_id]["log"]).is_file() for step_id in logged)
    assert [line for line in done.stdout.splitlines() if ", log: " in line] == [
        line for line in done.stdout.splitlines() if line.startswith("[loud] succeeded")
    ]
