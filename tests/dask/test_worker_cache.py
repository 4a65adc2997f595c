"""A worker's cache repository, on its own: a step's worktree, once released, is the next step's,
moved to that step's start commit without checking out again the files that did not change."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import git
from treeflow.core.remote.worker_cache import WorkerCache

pytestmark = pytest.mark.anyio

REPO_KEY = "0123456789abcdef01234567"


def two_commits(repo: Path) -> tuple[str, str]:
    """The repository's first commit with a few files, and a second one that changes one of them."""
    (repo / ".gitignore").write_text("build/\n")
    for name in ("changed.txt", "kept.txt", "edited.txt"):
        (repo / name).write_text(f"{name} at first\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "first")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "changed.txt").write_text("changed.txt later\n")
    git(repo, "commit", "--quiet", "-am", "second")
    return first, git(repo, "rev-parse", "HEAD")


async def cache_with(repo: Path, root: Path) -> WorkerCache:
    git(repo, "bundle", "create", "--quiet", str(root / "all.bundle"), "main")
    cache = WorkerCache(root / "cache", REPO_KEY)
    await cache.ensure()
    await cache.receive([(root / "all.bundle").read_bytes()])
    return cache


async def test_a_released_worktree_serves_the_next_step_at_its_own_start(repo: Path, tmp_path: Path) -> None:
    first, second = two_commits(repo)
    cache = await cache_with(repo, tmp_path)
    before, fresh = await cache.worktree("step-one", first)
    assert fresh
    # What the step left that was never committed: an edit, a new file, an ignored build folder.
    (before / "edited.txt").write_text("an edit nobody committed\n")
    (before / "scratch.txt").write_text("scratch\n")
    (before / "build").mkdir()
    (before / "build" / "out.o").write_text("object\n")
    kept = (before / "kept.txt").stat()

    await cache.release("step-one")
    # Nothing the step left outside its commit waits in the pool.
    assert [path.name for path in cache.pool.glob("*/*") if path.name in ("scratch.txt", "build")] == []
    after, fresh = await cache.worktree("step-two", second)

    assert fresh
    assert not before.exists()
    assert git(after, "rev-parse", "HEAD") == second
    assert (after / "changed.txt").read_text() == "changed.txt later\n"
    assert (after / "edited.txt").read_text() == "edited.txt at first\n"
    assert git(after, "status", "--porcelain", "--ignored", "--untracked-files=all") == ""
    # The same file, not a copy checked out again: the worktree was reused.
    again = (after / "kept.txt").stat()
    assert (again.st_ino, again.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)


async def test_two_steps_at_once_get_worktrees_of_their_own(repo: Path, tmp_path: Path) -> None:
    first, second = two_commits(repo)
    cache = await cache_with(repo, tmp_path)
    await cache.worktree("earlier", first)
    await cache.release("earlier")

    one, _ = await cache.worktree("one", first)
    two, _ = await cache.worktree("two", second)

    assert one != two
    assert git(one, "rev-parse", "HEAD") == first
    assert git(two, "rev-parse", "HEAD") == second
    await cache.release("one")
    await cache.release("two")
    listed = git(cache.repo, "worktree", "list", "--porcelain")
    assert listed.count("worktree ") == 3  # the bare repository and the two waiting in the pool


async def test_a_pooled_worktree_git_no_longer_takes_is_dropped_and_the_step_gets_a_new_one(
    repo: Path, tmp_path: Path
) -> None:
    first, second = two_commits(repo)
    cache = await cache_with(repo, tmp_path)
    await cache.worktree("earlier", first)
    await cache.release("earlier")
    # As a worker killed while it pooled the worktree may leave it: a folder git no longer knows.
    [pooled] = list(cache.pool.iterdir())
    admin = Path((pooled / ".git").read_text().removeprefix("gitdir:").strip())
    shutil.rmtree(admin)

    path, fresh = await cache.worktree("next", second)

    assert fresh
    assert git(path, "rev-parse", "HEAD") == second
    assert not pooled.exists()
    await cache.release("next")
    path, _ = await cache.worktree("after", first)
    assert git(path, "rev-parse", "HEAD") == first
