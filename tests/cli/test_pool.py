"""The warm worktree pool and `setup.when_changed`, through the real CLI and language server: reuse
across runs and front ends, junk a step leaves, a step that deletes its worktree, kill -9 while a
worktree is in use or moving, clean, and steps of concurrent runs that never share a worktree."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git
from tests.helpers import processes_inside, wait_until, worktrees_left

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

pytestmark = pytest.mark.slow


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=120)


def run_json(repo: Path, *args: str) -> dict[str, Any]:
    done = treeflow(repo, "run", "--json", *args)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@contextmanager
def killed_at_the_end(repo: Path, *args: str) -> Iterator[None]:
    process = subprocess.Popen(
        [*TREEFLOW, *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


def pooled(repo: Path) -> dict[str, dict[str, Any]]:
    """Each pooled worktree's path with its claim note."""
    claims = repo / ".git" / "treeflow" / "pool"
    found = {}
    for claim in sorted(claims.glob("*.lock")) if claims.is_dir() else []:
        note = json.loads(claim.read_text())
        found[claim.stem] = note
    return found


def pooled_paths(repo: Path) -> list[str]:
    listing = git(repo, "worktree", "list", "--porcelain")
    return [
        line.removeprefix("worktree ")
        for line in listing.splitlines()
        if line.startswith("worktree ") and Path(line[9:]).parent.name == "pool"
    ]


def ignore(repo: Path, *patterns: str) -> None:
    (repo / ".gitignore").write_text("".join(f"{pattern}\n" for pattern in patterns))
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore")


def test_a_second_run_takes_the_pooled_worktree_with_its_kept_folders(repo: Path, tmp_path: Path) -> None:
    ignore(repo, "node_modules/", "build/")
    where = tmp_path / "where"
    where.mkdir()
    (repo / "treeflow.yml").write_text(
        "pool: {keep: [node_modules]}\n"
        "steps:\n"
        f"  s: {{run: 'pwd > {where}/$TREEFLOW_RUN_ID; ls node_modules build > {where}/$TREEFLOW_RUN_ID.seen 2>&1 || true;"
        " mkdir -p node_modules build; touch node_modules/dep build/out.o; echo $TREEFLOW_RUN_ID > work.txt'}\n"
    )
    first = run_json(repo)
    second = run_json(repo)
    assert first["status"] == second["status"] == "succeeded"
    path = (where / first["run_id"]).read_text().strip()
    assert (where / second["run_id"]).read_text().strip() == path
    assert Path(path).parent.name == "pool"
    seen = (where / f"{second['run_id']}.seen").read_text()
    assert "dep" in seen  # the kept folder survived
    assert "build" in seen and "No such file" in seen  # the other ignored folder did not
    # Each run's work is on its own branch; the worktree holds nothing of it any more.
    assert git(repo, "show", f"treeflow/{second['run_id']}/s:work.txt") == second["run_id"]
    listing = git(repo, "worktree", "list", "--porcelain")
    assert "detached" in listing
    assert "locked treeflow: a pooled worktree" in listing
    assert worktrees_left(repo) == []  # detached at the last step's work, clean


def test_changes_made_in_an_idle_pooled_worktree_are_saved_on_a_branch_not_reset(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        "steps:\n  s: {run: 'test ! -e stray.txt && grep -qx hello README.md'}\n"
    )
    assert run_json(repo)["status"] == "succeeded"
    [path] = pooled_paths(repo)
    (Path(path) / "README.md").write_text("edited in the pool\n")
    (Path(path) / "stray.txt").write_text("somebody's\n")
    second = run_json(repo)
    assert second["status"] == "succeeded", second
    [warning] = [w for w in second["warnings"] if "pool-saved" in w]
    branch = warning.rsplit("saved on ", 1)[1].split()[0].rstrip(";")
    assert git(repo, "show", f"{branch}:stray.txt") == "somebody's"
    assert git(repo, "show", f"{branch}:README.md") == "edited in the pool"
    assert worktrees_left(repo) == []


def test_a_step_that_deletes_its_worktree_fails_and_the_pool_lets_it_go(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'cd / && rm -rf \"$TREEFLOW_WORKTREE\"'}\n")
    result = run_json(repo)
    assert result["steps"]["s"]["status"] == "failed"
    assert "its work was not saved" in result["steps"]["s"]["error"]
    assert pooled_paths(repo) == []
    assert pooled(repo) == {}
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'echo again > again.txt'}\n")
    assert run_json(repo)["status"] == "succeeded"
    assert worktrees_left(repo) == []


def test_a_step_that_leaves_its_branch_keeps_the_worktree_out_of_the_pool(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'git checkout -q --detach && echo w > w.txt'}\n")
    first = run_json(repo)
    assert first["steps"]["s"]["status"] == "failed"
    [kept] = worktrees_left(repo)
    assert (Path(kept) / "w.txt").read_text() == "w\n"
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'test ! -e w.txt'}\n")
    second = run_json(repo)
    assert second["status"] == "succeeded"
    assert worktrees_left(repo) == [kept]  # never handed to the second run
    cleaned = treeflow(repo, "clean")
    assert cleaned.returncode == 1, cleaned.stdout
    assert f"kept pooled worktree {kept}" in cleaned.stdout
    assert (Path(kept) / "w.txt").exists()


def test_kill_9_while_a_step_works_in_a_pooled_worktree_saves_its_work_and_gives_it_back(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'echo quick > quick.txt'}\n")
    assert run_json(repo)["status"] == "succeeded"
    [path] = pooled_paths(repo)
    mark = tmp_path / "wrote"
    (repo / "treeflow.yml").write_text(
        f"steps:\n  s: {{run: 'echo half > half.txt && touch {mark} && sleep 30'}}\n"
    )
    with killed_at_the_end(repo, "run"):
        wait_until(mark.exists, "the step to write its file")
    listed = treeflow(repo, "runs", "--json")
    run = json.loads(listed.stdout)[0]
    assert run["status"] == "interrupted", listed.stderr
    assert git(repo, "show", f"treeflow/{run['run_id']}/s:half.txt") == "half"
    assert processes_inside(Path(path)) == []
    assert pooled_paths(repo) == [path]
    assert worktrees_left(repo) == []


def test_kill_9_while_a_pooled_worktree_moves_leaves_it_clean_and_saves_nothing_twice(
    repo: Path, tmp_path: Path
) -> None:
    started, fast = tmp_path / "filling", tmp_path / "fast"
    fast.touch()
    (repo / ".gitattributes").write_text("slow.txt filter=slow\n")
    (repo / "slow.txt").write_text("one\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a slow file")
    git(repo, "config", "filter.slow.smudge", f"touch {started}; test -e {fast} || sleep 30; cat")
    (repo / "treeflow.yml").write_text("base: head\nsteps:\n  s: {run: 'cat slow.txt > seen.txt'}\n")
    assert run_json(repo)["status"] == "succeeded"
    [path] = pooled_paths(repo)
    (repo / "slow.txt").write_text("two\n")
    git(repo, "commit", "-q", "-am", "the slow file changes, so that the move rewrites it")
    fast.unlink()
    started.unlink(missing_ok=True)
    with killed_at_the_end(repo, "run"):
        wait_until(started.exists, "treeflow's git to start moving the pooled worktree")
    listed = treeflow(repo, "runs", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "interrupted", listed.stderr
    assert processes_inside(Path(path)) == []
    assert worktrees_left(repo) == []
    assert git(repo, "branch", "--list", "treeflow/pool-saved/*") == ""
    fast.touch()
    again = run_json(repo)
    assert again["status"] == "succeeded"
    assert git(repo, "show", f"treeflow/{again['run_id']}/s:seen.txt") == "two"
    assert pooled_paths(repo) == [path]


def test_clean_empties_the_pool(repo: Path, worktree_root: Path) -> None:
    (repo / "treeflow.yml").write_text("max_parallel: 3\nsteps:\n  a: {run: 'true'}\n  b: {run: 'true'}\n")
    assert run_json(repo)["status"] == "succeeded"
    assert len(pooled_paths(repo)) == 2
    dry = treeflow(repo, "clean", "--dry-run")
    assert dry.stdout.count("would remove pooled worktree") == 2
    assert len(pooled_paths(repo)) == 2
    cleaned = treeflow(repo, "clean")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert cleaned.stdout.count("removed pooled worktree") == 2
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert pooled(repo) == {}
    assert not worktree_root.exists() or [p for p in worktree_root.rglob("*") if p.is_file()] == []


def test_the_pool_holds_no_more_than_its_size(repo: Path) -> None:
    steps = "".join(f"  s{i}: {{run: 'sleep 0.3'}}\n" for i in range(4))
    (repo / "treeflow.yml").write_text(f"max_parallel: 4\npool: {{size: 2}}\nsteps:\n{steps}")
    assert run_json(repo)["status"] == "succeeded"
    assert len(pooled_paths(repo)) == 2
    assert worktrees_left(repo) == []
    (repo / "treeflow.yml").write_text(f"pool: false\nsteps:\n{steps}")
    without = run_json(repo)
    assert without["status"] == "succeeded", without
    assert len(pooled_paths(repo)) == 2  # a run without the pool leaves it alone


def test_steps_of_concurrent_runs_never_share_a_worktree(repo: Path) -> None:
    # noclobber: a second step in the same worktree at the same time cannot create the flag.
    steps = "".join(
        f"  s{i}: {{run: 'set -C; echo $TREEFLOW_RUN_ID > busy.flag && sleep 0.4 && rm busy.flag'}}\n"
        for i in range(3)
    )
    (repo / "treeflow.yml").write_text(f"max_parallel: 3\nsteps:\n{steps}")
    assert run_json(repo)["status"] == "succeeded"  # fills the pool
    runs = [
        subprocess.Popen(
            [*TREEFLOW, "run", "--json"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [json.loads(process.communicate(timeout=120)[0]) for process in runs]
    assert [result["status"] for result in results] == ["succeeded"] * 3, results
    assert worktrees_left(repo) == []


SETUP_WORKFLOW = """\
max_parallel: 2
pool: {{keep: [deps]}}
setup: {{run: "echo ran >> {count} && mkdir -p deps && cp lock.txt deps/", when_changed: [lock.txt]}}
steps:
  a: {{run: "cmp lock.txt deps/lock.txt"}}
  b: {{run: "cmp lock.txt deps/lock.txt", needs: [a]}}
"""


def test_setup_runs_again_only_when_the_lockfile_changed(repo: Path, tmp_path: Path) -> None:
    ignore(repo, "deps/")
    count = tmp_path / "count"
    (repo / "lock.txt").write_text("v1\n")
    git(repo, "add", "lock.txt")
    (repo / "treeflow.yml").write_text(SETUP_WORKFLOW.format(count=count))
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 1  # b took the worktree a gave back
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 1
    (repo / "lock.txt").write_text("v2\n")  # the working tree is the run's base
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 2
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 2


def test_setup_runs_again_when_what_it_made_is_gone(repo: Path, tmp_path: Path) -> None:
    count = tmp_path / "count"
    (repo / "lock.txt").write_text("v1\n")
    git(repo, "add", "lock.txt")
    # `deps` is neither ignored-and-kept nor committed: the pool does not keep it.
    (repo / "treeflow.yml").write_text(
        SETUP_WORKFLOW.format(count=count).replace("pool: {keep: [deps]}", "pool: {keep: [other]}")
    )
    ignore(repo, "deps/")
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 2


def test_steps_starting_together_each_take_a_pooled_worktree(repo: Path, tmp_path: Path) -> None:
    ignore(repo, "deps/")
    count = tmp_path / "count"
    (repo / "lock.txt").write_text("v1\n")
    git(repo, "add", "lock.txt")
    steps = "".join(f"  s{i}: {{run: 'cmp lock.txt deps/lock.txt'}}\n" for i in range(4))
    (repo / "treeflow.yml").write_text(
        "max_parallel: 4\npool: {keep: [deps]}\n"
        f'setup: {{run: "echo ran >> {count} && mkdir -p deps && cp lock.txt deps/", when_changed: [lock.txt]}}\n'
        f"steps:\n{steps}"
    )
    assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 4
    for _ in range(2):
        assert run_json(repo)["status"] == "succeeded"
    assert count.read_text().count("ran") == 4
