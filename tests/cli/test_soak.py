"""kill -9 at random moments of a run's life, on a repository of a few thousand files: after each
kill, recovery, then resume and clean, no step's work is lost and nothing is left behind.

TREEFLOW_SOAK_KILLS sets the number of kills (3 by default), TREEFLOW_SOAK_SEED replays a failure:
each failure names the seed it ran with.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.helpers import processes_inside, worktrees_left

pytestmark = pytest.mark.slow

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]
FILES = 3000
# Long enough to cover a run's whole life here (snapshot, four worktrees filled and removed, the
# steps, the result branch), so that kills land anywhere in it and sometimes after its end.
LIFE_S = 2.0

# Each step writes its file, then leaves a mark outside the repository: a step with a mark wrote its
# file, so the file must be on its branch once the run is recovered.
WORKFLOW = """\
max_parallel: 2
steps:
  a: {{run: "echo a > out/a.txt && touch {marks}/a; sleep 0.2"}}
  b: {{run: "echo b > out/b.txt && touch {marks}/b; sleep 0.4"}}
  c: {{run: "cat out/a.txt > out/c.txt && echo c >> out/c.txt && touch {marks}/c", needs: [a]}}
  d: {{run: "cat out/b.txt out/c.txt > out/d.txt && touch {marks}/d", needs: [b, c]}}
"""


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=120)


def big_repository(repo: Path) -> None:
    for folder in range(FILES // 100):
        (repo / f"src{folder}").mkdir()
        for number in range(100):
            (repo / f"src{folder}" / f"f{number}.txt").write_text(f"{folder} {number}\n")
    (repo / "out").mkdir()
    (repo / "out" / ".keep").write_text("")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a few thousand files")
    # Uncommitted, so that every run snapshots the working tree through an index copy.
    (repo / "README.md").write_text("changed in the checkout\n")


def newest_run(repo: Path) -> dict[str, Any] | None:
    listed = treeflow(repo, "runs", "--json", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)
    return runs[0] if runs else None


def assert_nothing_left_running(repo: Path, worktree_root: Path, run_id: str | None) -> None:
    running = processes_inside(worktree_root, run_id) + processes_inside(repo)
    assert running == [], running


def assert_marked_work_saved(repo: Path, marks: Path, run: dict[str, Any]) -> None:
    for mark in marks.iterdir():
        branch = f"treeflow/{run['run_id']}/{mark.name}"
        assert git(repo, "cat-file", "-t", f"{branch}:out/{mark.name}.txt") == "blob", (mark.name, run)


def assert_journal_intact(repo: Path, run_id: str) -> dict[str, Any]:
    shown = treeflow(repo, "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    run: dict[str, Any] = json.loads(shown.stdout)
    if run["status"] != "running":
        assert "running" not in {step["status"] for step in run["steps"].values()}, run
    with sqlite3.connect(repo / ".git" / "treeflow" / "journal.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return run


def test_kill_9_anywhere_in_a_run_loses_nothing_and_leaks_nothing(repo: Path, worktree_root: Path) -> None:
    seed = int(os.environ.get("TREEFLOW_SOAK_SEED") or random.SystemRandom().randrange(2**32))
    kills = int(os.environ.get("TREEFLOW_SOAK_KILLS") or 3)
    print(f"TREEFLOW_SOAK_SEED={seed} TREEFLOW_SOAK_KILLS={kills}")
    try:
        soak(repo, worktree_root, random.Random(seed), kills)
    except AssertionError as failure:
        raise AssertionError(
            f"{failure}\nreplay with TREEFLOW_SOAK_SEED={seed} TREEFLOW_SOAK_KILLS={kills}"
        ) from None


def soak(repo: Path, worktree_root: Path, chance: random.Random, kills: int) -> None:
    big_repository(repo)
    marks = repo.parent / "marks"
    marks.mkdir()
    (repo / "treeflow.yml").write_text(WORKFLOW.format(marks=marks))
    state = repo / ".git" / "treeflow"
    run: dict[str, Any] | None = None
    for kill in range(kills):
        for mark in marks.iterdir():
            mark.unlink()
        command = ["resume", run["run_id"]] if run and run["status"] != "succeeded" else ["run"]
        moment = chance.uniform(0, LIFE_S)
        print(f"kill {kill + 1}: treeflow {' '.join(command)}, killed after {moment * 1000:.0f} ms")
        process = subprocess.Popen(
            [*TREEFLOW, *command], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        # The kill point itself, not a wait for a condition: the moment is what is being tried.
        time.sleep(moment)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        # The next command recovers whatever the killed one left.
        latest = newest_run(repo)
        run = latest or run
        assert_nothing_left_running(repo, worktree_root, run["run_id"] if run else None)
        if run is not None:
            run = assert_journal_intact(repo, run["run_id"])
            assert run["status"] in ("interrupted", "succeeded"), run
            assert_marked_work_saved(repo, marks, run)
        # Pooled worktrees are treeflow's by design: none left outside the pool, none unclean in it.
        assert worktrees_left(repo) == []
        assert sorted(path.name for path in state.glob("snapshot-*")) == []

    if run is None or run["status"] != "succeeded":
        command = ["resume", run["run_id"]] if run else ["run"]
        finished = treeflow(repo, *command, "--json")
        assert finished.returncode == 0, finished.stdout + finished.stderr
        run = assert_journal_intact(repo, json.loads(finished.stdout)["run_id"])
    assert run["status"] == "succeeded", run
    result = run["result_branch"]
    assert git(repo, "show", f"{result}:out/d.txt").split() == ["b", "a", "c"]

    cleaned = treeflow(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert_nothing_left_running(repo, worktree_root, run["run_id"])
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1  # clean empties the pool
    assert not worktree_root.exists() or list(worktree_root.rglob("*")) == []
    assert list(state.glob("snapshot-*")) == []
    assert git(repo, "show", f"{result}:out/d.txt").split() == ["b", "a", "c"]
