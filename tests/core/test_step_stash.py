"""A step's own `git stash`: its work lands on its branch, and the user's stash list stays as it was."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import make_run, run_workflow, wait_for_files
from treeflow.core.model import StepStatus

pytestmark = pytest.mark.anyio


def stash_list(repo: Path) -> list[str]:
    return git(repo, "stash", "list", "--format=%H %gs").splitlines()


def users_stash(repo: Path, count: int) -> list[str]:
    """``count`` entries in the user's stash list, made in the user's checkout."""
    for number in range(count):
        (repo / "README.md").write_text(f"the user's edit {number}\n")
        git(repo, "stash", "push", "--quiet", "-m", f"mine {number}")
    return stash_list(repo)


def files_of(repo: Path, rev: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", rev).split()


@pytest.mark.parametrize("entries", [0, 2])
async def test_a_step_that_stashes_its_work_keeps_it_on_its_branch(repo: Path, entries: int) -> None:
    before = users_stash(repo, entries)
    result = await run_workflow(
        repo, "steps:\n  s: {run: 'echo x > f && echo more >> README.md && git stash -u'}\n", worktrees=True
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.branch is not None
    assert git(repo, "show", f"{step.branch}:f") == "x"
    assert git(repo, "show", f"{step.branch}:README.md") == "hello\nmore"
    assert stash_list(repo) == before
    if not entries:
        assert git(repo, "for-each-ref", "refs/stash") == ""
    [warning] = result.warnings
    assert "git stash" in warning and step.branch in warning and "as it was" in warning
    assert result.result_branch is not None
    assert git(repo, "show", f"{result.result_branch}:f") == "x"


async def test_parallel_steps_each_get_back_their_own_stash(repo: Path) -> None:
    before = users_stash(repo, 1)
    steps = "\n".join(
        f"  s{i}: {{run: 'echo {i} > f{i} && git stash -u && echo after > g{i}'}}" for i in range(6)
    )
    result = await run_workflow(repo, f"max_parallel: 6\nsteps:\n{steps}\n", worktrees=True)
    for i in range(6):
        step = result.steps[f"s{i}"]
        assert step.status is StepStatus.SUCCEEDED, step.error
        assert step.branch is not None
        assert sorted(files_of(repo, step.branch)) == ["README.md", f"f{i}", f"g{i}"]
    assert stash_list(repo) == before


async def test_stashed_work_that_conflicts_with_later_work_is_kept_on_a_branch_of_its_own(repo: Path) -> None:
    before = users_stash(repo, 1)
    result = await run_workflow(
        repo,
        "steps:\n  s: {run: 'echo stashed >> README.md && git stash && echo later >> README.md'}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert git(repo, "show", f"{step.branch}:README.md") == "hello\nlater"
    assert git(repo, "show", f"{step.branch}.stash:README.md") == "hello\nstashed"
    assert stash_list(repo) == before
    [warning] = result.warnings
    assert f"kept on {step.branch}.stash" in warning


async def test_stashed_copies_and_ignored_files_are_never_committed(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "--quiet", "-m", "ignore logs")
    (repo / ".env").write_text("SECRET=1\n")
    result = await run_workflow(
        repo,
        "setup: {copy: ['.env']}\n"
        "steps:\n  s: {run: 'echo noise > out.log && echo kept > new.txt && git stash --all'}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.branch is not None
    assert sorted(files_of(repo, step.branch)) == [".gitignore", "README.md", "new.txt"]
    assert stash_list(repo) == []


async def test_the_users_own_stash_made_during_a_run_is_left_alone(repo: Path) -> None:
    release = repo.parent / "release"
    marker = repo.parent / "started"
    wait = f"for _ in $(seq 3000); do test -e {release} && break; sleep 0.02; done"
    run = await make_run(
        repo,
        f"steps:\n  s: {{run: 'echo up > {marker}; {wait}; echo x > f && git stash -u'}}\n",
        worktrees=True,
    )
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        await anyio.to_thread.run_sync(wait_for_files, [marker])
        mine = users_stash(repo, 1)
        release.touch()
    result = run.snapshot()
    assert result.steps["s"].status is StepStatus.SUCCEEDED
    assert stash_list(repo) == mine
