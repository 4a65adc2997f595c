"""Each step in its own git worktree and branch, and nothing a step did is ever lost.

`step_worktree` creates the worktree on entry and, on exit, whatever the outcome (success, failure,
timeout, cancellation), commits the step's changes to its branch and then removes the worktree,
all under a shielded cancel scope. A branch that got no commit is deleted; one with commits stays.
What the step put in the stash list shared by every worktree is moved onto its branch too (see
`step_stash`).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from treeflow.core.agent_protocol import TREEFLOW_DIR
from treeflow.core.git import (
    GitError,
    RepoLock,
    Repository,
    commit_worktree,
    git,
    git_locked,
    run_git,
)
from treeflow.core.setup_copy import RECORD_NAME, copy_setup_files
from treeflow.core.step_stash import move_stashed_work, stash_entries
from treeflow.core.worktree_pool import PooledWorktree, WorktreePool


@dataclass
class StepWorktree:
    path: Path
    branch: str
    start: str
    copied: list[str] = field(default_factory=list)
    commit: str | None = None
    has_work: bool = False
    removed: bool = False
    unsaved: str | None = None  # why its work could not be committed; it is then kept as it is
    stash_before: frozenset[str] | None = None  # the stash list's commits before the step started
    pooled: PooledWorktree | None = None  # lent by the pool, given back instead of removed


@asynccontextmanager
async def step_worktree(
    repo: Repository,
    lock: RepoLock,
    *,
    path: Path,
    branch: str,
    start: str,
    copy: tuple[str, ...] = (),
    commit_message: str,
    identity: Mapping[str, str],
    warn: Callable[[str], None],
    pool: WorktreePool | None = None,
) -> AsyncIterator[StepWorktree]:
    """A worktree on new branch ``branch`` starting at ``start``: one of ``pool``'s when it has one
    to give, else a fresh one at ``path``.

    Registration runs under the repository lock; populating the files runs outside it, in parallel
    with other steps, which is what keeps concurrent creation both safe and fast.
    """
    pooled = await pool.take(branch, start, warn) if pool is not None else None
    if pooled is not None:
        worktree = StepWorktree(path=pooled.path, branch=branch, start=start, pooled=pooled)
    else:
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        # A `worktree add` stopped half-way leaves a registration that no `finally` below would
        # undo, or even one that breaks `git log --all`; it takes milliseconds, so it always completes.
        with anyio.CancelScope(shield=True):
            await git_locked(
                lock,
                repo.root,
                "worktree",
                "add",
                "--no-checkout",
                "--no-track",
                "-b",
                branch,
                str(path),
                start,
            )
        worktree = StepWorktree(path=path, branch=branch, start=start)
    populated = pooled is not None
    try:
        if not populated:
            # Not `reset --hard`: that rewrites the branch ref (and ORIG_HEAD) too, and a cancel
            # kills it mid-way, which can leave the branch's lock file behind and the branch
            # undeletable.
            await git(worktree.path, "read-tree", "-u", "--reset", "HEAD")
            populated = True
        path = worktree.path
        worktree.stash_before = frozenset(entry.commit for entry in await stash_entries(path))
        if copy:
            record = Path(await git(path, "rev-parse", "--absolute-git-dir")) / RECORD_NAME
            await anyio.to_thread.run_sync(copy_setup_files, repo.root, path, copy, record, worktree.copied)
        yield worktree
    finally:
        with anyio.CancelScope(shield=True):
            await save_and_remove(repo, lock, worktree, populated, commit_message, identity, warn)


async def save_and_remove(
    repo: Repository,
    lock: RepoLock,
    worktree: StepWorktree,
    populated: bool,
    message: str,
    identity: Mapping[str, str],
    warn: Callable[[str], None],
) -> None:
    """Commit the step's changes to its branch, remove the worktree, and delete the branch if it got
    no commit. A failure to commit keeps the worktree as it is; nothing is ever discarded."""
    try:
        if populated:
            problem = await why_not_savable(worktree.path, worktree.branch)
            if problem is not None:
                worktree.unsaved = problem
                await _keep_as_it_is(worktree, problem)
                warn(f"{problem}; its worktree {worktree.path} is kept as it is")
                return
            held_back = [TREEFLOW_DIR, *worktree.copied]
            worktree.commit = await commit_worktree(worktree.path, message, held_back, identity)
            if worktree.stash_before is not None:
                await move_stashed_work(
                    worktree.path,
                    worktree.branch,
                    worktree.stash_before,
                    lock,
                    held_back=held_back,
                    step_label=worktree.branch.rsplit("/", 1)[-1],
                    identity=identity,
                    warn=warn,
                )
        tip = await git(repo.root, "rev-parse", f"refs/heads/{worktree.branch}")
    except (GitError, OSError) as exc:
        worktree.unsaved = f"could not commit the work in {worktree.path}: {exc}"
        await _keep_as_it_is(worktree, worktree.unsaved)
        warn(f"{worktree.unsaved}; the worktree is kept as it is")
        return
    worktree.has_work = tip != worktree.start
    worktree.commit = tip if worktree.has_work else None
    if worktree.pooled is not None:
        await worktree.pooled.pool.give_back(worktree.pooled, tip, warn)
        worktree.removed = True
    else:
        try:
            await git_locked(lock, repo.root, "worktree", "remove", "--force", str(worktree.path))
            worktree.removed = True
        except (GitError, OSError) as exc:
            warn(f"could not remove worktree {worktree.path}: {exc}; `treeflow clean` removes it later")
            return
    if not worktree.has_work:
        try:
            # The expected old value makes git refuse if anything moved the branch meanwhile.
            await git_locked(
                lock, repo.root, "update-ref", "-d", f"refs/heads/{worktree.branch}", worktree.start
            )
        except GitError as exc:
            warn(f"could not delete its branch {worktree.branch}, which holds no work: {exc}")


async def _keep_as_it_is(worktree: StepWorktree, reason: str) -> None:
    """A pooled worktree whose work could not be saved leaves the pool, kept for the user; one
    whose folder the step removed is dropped, since nothing in it is left."""
    pooled = worktree.pooled
    if pooled is None:
        return
    if await anyio.to_thread.run_sync(os.path.lexists, worktree.path):
        pooled.pool.keep(pooled, reason)
    else:
        await pooled.pool.forget(pooled)


async def why_not_savable(path: Path, branch: str | None) -> str | None:
    """Why committing what ``path`` holds onto ``branch`` would lose or misplace work, if it would."""
    if not await anyio.to_thread.run_sync(os.path.lexists, path / ".git"):
        # Without it git would take the work for changes to whatever repository encloses the folder.
        return f"its .git file is gone, so git cannot tell what changed in {path}"
    head = (await run_git(path, "symbolic-ref", "--quiet", "HEAD"))[1].strip()
    if head != f"refs/heads/{branch}":
        where = head.removeprefix("refs/heads/") if head else "a detached HEAD"
        return f"the worktree is on {where}, not on its branch {branch}" if branch else f"it is on {where}"
    return None
