"""`treeflow resume` on what the user did since the run: commits on step branches, a changed checkout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.conftest import git
from treeflow.core import journal

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def run_json(repo: Path, *args: str) -> dict[str, Any]:
    done = treeflow(repo, *args, "--json")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def commit_file(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "--quiet", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


def recorded_base(repo: Path, run_id: str) -> str | None:
    record = journal.read_run(repo / ".git" / "treeflow" / "journal.db", run_id)
    assert record is not None
    return record.run.base_commit


def test_resume_after_a_join_conflict_starts_from_the_resolution_committed_on_a_step_branch(
    repo: Path,
) -> None:
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            """\
            steps:
              a: {run: "echo a > shared.txt"}
              b: {run: "echo b > shared.txt"}
              join: {run: "cat shared.txt > joined.txt", needs: [a, b]}
            """
        )
    )
    first = run_json(repo, "run")
    assert first["steps"]["join"]["status"] == "failed"
    assert "conflicts in shared.txt" in first["steps"]["join"]["error"]
    run_id = first["run_id"]
    left = first["steps"]["b"]["commit"]
    # The user resolves the conflict on b's branch, in a worktree of their own.
    resolution = repo.parent / "resolve"
    git(repo, "worktree", "add", "--quiet", str(resolution), f"treeflow/{run_id}/b")
    subprocess.run(["git", "merge", "--quiet", f"treeflow/{run_id}/a"], cwd=resolution, capture_output=True)
    (resolution / "shared.txt").write_text("a and b\n")
    git(resolution, "commit", "--quiet", "-am", "resolve a and b")
    resolved = git(resolution, "rev-parse", "HEAD")
    git(repo, "worktree", "remove", str(resolution))

    done = treeflow(repo, "resume", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        f"[b] warning: its branch treeflow/{run_id}/b has moved from {left[:10]} to {resolved[:10]}"
        in done.stdout
    )
    result = json.loads(treeflow(repo, "show", run_id, "--json").stdout)
    assert result["status"] == "succeeded"
    assert git(repo, "show", f"{result['result_branch']}:joined.txt") == "a and b"


FIXED_LATER = """\
fail_fast: false
steps:
  a: {run: "echo a > a.txt"}
  b: {run: "test -e fix.txt && cat fix.txt a.txt > b.txt", needs: [a]}
"""


def test_resume_says_the_run_keeps_its_base_when_the_checkout_moved_on(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(FIXED_LATER)
    first = run_json(repo, "run")
    assert first["steps"]["b"]["status"] == "failed"
    base = first["base_commit"]
    head = commit_file(repo, "fix.txt", "fixed\n")
    done = treeflow(repo, "resume", first["run_id"])
    assert done.returncode == 1
    assert (
        f"warning: the run keeps its base {base[:10]}, so what changed in your checkout since "
        f"({head[:10]}) is not seen; `treeflow resume {first['run_id']} --rebase`"
    ) in done.stdout
    assert recorded_base(repo, first["run_id"]) == base


def test_resume_with_rebase_takes_the_checkout_and_keeps_the_work_that_succeeded(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(FIXED_LATER)
    first = run_json(repo, "run")
    assert first["steps"]["b"]["status"] == "failed"
    head = commit_file(repo, "fix.txt", "fixed\n")
    (repo / "README.md").write_text("and not yet committed\n")
    done = treeflow(repo, "resume", first["run_id"], "--rebase", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["steps"]["a"]["commit"] == first["steps"]["a"]["commit"]
    assert result["steps"]["a"]["attempts"] == 1
    new_base = result["base_commit"]
    # The uncommitted edit is part of it, as in any run with `base: working`.
    assert git(repo, "rev-parse", f"{new_base}^") == head
    assert recorded_base(repo, first["run_id"]) == new_base
    assert any("new base" in warning for warning in result["warnings"])
    b = result["steps"]["b"]["branch"]
    assert git(repo, "show", f"{b}:b.txt").split() == ["fixed", "a"]
    assert git(repo, "show", f"{b}:README.md") == "and not yet committed"
    assert git(repo, "merge-base", "--is-ancestor", new_base, result["result_branch"]) == ""
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == "M README.md"


def test_a_later_resume_keeps_the_new_base_a_rebase_took(repo: Path) -> None:
    gate = repo.parent / "gate"
    (repo / "treeflow.yml").write_text(
        FIXED_LATER + f"  c: {{run: 'test -e {gate} && cp b.txt c.txt', needs: [b]}}\n"
    )
    first = run_json(repo, "run")
    head = commit_file(repo, "fix.txt", "fixed\n")
    rebased = run_json(repo, "resume", first["run_id"], "--rebase")
    assert [rebased["steps"][s]["status"] for s in "bc"] == ["succeeded", "failed"]
    assert rebased["base_commit"] == head
    gate.write_text("open")
    done = run_json(repo, "resume", first["run_id"])
    assert done["status"] == "succeeded"
    assert done["base_commit"] == head
    assert done["warnings"] == []
    assert git(repo, "show", f"{done['result_branch']}:c.txt").split() == ["fixed", "a"]


def test_resume_with_rebase_names_what_conflicts_with_the_new_base(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(FIXED_LATER)
    first = run_json(repo, "run")
    commit_file(repo, "a.txt", "the user's a\n")
    commit_file(repo, "fix.txt", "fixed\n")
    result = run_json(repo, "resume", first["run_id"], "--rebase")
    error = result["steps"]["b"]["error"]
    assert "cannot start: the work of `a`, the run's new base conflicts in a.txt" in error
    assert "(changed by `a` and the run's new base)" in error


def test_resume_without_changes_says_nothing_of_the_base(repo: Path) -> None:
    gate = repo.parent / "gate"
    (repo / "treeflow.yml").write_text(f"steps:\n  s: {{run: 'test -e {gate}'}}\n")
    first = run_json(repo, "run")
    gate.write_text("open")
    result = run_json(repo, "resume", first["run_id"], "--rebase")
    assert result["status"] == "succeeded"
    assert result["warnings"] == []
    assert result["base_commit"] == first["base_commit"]
