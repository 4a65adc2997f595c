"""Applying a run's work to the user's checkout, and undoing that.

Three modes. `working-tree`: a three-way merge of the run's work into the working tree as it is
(committed or not, untracked files in the way included), with the run's base as the ancestor; the
index and HEAD stay as they are. `squash`: one commit on the current branch holding the run's work
merged with HEAD; `merge`: the same tree as a merge commit whose second parent is the work. In both,
what the user had staged and not committed is carried over onto the new commit, untouched.

Before it changes anything, an apply records the checkout as it was (`backups`); `undo_apply`
brings that back, and only where the checkout is still as the apply left it. Nothing here prints:
front ends get frozen results and exceptions whose messages say what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import anyio

from treeflow.core.backups import Backup, latest_backup, retire_backup, save_backup
from treeflow.core.checkout import (
    CheckoutRefused,
    CheckoutState,
    read_state,
    refuse_if_busy,
    restore_index_file,
    save_index_file,
    set_index_entries,
    tree_changes,
    write_files,
)
from treeflow.core.git import RepoLock, Repository, changed_files, git, identity_env
from treeflow.core.run_work import FileConflict, RunWork
from treeflow.core.three_way import merge_trees


class ApplyMode(StrEnum):
    WORKING_TREE = "working-tree"
    SQUASH = "squash"
    MERGE = "merge"


class ConflictPolicy(StrEnum):
    REFUSE = "refuse"  # change nothing, and say which files conflict
    MARKERS = "markers"  # write conflict markers into those files and apply the rest


class ApplyOutcome(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # the checkout already holds all of the work
    CONFLICTS = "conflicts"  # nothing was changed


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did. ``files`` are the working tree's files it wrote or removed; ``conflicts``
    the files it refused for, or wrote with conflict markers, and ``conflicts_with`` what the work
    conflicted with; ``backup`` the ref holding the checkout as it was."""

    outcome: ApplyOutcome
    mode: ApplyMode
    work: str
    files: tuple[str, ...] = ()
    conflicts: tuple[FileConflict, ...] = ()
    conflicts_with: str = ""
    backup: str | None = None
    commit: str | None = None


@dataclass(frozen=True)
class UndoResult:
    backup: str  # the backup undone, now under refs/treeflow/undone/
    work: str
    files: tuple[str, ...]
    head: str | None  # where HEAD was put back to, when the apply had moved it


class UndoRefused(CheckoutRefused):
    """Undoing would lose something done after the apply; ``paths`` names the files."""

    def __init__(self, message: str, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


_WORKING_TREE_LABEL = "your-working-tree"


async def apply_work(
    repo: Repository,
    work: RunWork,
    *,
    mode: ApplyMode = ApplyMode.WORKING_TREE,
    on_conflict: ConflictPolicy = ConflictPolicy.REFUSE,
) -> ApplyResult:
    """Apply ``work`` to the checkout of ``repo`` as ``mode`` says.

    Raises CheckoutRefused, having changed nothing, during a rebase, merge, cherry-pick, revert or
    bisect, or with unresolved conflicts in the index.
    """
    await refuse_if_busy(repo)
    lock = RepoLock(repo)
    env = await identity_env(repo)
    touched = await changed_files(repo, work.base, work.commit)
    state = await read_state(repo, touched)
    theirs = (work_label(work), await git(repo.root, "rev-parse", f"{work.commit}^{{tree}}"))
    result = ApplyResult(ApplyOutcome.APPLIED, mode, work.label)

    if mode is ApplyMode.WORKING_TREE:
        merged = await merge_trees(repo, lock, work.base, (_WORKING_TREE_LABEL, state.work_tree), theirs, env)
        if merged.conflicts and await _holds_already(repo, state, work, theirs[1], touched):
            return _already(result)
        conflicts = await work.conflicts(repo, merged.conflicts)
        if conflicts and on_conflict is ConflictPolicy.REFUSE:
            return _refused(result, conflicts, "your working tree")
        if merged.tree == state.work_tree:
            return _already(result)
        new_head, new_index, new_work = state.head, state.index_tree, merged.tree
        result = _with(result, conflicts=conflicts, conflicts_with="your working tree" if conflicts else "")
    else:
        if state.head is None:
            raise CheckoutRefused(f"{repo.root} has no commit yet to put the work on")
        head_tree = await git(repo.root, "rev-parse", f"{state.head}^{{tree}}")
        commit_merge = await merge_trees(repo, lock, work.base, ("HEAD", head_tree), theirs, env)
        if commit_merge.conflicts:
            return _refused(result, await work.conflicts(repo, commit_merge.conflicts), "HEAD")
        if commit_merge.tree == head_tree:
            return _already(result)
        parents = [state.head, *([work.commit] if mode is ApplyMode.MERGE else [])]
        new_head = await git(
            repo.root,
            "commit-tree",
            "--no-gpg-sign",
            commit_merge.tree,
            *(arg for parent in parents for arg in ("-p", parent)),
            "-m",
            commit_message(work, mode),
            env=env,
        )
        new_tree = ("new-commit", commit_merge.tree)
        index_merge = await merge_trees(
            repo, lock, state.head, ("your-index", state.index_tree), new_tree, env
        )
        work_merge = await merge_trees(
            repo, lock, state.head, (_WORKING_TREE_LABEL, state.work_tree), new_tree, env
        )
        clashing = tuple(dict.fromkeys([*index_merge.conflicts, *work_merge.conflicts]))
        if clashing:
            return _refused(result, await work.conflicts(repo, clashing), "your uncommitted changes")
        new_index, new_work = index_merge.tree, work_merge.tree
        result = _with(result, commit=new_head)

    index_file = await save_index_file(repo) if new_index != state.index_tree else None
    backup = await save_backup(
        repo,
        lock,
        Backup(
            run_id=work.run_id,
            label=work.label,
            mode=mode.value,
            head=state.head,
            head_ref=state.head_ref,
            index_tree=state.index_tree,
            work_tree=state.work_tree,
            untracked=state.untracked,
            applied_head=new_head,
            applied_index_tree=new_index,
            applied_work_tree=new_work,
            index_file=index_file,
        ),
        env,
    )
    # Once the backup exists, the checkout is changed whole or the error says where it stopped.
    with anyio.CancelScope(shield=True):
        files = await _change_checkout(
            repo,
            work=(state.work_tree, new_work),
            index=(state.index_tree, new_index),
            head=(state.head, new_head),
            reason=f"apply {work.label}",
        )
    return _with(result, files=tuple(files), backup=backup.ref)


async def undo_apply(repo: Repository) -> UndoResult:
    """Put the checkout back as it was before the newest apply not yet undone.

    Raises UndoRefused, having changed nothing, when there is no apply to undo, when HEAD moved
    since, or naming the files edited (or staged) since the apply changed them; edits to other
    files are kept as they are.
    """
    await refuse_if_busy(repo)
    backup = await latest_backup(repo)
    if backup is None:
        raise UndoRefused(f"there is no apply to undo in {repo.root}")
    work_paths = [
        change.path for change in await tree_changes(repo, backup.work_tree, backup.applied_work_tree)
    ]
    index_paths = [
        change.path for change in await tree_changes(repo, backup.index_tree, backup.applied_index_tree)
    ]
    now = await read_state(repo, work_paths)
    if (now.head, now.head_ref) != (backup.applied_head, backup.head_ref):
        where = now.head_ref or "a detached HEAD"
        raise UndoRefused(
            f"HEAD has moved since the apply of {backup.label} ({where} at {(now.head or 'no commit')[:10]}, "
            f"not {(backup.applied_head or 'no commit')[:10]}); undo would not give back what you had"
        )
    edited = [c.path for c in await tree_changes(repo, backup.applied_work_tree, now.work_tree, work_paths)]
    staged = [
        c.path for c in await tree_changes(repo, backup.applied_index_tree, now.index_tree, index_paths)
    ]
    changed_since = list(dict.fromkeys([*edited, *staged]))
    if changed_since:
        raise UndoRefused(
            f"cannot undo the apply of {backup.label}: {', '.join(changed_since)} changed since it was "
            "applied, and undoing would overwrite that; save or revert those edits first",
            changed_since,
        )
    # The index file as it was, stat cache and all, when nothing was staged since the apply; else
    # only the entries the apply changed.
    whole_index = backup.index_file is not None and now.index_tree == backup.applied_index_tree
    with anyio.CancelScope(shield=True):
        files = await _change_checkout(
            repo,
            work=(backup.applied_work_tree, backup.work_tree),
            index=(backup.index_tree if whole_index else backup.applied_index_tree, backup.index_tree),
            head=(backup.applied_head, backup.head),
            reason=f"undo the apply of {backup.label}",
        )
        if whole_index and backup.index_file is not None:
            await restore_index_file(repo, backup.index_file)
        retired = await retire_backup(repo, RepoLock(repo), backup)
    moved_head = backup.head if backup.head != backup.applied_head else None
    return UndoResult(retired, backup.label, tuple(files), moved_head)


async def _change_checkout(
    repo: Repository,
    *,
    work: tuple[str, str],
    index: tuple[str, str],
    head: tuple[str | None, str | None],
    reason: str,
) -> list[str]:
    """Change what differs between the first and second tree of ``work`` in the working tree, of
    ``index`` in the index, and move HEAD from the first commit of ``head`` to the second; every
    other file and index entry is left as it is. Returns the files written or removed."""
    files = await write_files(repo, *work)
    await set_index_entries(repo, *index)
    old_head, new_head = head
    if new_head is not None and new_head != old_head:
        await git(repo.root, "update-ref", "-m", f"treeflow: {reason}", "HEAD", new_head, old_head or "")
    return files


async def _holds_already(
    repo: Repository, state: CheckoutState, work: RunWork, their_tree: str, touched: set[str]
) -> bool:
    """Whether the working tree already holds ``work``, which a merge may not see (the user's edits
    to a file the work renamed, carried over by the last apply, read as a conflict): each file it
    changed is as it left it, or each file the last apply of the same work wrote is still as that
    apply left it."""
    if not await tree_changes(repo, state.work_tree, their_tree, touched):
        return True
    last = await latest_backup(repo)
    if last is None or last.label != work.label or last.mode != ApplyMode.WORKING_TREE.value:
        return False
    written = [change.path for change in await tree_changes(repo, last.work_tree, last.applied_work_tree)]
    return not await tree_changes(repo, last.applied_work_tree, state.work_tree, written)


def work_label(work: RunWork) -> str:
    """The name conflict markers give the work: the branch the user knows it by."""
    if not work.steps:
        return f"runs/{work.run_id}"
    return f"{work.run_id}/{'+'.join(work.steps)}"


def commit_message(work: RunWork, mode: ApplyMode) -> str:
    taken = work.steps or tuple(step for step, commit in work.step_commits.items() if commit != work.base)
    title = (
        f"Merge treeflow run {work.run_id} ({work.workflow})"
        if mode is ApplyMode.MERGE
        else f"treeflow run {work.run_id} ({work.workflow})"
    )
    steps = ", ".join(taken) or "none"
    return f"{title}\n\nWork of run {work.run_id} of workflow {work.workflow}, from steps: {steps}.\n"


def _refused(result: ApplyResult, conflicts: tuple[FileConflict, ...], against: str) -> ApplyResult:
    return _with(result, outcome=ApplyOutcome.CONFLICTS, conflicts=conflicts, conflicts_with=against)


def _already(result: ApplyResult) -> ApplyResult:
    return _with(result, outcome=ApplyOutcome.ALREADY_APPLIED)


def _with(result: ApplyResult, **changes: Any) -> ApplyResult:
    return replace(result, **changes)
