"""Reviewing and applying a run's work through a real LSP client: `treeflow.diff`, `treeflow.readFile`,
`treeflow.apply`, `treeflow.undoApply` and `treeflow.discard`, with the CLI's semantics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import LanguageClient

from tests.conftest import git
from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio

CHANGES = """\
steps:
  edit: {run: 'printf "one\\ntwo changed\\nthree\\n" > a.txt && printf "new\\n" > new.txt'}
  remove: {run: 'git rm -q --cached gone.txt && rm gone.txt'}
"""


def commit_all(root: Path, message: str = "work") -> str:
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "-m", message)
    return git(root, "rev-parse", "HEAD")


async def finished_run(client: LanguageClient, workspace: Path, text: str = CHANGES) -> dict[str, Any]:
    """A succeeded run of ``text`` in ``workspace``, its workflow and files committed first."""
    (workspace / "a.txt").write_text("one\ntwo\nthree\n")
    (workspace / "gone.txt").write_text("bye\n")
    path = write_workflow(workspace, text)
    commit_all(workspace, "before the run")
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    return run


async def test_diff_lists_each_file_the_run_changed_and_read_file_gives_both_sides(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    head = git(workspace, "rev-parse", "HEAD")
    diff = await command(client, "treeflow.diff", {"runId": run["run_id"]})
    assert {key: diff[key] for key in ("runId", "steps", "root", "base", "additions", "deletions")} == {
        "runId": run["run_id"],
        "steps": [],
        "root": str(workspace),
        "base": head,
        "additions": 2,
        "deletions": 2,
    }
    assert diff["commit"] == git(workspace, "rev-parse", run["result_branch"])
    assert diff["files"] == [
        {
            "path": "a.txt",
            "oldPath": None,
            "status": "modified",
            "additions": 1,
            "deletions": 1,
            "binary": False,
        },
        {
            "path": "gone.txt",
            "oldPath": None,
            "status": "deleted",
            "additions": 0,
            "deletions": 1,
            "binary": False,
        },
        {
            "path": "new.txt",
            "oldPath": None,
            "status": "added",
            "additions": 1,
            "deletions": 0,
            "binary": False,
        },
    ]

    step = await command(client, "treeflow.diff", {"runId": run["run_id"], "steps": ["remove"]})
    assert [change["path"] for change in step["files"]] == ["gone.txt"]
    assert step["steps"] == ["remove"]

    async def read(rev: str, name: str) -> Any:
        return await command(client, "treeflow.readFile", {"rev": rev, "path": str(workspace / name)})

    assert await read(diff["base"], "a.txt") == {
        "exists": True,
        "binary": False,
        "size": 14,
        "text": "one\ntwo\nthree\n",
    }
    assert (await read(diff["commit"], "a.txt"))["text"] == "one\ntwo changed\nthree\n"
    assert await read(diff["base"], "new.txt") == {"exists": False, "binary": False, "size": 0, "text": None}
    assert await read(diff["commit"], "gone.txt") == {
        "exists": False,
        "binary": False,
        "size": 0,
        "text": None,
    }


async def test_read_file_reads_only_repositories_of_the_workspace(
    client: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    (workspace / "data.bin").write_bytes(b"\x00\x01\x02")
    head = commit_all(workspace)
    binary = await command(client, "treeflow.readFile", {"rev": head, "path": str(workspace / "data.bin")})
    assert binary == {"exists": True, "binary": True, "size": 3, "text": None}
    outside = tmp_path / "elsewhere.txt"
    with pytest.raises(Exception, match="is in no repository of this workspace"):
        await command(client, "treeflow.readFile", {"rev": head, "path": str(outside)})
    with pytest.raises(Exception, match="is in no repository of this workspace"):
        await command(client, "treeflow.readFile", {"rev": head, "path": str(workspace / ".." / "x")})
    with pytest.raises(Exception, match="is not an absolute path"):
        await command(client, "treeflow.readFile", {"rev": head, "path": "README.md"})
    missing = await command(client, "treeflow.readFile", {"rev": "no-such-rev", "path": str(workspace / "a")})
    assert missing["exists"] is False


async def test_apply_to_the_working_tree_then_undo_puts_the_files_back(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    head = git(workspace, "rev-parse", "HEAD")
    (workspace / "README.md").write_text("an edit of mine\n")

    applied = await command(client, "treeflow.apply", {"runId": run["run_id"]})
    assert applied["outcome"] == "applied"
    assert applied["mode"] == "working-tree"
    assert applied["work"] == f"run {run['run_id']}"
    assert sorted(applied["files"]) == ["a.txt", "gone.txt", "new.txt"]
    assert applied["conflicts"] == []
    assert applied["backup"].startswith("refs/treeflow/backups/")
    assert (workspace / "a.txt").read_text() == "one\ntwo changed\nthree\n"
    assert (workspace / "new.txt").read_text() == "new\n"
    assert not (workspace / "gone.txt").exists()
    assert (workspace / "README.md").read_text() == "an edit of mine\n"
    assert git(workspace, "rev-parse", "HEAD") == head

    again = await command(client, "treeflow.apply", {"runId": run["run_id"]})
    assert again["outcome"] == "already_applied"
    assert again["files"] == []

    undone = await command(client, "treeflow.undoApply", {})
    assert undone["work"] == f"run {run['run_id']}"
    assert sorted(undone["files"]) == ["a.txt", "gone.txt", "new.txt"]
    assert (workspace / "a.txt").read_text() == "one\ntwo\nthree\n"
    assert (workspace / "gone.txt").read_text() == "bye\n"
    assert not (workspace / "new.txt").exists()
    assert (workspace / "README.md").read_text() == "an edit of mine\n"
    with pytest.raises(Exception, match="there is no apply to undo in this workspace"):
        await command(client, "treeflow.undoApply", {})


async def test_a_conflicting_apply_changes_nothing_and_names_the_file_then_markers_apply_the_rest(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    (workspace / "a.txt").write_text("one\ntwo mine\nthree\n")

    refused = await command(client, "treeflow.apply", {"runId": run["run_id"]})
    assert refused["outcome"] == "conflicts"
    assert refused["conflicts"] == [{"path": "a.txt", "steps": ["edit"]}]
    assert refused["conflictsWith"] == "your working tree"
    assert refused["files"] == [] and refused["backup"] is None
    assert (workspace / "a.txt").read_text() == "one\ntwo mine\nthree\n"
    assert not (workspace / "new.txt").exists()

    marked = await command(client, "treeflow.apply", {"runId": run["run_id"], "conflicts": "markers"})
    assert marked["outcome"] == "applied"
    assert marked["conflicts"] == [{"path": "a.txt", "steps": ["edit"]}]
    text = (workspace / "a.txt").read_text()
    assert "<<<<<<< treeflow/your-working-tree" in text and "two changed" in text and "two mine" in text
    assert (workspace / "new.txt").read_text() == "new\n"


async def test_squash_commits_the_work_of_the_chosen_step_on_the_current_branch(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    other = await finished_run(client, workspace, CHANGES.replace("new.txt", "other.txt"))
    head = git(workspace, "rev-parse", "HEAD")
    applied = await command(
        client, "treeflow.apply", {"runId": run["run_id"], "steps": ["edit"], "mode": "squash"}
    )
    assert applied["outcome"] == "applied"
    assert applied["work"] == f"step edit of run {run['run_id']}"
    assert git(workspace, "rev-parse", "HEAD") == applied["commit"]
    assert git(workspace, "rev-parse", "HEAD~1") == head
    assert git(workspace, "log", "-1", "--format=%s") == f"treeflow run {run['run_id']} (treeflow)"
    assert git(workspace, "status", "--porcelain") == ""
    assert (workspace / "gone.txt").exists(), "the other step's work was not taken"

    with pytest.raises(
        Exception, match=f"was of step edit of run {run['run_id']}, not of run {other['run_id']}"
    ):
        await command(client, "treeflow.undoApply", {"runId": other["run_id"]})
    await command(client, "treeflow.undoApply", {"runId": run["run_id"]})
    assert git(workspace, "rev-parse", "HEAD") == head


async def test_discard_shows_its_plan_first_and_deletes_only_what_was_confirmed(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    run_id = run["run_id"]
    branches = {f"treeflow/{run_id}/edit", f"treeflow/{run_id}/remove", f"treeflow/runs/{run_id}"}

    plan = await command(client, "treeflow.discard", {"runId": run_id})
    assert plan["discarded"] is False and plan["deleted"] == []
    assert {branch["name"] for branch in plan["branches"]} == branches
    result_branch = next(b for b in plan["branches"] if b["name"] == f"treeflow/runs/{run_id}")
    assert result_branch["uniqueCommits"] and not result_branch["checkedOut"]
    assert (
        set(git(workspace, "branch", "--list", "treeflow/*", "--format=%(refname:short)").split()) == branches
    )

    # A branch that moved after the plan was shown is kept: the user did not see its new commit.
    edit_branch = f"treeflow/{run_id}/edit"
    confirmed = {branch["name"]: branch["tip"] for branch in plan["branches"]}
    git(workspace, "update-ref", f"refs/heads/{edit_branch}", git(workspace, "rev-parse", "HEAD"))
    done = await command(client, "treeflow.discard", {"runId": run_id, "confirmed": confirmed})
    assert done["discarded"] is True
    assert done["kept"] == [edit_branch]
    assert set(done["deleted"]) == branches - {edit_branch}
    assert git(workspace, "branch", "--list", "treeflow/*", "--format=%(refname:short)").split() == [
        edit_branch
    ]
    with pytest.raises(Exception, match="was discarded"):
        await command(client, "treeflow.diff", {"runId": run_id})


async def test_user_errors_are_invalid_params_that_say_what_is_wrong(
    client: LanguageClient, workspace: Path
) -> None:
    run = await finished_run(client, workspace)
    cases = [
        ("treeflow.diff", {"runId": "nope"}, "no run 'nope' in this workspace"),
        ("treeflow.diff", {"runId": run["run_id"], "steps": ["nope"]}, "has no step nope"),
        (
            "treeflow.apply",
            {"runId": run["run_id"], "mode": "rebase"},
            "`mode` must be working-tree, squash or merge",
        ),
        (
            "treeflow.apply",
            {"runId": run["run_id"], "conflicts": True},
            "`conflicts` must be refuse or markers",
        ),
        ("treeflow.apply", {}, "treeflow.apply needs `runId`"),
        ("treeflow.discard", {"runId": run["run_id"], "confirmed": ["x"]}, "`confirmed` must be an object"),
        ("treeflow.readFile", {"path": "/x"}, "treeflow.readFile needs `rev`"),
    ]
    for name, argument, message in cases:
        with pytest.raises(Exception, match=message) as raised:
            await command(client, name, argument)
        assert "-32602" in str(raised.value) or "InvalidParams" in type(raised.value).__name__, raised.value
    (workspace / ".git" / "MERGE_HEAD").write_text(git(workspace, "rev-parse", "HEAD") + "\n")
    with pytest.raises(Exception, match="merge"):
        await command(client, "treeflow.apply", {"runId": run["run_id"]})
