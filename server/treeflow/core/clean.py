"""`treeflow clean`: remove what runs left behind, and never a commit that exists nowhere else.

Leftover step worktrees (from a crash, or a removal that failed) get their changes committed to
their branch before they are removed. A folder in treeflow's worktree folder that git no longer
knows as a worktree (a checkout that went on after its worktree was removed) is removed when every
file in it is on its step's branch or start commit, and kept and reported otherwise. A treeflow
branch is deleted only when another ref that stays contains its tip; branches holding commits found
nowhere else are kept and reported. Only branches of treeflow's own form are touched; worktrees,
folders and branches of runs still going on in another treeflow process are left alone.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio

from treeflow.core import journal
from treeflow.core.agent_protocol import TREEFLOW_DIR
from treeflow.core.git import (
    GitError,
    RepoLock,
    Repository,
    commit_worktree,
    git,
    git_locked,
    identity_env,
    is_checked_out,
    is_within,
    run_git,
    try_lock_file,
    unlock_file,
)
from treeflow.core.locations import (
    run_branch,
    run_lock_path,
    run_locks_folder,
    run_of_branch,
    step_branch,
    worktree_root,
)
from treeflow.core.matrix import safe_name
from treeflow.core.model import RunStatus
from treeflow.core.ownership import end_orphaned_git, scratch_index_name
from treeflow.core.setup_copy import copied_files, copies_expected
from treeflow.core.spec import WorkflowError, load_workflow
from treeflow.core.step_cache import CACHE_REFS, DEFAULT_CACHE_ENTRIES, expire_entries
from treeflow.core.step_worktree import why_not_savable
from treeflow.core.worktree_pool import is_pooled, settle_pool

_NAMES_SHOWN = 5


@dataclass(frozen=True)
class Action:
    what: str
    reason: str
    done: bool
    failed: bool = False

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass(frozen=True)
class _Worktree:
    path: Path
    branch: str | None
    lock: str | None  # the reason given, "" for none; None when not locked


async def clean(
    repo: Repository, *, dry_run: bool, keep_days: int = 30, keep_cache: int = DEFAULT_CACHE_ENTRIES
) -> list[Action]:
    """Clean ``repo``; with ``dry_run`` only say what would be done. Returns each action taken.

    Runs that ended more than ``keep_days`` ago are forgotten too: their journal rows and logs.
    Their branches are judged like any other, so work found nowhere else stays. Cached step results
    not used for ``keep_days`` days expire, and so do those beyond the ``keep_cache`` used last.
    """
    actions: list[Action] = []
    await _forget_old_runs(repo, time.time() - keep_days * 86400, dry_run, actions)
    await _expire_cache(repo, keep_days * 86400.0, keep_cache, dry_run, actions)
    lock = RepoLock(repo)
    verb = "would " if dry_run else ""
    active = _active_runs(repo)
    try:
        await _clean_worktrees(repo, lock, active, dry_run, verb, actions)
        await _clean_branches(repo, lock, active, dry_run, verb, actions)
    finally:
        for run_id, fd in active.items():
            if fd is not None:
                if not dry_run:
                    run_lock_path(repo, run_id).unlink(missing_ok=True)
                unlock_file(fd)
    return actions


async def _forget_old_runs(repo: Repository, cutoff: float, dry_run: bool, actions: list[Action]) -> None:
    path = journal.journal_path(repo)
    if dry_run:
        old = [
            record.run.run_id
            for record in await anyio.to_thread.run_sync(journal.read_runs, path)
            if record.run.status is not RunStatus.RUNNING
            and (record.run.ended_at or record.run.started_at or 0) < cutoff
        ]
    else:
        old = (
            await anyio.to_thread.run_sync(journal.forget_runs_before, path, cutoff) if path.exists() else []
        )
    for run_id in old:
        logs = repo.state_dir / "logs" / run_id
        if not dry_run:
            await anyio.to_thread.run_sync(partial(shutil.rmtree, logs, ignore_errors=True))
        verb = "would forget" if dry_run else "forgot"
        actions.append(
            Action(f"{verb} run {run_id}", "older than the retention period (its logs too)", not dry_run)
        )


async def _expire_cache(
    repo: Repository, max_age_s: float, max_entries: int, dry_run: bool, actions: list[Action]
) -> None:
    if not journal.journal_path(repo).exists():
        return
    expired = await expire_entries(repo, max_age_s, max_entries, dry_run=dry_run)
    verb = "would expire" if dry_run else "expired"
    for entry in expired:
        what = f"{verb} cached result {entry.key[:12]}" + (f" of {entry.source}" if entry.source else "")
        actions.append(Action(what, entry.reason, not dry_run))


def _active_runs(repo: Repository) -> dict[str, int | None]:
    """Each run with a lock file: None when another process holds it (the run is live), else the
    descriptor of the lock this process now holds, which keeps the run from starting meanwhile."""
    folder = run_locks_folder(repo)
    result: dict[str, int | None] = {}
    if folder.is_dir():
        for entry in folder.glob("*.lock"):
            result[entry.stem] = try_lock_file(entry)
    return result


def _is_live(run_id: str | None, active: dict[str, int | None]) -> bool:
    return run_id is not None and run_id in active and active[run_id] is None


async def _clean_worktrees(
    repo: Repository,
    lock: RepoLock,
    active: dict[str, int | None],
    dry_run: bool,
    verb: str,
    actions: list[Action],
) -> None:
    root = worktree_root(repo)
    # Pooled worktrees are the pool's to save and remove, whichever step last used them.
    for pooled in await settle_pool(repo, empty=True, dry_run=dry_run):
        actions.append(Action(pooled.what, pooled.reason, pooled.done, pooled.failed))
    for worktree in await _list_worktrees(repo):
        # Only treeflow makes worktrees under its root; one elsewhere is the user's, even on a
        # treeflow branch (`git worktree add ../review treeflow/runs/…`), and is never touched.
        if not worktree.path.is_relative_to(root) or is_pooled(repo, worktree.path):
            continue
        run_id = _run_of_worktree(worktree, root)
        if run_id is None:
            continue
        if run_id not in active:
            # A run that started after this clean did: its lock, taken now, says whether it is live
            # and, if it is not, keeps it from starting while its worktree is cleaned.
            active[run_id] = try_lock_file(run_lock_path(repo, run_id))
        if _is_live(run_id, active):
            actions.append(Action(f"kept worktree {worktree.path}", f"run {run_id} is still going on", False))
            continue
        action = await _clean_worktree(repo, lock, worktree, run_id, dry_run, verb)
        if action is not None:
            actions.append(action)
    # git reports what it would prune on stderr.
    code, _, stale = await run_git(repo.root, "worktree", "prune", "--dry-run", "--verbose")
    if code != 0:
        raise GitError(("worktree", "prune", "--dry-run"), code, stale.strip())
    for line in stale.splitlines():
        actions.append(Action(f"{verb}prune worktree record", line.strip(), not dry_run))
    if stale and not dry_run:
        await git_locked(lock, repo.root, "worktree", "prune")
    await _clean_unknown_folders(repo, active, dry_run, verb, actions)
    if not dry_run:
        await anyio.to_thread.run_sync(_remove_empty_folders, root)


async def _clean_unknown_folders(
    repo: Repository, active: dict[str, int | None], dry_run: bool, verb: str, actions: list[Action]
) -> None:
    """Remove the folders at ``<root>/<run>/<step>`` that git does not know as worktrees and that
    hold nothing found nowhere else; report those that do."""
    root = worktree_root(repo)
    known = {w.path for w in await _list_worktrees(repo, with_main=True)}
    known |= {path.resolve() for path in known}
    folders = [
        (run_id, folder)
        for run_id, folder in await anyio.to_thread.run_sync(_step_folders, root)
        if not is_pooled(repo, folder)
    ]
    unknown = []
    for run_id, folder in folders:
        if folder in known or folder.resolve() in known:
            continue
        if run_id not in active:
            active[run_id] = try_lock_file(run_lock_path(repo, run_id))
        if not _is_live(run_id, active):
            unknown.append((run_id, folder))
    if not unknown:
        return
    # A git a dead treeflow left running in such a folder would go on writing into it.
    await end_orphaned_git((root,))
    path = journal.journal_path(repo)
    for run_id, folder in unknown:
        record = await anyio.to_thread.run_sync(journal.read_run, path, run_id) if path.exists() else None
        candidates = await _commits_a_step_folder_may_hold(repo, record, run_id, folder.name)
        copied = (
            await anyio.to_thread.run_sync(_setup_copy_patterns, record.run.workflow_path)
            if record is not None
            else ()
        )
        found_nowhere, matched = await _files_found_nowhere(repo, folder, candidates, copied)
        gone = "git no longer knows it as a worktree"
        if found_nowhere:
            shown = ", ".join(found_nowhere[:_NAMES_SHOWN]) + (
                ", ..." if len(found_nowhere) > _NAMES_SHOWN else ""
            )
            reason = (
                f"{gone}, and it holds changes found on no branch ({shown}); save what you need, "
                "then remove it yourself"
            )
            actions.append(Action(f"kept folder {folder}", reason, False, failed=True))
            continue
        if not dry_run:
            await anyio.to_thread.run_sync(shutil.rmtree, folder)
        actions.append(
            Action(
                f"{verb}remove folder {folder}",
                f"{gone}, and "
                + (f"every file in it is as in {matched}" if matched else "it holds no file")
                + f" (left over from run {run_id})",
                not dry_run,
            )
        )


def _setup_copy_patterns(workflow_path: Path) -> tuple[str, ...]:
    try:
        return load_workflow(workflow_path).setup.copy
    except (WorkflowError, OSError):
        return ()


def _step_folders(root: Path) -> list[tuple[str, Path]]:
    """(run id, folder) of each folder where treeflow puts a step's worktree."""
    found = []
    for run_folder in sorted(root.iterdir()) if root.is_dir() else []:
        if run_folder.is_symlink() or not run_folder.is_dir():
            continue
        for folder in sorted(run_folder.iterdir()):
            if not folder.is_symlink() and folder.is_dir():
                found.append((run_folder.name, folder))
    return found


async def _commits_a_step_folder_may_hold(
    repo: Repository, record: journal.RunRecord | None, run_id: str, step_id: str
) -> list[tuple[str, str]]:
    """(commit, what it is) of each commit whose files the folder of step ``step_id`` may be a
    checkout of: its branch, where the journal says it started, its run's base and result."""
    named = [
        (f"refs/heads/{step_branch(run_id, step_id)}", step_branch(run_id, step_id)),
        (f"refs/heads/{run_branch(run_id)}", run_branch(run_id)),
    ]
    # The folder bears the step's safe name (a matrix combination's differs from its id).
    steps = record.steps if record is not None else {}
    step = next((step for known, step in steps.items() if safe_name(known) == step_id), None)
    if step is not None and step.start_commit:
        named.append((step.start_commit, f"the commit step {step_id} started from"))
    if record is not None and record.run.base_commit:
        named.append((record.run.base_commit, f"the base commit of run {run_id}"))
    candidates = []
    for rev, what in named:
        code, out, _ = await run_git(repo.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        if code == 0:
            candidates.append((out.strip(), what))
    return candidates


async def _files_found_nowhere(
    repo: Repository, folder: Path, candidates: list[tuple[str, str]], copied: tuple[str, ...]
) -> tuple[list[str], str]:
    """The files in ``folder`` that are new or different in each candidate commit, for the
    candidate with fewest, and that candidate's name; ([], name) when one has them all. Files
    missing from the folder do not count: a checkout cut short lacks them, and git keeps them.
    Neither do new files that are never a step's work: the agent protocol's, and those the
    ``copied`` (`setup.copy`) patterns bring from the checkout, copies of the user's own files."""
    index = repo.state_dir / scratch_index_name()
    env = {"GIT_DIR": str(repo.common_dir), "GIT_WORK_TREE": str(folder), "GIT_INDEX_FILE": str(index)}
    held_back = {TREEFLOW_DIR, *await anyio.to_thread.run_sync(copies_expected, repo.root, copied)}
    try:
        if not candidates:
            return await _new_or_changed(folder, env, None, held_back), ""
        fewest: list[str] = []
        for commit, what in candidates:
            changed = await _new_or_changed(folder, env, commit, held_back)
            if not changed:
                return [], what
            if not fewest or len(changed) < len(fewest):
                fewest = changed
        return fewest, ""
    finally:
        index.unlink(missing_ok=True)


async def _new_or_changed(
    folder: Path, env: dict[str, str], commit: str | None, held_back: set[str]
) -> list[str]:
    """Files of ``folder`` that ``commit`` lacks or has otherwise (all of them without a commit)."""
    await git(folder, "read-tree", *([commit] if commit else ["--empty"]), env=env)
    await git(folder, "add", "--all", "--", ".", env=env)
    if commit:
        fields = (await git(folder, "diff-index", "--cached", "--name-status", "-z", commit, env=env)).split(
            "\0"
        )
        changes = list(zip(fields[::2], fields[1::2], strict=False))
    else:
        changes = [("A", path) for path in (await git(folder, "ls-files", "-z", env=env)).split("\0")]
    return [
        path
        for status, path in changes
        if path and status[:1] in ("A", "M", "T") and not (status == "A" and is_within(path, held_back))
    ]


async def _clean_worktree(
    repo: Repository,
    lock: RepoLock,
    worktree: _Worktree,
    run_id: str,
    dry_run: bool,
    verb: str,
    message: str = "treeflow: work left in a worktree, saved by `treeflow clean`",
    setup_copy: tuple[str, ...] = (),
) -> Action | None:
    """Commit what a worktree of a dead run holds to its step branch (never what `setup.copy` put
    there: see `copied_files`), then remove it."""
    if not worktree.path.is_dir():
        return None
    saved = ""
    if not dry_run:
        kept = f"kept worktree {worktree.path}"
        # A step's worktree sits at <root>/<run>/<step>: its work belongs on that step's branch, and
        # never on a branch the step switched to.
        parts = worktree.path.relative_to(worktree_root(repo)).parts
        branch = step_branch(*parts) if len(parts) == 2 else worktree.branch
        try:
            commit = None
            if await is_checked_out(worktree.path):
                problem = await why_not_savable(worktree.path, branch)
                if problem is not None:
                    return Action(kept, problem, False, failed=True)
                copied = await copied_files(worktree.path, repo.root, setup_copy)
                commit = await commit_worktree(
                    worktree.path, message, [TREEFLOW_DIR, *copied], await identity_env(repo)
                )
        except (GitError, OSError) as exc:
            return Action(kept, f"could not commit its work: {exc}", False, failed=True)
        if commit:
            saved = f"; its changes were committed to {worktree.branch} as {commit[:12]}"
        try:
            # git locks a worktree as "initializing" while it makes it; one whose creation was
            # cut short stays so, and only a double --force removes it. Other locks are the
            # user's, and are respected.
            force = ["--force", "--force"] if worktree.lock == "initializing" else ["--force"]
            await git_locked(lock, repo.root, "worktree", "remove", *force, str(worktree.path))
        except GitError as exc:
            return Action(kept, f"could not remove it{saved}: {exc}", False, failed=True)
    on = f" (branch {worktree.branch})" if worktree.branch else ""
    return Action(
        f"{verb}remove worktree {worktree.path}{on}", f"left over from run {run_id}{saved}", not dry_run
    )


def _run_of_worktree(worktree: _Worktree, root: Path) -> str | None:
    parts = worktree.path.relative_to(root).parts
    return _run_of(worktree.branch) or (parts[0] if parts else None)


async def save_worktrees_of_run(
    repo: Repository,
    lock: RepoLock,
    run_id: str,
    message: str,
    *,
    made_since: float,
    besides: set[Path],
    setup_copy: tuple[str, ...],
) -> list[Action]:
    """Save and remove the worktrees a dead run's last process made (since ``made_since``), but those
    in ``besides``; the caller holds the run's lock. It finds those the journal never heard of: a
    crash can come before the journal writes. Older ones were kept on purpose by an earlier attempt.
    """
    root = worktree_root(repo)
    actions = []
    for worktree in await _list_worktrees(repo):
        if (
            not worktree.path.is_relative_to(root)
            or worktree.path in besides
            or is_pooled(repo, worktree.path)
        ):
            continue
        if _run_of_worktree(worktree, root) != run_id:
            continue
        try:
            if (worktree.path / ".git").lstat().st_mtime < made_since:
                continue
        except OSError:
            continue  # not a worktree git can work in: `treeflow clean` reports it
        action = await _clean_worktree(repo, lock, worktree, run_id, False, "", message, setup_copy)
        if action is not None:
            actions.append(action)
    if actions:
        await anyio.to_thread.run_sync(_remove_empty_folders, root)
    return actions


async def _clean_branches(
    repo: Repository,
    lock: RepoLock,
    active: dict[str, int | None],
    dry_run: bool,
    verb: str,
    actions: list[Action],
) -> None:
    listing = await git(
        repo.root, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/treeflow/"
    )
    branches = [tuple(line.split(" ", 1)) for line in listing.splitlines() if line]
    # Step branches first: once they are gone, a run branch is judged against the user's refs only.
    branches.sort(key=lambda item: (item[0].startswith("treeflow/runs/"), item[0]))
    checked_out = {w.branch for w in await _list_worktrees(repo, with_main=True) if w.branch}
    deleted: set[str] = set()
    for name, tip in branches:
        run_id = _run_of(name)
        if run_id is None or _is_live(run_id, active) or name in checked_out:
            continue  # not treeflow's to touch, or in use
        # Only refs that keep commits for good count: not the stash, bisect or rewrite backups.
        holders = await git(
            repo.root,
            "for-each-ref",
            "--format=%(refname)",
            "--contains",
            tip,
            "refs/heads/",
            "refs/tags/",
            "refs/remotes/",
        )
        keepers = [ref for ref in holders.splitlines() if ref not in (f"refs/heads/{name}", *deleted)]
        if keepers:
            holder = keepers[0].removeprefix("refs/heads/")
            if not dry_run:
                await git_locked(lock, repo.root, "update-ref", "-d", f"refs/heads/{name}", tip)
            deleted.add(f"refs/heads/{name}")
            actions.append(
                Action(f"{verb}delete branch {name}", f"its commits are all in {holder}", not dry_run)
            )
            continue
        # Branches deleted above count as gone, as they are once a dry run is done for real.
        excluded = [f"--exclude={ref}" for ref in (f"refs/heads/{name}", *sorted(deleted))]
        # The cache's refs keep a step's work only until its entry expires.
        excluded.append(f"--exclude={CACHE_REFS}*")
        # Every ref, but not the HEADs of worktrees (`--all` has them): a pooled worktree's HEAD
        # holds the last step's commit only until `clean` empties the pool.
        count = await git(repo.root, "rev-list", "--count", tip, "--not", *excluded, "--glob=refs/*")
        actions.append(Action(f"kept branch {name}", f"{count} commit(s) found on no other branch", False))


def _run_of(branch: str | None) -> str | None:
    return run_of_branch(branch) if branch else None


async def _list_worktrees(repo: Repository, *, with_main: bool = False) -> list[_Worktree]:
    listing = await git(repo.root, "worktree", "list", "--porcelain")
    worktrees: list[_Worktree] = []
    path: Path | None = None
    branch: str | None = None
    locked: str | None = None
    for line in [*listing.splitlines(), ""]:
        if line.startswith("worktree "):
            path = Path(line.removeprefix("worktree "))
        elif line.startswith("branch "):
            branch = line.removeprefix("branch refs/heads/")
        elif line == "locked" or line.startswith("locked "):
            locked = line.removeprefix("locked").strip()
        elif not line and path is not None:
            if with_main or path != repo.root:
                worktrees.append(_Worktree(path, branch, locked))
            path, branch, locked = None, None, None
    return worktrees


def _remove_empty_folders(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        try:
            folder.rmdir()
        except OSError:
            continue
    try:
        root.rmdir()
    except OSError:
        return
