"""`treeflow clean`: leftovers go, and work found on no other branch always stays."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import anyio

from tests.conftest import git
from treeflow.core.git import open_repository, try_lock_file, unlock_file
from treeflow.core.locations import worktree_root as treeflow_worktree_root

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def treeflow_branches(repo: Path) -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/treeflow/")
    return set(out.splitlines())


def step_worktree_path(repo: Path, run_id: str, step: str) -> Path:
    """Where treeflow puts the worktree of ``step`` (under $TREEFLOW_WORKTREE_ROOT in these tests)."""
    return treeflow_worktree_root(anyio.run(open_repository, repo)) / run_id / step


def leftover_worktree(repo: Path, run_id: str, step: str) -> Path:
    """A worktree as a crashed run leaves it: registered, on its branch, with uncommitted work."""
    path = step_worktree_path(repo, run_id, step)
    path.parent.mkdir(parents=True)
    git(repo, "worktree", "add", "-q", "-b", f"treeflow/{run_id}/{step}", str(path), "HEAD")
    (path / "unsaved.txt").write_text("work in progress\n")
    return path


def test_clean_saves_and_removes_leftover_worktrees(repo: Path, worktree_root: Path) -> None:
    path = leftover_worktree(repo, "20260101-000000-dead", "build")
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    assert f"remove worktree {path}" in done.stdout
    assert "committed to treeflow/20260101-000000-dead/build" in done.stdout
    assert not path.exists()
    assert git(repo, "show", "treeflow/20260101-000000-dead/build:unsaved.txt") == "work in progress"
    assert "kept branch treeflow/20260101-000000-dead/build" in done.stdout
    assert len(git(repo, "worktree", "list", "--porcelain").split("\n\n")) == 1


def test_clean_keeps_unmerged_work_and_deletes_the_rest(repo: Path) -> None:
    run = treeflow(repo, "run", "--json")
    assert run.returncode == 2  # no workflow yet: nothing ran
    (repo / "treeflow.yml").write_text(
        "steps:\n  a: {run: 'echo a > a.txt'}\n  b: {run: 'echo b > b.txt', needs: [a]}\n  idle: {run: 'true'}\n"
    )
    assert treeflow(repo, "run").returncode == 0
    branches = treeflow_branches(repo)
    run_branch = next(b for b in branches if b.startswith("treeflow/runs/"))
    run_id = run_branch.removeprefix("treeflow/runs/")
    assert branches == {run_branch, f"treeflow/{run_id}/a", f"treeflow/{run_id}/b"}
    git(repo, "branch", f"treeflow/{run_id}/merged", "main")

    dry = treeflow(repo, "clean", "--dry-run")
    assert dry.returncode == 0
    assert f"would delete branch treeflow/{run_id}/a" in dry.stdout
    assert treeflow_branches(repo) == {*branches, f"treeflow/{run_id}/merged"}

    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    # Step branches are contained in the run branch; the run branch holds work nowhere else.
    assert treeflow_branches(repo) == {run_branch}
    assert f"delete branch treeflow/{run_id}/merged: its commits are all in main" in done.stdout
    assert f"kept branch {run_branch}" in done.stdout

    git(repo, "merge", "-q", "--no-edit", run_branch)
    again = treeflow(repo, "clean")
    assert f"delete branch {run_branch}: its commits are all in main" in again.stdout
    assert treeflow_branches(repo) == set()


def test_clean_prunes_worktrees_whose_folder_vanished(repo: Path, worktree_root: Path) -> None:
    path = leftover_worktree(repo, "20260101-000000-gone", "s")
    shutil.rmtree(path)
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    assert "prune worktree record" in done.stdout
    assert str(path) not in git(repo, "worktree", "list")


def test_clean_leaves_a_live_run_alone(repo: Path, worktree_root: Path) -> None:
    run_id = "20260101-000000-live"
    path = leftover_worktree(repo, run_id, "s")
    lock = try_lock_file(repo / ".git" / "treeflow" / "runs" / f"{run_id}.lock")
    assert lock is not None
    try:
        done = subprocess.run([*TREEFLOW, "clean"], cwd=repo, capture_output=True, text=True, timeout=60)
    finally:
        unlock_file(lock)
    assert done.returncode == 0, done.stderr
    assert f"kept worktree {path}" in done.stdout
    assert path.exists()
    assert f"treeflow/{run_id}/s" in treeflow_branches(repo)


def test_a_worktree_clean_cannot_remove_is_reported_and_the_rest_goes_on(
    repo: Path, worktree_root: Path
) -> None:
    stuck = leftover_worktree(repo, "20260101-000000-aaaa", "stuck")
    git(repo, "worktree", "lock", str(stuck))
    other = leftover_worktree(repo, "20260101-000000-bbbb", "other")
    done = treeflow(repo, "clean")
    assert done.returncode == 1
    assert f"kept worktree {stuck}: could not remove it" in done.stdout
    assert f"remove worktree {other}" in done.stdout
    assert stuck.exists()
    assert not other.exists()


def test_a_worktree_of_the_user_on_a_treeflow_branch_is_never_touched(repo: Path, tmp_path: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    assert treeflow(repo, "run").returncode == 0
    run_branch = next(b for b in treeflow_branches(repo) if b.startswith("treeflow/runs/"))
    review = tmp_path / "review"
    git(repo, "worktree", "add", "-q", str(review), run_branch)
    (review / "mine.txt").write_text("the user's own work\n")
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    assert (review / "mine.txt").read_text() == "the user's own work\n"
    assert git(review, "status", "--porcelain") == "?? mine.txt"
    assert run_branch in treeflow_branches(repo)


def test_the_branch_checked_out_in_the_main_checkout_is_kept(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    assert treeflow(repo, "run").returncode == 0
    step_branch = next(b for b in treeflow_branches(repo) if not b.startswith("treeflow/runs/"))
    git(repo, "checkout", "-q", step_branch)
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    assert step_branch in treeflow_branches(repo)
    assert git(repo, "symbolic-ref", "--short", "HEAD") == step_branch


def test_the_stash_does_not_count_as_a_branch_that_keeps_work(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "-qm", "workflow")
    assert treeflow(repo, "run").returncode == 0
    run_branch = next(b for b in treeflow_branches(repo) if b.startswith("treeflow/runs/"))
    git(repo, "checkout", "-q", run_branch)
    (repo / "a.txt").write_text("edited on top of the run\n")
    git(repo, "stash", "-q")
    git(repo, "checkout", "-q", "main")
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stderr
    assert run_branch in treeflow_branches(repo), done.stdout


def test_a_dry_run_gives_the_reasons_the_real_clean_gives(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    assert treeflow(repo, "run").returncode == 0
    dry = treeflow(repo, "clean", "--dry-run")
    real = treeflow(repo, "clean")
    assert dry.returncode == real.returncode == 0, dry.stderr + real.stderr
    kept = [line for line in real.stdout.splitlines() if line.startswith("kept branch treeflow/runs/")]
    assert kept and kept[0].endswith("1 commit(s) found on no other branch")
    assert kept[0] in dry.stdout.splitlines()


def test_a_worktree_whose_creation_was_cut_short_is_removed_without_a_commit(
    repo: Path, worktree_root: Path
) -> None:
    # Registered with --no-checkout and still locked, as git leaves it when stopped half-way:
    # committing it would record every file as deleted.
    path = step_worktree_path(repo, "20260101-000000-dead", "a")
    path.parent.mkdir(parents=True)
    git(
        repo,
        "worktree",
        "add",
        "-q",
        "--no-checkout",
        "-b",
        "treeflow/20260101-000000-dead/a",
        str(path),
        "HEAD",
    )
    git(repo, "worktree", "lock", "--reason", "initializing", str(path))
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not path.exists()
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert treeflow_branches(repo) == set()


def folder_git_does_not_know(repo: Path, run_id: str, step: str, files: dict[str, str]) -> Path:
    """A folder where a step's worktree was, as an orphaned checkout leaves it once git has
    forgotten the worktree: some of the files of the step's start, and no `.git` file."""
    path = step_worktree_path(repo, run_id, step)
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_clean_removes_a_folder_in_its_area_that_holds_only_files_git_has(
    repo: Path, worktree_root: Path
) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    assert treeflow(repo, "run").returncode == 0
    run_id = next(b for b in treeflow_branches(repo) if b.startswith("treeflow/runs/")).split("/")[-1]
    # Half a checkout of what the step started from, and of a step that committed nothing.
    partial = folder_git_does_not_know(repo, run_id, "a", {"README.md": "hello\n"})
    idle = folder_git_does_not_know(repo, run_id, "idle", {"README.md": "hello\n"})
    dry = treeflow(repo, "clean", "--dry-run")
    assert f"would remove folder {partial}" in dry.stdout, dry.stdout
    assert partial.exists()
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"remove folder {partial}: git no longer knows it as a worktree" in done.stdout
    assert not partial.exists() and not idle.exists()
    assert not worktree_root.exists() or list(worktree_root.rglob("*")) == []


def test_clean_keeps_a_folder_git_does_not_know_that_holds_work_found_nowhere_else(
    repo: Path, worktree_root: Path
) -> None:
    run_id = "20260101-000000-lost"
    folder = folder_git_does_not_know(
        repo, run_id, "s", {"README.md": "changed by the step\n", "new.txt": "new\n"}
    )
    done = treeflow(repo, "clean")
    assert done.returncode == 1
    assert f"kept folder {folder}" in done.stdout
    assert "new.txt" in done.stdout and "README.md" in done.stdout
    assert (folder / "new.txt").read_text() == "new\n"


def test_clean_leaves_alone_a_folder_of_a_live_run_and_anything_outside_its_area(
    repo: Path, worktree_root: Path, tmp_path: Path
) -> None:
    run_id = "20260101-000000-live"
    folder = folder_git_does_not_know(repo, run_id, "s", {"README.md": "hello\n"})
    stray = worktree_root.parent / "mine"
    stray.mkdir()
    (stray / "README.md").write_text("hello\n")
    lock = try_lock_file(repo / ".git" / "treeflow" / "runs" / f"{run_id}.lock")
    assert lock is not None
    try:
        done = treeflow(repo, "clean")
    finally:
        unlock_file(lock)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "README.md").exists()
    assert (stray / "README.md").exists()


USER_BRANCHES = ["treeflow/runs", "treeflow/mine", "treeflow/feature/x", "treeflow/runs-old"]


def test_clean_never_touches_a_branch_that_is_not_in_treeflows_form(repo: Path) -> None:
    for branch in USER_BRANCHES:
        git(repo, "branch", branch)
    done = treeflow(repo, "clean")
    assert done.returncode == 0, done.stdout + done.stderr
    assert treeflow_branches(repo) == set(USER_BRANCHES)
    assert "treeflow/runs" not in done.stdout and "treeflow/mine" not in done.stdout


def test_a_run_refuses_to_start_when_a_branch_of_the_user_is_in_the_way_of_its_own(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'echo a > a.txt'}\n")
    git(repo, "branch", "treeflow/runs")
    done = treeflow(repo, "run", "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "treeflow/runs" in done.stderr and "git branch -m treeflow/runs" in done.stderr
    assert done.stdout == ""
    assert treeflow_branches(repo) == {"treeflow/runs"}
    assert list((repo / ".git" / "treeflow" / "runs").glob("*.lock")) == []
    assert json.loads(treeflow(repo, "runs", "--json").stdout) == []
