"""`treeflow discard`: delete a run's branches, once the user has seen which hold commits found
nowhere else; the journal keeps the run, marked discarded.

Planning and deleting are two calls, so that a front end can show the plan and ask first.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from treeflow.core import journal
from treeflow.core.git import GitError, RepoLock, Repository, git, git_locked
from treeflow.core.journal import RunRecord
from treeflow.core.locations import run_of_branch
from treeflow.core.model import RunStatus
from treeflow.core.service import RunRefused


@dataclass(frozen=True)
class BranchToDelete:
    name: str
    tip: str
    unique_commits: tuple[
        str, ...
    ]  # subject lines of its commits no branch, tag or remote ref outside the run holds
    checked_out: bool  # in some worktree; git cannot delete it, so it is kept


@dataclass(frozen=True)
class DiscardPlan:
    run_id: str
    branches: tuple[BranchToDelete, ...]

    @property
    def unique(self) -> tuple[BranchToDelete, ...]:
        return tuple(branch for branch in self.branches if branch.unique_commits)


@dataclass(frozen=True)
class DiscardResult:
    run_id: str
    deleted: tuple[str, ...]
    kept: tuple[str, ...]  # checked out somewhere, or changed since the plan was made


async def plan_discard(repo: Repository, record: RunRecord) -> DiscardPlan:
    """The branches of ``record``'s run, each with its commits found nowhere else."""
    run = record.run
    if run.status is RunStatus.RUNNING:
        raise RunRefused(f"run {run.run_id} is still going on; cancel it first")
    listing = await git(repo.root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/treeflow")
    ours = {
        ref.removeprefix("refs/heads/"): tip
        for ref, tip in (line.split(" ", 1) for line in listing.splitlines() if line)
        if run_of_branch(ref.removeprefix("refs/heads/")) == run.run_id
    }
    worktrees = await git(repo.root, "worktree", "list", "--porcelain")
    checked_out = {line.removeprefix("branch refs/heads/") for line in worktrees.splitlines()}
    # Patterns for `--branches` name branches without `refs/heads/`.
    excluded = [f"--exclude={name}" for name in ours]
    branches = []
    for name, tip in sorted(ours.items()):
        subjects = await git(
            repo.root,
            "log",
            "--format=%h %s",
            tip,
            "--not",
            *excluded,
            "--branches",
            "--tags",
            "--remotes",
        )
        branches.append(BranchToDelete(name, tip, tuple(subjects.splitlines()), name in checked_out))
    return DiscardPlan(run.run_id, tuple(branches))


async def discard(repo: Repository, plan: DiscardPlan) -> DiscardResult:
    """Delete the branches of ``plan`` that are still where the plan saw them and not checked out,
    then mark the run discarded in the journal."""
    lock = RepoLock(repo)
    deleted, kept = [], []
    with anyio.CancelScope(shield=True):
        for branch in plan.branches:
            if branch.checked_out:
                kept.append(branch.name)
                continue
            try:
                await git_locked(lock, repo.root, "update-ref", "-d", f"refs/heads/{branch.name}", branch.tip)
            except GitError:
                kept.append(branch.name)
            else:
                deleted.append(branch.name)
        statement = journal.mark_discarded(plan.run_id, deleted)
        await anyio.to_thread.run_sync(journal.execute, journal.journal_path(repo), [statement])
    return DiscardResult(plan.run_id, tuple(deleted), tuple(kept))
