"""`treeflow diff`, `apply`, `discard` and the change stats of `show`, as a user runs them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_start_up import imported_by, packages
from tests.conftest import git
from tests.review_helpers import checkout
from treeflow.core import journal

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

WORKFLOW = """\
steps:
  edit: {run: "echo two >> a.txt && printf '\\\\000\\\\001' > data.bin && chmod +x tool.sh"}
  tidy: {run: "git mv old.txt new.txt && git rm -q gone.txt"}
"""


def treeflow(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TREEFLOW, *args], cwd=cwd, capture_output=True, text=True, timeout=60, input=stdin
    )


@pytest.fixture
def run_id(repo: Path) -> str:
    for name, text in {
        "a.txt": "one\n",
        "tool.sh": "#!/bin/sh\n",
        "old.txt": "old\n",
        "gone.txt": "bye\n",
    }.items():
        (repo / name).write_text(text)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "files")
    workflow = repo.parent / "workflow.yml"
    workflow.write_text(textwrap.dedent(WORKFLOW))
    done = treeflow(repo, "run", str(workflow), "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return str(result["run_id"])


def test_diff_json_lists_each_file_with_its_status_and_counts(repo: Path, run_id: str) -> None:
    done = treeflow(repo, "diff", run_id, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["files"] == [
        {
            "path": "a.txt",
            "old_path": None,
            "status": "modified",
            "additions": 1,
            "deletions": 0,
            "binary": False,
        },
        {
            "path": "data.bin",
            "old_path": None,
            "status": "added",
            "additions": 0,
            "deletions": 0,
            "binary": True,
        },
        {
            "path": "gone.txt",
            "old_path": None,
            "status": "deleted",
            "additions": 0,
            "deletions": 1,
            "binary": False,
        },
        {
            "path": "new.txt",
            "old_path": "old.txt",
            "status": "renamed",
            "additions": 0,
            "deletions": 0,
            "binary": False,
        },
        {
            "path": "tool.sh",
            "old_path": None,
            "status": "mode",
            "additions": 0,
            "deletions": 0,
            "binary": False,
        },
    ]
    assert (result["additions"], result["deletions"]) == (1, 1)
    assert result["base"] == git(repo, "rev-parse", "HEAD")


def test_diff_of_a_step_patch_stat_and_names(repo: Path, run_id: str) -> None:
    names = treeflow(repo, "diff", run_id, "--step", "tidy", "--name-only")
    assert names.stdout.splitlines() == ["gone.txt", "new.txt"]

    stat = treeflow(repo, "diff", run_id, "--step", "edit", "--stat")
    assert stat.stdout.splitlines() == [
        " a.txt    | 1 +",
        " data.bin | Bin",
        " tool.sh  | mode only",
        " +1 -0 in 3 files",
    ]

    patch = treeflow(repo, "diff", run_id, "--step", "edit")
    assert patch.returncode == 0
    assert "diff --git a/a.txt b/a.txt" in patch.stdout
    assert "+two" in patch.stdout
    assert "old mode 100644\nnew mode 100755" in patch.stdout


def test_diff_of_an_unknown_step_or_a_run_without_result_is_refused(repo: Path, run_id: str) -> None:
    unknown = treeflow(repo, "diff", run_id, "--step", "nope")
    assert (unknown.returncode, "has no step nope" in unknown.stderr) == (2, True)

    workflow = repo.parent / "nothing.yml"
    workflow.write_text("steps:\n  nothing: {run: 'true'}\n")
    treeflow(repo, "run", str(workflow))
    empty = treeflow(repo, "diff", "last")
    assert empty.returncode == 2
    assert "has no result" in empty.stderr


def test_apply_then_undo(repo: Path, run_id: str) -> None:
    before = checkout(repo)

    done = treeflow(repo, "apply", run_id)

    assert done.returncode == 0, done.stderr
    assert f"applied run {run_id} as your working tree" in done.stdout
    assert "treeflow apply --undo" in done.stdout
    assert checkout(repo).text() == {
        "README.md": "hello\n",
        "a.txt": "one\ntwo\n",
        "data.bin": "\x00\x01",
        "new.txt": "old\n",
        "tool.sh": "*#!/bin/sh\n",
    }
    assert treeflow(repo, "apply", run_id).stdout.startswith(f"run {run_id} is already applied")

    undone = treeflow(repo, "apply", "--undo")
    assert undone.returncode == 0, undone.stderr
    assert checkout(repo) == before


def test_a_conflict_exits_1_naming_file_and_step_and_markers_apply_the_rest(repo: Path, run_id: str) -> None:
    (repo / "a.txt").write_text("one\nmine\n")
    before = checkout(repo)

    refused = treeflow(repo, "apply", run_id)

    assert refused.returncode == 1
    assert "a.txt (changed by `edit`)" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert checkout(repo) == before

    marked = treeflow(repo, "apply", run_id, "--conflicts", "markers")
    assert marked.returncode == 1
    assert "conflict markers written" in marked.stderr
    text = checkout(repo).text()
    assert (
        text["a.txt"]
        == f"one\n<<<<<<< treeflow/your-working-tree\nmine\n=======\ntwo\n>>>>>>> treeflow/runs/{run_id}\n"
    )
    assert text["new.txt"] == "old\n"


def test_apply_squash_commits_and_undo_moves_the_branch_back(repo: Path, run_id: str) -> None:
    head = git(repo, "rev-parse", "HEAD")
    done = treeflow(repo, "apply", run_id, "--mode", "squash")
    assert done.returncode == 0, done.stderr
    assert git(repo, "rev-parse", "HEAD~1") == head
    assert git(repo, "status", "--porcelain") == ""
    message = git(repo, "log", "-1", "--format=%B")
    assert run_id in message and "edit, tidy" in message

    assert treeflow(repo, "apply", "--undo").returncode == 0
    assert git(repo, "rev-parse", "HEAD") == head


def test_refusals_exit_2_and_change_nothing(repo: Path, run_id: str, tmp_path: Path) -> None:
    assert treeflow(repo, "apply", "--undo").returncode == 2

    git(repo, "checkout", "--quiet", "-b", "side")
    (repo / "a.txt").write_text("side\n")
    git(repo, "commit", "--quiet", "-am", "side")
    git(repo, "checkout", "--quiet", "main")
    (repo / "a.txt").write_text("main\n")
    git(repo, "commit", "--quiet", "-am", "main")
    subprocess.run(["git", "merge", "side"], cwd=repo, capture_output=True)
    before = checkout(repo)
    merging = treeflow(repo, "apply", run_id)
    assert merging.returncode == 2
    assert "in the middle of a merge" in merging.stderr
    assert checkout(repo) == before

    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    in_bare = treeflow(bare, "apply", run_id)
    assert in_bare.returncode == 2
    assert "bare repository" in in_bare.stderr


def test_discard_asks_first_then_deletes_the_branches_and_the_journal_keeps_the_run(
    repo: Path, run_id: str
) -> None:
    branches = git(repo, "branch", "--list", f"treeflow/*{run_id}*", "--format=%(refname:short)").splitlines()
    assert len(branches) == 3

    piped = treeflow(repo, "discard", run_id)
    assert piped.returncode == 2
    assert "add --yes" in piped.stderr
    assert f"treeflow/runs/{run_id} (3 commits found nowhere else)" in piped.stdout
    assert f"treeflow/{run_id}/edit (1 commit found nowhere else)" in piped.stdout
    assert "treeflow: work of step edit" in piped.stdout

    done = treeflow(repo, "discard", run_id, "--yes")
    assert done.returncode == 0, done.stderr
    assert git(repo, "branch", "--list", "treeflow/*") == ""
    record = journal.read_run(repo / ".git" / "treeflow" / "journal.db", run_id)
    assert record is not None and record.discarded_at is not None

    shown = json.loads(treeflow(repo, "show", run_id, "--json").stdout)
    assert shown["discarded_at"] is not None
    [listed] = json.loads(treeflow(repo, "runs", "--json").stdout)
    assert listed["discarded_at"] == shown["discarded_at"]
    [row] = [line for line in treeflow(repo, "runs").stdout.splitlines() if line.startswith(run_id)]
    assert row.endswith("(discarded)") and "treeflow/runs/" not in row
    for command in ("apply", "diff", "resume"):
        refused = treeflow(repo, command, run_id)
        assert (refused.returncode, "was discarded" in refused.stderr) == (2, True), command


def test_show_includes_the_change_stat_of_the_result_and_each_step(repo: Path, run_id: str) -> None:
    shown = json.loads(treeflow(repo, "show", run_id, "--json").stdout)
    assert shown["changes"] == {"files": 5, "additions": 1, "deletions": 1}
    assert shown["steps"]["edit"]["changes"] == {"files": 3, "additions": 1, "deletions": 0}
    assert shown["steps"]["tidy"]["changes"] == {"files": 2, "additions": 0, "deletions": 1}

    text = treeflow(repo, "show", run_id).stdout
    assert "changes of the result: +1 -1 in 5 files" in text
    assert "edit: +1 -0 in 3 files" in text


def test_discard_at_a_terminal_asks_and_takes_a_yes(repo: Path, run_id: str) -> None:
    terminal, secondary = pty.openpty()
    try:
        os.write(terminal, b"y\n")
        done = subprocess.run(
            [*TREEFLOW, "discard", run_id],
            cwd=repo,
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(secondary)
    assert done.returncode == 0, done.stderr
    assert f"delete the 3 branches of run {run_id}? [y/N]" in done.stdout
    assert git(repo, "branch", "--list", "treeflow/*") == ""


def test_gitpython_is_loaded_only_by_the_commands_that_read_diffs() -> None:
    loaded = imported_by("treeflow.cli", "treeflow.cli.commands")
    assert "git" not in packages(loaded)
    assert "git" in packages(imported_by("treeflow.core.changes"))
