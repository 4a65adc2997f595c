"""Applying a run's work to a real checkout, and undoing it: each test asserts the exact working
tree, index and HEAD after the apply, and that undo gives back the checkout byte for byte."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import wait_until_async
from tests.review_helpers import Checkout, checkout, run_workflow, staged
from treeflow.core.apply import (
    ApplyMode,
    ApplyOutcome,
    ApplyResult,
    ConflictPolicy,
    UndoRefused,
    apply_work,
    undo_apply,
)
from treeflow.core.checkout import CheckoutRefused
from treeflow.core.git import open_repository
from treeflow.core.journal import RunRecord
from treeflow.core.run_work import FileConflict, NoWork, StepsConflict, run_work

pytestmark = pytest.mark.anyio

LINES = "".join(f"line {n}\n" for n in range(1, 21))


def lines_with(**changes: str) -> str:
    """LINES with line ``n`` (given as ``l<n>``) replaced."""
    out = LINES.splitlines(keepends=True)
    for key, text in changes.items():
        out[int(key[1:]) - 1] = text + "\n"
    return "".join(out)


def commit_files(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "files")


async def apply(
    repo: Path,
    record: RunRecord,
    steps: tuple[str, ...] = (),
    mode: ApplyMode = ApplyMode.WORKING_TREE,
    on_conflict: ConflictPolicy = ConflictPolicy.REFUSE,
) -> ApplyResult:
    repository = await open_repository(repo)
    work = await run_work(repository, record, steps)
    return await apply_work(repository, work, mode=mode, on_conflict=on_conflict)


async def undo(repo: Path) -> None:
    await undo_apply(await open_repository(repo))


def backups(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/treeflow/backups").splitlines()


def assert_applied_to_working_tree(repo: Path, before: Checkout, changed: dict[str, str | None]) -> None:
    """The checkout is ``before`` with the files ``changed`` (None: gone), its index file and HEAD
    exactly as they were."""
    expected = dict(before.text())
    for path, text in changed.items():
        if text is None:
            expected.pop(path, None)
        else:
            expected[path] = text
    after = checkout(repo)
    assert after.text() == expected
    assert (after.index_file, after.head) == (before.index_file, before.head)


async def assert_undo_restores(repo: Path, before: Checkout) -> None:
    await undo(repo)
    assert checkout(repo) == before
    assert backups(repo) == []


async def test_edits_in_other_files_and_a_commit_since_the_base_merge_cleanly(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES, "b.txt": "b\n"})
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 3$/run 3/' a.txt\"}\n")
    commit_files(repo, {"later.txt": "committed after the base\n"})
    (repo / "b.txt").write_text("my edit\n")
    before = checkout(repo)

    result = await apply(repo, record)

    assert result.outcome is ApplyOutcome.APPLIED
    assert result.files == ("a.txt",)
    after = checkout(repo)
    assert after.text() == {
        "README.md": "hello\n",
        "a.txt": lines_with(l3="run 3"),
        "b.txt": "my edit\n",
        "later.txt": "committed after the base\n",
    }
    # The index and HEAD are not touched: the index file is the same, byte for byte.
    assert (after.index_file, after.head) == (before.index_file, before.head)
    assert backups(repo) == [result.backup]
    await assert_undo_restores(repo, before)


async def test_edits_in_the_same_file_merge_line_by_line(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES})
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 15$/run 15/' a.txt\"}\n")
    (repo / "a.txt").write_text(lines_with(l2="mine 2"))
    before = checkout(repo)

    await apply(repo, record)

    assert_applied_to_working_tree(repo, before, {"a.txt": lines_with(l2="mine 2", l15="run 15")})
    await assert_undo_restores(repo, before)


async def test_a_real_conflict_changes_nothing_and_names_the_file_and_step(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES, "b.txt": "b\n"})
    record = await run_workflow(
        repo,
        """\
        steps:
          edit: {run: "sed -i 's/^line 5$/run 5/' a.txt"}
          other: {run: "echo run > b.txt"}
        """,
    )
    (repo / "a.txt").write_text(lines_with(l5="mine 5"))
    before = checkout(repo)

    result = await apply(repo, record)

    assert result.outcome is ApplyOutcome.CONFLICTS
    assert result.conflicts == (FileConflict("a.txt", ("edit",)),)
    assert checkout(repo) == before
    assert backups(repo) == []


async def test_conflict_markers_go_into_the_conflicting_file_and_the_rest_is_applied(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES, "b.txt": "b\n"})
    record = await run_workflow(
        repo,
        """\
        steps:
          edit: {run: "sed -i 's/^line 5$/run 5/' a.txt"}
          other: {run: "echo run > b.txt"}
        """,
    )
    (repo / "a.txt").write_text(lines_with(l5="mine 5"))
    before = checkout(repo)

    result = await apply(repo, record, on_conflict=ConflictPolicy.MARKERS)

    assert result.outcome is ApplyOutcome.APPLIED
    assert result.conflicts == (FileConflict("a.txt", ("edit",)),)
    marked = f"<<<<<<< treeflow/your-working-tree\nmine 5\n=======\nrun 5\n>>>>>>> treeflow/runs/{record.run.run_id}"
    assert_applied_to_working_tree(repo, before, {"b.txt": "run\n", "a.txt": lines_with(l5=marked)})
    await assert_undo_restores(repo, before)


async def test_staged_only_edits_stay_staged_and_the_work_lands_beside_them(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES})
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 18$/run 18/' a.txt\"}\n")
    (repo / "a.txt").write_text(lines_with(l1="staged 1"))
    git(repo, "add", "a.txt")
    before = checkout(repo)

    await apply(repo, record)

    assert_applied_to_working_tree(repo, before, {"a.txt": lines_with(l1="staged 1", l18="run 18")})
    assert staged(repo)["a.txt"] == lines_with(l1="staged 1")
    await assert_undo_restores(repo, before)


async def test_an_untracked_file_in_the_way_conflicts_unless_it_is_the_same(repo: Path) -> None:
    record = await run_workflow(
        repo, "steps:\n  add: {run: 'echo from the run > new.txt; echo same > same.txt'}\n"
    )
    (repo / "new.txt").write_text("mine, untracked\n")
    (repo / "same.txt").write_text("same\n")
    before = checkout(repo)

    refused = await apply(repo, record)
    assert refused.conflicts == (FileConflict("new.txt", ("add",)),)
    assert checkout(repo) == before

    result = await apply(repo, record, on_conflict=ConflictPolicy.MARKERS)
    assert result.files == ("new.txt",)
    run_label = f"treeflow/runs/{record.run.run_id}"
    assert_applied_to_working_tree(
        repo,
        before,
        {
            "new.txt": f"<<<<<<< treeflow/your-working-tree\nmine, untracked\n=======\nfrom the run\n>>>>>>> {run_label}\n"
        },
    )
    # The untracked file it overwrote comes back as it was, still untracked.
    await assert_undo_restores(repo, before)
    assert "new.txt" not in staged(repo)


async def test_binary_files_are_written_byte_for_byte(repo: Path) -> None:
    commit_files(repo, {"old.bin": "x"})
    record = await run_workflow(
        repo,
        "steps:\n  bin: {run: \"printf '\\\\000\\\\377\\\\001' > new.bin; printf '\\\\002\\\\000' > old.bin\"}\n",
    )
    before = checkout(repo)

    await apply(repo, record)

    files = checkout(repo).files
    assert files["new.bin"] == ("file", b"\x00\xff\x01")
    assert files["old.bin"] == ("file", b"\x02\x00")
    assert_applied_to_working_tree(repo, before, {"new.bin": "\x00\ufffd\x01", "old.bin": "\x02\x00"})
    await assert_undo_restores(repo, before)


async def test_a_rename_carries_the_users_edit_to_the_new_name(repo: Path) -> None:
    commit_files(repo, {"old.txt": LINES})
    record = await run_workflow(repo, "steps:\n  mv: {run: 'git mv old.txt new.txt'}\n")
    (repo / "old.txt").write_text(lines_with(l10="mine 10"))
    before = checkout(repo)

    result = await apply(repo, record)

    assert set(result.files) == {"old.txt", "new.txt"}
    # Index untouched: git shows old.txt deleted and new.txt untracked until the user stages them.
    assert_applied_to_working_tree(repo, before, {"old.txt": None, "new.txt": lines_with(l10="mine 10")})
    await assert_undo_restores(repo, before)


async def test_deletions_executable_bits_and_symlinks(repo: Path) -> None:
    commit_files(repo, {"gone.txt": "bye\n", "tool.sh": "#!/bin/sh\n", "dir/inner.txt": "in\n"})
    record = await run_workflow(
        repo,
        "steps:\n  mix: {run: 'git rm -q gone.txt dir/inner.txt && chmod +x tool.sh && ln -s tool.sh link'}\n",
    )
    before = checkout(repo)

    await apply(repo, record)

    assert_applied_to_working_tree(
        repo,
        before,
        {"gone.txt": None, "dir/inner.txt": None, "link": "-> tool.sh", "tool.sh": "*#!/bin/sh\n"},
    )
    assert not (repo / "dir").exists()
    await assert_undo_restores(repo, before)
    assert (repo / "dir" / "inner.txt").read_text() == "in\n"


async def test_a_run_based_on_uncommitted_changes_applies_only_what_the_run_did(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES})
    (repo / "a.txt").write_text(lines_with(l1="uncommitted 1"))
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 20$/run 20/' a.txt\"}\n")
    before = checkout(repo)

    await apply(repo, record)

    assert_applied_to_working_tree(repo, before, {"a.txt": lines_with(l1="uncommitted 1", l20="run 20")})
    assert staged(repo)["a.txt"] == LINES
    await assert_undo_restores(repo, before)


async def test_applying_twice_changes_nothing_the_second_time(repo: Path) -> None:
    record = await run_workflow(repo, "steps:\n  add: {run: 'echo new > new.txt'}\n")
    first = await apply(repo, record)
    after_first = checkout(repo)

    second = await apply(repo, record)

    assert (first.outcome, second.outcome) == (ApplyOutcome.APPLIED, ApplyOutcome.ALREADY_APPLIED)
    assert checkout(repo) == after_first
    assert backups(repo) == [first.backup]


async def test_undo_keeps_later_edits_to_other_files_and_refuses_over_a_later_edit_to_an_applied_one(
    repo: Path,
) -> None:
    commit_files(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    record = await run_workflow(repo, "steps:\n  edit: {run: 'echo run > a.txt'}\n")
    before = checkout(repo)
    await apply(repo, record)
    (repo / "a.txt").write_text("edited after the apply\n")
    edited = checkout(repo)

    with pytest.raises(UndoRefused) as refused:
        await undo(repo)

    assert refused.value.paths == ("a.txt",)
    assert "a.txt" in str(refused.value)
    assert checkout(repo) == edited

    (repo / "a.txt").write_text("run\n")
    (repo / "b.txt").write_text("b edited after the apply\n")
    await undo(repo)
    assert checkout(repo).text() == {**before.text(), "b.txt": "b edited after the apply\n"}


async def test_undo_with_nothing_applied_is_refused(repo: Path) -> None:
    with pytest.raises(UndoRefused, match="no apply to undo"):
        await undo(repo)


async def test_squash_commits_the_work_on_the_current_branch_and_keeps_uncommitted_edits(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES, "b.txt": "b\n"})
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 3$/run 3/' a.txt\"}\n")
    (repo / "a.txt").write_text(lines_with(l19="mine 19"))
    (repo / "b.txt").write_text("staged b\n")
    git(repo, "add", "b.txt")
    before = checkout(repo)
    head = git(repo, "rev-parse", "HEAD")

    result = await apply(repo, record, mode=ApplyMode.SQUASH)

    assert result.commit == git(repo, "rev-parse", "main")
    assert git(repo, "rev-parse", "HEAD~1") == head
    assert record.run.run_id in git(repo, "log", "-1", "--format=%B")
    assert git(repo, "show", "HEAD:a.txt") + "\n" == lines_with(l3="run 3")
    assert checkout(repo).text()["a.txt"] == lines_with(l3="run 3", l19="mine 19")
    assert staged(repo) == {"README.md": "hello\n", "a.txt": lines_with(l3="run 3"), "b.txt": "staged b\n"}
    await assert_undo_restores(repo, before)


async def test_merge_makes_a_merge_commit_of_the_result(repo: Path) -> None:
    record = await run_workflow(repo, "steps:\n  add: {run: 'echo new > new.txt'}\n")
    before = checkout(repo)

    result = await apply(repo, record, mode=ApplyMode.MERGE)

    parents = git(repo, "rev-list", "--parents", "-1", "HEAD").split()[1:]
    assert result.commit == git(repo, "rev-parse", "HEAD")
    assert parents == [before.head.split()[0], git(repo, "rev-parse", f"treeflow/runs/{record.run.run_id}")]
    assert checkout(repo).text()["new.txt"] == "new\n"
    assert git(repo, "status", "--porcelain") == ""
    await assert_undo_restores(repo, before)


async def test_several_steps_are_applied_together_and_their_conflicts_named(repo: Path) -> None:
    commit_files(repo, {"a.txt": "a\n"})
    record = await run_workflow(
        repo,
        """\
        steps:
          one: {run: "echo one > a.txt"}
          two: {run: "echo two > a.txt"}
          tests: {run: "echo test > t.txt"}
        """,
    )
    await apply(repo, record, steps=("one", "tests"))
    assert checkout(repo).text() == {"README.md": "hello\n", "a.txt": "one\n", "t.txt": "test\n"}
    await undo(repo)

    with pytest.raises(StepsConflict) as clash:
        await apply(repo, record, steps=("one", "two"))
    assert clash.value.files == (FileConflict("a.txt", ("one", "two")),)


async def test_a_run_without_a_result_is_refused(repo: Path) -> None:
    record = await run_workflow(repo, "steps:\n  nothing: {run: 'true'}\n")
    with pytest.raises(NoWork, match="has no result"):
        await apply(repo, record)


def start_conflict(repo: Path, operation: list[str]) -> None:
    """Leave ``operation`` (a merge, rebase, cherry-pick) stopped on a conflict."""
    git(repo, "checkout", "--quiet", "-b", "side")
    commit_files(repo, {"c.txt": "side\n"})
    git(repo, "checkout", "--quiet", "main")
    commit_files(repo, {"c.txt": "main\n"})
    done = subprocess.run(["git", *operation], cwd=repo, capture_output=True, text=True)
    assert done.returncode != 0, done.stdout


@pytest.mark.parametrize(
    ("operation", "named"),
    [
        (["merge", "side"], "a merge"),
        (["cherry-pick", "side"], "a cherry-pick"),
        (["rebase", "side"], "a rebase"),
        (["bisect", "start", "HEAD", "HEAD~2"], "a bisect"),
    ],
)
async def test_apply_is_refused_in_the_middle_of_another_git_operation(
    repo: Path, operation: list[str], named: str
) -> None:
    record = await run_workflow(repo, "steps:\n  add: {run: 'echo new > new.txt'}\n")
    if operation[0] == "bisect":
        commit_files(repo, {"x.txt": "1\n"})
        commit_files(repo, {"x.txt": "2\n"})
        git(repo, *operation)
    else:
        start_conflict(repo, operation)
    before = checkout(repo)

    with pytest.raises(CheckoutRefused, match=f"in the middle of {named}"):
        await apply(repo, record)
    assert checkout(repo) == before


async def test_apply_while_another_run_is_going_on(repo: Path, tmp_path: Path) -> None:
    record = await run_workflow(repo, "steps:\n  add: {run: 'echo new > new.txt'}\n")
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    yaml = f"steps:\n  wait: {{run: 'touch {started}; while [ ! -e {gate} ]; do sleep 0.02; done; echo w > w.txt'}}\n"
    async with anyio.create_task_group() as group:
        group.start_soon(run_workflow, repo, yaml, tmp_path / "other.yml")
        await wait_until_async(started.exists, "the other run's step to start")
        before = checkout(repo)

        result = await apply(repo, record)

        assert result.outcome is ApplyOutcome.APPLIED
        assert checkout(repo).text() == {**before.text(), "new.txt": "new\n"}
        gate.touch()
    await assert_undo_restores(repo, before)


async def test_the_backup_keeps_what_garbage_collection_would_otherwise_take(repo: Path) -> None:
    record = await run_workflow(repo, "steps:\n  add: {run: 'echo new > new.txt'}\n")
    (repo / "README.md").write_text("an edit git has no object for until the apply\n")
    before = checkout(repo)
    await apply(repo, record)

    git(repo, "gc", "--quiet", "--prune=now")

    await assert_undo_restores(repo, before)


async def test_undo_of_a_squash_keeps_what_was_staged_since_in_other_files(repo: Path) -> None:
    commit_files(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    record = await run_workflow(repo, "steps:\n  edit: {run: 'echo run > a.txt'}\n")
    before = checkout(repo)
    await apply(repo, record, mode=ApplyMode.SQUASH)
    (repo / "b.txt").write_text("staged after the apply\n")
    git(repo, "add", "b.txt")

    await undo(repo)

    assert checkout(repo).head == before.head
    assert checkout(repo).text() == {**before.text(), "b.txt": "staged after the apply\n"}
    assert staged(repo) == {"README.md": "hello\n", "a.txt": "a\n", "b.txt": "staged after the apply\n"}


@pytest.mark.slow
async def test_an_edit_in_the_same_second_as_the_index_was_written_is_not_missed(repo: Path) -> None:
    commit_files(repo, {"a.txt": LINES})
    record = await run_workflow(repo, "steps:\n  edit: {run: \"sed -i 's/^line 15$/run 15/' a.txt\"}\n")
    index = repo / ".git" / "index"
    # Same size, same second as the index entry and the index itself: only git's check for such
    # "racily clean" entries, which compares the entry with the index file's time, sees the edit.
    for _ in range(50):
        (repo / "a.txt").write_text(LINES)
        git(repo, "add", "a.txt")
        (repo / "a.txt").write_text(lines_with(l2="mine 2"))
        second = int(index.stat().st_mtime)
        if int((repo / "a.txt").stat().st_ctime) == second:
            break
    await wait_until_async(lambda: int(time.time()) > second, "the next second")
    before = checkout(repo)

    await apply(repo, record)

    assert_applied_to_working_tree(repo, before, {"a.txt": lines_with(l2="mine 2", l15="run 15")})
