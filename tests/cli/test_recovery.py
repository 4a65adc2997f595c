"""A killed run loses nothing and leaves nothing behind: journal, recovery and resume."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.conftest import git
from tests.helpers import pid_alive, processes_inside, wait_for_files, wait_until, worktrees_left
from treeflow.core import journal
from treeflow.core.git import open_repository
from treeflow.core.model import RunResult, RunStatus, StepResult, StepStatus
from treeflow.core.process import process_group_alive, process_start_ticks

# Each test starts and kills several treeflow processes: a second or more apiece.
pytestmark = pytest.mark.slow

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

SIX_STEPS = """\
max_parallel: 3
steps:
  a: {{run: "echo $$ >> {pids}/all; echo a > a.txt; sleep 0.4"}}
  b: {{run: "echo $$ >> {pids}/all; echo b > b.txt; sleep 0.6"}}
  c: {{run: "echo $$ >> {pids}/all; echo c > c.txt; sh -c 'sleep 0.8 & wait'"}}
  d: {{run: "echo $$ >> {pids}/all; echo d > d.txt; sleep 0.4", needs: [a, b]}}
  e: {{run: "echo $$ >> {pids}/all; echo e > e.txt; sleep 0.3", needs: [c]}}
  f: {{run: "echo $$ >> {pids}/all; cat a.txt b.txt c.txt d.txt e.txt > all.txt; echo f > f.txt", needs: [d, e]}}
"""


def wait_for(path: Path) -> str:
    """Shell that waits until ``path`` exists (a minute at most), so a step runs as long as a test needs."""
    return f"for _ in $(seq 3000); do test -e {path} && break; sleep 0.02; done"


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=120)


@contextmanager
def killed_at_the_end(repo: Path, *args: str) -> Iterator[None]:
    """`treeflow ARGS` in the background for the block, then killed with SIGKILL, as a crash would."""
    process = subprocess.Popen(
        [*TREEFLOW, *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def worktrees(repo: Path) -> int:
    """Worktrees left behind: any but the checkout and the pool's clean, idle ones."""
    return len(worktrees_left(repo))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_then_recover_then_resume(repo: Path, seed: int) -> None:
    pids = repo.parent / "pids"
    pids.mkdir()
    (pids / "all").touch()
    (repo / "treeflow.yml").write_text(SIX_STEPS.format(pids=pids))
    process = subprocess.Popen(
        [*TREEFLOW, "run"], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_files([pids / "all"])
    # The crash lands at a moment each seed picks: mid-step, between steps or after the end.
    time.sleep(random.Random(seed).uniform(0.2, 1.6))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    db = repo / ".git" / "treeflow" / "journal.db"
    before = journal.read_runs(db)
    assert len(before) == 1
    run_id = before[0].run.run_id
    saved = {step_id: step.result.branch for step_id, step in before[0].steps.items() if step.result.branch}

    listed = treeflow(repo, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)
    if run["status"] != "succeeded":  # the kill may land after the run's end
        assert run["status"] == "interrupted"
        assert f"run {run_id}" in listed.stderr
        assert {step["status"] for step in run["steps"].values()} <= {"succeeded", "interrupted"}
    started = [int(line) for line in (pids / "all").read_text().split()]
    assert [pid for pid in started if pid_alive(pid)] == []
    assert worktrees(repo) == 0
    for step_id, branch in saved.items():
        assert git(repo, "show", f"{branch}:{step_id}.txt") == step_id

    if run["status"] == "interrupted":
        resumed = treeflow(repo, "resume", run_id, "--json")
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout)
        assert result["run_id"] == run_id
        assert result["status"] == "succeeded"
        assert result["base_commit"] == run["base_commit"]
        for step_id, step in run["steps"].items():
            if step["status"] == "succeeded":
                assert result["steps"][step_id]["attempts"] == step["attempts"]
        branch = result["result_branch"]
        assert git(repo, "show", f"{branch}:all.txt").split() == list("abcde")
    assert worktrees(repo) == 0


def fake_dead_run(repo: Path, group: int | None, start_ticks: int | None) -> str:
    """A run the journal says is running, owned by a process that is gone, holding ``group``."""
    db = repo / ".git" / "treeflow" / "journal.db"
    run = RunResult(
        run_id="20260101-000000-dead",
        workflow="w",
        workflow_path=repo / "treeflow.yml",
        steps={"s": StepResult(status=StepStatus.RUNNING)},
    )
    with journal.connect(db) as connection:
        connection.execute(
            "INSERT INTO runs (run_id, workflow, workflow_path, status, owner_pid, owner_start)"
            " VALUES (?, 'w', ?, 'running', 999999999, 1)",
            (run.run_id, str(run.workflow_path)),
        )
        connection.execute(
            "INSERT INTO steps (run_id, step_id, position, status) VALUES (?, 's', 0, 'running')",
            (run.run_id,),
        )
        if group is not None:
            connection.execute(
                "INSERT INTO processes (run_id, step_id, pgid, start_ticks) VALUES (?, 's', ?, ?)",
                (run.run_id, group, start_ticks),
            )
    return run.run_id


def journal_when(repo: Path, condition: Callable[[journal.RunRecord], bool]) -> journal.RunRecord:
    """The newest run in the journal once it meets ``condition`` (the journal writes in batches)."""
    db = repo / ".git" / "treeflow" / "journal.db"
    deadline = time.monotonic() + 10
    while True:
        records = journal.read_runs(db, limit=1)
        if records and condition(records[0]):
            return records[0]
        assert time.monotonic() < deadline, records
        time.sleep(0.01)


@pytest.mark.parametrize("same_process", [False, True])
def test_a_reused_pid_is_never_killed(repo: Path, same_process: bool) -> None:
    with subprocess.Popen(["sleep", "60"], start_new_session=True) as stranger:
        try:
            ticks = process_start_ticks(stranger.pid)
            assert ticks is not None
            # With another start time on record, the pid now belongs to another process.
            fake_dead_run(repo, stranger.pid, ticks if same_process else ticks - 1)
            done = treeflow(repo, "runs", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)[0]["status"] == "interrupted"
            # Recovery waits until each group it ends is gone before it exits, so by now the
            # stranger is dead if treeflow ended it at all.
            if same_process:
                assert stranger.wait(timeout=10) is not None
            else:
                assert stranger.poll() is None
                assert "belongs to another process" in done.stderr
        finally:
            stranger.kill()


def test_processes_the_journal_missed_are_found_by_their_run_id(repo: Path) -> None:
    run_id = fake_dead_run(repo, None, None)
    environ = {**os.environ, "TREEFLOW_RUN_ID": run_id}
    other = {**os.environ, "TREEFLOW_RUN_ID": "20260101-000000-live"}
    # A shell with a child: the whole group of the run's process must end, the other run's must not.
    with (
        subprocess.Popen(["sh", "-c", "sleep 60 & wait"], env=environ, start_new_session=True) as missed,
        subprocess.Popen(["sleep", "60"], env=other, start_new_session=True) as bystander,
    ):
        try:
            done = treeflow(repo, "runs", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)[0]["status"] == "interrupted"
            assert f"not recorded yet (group {missed.pid})" in done.stderr
            missed.wait(timeout=10)
            assert not process_group_alive(missed.pid)
            assert bystander.poll() is None
        finally:
            missed.kill()
            bystander.kill()


def test_recovery_never_ends_its_own_process_group(repo: Path) -> None:
    # The group recorded for the dead run is the one the recovering treeflow runs in (its pid reused
    # as a group leader, same start time as `exec` keeps it): treeflow must not end itself.
    with subprocess.Popen(
        ["sh", "-c", 'read go; exec "$@"', "sh", *TREEFLOW, "runs", "--json"],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as recovering:
        try:
            fake_dead_run(repo, recovering.pid, process_start_ticks(recovering.pid))
            out, err = recovering.communicate("go\n", timeout=60)
            assert recovering.returncode == 0, err
            assert json.loads(out)[0]["status"] == "interrupted"
        finally:
            recovering.kill()


def test_a_dead_run_is_recovered_once_when_several_treeflows_start_at_once(repo: Path) -> None:
    for _ in range(4):
        db = repo / ".git" / "treeflow" / "journal.db"
        if db.exists():
            with journal.connect(db) as connection:
                connection.execute("DELETE FROM runs")
                connection.execute("DELETE FROM steps")
                connection.execute("DELETE FROM processes")
        fake_dead_run(repo, None, None)
        starting = [
            subprocess.Popen(
                [*TREEFLOW, "runs"], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        messages = [process.communicate(timeout=60)[1] for process in starting]
        assert all(process.returncode == 0 for process in starting), messages
        assert sum(message.count("is marked interrupted") for message in messages) == 1, messages


def test_resume_works_from_any_folder_whatever_path_the_run_was_given(repo: Path, tmp_path: Path) -> None:
    (repo / "flows").mkdir()
    (repo / "flows" / "checks.yml").write_text(
        "steps:\n  a: {run: 'true'}\n  b: {run: 'false', needs: [a]}\n"
    )

    def treeflow_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*TREEFLOW, *args, "--json", "--repo", str(repo)]
        return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60)

    first = treeflow_in(repo / "flows", "run", "checks.yml")
    assert first.returncode == 1, first.stderr
    run_id = json.loads(first.stdout)["run_id"]
    resumed = treeflow_in(tmp_path, "resume", run_id)
    assert resumed.returncode == 1, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["run_id"] == run_id
    assert result["workflow_path"] == str(repo / "flows" / "checks.yml")


def test_resume_refuses_a_run_whose_steps_the_workflow_no_longer_has(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'true'}\n  b: {run: 'false', needs: [a]}\n")
    run_id = json.loads(treeflow(repo, "run", "--json").stdout)["run_id"]
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'true'}\n  b2: {run: 'true', needs: [a]}\n")
    done = treeflow(repo, "resume", run_id)
    assert done.returncode == 2
    assert f"no longer has step b of run {run_id}" in done.stderr


def test_runs_and_show_print_whole_run_ids_and_branches_when_piped(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a_step_with_a_rather_long_name: {run: 'echo a > a.txt'}\n")
    run_id = json.loads(treeflow(repo, "run", "--json").stdout)["run_id"]
    listing = treeflow(repo, "runs")
    assert run_id in listing.stdout and f"treeflow/runs/{run_id}" in listing.stdout
    shown = treeflow(repo, "show", run_id)
    assert f"treeflow/{run_id}/a_step_with_a_rather_long_name" in shown.stdout


def test_an_unopenable_journal_is_a_clear_error(repo: Path) -> None:
    (repo / ".git" / "treeflow" / "journal.db").mkdir(parents=True)
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'true'}\n")
    for command in (["run"], ["runs"]):
        done = treeflow(repo, *command)
        assert done.returncode == 2, done.stderr
        assert "cannot open the run journal" in done.stderr and "journal.db" in done.stderr
        assert "Traceback" not in done.stderr


def test_a_journal_that_cannot_open_raises_instead_of_hanging(repo: Path) -> None:
    (repo / ".git" / "treeflow" / "journal.db").mkdir(parents=True)
    repository = anyio.run(open_repository, repo)
    with pytest.raises(journal.JournalUnavailable, match="cannot open the run journal"):
        journal.Journal(repository)


def test_two_cli_runs_write_the_journal_at_once(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        "defaults: {worktree: false}\nsteps:\n" + "".join(f"  s{i}: {{run: 'echo {i}'}}\n" for i in range(60))
    )
    first = subprocess.Popen([*TREEFLOW, "run", "--json"], cwd=repo, stdout=subprocess.PIPE, text=True)
    second = subprocess.Popen([*TREEFLOW, "run", "--json"], cwd=repo, stdout=subprocess.PIPE, text=True)
    outputs = [first.communicate(timeout=120)[0], second.communicate(timeout=120)[0]]
    ids = {json.loads(output)["run_id"] for output in outputs}
    db = repo / ".git" / "treeflow" / "journal.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    runs = {record.run.run_id: record.run for record in journal.read_runs(db)}
    assert set(runs) == ids
    for run in runs.values():
        assert run.status is RunStatus.SUCCEEDED
        assert len(run.steps) == 60
        assert {step.status for step in run.steps.values()} == {StepStatus.SUCCEEDED}


OPEN_AT = """
import sys, time
from pathlib import Path
from typing import Any
from treeflow.core import journal
path, moment = Path(sys.argv[1]), float(sys.argv[2])
time.sleep(max(0.0, moment - time.time()))
with journal.connect(path) as connection:
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("COMMIT")
"""


def test_processes_that_open_a_new_journal_at_the_same_moment_all_succeed(tmp_path: Path) -> None:
    for round_number in range(6):
        path = tmp_path / f"journal-{round_number}.db"
        moment = str(time.time() + 0.8)
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT, str(path), moment], stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        errors = [opener.communicate(timeout=60)[1] for opener in openers]
        assert [opener.returncode for opener in openers] == [0] * 4, errors


def test_show_and_runs_read_the_journal(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo hi > a.txt'}\n  b: {run: 'exit 3'}\n")
    assert treeflow(repo, "run").returncode == 1
    [run] = json.loads(treeflow(repo, "runs", "--json").stdout)
    shown = treeflow(repo, "show", run["run_id"], "--json")
    assert shown.returncode == 0
    detail = json.loads(shown.stdout)
    assert detail["steps"]["a"]["status"] == "succeeded"
    assert detail["steps"]["a"]["branch"] == f"treeflow/{run['run_id']}/a"
    assert detail["steps"]["b"]["exit_code"] == 3
    text = treeflow(repo, "show", run["run_id"])
    assert "failed" in text.stdout
    missing = treeflow(repo, "show", "nope")
    assert missing.returncode == 2
    assert "no run nope" in missing.stderr


def test_resume_reruns_only_what_did_not_succeed(repo: Path) -> None:
    flag = repo.parent / "fixed"
    (repo / "treeflow.yml").write_text(
        f"fail_fast: false\nsteps:\n  good: {{run: 'echo g > g.txt'}}\n"
        f"  flaky: {{run: 'test -e {flag} && echo f > f.txt'}}\n"
        f"  after: {{run: 'cat g.txt f.txt > both.txt', needs: [good, flaky]}}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    assert first["status"] == "failed"
    flag.write_text("now it works")
    done = treeflow(repo, "resume", first["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["steps"]["good"]["attempts"] == 1
    assert result["steps"]["good"]["commit"] == first["steps"]["good"]["commit"]
    assert result["status"] == "succeeded"
    assert git(repo, "show", f"{result['result_branch']}:both.txt").split() == ["g", "f"]
    again = treeflow(repo, "resume", first["run_id"])
    assert again.returncode == 2
    assert "nothing to resume" in again.stderr


def test_clean_forgets_old_runs_but_keeps_their_unmerged_branches(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo hi > a.txt'}\n")
    run = json.loads(treeflow(repo, "run", "--json").stdout)
    db = repo / ".git" / "treeflow" / "journal.db"
    with journal.connect(db) as connection:
        connection.execute("UPDATE runs SET ended_at = ?", (time.time() - 40 * 86400,))
    done = treeflow(repo, "clean", "--keep-days", "30")
    assert done.returncode == 0, done.stderr
    assert f"forgot run {run['run_id']}" in done.stdout
    assert json.loads(treeflow(repo, "runs", "--json").stdout) == []
    with journal.connect(db) as connection:
        for table in ("runs", "steps", "step_outcomes", "attempts", "processes"):
            assert connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    assert not (repo / ".git" / "treeflow" / "logs" / run["run_id"]).exists()
    assert git(repo, "show", f"{run['result_branch']}:a.txt") == "hi"


def test_clean_keep_days_0_forgets_every_ended_run(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'true'}\n")
    run = json.loads(treeflow(repo, "run", "--json").stdout)
    done = treeflow(repo, "clean", "--keep-days", "0")
    assert done.returncode == 0, done.stderr
    assert f"forgot run {run['run_id']}" in done.stdout
    assert json.loads(treeflow(repo, "runs", "--json").stdout) == []


def test_journal_records_the_process_groups_and_worktrees_of_running_steps(repo: Path) -> None:
    marker = repo.parent / "started"
    release = repo.parent / "release"
    (repo / "treeflow.yml").write_text(
        f"steps:\n  a: {{run: 'echo hi > a.txt; echo up > {marker}; {wait_for(release)}'}}\n"
    )
    db = repo / ".git" / "treeflow" / "journal.db"
    process = subprocess.Popen(
        [*TREEFLOW, "run"], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_files([marker])

        def recorded() -> tuple[list[Any], list[Any]] | None:
            with sqlite3.connect(db) as connection:
                groups = connection.execute("SELECT pgid, start_ticks, ended FROM processes").fetchall()
                places = connection.execute(
                    "SELECT worktree, work_branch, start_commit FROM steps"
                ).fetchall()
            return (groups, places) if groups else None

        groups, places = wait_until(recorded, "the journal to record the step's process group", timeout_s=10)
        assert len(groups) == 1
        group, start_ticks, ended = groups[0]
        assert (start_ticks, ended) == (process_start_ticks(group), 0)
        assert places[0][0] is not None
        assert places[0][1].endswith("/a")
        assert places[0][2] == git(repo, "rev-parse", "HEAD")
    finally:
        release.touch()
        assert process.wait(timeout=30) == 0
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT ended FROM processes").fetchall() == [(1,)]
    [record] = journal.read_runs(db)
    assert record.run.steps["a"].status is StepStatus.SUCCEEDED
    assert record.steps["a"].work_branch == places[0][1]


def test_resume_next_to_a_kept_worktree_fails_the_step_and_leaves_the_worktree_alone(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'git checkout -q --detach && echo w > w.txt'}\n")
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    assert first["steps"]["s"]["status"] == "failed"
    assert worktrees(repo) == 1
    resumed = treeflow(repo, "resume", first["run_id"], "--json")
    assert resumed.returncode == 1, resumed.stderr
    step = json.loads(resumed.stdout)["steps"]["s"]
    assert "its earlier worktree" in step["error"] and "is still there" in step["error"]
    assert worktrees(repo) == 1
    kept = [
        line[9:]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()[1:]
        if line.startswith("worktree ")
    ]
    assert (Path(kept[0]) / "w.txt").read_text() == "w\n"
    assert git(repo, "branch", "--list", "*.interrupted*") == ""


def test_steps_that_never_started_are_listed_pending_then_interrupted_in_workflow_order(repo: Path) -> None:
    marker = repo.parent / "started"
    (repo / "treeflow.yml").write_text(
        f"steps:\n  zed: {{run: 'echo up > {marker}; sleep 30'}}\n"
        "  alpha: {run: 'echo a > a.txt', needs: [zed]}\n"
        "  mid: {run: 'echo m > m.txt', needs: [alpha]}\n"
    )
    with killed_at_the_end(repo, "run"):
        wait_for_files([marker])
        record = journal_when(repo, lambda record: record.run.steps["zed"].status is StepStatus.RUNNING)
        assert list(record.run.steps) == ["zed", "alpha", "mid"]
        assert record.run.steps["alpha"].status is StepStatus.PENDING
        assert record.run.steps["mid"].status is StepStatus.PENDING
    listed = treeflow(repo, "runs", "--json")
    [run] = json.loads(listed.stdout)
    assert run["status"] == "interrupted"
    assert list(run["steps"]) == ["zed", "alpha", "mid"]
    assert {step["status"] for step in run["steps"].values()} == {"interrupted"}


def test_a_resumed_run_does_not_show_the_earlier_outcome_of_a_step_it_runs_again(repo: Path) -> None:
    gate = repo.parent / "gate"
    started = repo.parent / "started"
    release = repo.parent / "release"
    (repo / "treeflow.yml").write_text(
        "steps:\n"
        "  good: {run: 'echo g > g.txt'}\n"
        f"  flaky: {{run: 'test -e {gate} || exit 7; echo up > {started}; {wait_for(release)}; echo f > f.txt'}}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    assert first["steps"]["flaky"]["exit_code"] == 7
    gate.write_text("open")
    process = subprocess.Popen(
        [*TREEFLOW, "resume", first["run_id"]], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_files([started])
        record = journal_when(repo, lambda record: record.run.steps["flaky"].status is StepStatus.RUNNING)
        assert record.run.steps["good"].status is StepStatus.SUCCEEDED
        assert record.run.steps["good"].commit == first["steps"]["good"]["commit"]
        flaky = record.run.steps["flaky"]
        assert flaky.exit_code is None and flaky.error is None
    finally:
        release.touch()
        assert process.wait(timeout=30) == 0
    shown = json.loads(treeflow(repo, "show", first["run_id"], "--json").stdout)
    assert shown["steps"]["flaky"]["status"] == "succeeded"
    assert list(shown["steps"]) == ["good", "flaky"]


def test_a_second_resume_starts_from_the_work_of_a_step_that_committed_nothing(repo: Path) -> None:
    # `checked` changes nothing, so what `use` starts from is where `checked` started: the work of `make`.
    gate = repo.parent / "gate"
    (repo / "treeflow.yml").write_text(
        "steps:\n"
        "  make: {run: 'echo made > made.txt'}\n"
        "  checked: {run: 'test -e made.txt', needs: [make]}\n"
        f"  use: {{run: 'test -e {gate} || exit 7; cat made.txt > used.txt', needs: [checked]}}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    assert first["steps"]["checked"]["status"] == "succeeded"
    assert first["steps"]["checked"]["commit"] is None
    assert treeflow(repo, "resume", first["run_id"]).returncode == 1
    gate.write_text("open")
    done = treeflow(repo, "resume", first["run_id"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert git(repo, "show", f"{result['result_branch']}:used.txt").strip() == "made"


def test_a_step_killed_in_its_second_attempt_is_recorded_with_two_attempts(repo: Path) -> None:
    marker = repo.parent / "second"
    (repo / "treeflow.yml").write_text(
        "steps:\n"
        "  flaky:\n"
        f"    run: 'test $TREEFLOW_ATTEMPT = 2 || exit 1; echo up > {marker}; sleep 30'\n"
        "    retry: {attempts: 3, backoff: 10ms, jitter: 0}\n"
    )
    with killed_at_the_end(repo, "run"):
        wait_for_files([marker])
        journal_when(repo, lambda record: record.run.steps["flaky"].attempts == 2)
    # Recovery, at the start of this command, ends the step's processes.
    [run] = json.loads(treeflow(repo, "runs", "--json").stdout)
    shown = json.loads(treeflow(repo, "show", run["run_id"], "--json").stdout)
    assert shown["steps"]["flaky"]["status"] == "interrupted"
    assert shown["steps"]["flaky"]["attempts"] == 2


def test_a_step_run_again_by_resume_does_not_count_the_attempts_of_the_earlier_run(repo: Path) -> None:
    gate = repo.parent / "gate"
    marker = repo.parent / "again"
    (repo / "treeflow.yml").write_text(
        "steps:\n"
        "  flaky:\n"
        f"    run: 'test -e {gate} || exit 1; echo up > {marker}; sleep 30'\n"
        "    retry: {attempts: 2, backoff: 10ms, jitter: 0}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    assert first["steps"]["flaky"]["attempts"] == 2
    gate.write_text("open")
    with killed_at_the_end(repo, "resume", first["run_id"]):
        wait_for_files([marker])
        journal_when(repo, lambda record: record.run.steps["flaky"].status is StepStatus.RUNNING)
    shown = json.loads(treeflow(repo, "show", first["run_id"], "--json").stdout)
    assert shown["steps"]["flaky"]["status"] == "interrupted"
    assert shown["steps"]["flaky"]["attempts"] == 1


def test_resume_moves_the_run_branch_on_from_a_result_that_merged_several_steps(repo: Path) -> None:
    gate = repo.parent / "gate"
    (repo / "treeflow.yml").write_text(
        "fail_fast: false\nsteps:\n"
        "  a: {run: 'echo a > a.txt'}\n"
        "  b: {run: 'echo b > b.txt'}\n"
        f"  c: {{run: 'test -e {gate} && echo c > c.txt'}}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    branch = first["result_branch"]
    earlier = git(repo, "rev-parse", branch)
    assert git(repo, "show", f"{branch}:b.txt") == "b"
    gate.write_text("open")
    done = treeflow(repo, "resume", first["run_id"], "--json")
    assert done.returncode == 0, done.stderr
    assert "left as it was" not in done.stderr
    assert json.loads(done.stdout)["result_branch"] == branch
    assert [git(repo, "show", f"{branch}:{name}.txt") for name in "abc"] == ["a", "b", "c"]
    assert earlier in git(repo, "rev-list", branch).split()


@pytest.mark.parametrize("in_worktree", [True, False])
def test_a_kill_before_the_journal_wrote_the_step_still_leaves_nothing_behind(
    repo: Path, in_worktree: bool
) -> None:
    # Killed the moment its step starts, the CLI has most likely not written the step's row, nor
    # perhaps the run's: its lock file, the processes' environment and the worktree folder remain.
    pids = repo.parent / "pids"
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "treeflow.yml").write_text(
        f"defaults: {{worktree: {str(in_worktree).lower()}}}\nsetup: {{copy: ['.env']}}\n"
        f"steps:\n  a: {{run: 'echo work > work.txt; echo $$ > {pids}; sleep 30'}}\n"
    )
    with killed_at_the_end(repo, "run"):
        wait_for_files([pids], timeout_s=20)
    step_pid = int(pids.read_text())
    assert pid_alive(step_pid)
    [run] = json.loads(treeflow(repo, "runs", "--json").stdout)
    assert run["status"] == "interrupted"
    assert not pid_alive(step_pid)
    assert worktrees(repo) == 0
    if in_worktree:
        [branch] = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/treeflow/").split()
        assert git(repo, "show", f"{branch}:work.txt") == "work"
        assert ".env" not in git(repo, "ls-tree", "--name-only", branch).split()
    assert list((repo / ".git" / "treeflow" / "runs").glob("*.lock")) == []
    (repo / "treeflow.yml").write_text(
        f"defaults: {{worktree: {str(in_worktree).lower()}}}\nsetup: {{copy: ['.env']}}\n"
        "steps:\n  a: {run: 'echo done > work.txt'}\n"
    )
    resumed = treeflow(repo, "resume", run["run_id"], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps"]["a"]["status"] == "succeeded"


def test_recovery_never_commits_what_setup_copy_put_in_even_after_the_workflow_changed(repo: Path) -> None:
    pids = repo.parent / "pids"
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "local.txt").write_text("untracked\n")
    workflow = repo.parent / "w.yml"
    workflow.write_text(
        "setup: {copy: ['**']}\n"
        f"steps:\n  a: {{run: 'echo work > sub/work.txt; echo $$ > {pids}; sleep 30'}}\n"
    )
    with killed_at_the_end(repo, "run", str(workflow)):
        wait_for_files([pids], timeout_s=20)
    # What the copy brought is known from the worktree alone, not from the workflow file.
    workflow.write_text("steps:\n  a: {run: 'true'}\n")
    [run] = json.loads(treeflow(repo, "runs", "--json").stdout)
    assert run["status"] == "interrupted"
    assert worktrees(repo) == 0
    [branch] = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/treeflow/").split()
    assert git(repo, "ls-tree", "-r", "--name-only", branch).split() == ["README.md", "sub/work.txt"]


def test_a_step_killed_while_it_waits_to_retry_is_recorded_with_the_attempts_it_made(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        "steps:\n  flaky: {run: 'exit 1', retry: {attempts: 3, backoff: 30s, jitter: 0}}\n"
    )
    db = repo / ".git" / "treeflow" / "journal.db"
    with killed_at_the_end(repo, "run"):
        wait_until(
            lambda: db.exists() and journal.read_runs(db) and _attempt_rows(db),
            "the journal to record the first attempt",
        )
        assert journal.read_runs(db)[0].run.steps["flaky"].attempts == 1
    [run] = json.loads(treeflow(repo, "runs", "--json").stdout)
    shown = json.loads(treeflow(repo, "show", run["run_id"], "--json").stdout)
    assert (shown["steps"]["flaky"]["status"], shown["steps"]["flaky"]["attempts"]) == ("interrupted", 1)


def _attempt_rows(db: Path) -> list[Any]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT attempt FROM attempts").fetchall()


def test_recovery_leaves_alone_a_worktree_its_step_moved_to_another_branch(repo: Path) -> None:
    git(repo, "branch", "develop")
    develop = git(repo, "rev-parse", "develop")
    started = repo.parent / "started"
    (repo / "treeflow.yml").write_text(
        "fail_fast: false\nsteps:\n"
        "  a: {run: 'git switch -q develop && echo a > a.txt'}\n"
        f"  b: {{run: 'echo up > {started}; sleep 30', needs: []}}\n"
    )
    with killed_at_the_end(repo, "run"):
        wait_for_files([started])
        journal_when(repo, lambda record: record.run.steps["a"].status is StepStatus.FAILED)
    treeflow(repo, "runs")
    assert git(repo, "rev-parse", "develop") == develop
    [kept] = [line for line in git(repo, "worktree", "list").splitlines() if "[develop]" in line]
    assert (Path(kept.split()[0]) / "a.txt").read_text() == "a\n"


def test_a_dry_run_of_clean_does_not_make_the_next_start_recover_an_ended_run(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'git switch -q -c mine && echo a > a.txt'}\n")
    run = json.loads(treeflow(repo, "run", "--json").stdout)
    assert run["status"] == "failed"
    assert worktrees(repo) == 1
    assert treeflow(repo, "clean", "--dry-run").returncode == 0
    after = treeflow(repo, "runs")
    assert "recovering" not in after.stderr
    assert worktrees(repo) == 1
    assert git(repo, "rev-parse", "mine") == git(repo, "rev-parse", "HEAD")


def test_resume_leaves_a_run_branch_that_is_checked_out_where_it_is(repo: Path, tmp_path: Path) -> None:
    gate = repo.parent / "gate"
    (repo / "treeflow.yml").write_text(
        "fail_fast: false\nsteps:\n"
        "  a: {run: 'echo a > a.txt'}\n"
        f"  b: {{run: 'test -e {gate} && echo b > b.txt'}}\n"
    )
    first = json.loads(treeflow(repo, "run", "--json").stdout)
    branch = first["result_branch"]
    review = tmp_path / "review"
    git(repo, "worktree", "add", "-q", str(review), branch)
    tip = git(repo, "rev-parse", branch)
    gate.write_text("open")
    done = treeflow(repo, "resume", first["run_id"])
    assert done.returncode == 0, done.stderr
    assert f"{branch} is checked out in a worktree; it is left as it was" in done.stderr + done.stdout
    assert git(repo, "rev-parse", branch) == tip
    assert git(review, "status", "--porcelain") == ""


def slow_checkout(repo: Path, started: Path, fast: Path) -> None:
    """A file whose checkout goes through a smudge filter that waits (until ``fast`` exists), so
    that treeflow's own git is still filling a worktree when treeflow is killed."""
    (repo / "slow.txt").write_text("slow\n")
    (repo / ".gitattributes").write_text("slow.txt filter=slow\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a slow file")
    git(repo, "config", "filter.slow.smudge", f"touch {started}; test -e {fast} || sleep 30; cat")


def test_recovery_ends_the_git_treeflow_left_filling_a_worktree(repo: Path, worktree_root: Path) -> None:
    started, fast = repo.parent / "filling", repo.parent / "fast"
    slow_checkout(repo, started, fast)
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'echo s > s.txt'}\n")
    with killed_at_the_end(repo, "run"):
        wait_until(started.exists, "treeflow's git to start filling the worktree")
    listed = treeflow(repo, "runs", "--json")
    [run] = json.loads(listed.stdout)
    assert run["status"] == "interrupted", listed.stderr
    # Recovery waits for what it ends: nothing may still be writing in the worktree area.
    assert processes_inside(worktree_root) == []
    assert worktrees(repo) == 0
    # Recovery gives the worktree it was filling back to the pool, clean; nothing else is left.
    left = [path for path in worktree_root.rglob("*") if "pool" not in path.relative_to(worktree_root).parts]
    assert [path for path in left if path.is_file()] == []
    fast.touch()
    resumed = treeflow(repo, "resume", run["run_id"], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert git(repo, "show", f"{json.loads(resumed.stdout)['result_branch']}:s.txt") == "s"


def test_a_kill_during_the_base_snapshot_leaves_no_index_copy_behind(repo: Path) -> None:
    started = repo.parent / "snapshotting"
    (repo / ".gitattributes").write_text("*.md filter=slow\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    git(repo, "config", "filter.slow.clean", f"touch {started}; sleep 30; cat")
    (repo / "README.md").write_text("changed, so the snapshot must read it\n")
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'true'}\n")
    state = repo / ".git" / "treeflow"
    with killed_at_the_end(repo, "run"):
        wait_until(started.exists, "the snapshot to read the changed file")
        assert list(state.glob("snapshot-*")) != []
    done = treeflow(repo, "runs")
    assert done.returncode == 0, done.stderr
    assert list(state.glob("snapshot-*")) == []
    assert processes_inside(repo) == []


def test_only_the_index_copies_of_dead_processes_are_removed(repo: Path) -> None:
    state = repo / ".git" / "treeflow"
    state.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["sleep", "60"]) as live:
        try:
            ticks = process_start_ticks(live.pid)
            kept = state / f"snapshot-{live.pid}-{ticks}-0123abcd.index"
            reused = state / f"snapshot-{live.pid}-{ticks - 1}-0123abcd.index"
            dead = state / "snapshot-999999999-1-0123abcd.index"
            older_form = state / "snapshot-999999999-0123abcd.index"
            lock = state / "snapshot-999999999-1-0123abcd.index.lock"
            for path in (kept, reused, dead, older_form, lock):
                path.write_bytes(b"DIRC")
            done = treeflow(repo, "runs")
            assert done.returncode == 0, done.stderr
            assert sorted(state.glob("snapshot-*")) == [kept]
        finally:
            live.kill()
