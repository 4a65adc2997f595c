"""Reviewing and applying a run's work for the editor: `treeflow.diff`, `apply`, `undoApply`,
`discard` and `readFile`, with the semantics of the CLI's `diff`, `apply` and `discard`.

A run is looked for in the journals of the workspace's repositories. Refusals the user can act on
(no such run, no work, a busy checkout, an undo that would overwrite edits) are raised as
ReviewRequestError with the engine's message; the handlers answer them with InvalidParams.
Commands that change a checkout run one at a time in this server, so that a second click on
"Apply" sees what the first one did instead of racing it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import anyio

from treeflow.core import apply as engine_apply
from treeflow.core import discard as engine_discard
from treeflow.core.backups import latest_backup
from treeflow.core.changes import read_changes, read_file_at
from treeflow.core.checkout import CheckoutRefused
from treeflow.core.git import Repository
from treeflow.core.journal import JournalUnavailable, RunRecord
from treeflow.core.run_work import NoWork, StepsConflict, run_work
from treeflow.core.service import RunNotFound, RunRefused, find_run
from treeflow.lsp.protocol import (
    ApplyArgs,
    ApplyResult,
    DiffArgs,
    DiffResult,
    DiscardArgs,
    DiscardBranch,
    DiscardResult,
    FileChange,
    FileConflict,
    FileContent,
    ReadFileArgs,
    UndoArgs,
    UndoResult,
)
from treeflow.quoting import quoted

# Larger files are not sent to the diff editor: it would hold them whole, twice.
MAX_FILE_BYTES = 8 * 1024 * 1024
# git's own test for a binary file: a NUL byte in its first 8,000 bytes.
_BINARY_PROBE = 8000


class ReviewRequestError(Exception):
    """The request cannot be done as asked; the message says why."""


@functools.cache
def _checkout_lock() -> anyio.Lock:
    return anyio.Lock()


async def find_record(repos: Sequence[Repository], run_id: str) -> tuple[Repository, RunRecord]:
    """The repository and journal record of run ``run_id`` (an id, a unique prefix, or ``last``)."""
    for repo in repos:
        try:
            return repo, await find_run(repo, run_id)
        except RunNotFound:
            continue
        except (RunRefused, JournalUnavailable) as exc:
            raise ReviewRequestError(str(exc)) from exc
    raise ReviewRequestError(f"no run {quoted(run_id)!r} in this workspace")


async def diff(repos: Sequence[Repository], args: DiffArgs) -> DiffResult:
    repo, record = await find_record(repos, args.run_id)
    try:
        work = await run_work(repo, record, args.steps)
    except (NoWork, StepsConflict) as exc:
        raise ReviewRequestError(str(exc)) from exc
    changes = await read_changes(repo.root, work.base, work.commit)
    return DiffResult(
        run_id=work.run_id,
        steps=list(work.steps),
        root=str(repo.root),
        base=changes.base,
        commit=changes.commit,
        additions=changes.additions,
        deletions=changes.deletions,
        files=[
            FileChange(
                path=change.path,
                old_path=change.old_path,
                status=change.status,
                additions=change.additions,
                deletions=change.deletions,
                binary=change.binary,
            )
            for change in changes.files
        ],
    )


async def apply(repos: Sequence[Repository], args: ApplyArgs) -> ApplyResult:
    repo, record = await find_record(repos, args.run_id)
    async with _checkout_lock():
        try:
            work = await run_work(repo, record, args.steps)
            result = await engine_apply.apply_work(repo, work, mode=args.mode, on_conflict=args.conflicts)
        except StepsConflict as exc:
            raise ReviewRequestError(f"cannot apply: {exc}; nothing was changed") from exc
        except (NoWork, CheckoutRefused) as exc:
            raise ReviewRequestError(str(exc)) from exc
    return ApplyResult(
        outcome=result.outcome,
        mode=result.mode,
        work=result.work,
        files=list(result.files),
        conflicts=[FileConflict(path=c.path, steps=list(c.steps)) for c in result.conflicts],
        conflicts_with=result.conflicts_with,
        backup=result.backup,
        commit=result.commit,
    )


async def undo(repos: Sequence[Repository], args: UndoArgs) -> UndoResult:
    async with _checkout_lock():
        repo = await _repository_to_undo(repos, args.run_id)
        try:
            undone = await engine_apply.undo_apply(repo)
        except CheckoutRefused as exc:
            raise ReviewRequestError(str(exc)) from exc
    return UndoResult(backup=undone.backup, work=undone.work, files=list(undone.files), head=undone.head)


async def _repository_to_undo(repos: Sequence[Repository], run_id: str | None) -> Repository:
    """The repository whose newest apply is the one to undo: ``run_id``'s, which must be an apply
    of that run, or, without it, the one whose newest apply is the newest of all."""
    if run_id is not None:
        repo, record = await find_record(repos, run_id)
        backup = await latest_backup(repo)
        if backup is not None and backup.run_id != record.run.run_id:
            raise ReviewRequestError(
                f"the last apply in {repo.root} was of {backup.label}, not of run {record.run.run_id}; "
                "undo that one first"
            )
        return repo
    newest: tuple[str, Repository] | None = None
    for repo in repos:
        backup = await latest_backup(repo)
        # Backup refs end in their time, so they sort as they were made.
        if backup is not None and (newest is None or backup.ref.rsplit("/", 1)[-1] > newest[0]):
            newest = (backup.ref.rsplit("/", 1)[-1], repo)
    if newest is None:
        raise ReviewRequestError("there is no apply to undo in this workspace")
    return newest[1]


async def discard(repos: Sequence[Repository], args: DiscardArgs) -> DiscardResult:
    repo, record = await find_record(repos, args.run_id)
    async with _checkout_lock():
        try:
            plan = await engine_discard.plan_discard(repo, record)
        except RunRefused as exc:
            raise ReviewRequestError(str(exc)) from exc
        branches = [
            DiscardBranch(
                name=branch.name,
                tip=branch.tip,
                unique_commits=list(branch.unique_commits),
                checked_out=branch.checked_out,
            )
            for branch in plan.branches
        ]
        if args.confirmed is None:
            return DiscardResult(plan.run_id, branches, discarded=False, deleted=[], kept=[])
        # Only what the user saw and confirmed goes, and only as it was then: the engine deletes a
        # branch only if it still points where the plan says, so the plan takes the confirmed tips.
        confirmed = engine_discard.DiscardPlan(
            plan.run_id,
            tuple(
                engine_discard.BranchToDelete(
                    branch.name, args.confirmed[branch.name], branch.unique_commits, branch.checked_out
                )
                for branch in plan.branches
                if branch.name in args.confirmed
            ),
        )
        result = await engine_discard.discard(repo, confirmed)
    unconfirmed = [branch.name for branch in plan.branches if branch.name not in args.confirmed]
    return DiscardResult(
        plan.run_id, branches, discarded=True, deleted=list(result.deleted), kept=[*result.kept, *unconfirmed]
    )


async def read_file(repos: Sequence[Repository], args: ReadFileArgs) -> FileContent:
    """The file at ``args.path`` as revision ``args.rev`` has it; only from git's objects, never
    from the disk, and only of a repository of the workspace."""
    repo, relative = _locate(repos, args.path)
    data = await read_file_at(repo.root, args.rev, relative)
    if data is None:
        return FileContent(exists=False, binary=False, size=0, text=None)
    binary = b"\0" in data[:_BINARY_PROBE]
    if binary or len(data) > MAX_FILE_BYTES:
        return FileContent(exists=True, binary=binary, size=len(data), text=None)
    return FileContent(exists=True, binary=False, size=len(data), text=data.decode("utf-8", "replace"))


def _locate(repos: Sequence[Repository], given: str) -> tuple[Repository, str]:
    """The repository holding the path ``given`` and the path inside it, as git names it."""
    path = Path(given)
    if not path.is_absolute():
        raise ReviewRequestError(f"treeflow.readFile: {quoted(given)} is not an absolute path")
    # Lexically: the file may not exist on disk at all (deleted since, or only in the run's work).
    normal = Path(os.path.normpath(path))
    for repo in repos:
        if normal.is_relative_to(repo.root) and normal != repo.root:
            return repo, normal.relative_to(repo.root).as_posix()
    raise ReviewRequestError(f"treeflow.readFile: {quoted(given)} is in no repository of this workspace")
