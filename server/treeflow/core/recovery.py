"""After a crash: runs whose treeflow process died are found, stopped and saved.

At every start of the CLI and the language server, each run the journal says is running, whose
owner process is gone, becomes `interrupted`: the process groups it recorded are ended (after
checking by start time that each is still the same process, so a reused pid is never hit), and its
worktrees get their changes committed to their step branches before they are removed. A step that
ran on a Dask worker first gets the work that worker keeps for it (`remote.kept_work`), as the
dead process would have fetched it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from treeflow.core import journal
from treeflow.core.clean import save_worktrees_of_run
from treeflow.core.git import (
    GitError,
    RepoLock,
    Repository,
    identity_env,
    is_checked_out,
    try_lock_file,
    unlock_file,
)
from treeflow.core.locations import run_lock_path, run_locks_folder, worktree_root
from treeflow.core.matrix import safe_name
from treeflow.core.model import RemotePlace, RunResult, RunStatus, StepResult, StepStatus
from treeflow.core.ownership import end_orphaned_git, stale_scratch_indexes
from treeflow.core.process import (
    end_process_group,
    process_group_alive,
    process_groups_with_env,
    process_start_ticks,
)
from treeflow.core.remote.choice import INSTALL_DASK
from treeflow.core.remote.worker_cache import session_ref
from treeflow.core.setup_copy import copied_files
from treeflow.core.spec import WorkflowError, load_workflow
from treeflow.core.step_worktree import StepWorktree, save_and_remove
from treeflow.core.worktree_pool import is_pooled, settle_pool

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the treeflow process running it stopped before it ended"


async def recover(repo: Repository, say: Callable[[str], None]) -> list[str]:
    """Recover every dead run of ``repo``; return their ids. ``say`` hears what was done."""
    path = journal.journal_path(repo)
    records = await anyio.to_thread.run_sync(lambda: journal.read_runs(path, status=RunStatus.RUNNING.value))
    orphans = _OrphanedGit(repo, say)
    recovered = []
    for record in records:
        if record.owner_alive():
            continue
        lock = try_lock_file(run_lock_path(repo, record.run.run_id))
        if lock is None:
            continue  # its process is alive after all (a lock dies with its holder)
        try:
            # The list was read before the lock was taken: another treeflow may have recovered or
            # resumed the run in between.
            current = await anyio.to_thread.run_sync(journal.read_run, path, record.run.run_id)
            if current is None or current.run.status is not RunStatus.RUNNING or current.owner_alive():
                continue
            with anyio.CancelScope(shield=True):
                await orphans.end()
                await _recover_run(repo, path, current, os.fstat(lock).st_mtime, say)
            recovered.append(record.run.run_id)
        finally:
            run_lock_path(repo, record.run.run_id).unlink(missing_ok=True)
            unlock_file(lock)
    recovered.extend(await _recover_unrecorded(repo, path, orphans, say))
    with anyio.CancelScope(shield=True):
        # After the runs: their processes, which could still write in a pooled worktree, are gone.
        for action in await settle_pool(repo, empty=False, before=orphans.end):
            say(str(action))
        await _remove_stale_scratch_indexes(repo, orphans, say)
    return recovered


class _OrphanedGit:
    """Ends, once per recovery and only when there is a dead run or index copy to clear up after,
    the git commands dead treeflows left running in the repository and its worktree folder."""

    def __init__(self, repo: Repository, say: Callable[[str], None]) -> None:
        self._places = (repo.root, repo.common_dir, worktree_root(repo))
        self._say = say
        self._ended = False

    async def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        for group in await end_orphaned_git(self._places):
            self._say(f"ended git left running by a treeflow process that is gone (group {group})")


async def _remove_stale_scratch_indexes(
    repo: Repository, orphans: _OrphanedGit, say: Callable[[str], None]
) -> None:
    """A base snapshot works on a copy of the index, removed when it is done; one whose process
    died first stays, as large as the user's index, until this."""
    stale = await anyio.to_thread.run_sync(stale_scratch_indexes, repo.state_dir)
    if not stale:
        return
    await orphans.end()  # a git still writing the copy would make it again
    for index in stale:
        index.unlink(missing_ok=True)
        say(f"removed {index.name}, an index copy a treeflow process that is gone left behind")


async def _recover_unrecorded(
    repo: Repository, path: Path, orphans: _OrphanedGit, say: Callable[[str], None]
) -> list[str]:
    """Clear up after runs that died before the journal said they were running.

    A run holds its lock file from before its first step until its end, and removes it then; a lock
    file nobody holds is a run whose process died. When that came before the journal's first write
    of the run (or of a resume of it), only the lock file, the run's processes and its worktrees
    tell of it.
    """
    folder = run_locks_folder(repo)
    if not folder.is_dir():
        return []
    recovered = []
    for lock_file in sorted(folder.glob("*.lock")):
        run_id = lock_file.stem
        lock = try_lock_file(lock_file, create=False)
        if lock is None:
            continue
        try:
            # A run writes what it is into its lock file once it has its base; a lock file without
            # that is `treeflow clean`'s, an older treeflow's, or a run's that died before any step.
            note = _lock_note(os.pread(lock, 65536, 0))
            if note is None:
                continue
            locked_at = os.fstat(lock).st_mtime
            record = await anyio.to_thread.run_sync(journal.read_run, path, run_id)
            if record is not None and record.run.status is RunStatus.RUNNING:
                continue  # its owner died after the recovery above read the journal: next time
            with anyio.CancelScope(shield=True):
                await orphans.end()
                done = await _recover_unrecorded_run(repo, run_id, Path(note["workflow_path"]), locked_at)
                if record is None:
                    await anyio.to_thread.run_sync(journal.execute, path, _interrupted_run(run_id, note))
            lock_file.unlink(missing_ok=True)
            if done or record is None:
                say(f"run {run_id} was interrupted before the journal recorded it; recovering it")
                for line in done:
                    say(f"  {line}")
                if record is None:
                    say(f"run {run_id} is marked interrupted; `treeflow resume {run_id}` finishes it")
                recovered.append(run_id)
        finally:
            unlock_file(lock)
    return recovered


def _lock_note(data: bytes) -> dict[str, Any] | None:
    try:
        note = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(note, dict) or not isinstance(note.get("workflow_path"), str):
        return None
    return note


def _interrupted_run(run_id: str, note: dict[str, Any]) -> list[journal.Statement]:
    """Rows that make a run the journal never heard of resumable, from what its lock file said."""
    run = RunResult(
        run_id=run_id,
        workflow=str(note.get("workflow") or ""),
        workflow_path=Path(note["workflow_path"]),
        status=RunStatus.INTERRUPTED,
        base_commit=note.get("base"),
        started_at=note.get("started_at"),
        ended_at=time.time(),
        steps={str(step_id): StepResult() for step_id in note.get("steps") or []},
    )
    statements = [journal.record_run(run)]
    for position, step_id in enumerate(run.steps):
        step = StepResult(status=StepStatus.INTERRUPTED, error=INTERRUPTED)
        statements.append(journal.mark_step(run_id, step_id, position, step))
    return statements


async def _recover_unrecorded_run(
    repo: Repository, run_id: str, workflow: Path, locked_at: float
) -> list[str]:
    done = [f"ended processes of the run (group {group})" for group in await _end_processes_of(run_id)]
    # Only once its processes are gone: they could still be writing in its worktrees.
    actions = await save_worktrees_of_run(
        repo,
        RepoLock(repo),
        run_id,
        _saved_message(run_id, "its steps"),
        made_since=locked_at,
        besides=set(),
        setup_copy=_setup_copy_patterns(workflow),
    )
    return done + [str(action) for action in actions]


async def _recover_run(
    repo: Repository, path: Path, record: journal.RunRecord, locked_at: float, say: Callable[[str], None]
) -> None:
    run_id = record.run.run_id
    say(
        f"run {run_id} of {record.run.workflow} was interrupted (its treeflow process is gone); recovering it"
    )
    groups = await anyio.to_thread.run_sync(journal.live_process_groups, path, run_id)
    own_group = os.getpgrp()
    for step_id, group, start_ticks in groups:
        if group <= 1 or group == own_group or not process_group_alive(group):
            continue
        leader = process_start_ticks(group)
        if leader is not None and leader != start_ticks:
            say(f"  {step_id}: pid {group} now belongs to another process; left alone")
            continue
        await end_process_group(group)
        say(f"  {step_id}: ended its processes (group {group})")
    # The journal writes in batches, so a process started just before the crash may have no row;
    # its environment still names the run.
    for group in await _end_processes_of(run_id):
        say(f"  ended processes of the run the journal had not recorded yet (group {group})")
    lock = RepoLock(repo)
    identity = await identity_env(repo)
    copied = _setup_copy_patterns(record.run.workflow_path)
    statements = [journal.processes_ended(run_id)]
    remotes = await anyio.to_thread.run_sync(journal.remote_places, path, run_id)
    known: set[Path] = set()
    for position, (step_id, step) in enumerate(record.steps.items()):
        result = step.result
        if result.status.is_final:
            continue
        fetched = _RemoteWork()
        if step_id in remotes:
            fetched = await _fetch_remote_work(repo, run_id, step_id, step.worktree, remotes[step_id], say)
            if fetched.commit is not None:
                # A pooled worktree is saved later; its branch already holds this work.
                result = replace(result, branch=step.work_branch, commit=fetched.commit)
        # A pooled worktree is saved by `settle_pool`, once every dead run's processes are ended.
        if (
            step.worktree is not None
            and step.work_branch
            and step.start_commit
            and step.worktree.is_dir()
            and not is_pooled(repo, step.worktree)
        ):
            known.add(step.worktree)
            worktree = StepWorktree(path=step.worktree, branch=step.work_branch, start=step.start_commit)
            worktree.copied = await copied_files(step.worktree, repo.root, copied)
            try:
                populated = await is_checked_out(step.worktree)
            except (GitError, OSError) as exc:
                say(f"  {step_id}: its worktree {step.worktree} is kept as it is: {exc}")
                populated = None
            if populated is not None:
                await save_and_remove(
                    repo,
                    lock,
                    worktree,
                    populated=populated,
                    message=_saved_message(run_id, f"step {step_id}"),
                    identity=identity,
                    warn=_prefixed(say, step_id),
                )
            if worktree.commit is not None:
                result = replace(result, branch=worktree.branch, commit=worktree.commit)
                say(f"  {step_id}: its work is saved on {worktree.branch}")
        error = INTERRUPTED if fetched.lost is None else f"{INTERRUPTED}; {fetched.lost}"
        result = replace(result, status=StepStatus.INTERRUPTED, error=error)
        statements.append(journal.mark_step(run_id, step_id, position, result))
    # A step placed in the last moments before the crash has a worktree the journal had no row for.
    for action in await save_worktrees_of_run(
        repo,
        lock,
        run_id,
        _saved_message(run_id, "a step"),
        made_since=locked_at,
        besides=known,
        setup_copy=copied,
    ):
        say(f"  {action}")
    statements.append(journal.mark_run(run_id, RunStatus.INTERRUPTED))
    await anyio.to_thread.run_sync(journal.execute, path, statements)
    say(f"run {run_id} is marked interrupted; `treeflow resume {run_id}` finishes it")


@dataclass(frozen=True)
class _RemoteWork:
    """What recovery did with the work a step's Dask worker kept: the commit it fetched, or why
    the work is lost for the step."""

    commit: str | None = None
    lost: str | None = None


async def _fetch_remote_work(
    repo: Repository,
    run_id: str,
    step_id: str,
    worktree: Path | None,
    remote: RemotePlace,
    say: Callable[[str], None],
) -> _RemoteWork:
    """Bring the work a step's Dask worker keeps for it into its worktree, before that is saved,
    and say what happened, there and in the step's log."""
    where = f"Dask worker {remote.worker}" if remote.worker else f"the Dask workers of {remote.scheduler}"
    kept_in = f"{session_ref(remote.session)} of the worker's cache repository"
    lost: str | None = None
    if worktree is None or not await anyio.to_thread.run_sync(worktree.is_dir):
        lost = f"its work on {where} is not fetched: its worktree here is gone; it stays in {kept_in}"
    else:
        try:
            # Deferred: distributed takes about a second to import, and only runs that sent steps
            # to Dask need it.
            from treeflow.core.remote.kept_work import WorkNotFetched, fetch_kept_work
        except ImportError as exc:
            lost = (
                f"its work on {where} is not fetched: the `distributed` package is missing "
                f"({exc.name or exc}; {INSTALL_DASK}); it stays in {kept_in}"
            )
        else:
            try:
                fetched = await fetch_kept_work(repo, worktree, remote)
            except (WorkNotFetched, GitError, OSError) as exc:
                lost = f"its work on {where} is lost for this step: {exc}; it was in {kept_in}"
            else:
                told = (
                    f"fetched the work {where} kept for it ({fetched[:12]})"
                    if fetched is not None
                    else f"{where} kept no work of it beyond what is here"
                )
                say(f"  {step_id}: {told}")
                await anyio.to_thread.run_sync(_note_in_log, repo, run_id, step_id, f"recovery {told}")
                return _RemoteWork(commit=fetched)
    say(f"  {step_id}: {lost}")
    await anyio.to_thread.run_sync(_note_in_log, repo, run_id, step_id, f"recovery: {lost}")
    return _RemoteWork(lost=lost)


def _note_in_log(repo: Repository, run_id: str, step_id: str, text: str) -> None:
    path = repo.state_dir / "logs" / run_id / f"{safe_name(step_id)}.log"
    try:
        with path.open("ab") as log_file:
            log_file.write(f"--- treeflow: {text} ---\n".encode())
    except OSError as exc:
        log.debug("cannot write to the log of %s: %s", step_id, exc)


async def _end_processes_of(run_id: str) -> list[int]:
    """End every process group whose environment names the run (steps pass it on to all they start)."""
    groups = await anyio.to_thread.run_sync(process_groups_with_env, "TREEFLOW_RUN_ID", run_id)
    ended = sorted(groups - {os.getpgrp()})
    for group in ended:
        await end_process_group(group)
    return ended


def _saved_message(run_id: str, whose: str) -> str:
    return f"treeflow: work of {whose}, saved after an interruption\n\nRun {run_id}."


def _prefixed(say: Callable[[str], None], step_id: str) -> Callable[[str], None]:
    return lambda message: say(f"  {step_id}: {message}")


def _setup_copy_patterns(workflow_path: Path) -> tuple[str, ...]:
    """What `setup.copy` names now: for a worktree without a record of what was copied into it,
    the files it names must not be committed either."""
    try:
        return load_workflow(workflow_path).setup.copy
    except (WorkflowError, OSError):
        return ()
