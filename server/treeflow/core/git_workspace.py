"""A run's places in git: its base commit, a worktree and branch per step, and its result branch.

`GitWorkspace` gives the runner a place per step (see `step_worktree`): the run's base commit for a
step without needs, else the merge of what its needs produced; once the run ends, it gathers the
work of its final steps onto `treeflow/runs/<run_id>`.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from treeflow.core import graph
from treeflow.core.git import (
    MergeConflict,
    RepoLock,
    Repository,
    changed_files,
    git,
    git_locked,
    head_commit,
    identity_env,
    merge_commits,
    resolve_commit,
    run_git,
    snapshot_working_tree,
    try_lock_file,
    unlock_file,
)
from treeflow.core.locations import (
    branches_in_the_way,
    in_the_way_message,
    run_branch,
    run_lock_path,
    step_branch,
    worktree_root,
)
from treeflow.core.matrix import safe_name
from treeflow.core.model import RunResult, Step, Workflow
from treeflow.core.step_worktree import StepWorktree, step_worktree
from treeflow.core.workspace import RunRefusal, StepPlace, StepSetupError, Warn
from treeflow.core.worktree_pool import WorktreePool

_BASE_NAME = "the run's new base"


class WorkspaceError(RunRefusal):
    """The run cannot start in this repository (no commits yet, unknown base revision)."""


class GitWorkspace:
    """Places steps in worktrees of ``repo`` and gathers their work into branches."""

    def __init__(
        self,
        repo: Repository,
        workflow: Workflow,
        *,
        base: str | None = None,
        results: Mapping[str, str] | None = None,
        rebase: bool = False,
        max_parallel: int | None = None,
    ) -> None:
        """``base`` and ``results`` (the commit each already finished step left) resume a run;
        ``rebase`` resumes it from the checkout as it is now instead of ``base``. The worktree pool
        holds ``max_parallel`` worktrees unless the workflow's `pool.size` says otherwise."""
        self._repo = repo
        self._workflow = workflow
        self._warn: Warn = lambda step_id, message: None
        self._lock = RepoLock(repo)
        self._identity: dict[str, str] = {}
        self._given_base = base
        self._rebase = rebase
        self._base = ""
        self._results: dict[str, str] = dict(results or {})
        # Steps finished by an earlier execution of the run, which may have started from another base.
        self._carried = frozenset(self._results)
        self._root = worktree_root(repo)
        self._run_lock: int | None = None
        size = max_parallel or workflow.max_parallel or os.cpu_count() or 1
        self._pool = WorktreePool(repo, self._lock, workflow.pool, size)
        # Start commits made before a step took its place (to look its cache key up), by step id.
        self._starts: dict[str, str] = {}

    @property
    def lock(self) -> RepoLock:
        """The lock of the repository's git metadata that this run's steps share."""
        return self._lock

    async def start_commit(self, run_id: str, step: Step) -> str:
        """The commit ``step`` starts from: the run's base, or the merge of its needs' work. Made
        once per step: its place, if it takes one, starts from the same commit."""
        start = self._starts.get(step.id)
        if start is None:
            start = self._starts[step.id] = await self._start_commit(run_id, step)
        return start

    async def adopt_work(self, run_id: str, step: Step, start: str, commit: str | None) -> StepPlace:
        """End ``step`` without a worktree: ``commit`` (None: no work) holds its work on ``start``
        and becomes its branch, for the steps after it."""
        self._results[step.id] = start
        place = StepPlace(cwd=self._repo.root, start_commit=start)
        if commit is None:
            return place
        branch = step_branch(run_id, step.id)
        if self._given_base is not None:
            await self._move_aside(branch)  # a resumed run's step may have left earlier work on it
        with anyio.CancelScope(shield=True):
            await git_locked(self._lock, self._repo.root, "update-ref", f"refs/heads/{branch}", commit, "")
        self._results[step.id] = commit
        place.branch, place.commit = branch, commit
        return place

    async def open(self, run: RunResult, warn: Warn) -> str:
        self._warn = warn
        self._run_lock = try_lock_file(run_lock_path(self._repo, run.run_id))
        if self._run_lock is None:
            raise WorkspaceError(f"run {run.run_id} is already going on in another treeflow process")
        try:
            self._identity = await identity_env(self._repo)
            in_the_way = await branches_in_the_way(self._repo, run.run_id, run.steps)
            if in_the_way:
                raise WorkspaceError(in_the_way_message(run.run_id, in_the_way))
            if self._given_base is None:
                self._base = await self._resolve_base(run, "start")
            else:
                self._base = await self._resumed_base(run, self._given_base)
                await self._take_branch_tips(run.run_id)
        except BaseException:
            self._release_run_lock(run.run_id)
            raise
        # What recovery needs to record the run if this process dies before the journal has it.
        note = {
            "workflow": run.workflow,
            "workflow_path": str(self._workflow.path.absolute()),
            "base": self._base,
            "steps": list(run.steps),
            "started_at": run.started_at,
        }
        os.pwrite(self._run_lock, json.dumps(note).encode(), 0)
        return self._base

    def _release_run_lock(self, run_id: str) -> None:
        if self._run_lock is not None:
            run_lock_path(self._repo, run_id).unlink(missing_ok=True)
            unlock_file(self._run_lock)
            self._run_lock = None

    async def _resumed_base(self, run: RunResult, base: str) -> str:
        """The base of a resumed run: its own, or with ``rebase`` the checkout as it is now. Either
        way, when the checkout no longer holds what the base holds, the run says which it takes."""
        try:
            current = await self._resolve_base(run, "resume")
        except WorkspaceError:
            if self._rebase:
                raise
            return base  # nothing to take instead, so nothing to say
        trees = await git(self._repo.root, "rev-parse", f"{base}^{{tree}}", f"{current}^{{tree}}")
        if len(set(trees.split())) == 1:
            return base
        if self._rebase:
            self._warn(
                None,
                f"the steps that run again start from your checkout as it is now, {current[:10]}, the "
                f"run's new base instead of {base[:10]}; the steps that succeeded before keep their work",
            )
            return current
        self._warn(
            None,
            f"the run keeps its base {base[:10]}, so what changed in your checkout since ({current[:10]}) "
            f"is not seen; `treeflow resume {run.run_id} --rebase` takes your checkout as the new base",
        )
        return base

    async def _take_branch_tips(self, run_id: str) -> None:
        """Steps carried over hand their dependents their branch as it is now: the user may have
        committed on it since (a resolution of a conflict between two steps, say)."""
        for step_id in sorted(self._carried):
            left = self._results[step_id]
            branch = step_branch(run_id, step_id)
            tip = await resolve_commit(self._repo, f"refs/heads/{branch}")
            if tip is not None and tip != left:
                self._results[step_id] = tip
                self._warn(
                    step_id,
                    f"its branch {branch} has moved from {left[:10]} to {tip[:10]} since the step ended; "
                    f"the run goes on from {tip[:10]}",
                )

    async def _resolve_base(self, run: RunResult, moment: str) -> str:
        base = self._workflow.base
        head = await head_commit(self._repo)
        if base in ("working", "head"):
            if head is None:
                raise WorkspaceError(
                    f"{self._repo.root} has no commits yet; treeflow starts each step from a commit, "
                    "so commit something first"
                )
            if base == "head":
                return head
            unfinished = await _unfinished_merge(self._repo)
            if unfinished is not None:
                self._warn(None, unfinished)
            message = f"treeflow: working tree at the {moment} of run {run.run_id}"
            return await snapshot_working_tree(self._repo, head, message, self._identity)
        commit = await resolve_commit(self._repo, base)
        if commit is None:
            raise WorkspaceError(f"{self._workflow.path}: base {base!r} is not a commit in {self._repo.root}")
        return commit

    @asynccontextmanager
    async def step_place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
        start = self._starts.pop(step.id, None) or await self._start_commit(run_id, step)
        self._results[step.id] = start
        if not step.worktree:
            yield StepPlace(cwd=self._repo.root, start_commit=start)
            return
        branch = step_branch(run_id, step.id)
        path = self._root / run_id / safe_name(step.id)
        kept = await anyio.to_thread.run_sync(self._pool.kept_for, branch)
        if kept is not None or await anyio.to_thread.run_sync(os.path.lexists, path):
            # Kept by an earlier attempt of this run whose work could not be saved: it is the user's
            # to look at, and a new worktree must not take its branch from under it.
            raise StepSetupError(
                f"its earlier worktree {kept or path} is still there, kept because its work could not be "
                "saved; look at it, save what you need, remove it (`treeflow clean` saves and removes "
                "what it can), then resume"
            )
        await self._move_aside(branch)
        place = StepPlace(cwd=path, fresh=True, worktree=path, work_branch=branch, start_commit=start)
        worktree: StepWorktree | None = None
        try:
            async with step_worktree(
                self._repo,
                self._lock,
                path=path,
                branch=branch,
                start=start,
                copy=self._workflow.setup.copy,
                commit_message=f"treeflow: work of step {step.id}\n\nRun {run_id} of {self._workflow.name}.",
                identity=self._identity,
                warn=lambda message: self._warn(step.id, message),
                pool=self._pool,
            ) as worktree:
                place.cwd = place.worktree = worktree.path
                yield place
        finally:
            # Runs after the worktree's own exit, which is what commits the work.
            if worktree is not None and worktree.commit is not None:
                place.branch = branch
                place.commit = worktree.commit
                self._results[step.id] = worktree.commit
            if worktree is not None:
                place.unsaved = worktree.unsaved

    async def _move_aside(self, branch: str) -> None:
        """A resumed step starts afresh; the branch holding its earlier, unfinished work is renamed
        (`<branch>.interrupted`, never deleted) so that the new attempt can take the name."""
        old = await resolve_commit(self._repo, f"refs/heads/{branch}")
        if old is None:
            return
        for number in range(1, 1000):
            aside = f"{branch}.interrupted" + (f"-{number}" if number > 1 else "")
            if await resolve_commit(self._repo, f"refs/heads/{aside}") is None:
                # Both or neither: a cancel in between would leave the work under two names.
                root = self._repo.root
                with anyio.CancelScope(shield=True):
                    await git_locked(self._lock, root, "update-ref", f"refs/heads/{aside}", old, "")
                    await git_locked(self._lock, root, "update-ref", "-d", f"refs/heads/{branch}", old)
                self._warn(None, f"the earlier work on {branch} is kept on {aside}")
                return

    async def _start_commit(self, run_id: str, step: Step) -> str:
        if not step.needs:
            return self._base
        work = {f"`{need}`": self._results[need] for need in step.needs}
        if self._carried.intersection(step.needs):
            # Work from an earlier execution of the run holds the base it started from: a resume
            # with a new base merges that base in too (an old one is already part of the work).
            work[_BASE_NAME] = self._base
        message = f"treeflow: start of step {step.id}: work of {', '.join(step.needs)}\n\nRun {run_id}."
        merged = await merge_commits(self._repo, list(work.values()), message, self._identity)
        if isinstance(merged, MergeConflict):
            raise StepSetupError(f"cannot start: the work of {await self._who_changed_what(work, merged)}")
        return merged

    async def _who_changed_what(self, work: dict[str, str], conflict: MergeConflict) -> str:
        """``<names> conflicts in <file> (changed by <names>), ...`` for the commits in ``work``,
        each under the name it is given, merged into ``conflict``."""
        touched = {name: await self._changed_by(name, commit) for name, commit in work.items()}
        parts = []
        for path in conflict.files:
            by = [name for name in work if path in touched[name]]
            parts.append(f"{path} (changed by {' and '.join(by) or 'several steps'})")
        return f"{', '.join(work)} conflicts in " + ", ".join(parts)

    async def _changed_by(self, name: str, commit: str) -> set[str]:
        if name == _BASE_NAME:
            since = self._given_base or self._base
        else:
            # From where the work left the base: after a resume with a new base, work carried over
            # from the earlier execution started from the old one.
            code, out, _ = await run_git(self._repo.root, "merge-base", self._base, commit)
            since = out.strip() if code == 0 else self._base
        return await changed_files(self._repo, since, commit)

    async def close(self, run: RunResult) -> str | None:
        """Give the run branch `treeflow/runs/<run_id>` the merged work of its succeeded steps, and
        return its name; None when there was no work to gather or it could not be merged."""
        branch: str | None = None
        try:
            with anyio.CancelScope(shield=True):
                branch = await self._gather(run)
        finally:
            self._release_run_lock(run.run_id)
        return branch

    async def _gather(self, run: RunResult) -> str | None:
        await anyio.to_thread.run_sync(_remove_empty_dirs, self._root / run.run_id, self._root.parent)
        succeeded = [
            step_id
            for step_id, result in run.steps.items()
            if result.status.is_success and step_id in self._results
        ]
        needs = {
            step_id: [n for n in self._workflow.steps[step_id].needs if n in succeeded]
            for step_id in succeeded
        }
        ends = {step_id: self._results[step_id] for step_id in graph.leaves(needs)}
        final_work = {f"`{step_id}`": commit for step_id, commit in ends.items() if commit != self._base}
        commits = list(final_work.values())
        if not commits:
            return None
        branch = run_branch(run.run_id)
        # A resumed run's branch holds the result of its earlier steps, a merge of them when there
        # were several: the new result must contain it to move the branch forward.
        earlier = await resolve_commit(self._repo, f"refs/heads/{branch}")
        if earlier is not None and await _checked_out_anywhere(self._repo, branch):
            # Moving it would leave that checkout's files and index behind its branch.
            self._warn(None, f"{branch} is checked out in a worktree; it is left as it was")
            return None
        merged = await merge_commits(
            self._repo,
            commits if earlier is None else [earlier, *commits],
            f"treeflow: result of run {run.run_id} of {run.workflow}",
            self._identity,
        )
        if isinstance(merged, MergeConflict):
            work = final_work if earlier is None else {**final_work, branch: earlier}
            self._warn(
                None,
                f"the work of the final steps {await self._who_changed_what(work, merged)}"
                + "; each step's work is kept on its branch, but the run has no result branch",
            )
            return None
        if earlier is None:
            await git_locked(self._lock, self._repo.root, "branch", "--no-track", branch, merged)
        elif merged != earlier:
            await git_locked(
                self._lock, self._repo.root, "update-ref", f"refs/heads/{branch}", merged, earlier
            )
        return branch


_UNMERGED_SHOWN = 5


async def _unfinished_merge(repo: Repository) -> str | None:
    """A warning for a checkout in the middle of a merge (MERGE_HEAD set, or files left unmerged
    by a merge, cherry-pick, rebase or stash), whose working tree the run would start from."""
    merging = (await run_git(repo.root, "rev-parse", "-q", "--verify", "MERGE_HEAD"))[0] == 0
    listing = await git(repo.root, "ls-files", "--unmerged", "-z")
    paths = sorted({entry.split("\t", 1)[1] for entry in listing.split("\0") if "\t" in entry})
    if not paths:
        if not merging:
            return None
        return (
            "the checkout is in the middle of a merge (MERGE_HEAD is set): the run starts from its "
            "working tree, with the merged changes but not as a merge"
        )
    shown = ", ".join(paths[:_UNMERGED_SHOWN])
    more = f" and {len(paths) - _UNMERGED_SHOWN} more" if len(paths) > _UNMERGED_SHOWN else ""
    state = "is in the middle of a merge (MERGE_HEAD is set) with" if merging else "has"
    return (
        f"the checkout {state} unmerged files {shown}{more}: the run starts from them as they are, "
        "conflict markers included; resolve or abort the merge first to start from a resolved tree"
    )


async def _checked_out_anywhere(repo: Repository, branch: str) -> bool:
    listing = await git(repo.root, "worktree", "list", "--porcelain")
    return f"branch refs/heads/{branch}" in listing.splitlines()


def _remove_empty_dirs(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
