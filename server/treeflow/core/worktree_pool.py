"""A warm pool of worktrees per repository: a step starts in a worktree that is already filled.

Checking out every file of a large repository is most of what a fresh worktree costs, so once a
step's work is saved on its branch its worktree is not removed: it is detached at that commit,
emptied of every untracked and ignored file but the folders `pool.keep` names (`node_modules`,
`.venv`), checked clean, and given back. The next step takes it and moves it to its own start
commit with `read-tree -u -m`, which writes only the files that differ.

Each pooled worktree ("slot") is registered with git, detached, and locked with a reason, so that
`git worktree prune` and other tools leave it alone. Its claim file,
`.git/treeflow/pool/<slot>.lock`, is held (flock) by the process whose step uses it, so that no two
steps, runs or treeflow processes (the CLI and the language server) ever get the same worktree, and
holds a note of its state: `idle`, `taken` (by a step, or on its way to one: `moving_to`) or `kept`
(its work could not be saved; it is the user's to look at). A `taken` slot whose claim nobody holds
was left by a treeflow process that died: `settle` saves what it holds before it is used again.

Nothing in a pooled worktree is ever reset away unless it is found in a commit: what is found
nowhere is committed to a branch `treeflow/pool-saved/<slot>-<time>` first, and reported.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
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
    identity_env,
    run_git,
    try_lock_file,
    unlock_file,
)
from treeflow.core.locations import pool_claims_folder, pool_folder
from treeflow.core.model import PoolSettings
from treeflow.core.ownership import owner_mark, scratch_index_name
from treeflow.core.setup_copy import RECORD_NAME, copied_files

LOCK_REASON = "treeflow: a pooled worktree kept warm for the next step; `treeflow clean` empties the pool"
SAVED_BRANCH_PREFIX = "treeflow/pool-saved/"

IDLE = "idle"
TAKEN = "taken"
KEPT = "kept"

Say = Callable[[str], None]


@dataclass(frozen=True)
class SlotNote:
    """What a slot's claim file says of it."""

    state: str
    since: float
    head: str | None = None  # the commit an idle slot is detached at
    moving_to: str | None = None  # the commit a taken slot's step starts from
    branch: str | None = None  # the branch a taken slot's step works on
    owner: str = ""  # `ownership.owner_mark` of the process that took it
    keep: tuple[str, ...] = ()  # `pool.keep` of the run that took it
    reason: str | None = None  # why a kept slot is kept

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> SlotNote | None:
        try:
            fields = json.loads(data.decode("utf-8"))
            fields["keep"] = tuple(fields.get("keep") or ())
            return cls(**fields)
        except (UnicodeDecodeError, ValueError, TypeError):
            return None


@dataclass
class Slot:
    """A pooled worktree this process holds the claim of."""

    name: str
    path: Path
    claim_path: Path
    claim: int  # the flocked claim file's descriptor
    note: SlotNote
    closed: bool = False

    def close(self) -> None:
        """Let go of the claim (once)."""
        if not self.closed:
            self.closed = True
            unlock_file(self.claim)

    def write(self, note: SlotNote) -> None:
        self.note = note
        data = note.encode()
        os.ftruncate(self.claim, 0)
        os.pwrite(self.claim, data, 0)


@dataclass
class PooledWorktree:
    """A slot lent to one step, and the pool to give it back to."""

    slot: Slot
    pool: WorktreePool
    warnings: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.slot.path


def slot_path(repo: Repository, name: str) -> Path:
    return pool_folder(repo) / name


def is_pooled(repo: Repository, path: Path) -> bool:
    """Whether ``path`` is a worktree of the pool (its folder, whatever state it is in)."""
    return path.parent == pool_folder(repo)


class WorktreePool:
    """The pool of one repository, as a run with ``settings`` and ``size`` uses it."""

    def __init__(self, repo: Repository, lock: RepoLock, settings: PoolSettings, size: int) -> None:
        self._repo = repo
        self._lock = lock
        self.settings = settings
        self.size = max(1, settings.size or size)
        self._claims = pool_claims_folder(repo)

    async def take(self, branch: str, start: str, warn: Say) -> PooledWorktree | None:
        """A pooled worktree on new branch ``branch`` at ``start``, or None when the pool has none
        to give and no room for another (the caller then makes a worktree of its own)."""
        if not self.settings.enabled:
            return None
        chosen, expired = await anyio.to_thread.run_sync(self._claim_idle)
        for slot in expired:
            with anyio.CancelScope(shield=True):
                await self._retire(slot, warn)
        note = SlotNote(TAKEN, time.time(), moving_to=start, branch=branch, owner=owner_mark())
        if chosen is not None:
            with anyio.CancelScope(shield=True):
                moved = await self._move(chosen, note, branch, start, warn)
            if moved:
                return PooledWorktree(chosen, self)
        return await self._new_slot(note, branch, start)

    def _claim_idle(self) -> tuple[Slot | None, list[Slot]]:
        """Claim one idle slot, the most recently used first (its kept folders are the freshest),
        and every expired one. Claims are tried one at a time, so that steps looking at once each
        get one."""
        expired_before = time.time() - self.settings.idle_s
        notes = []
        for name in _slot_names(self._claims):
            try:
                note = SlotNote.decode((self._claims / f"{name}.lock").read_bytes())
            except OSError:
                continue
            if note is not None and note.state == IDLE:
                notes.append((note.since, name))
        chosen: Slot | None = None
        expired: list[Slot] = []
        for since, name in sorted(notes, reverse=True):
            if chosen is not None and since >= expired_before:
                continue
            slot = _claim(self._repo, name)
            if slot is None:
                continue
            # Read again now that it is held: it may have been taken and given back since.
            if slot.note.state != IDLE:
                slot.close()
            elif slot.note.since < expired_before:
                expired.append(slot)
            elif chosen is None:
                chosen = slot
            else:
                slot.close()
        return chosen, expired

    async def _move(self, slot: Slot, note: SlotNote, branch: str, start: str, warn: Say) -> bool:
        """Move an idle slot, verified clean first, to ``note.moving_to`` on ``note.branch``;
        False (the slot given back as it was, or kept) when it cannot be."""
        slot.write(replace(note, keep=self.settings.keep))
        if not await anyio.to_thread.run_sync(os.path.lexists, slot.path):
            await _forget_slot(self._repo, self._lock, slot)  # removed by hand: nothing in it to save
            return False
        try:
            problem = await _checked_out_state(slot.path)
            if problem is None:
                await self._save_unexpected(slot, (), warn)
        except (GitError, OSError) as exc:
            problem = f"what it holds could not be checked or saved: {exc}"
        if problem is not None:
            _keep(slot, problem)
            warn(f"the pooled worktree {slot.path} is not used: {problem}")
            return False
        try:
            await git(slot.path, "read-tree", "-u", "-m", "HEAD", start)
            await self._attach(slot, branch, start)
        except (GitError, OSError) as exc:
            await self._give_back_unmoved(slot, exc, warn)
            return False
        return True

    async def _give_back_unmoved(self, slot: Slot, exc: Exception, warn: Say) -> None:
        # It was clean before the move, so whatever differs now is the move's own writing.
        try:
            await git(slot.path, "read-tree", "-u", "--reset", "HEAD")
            await self._empty(slot.path, slot.note.keep)
            head = await git(slot.path, "rev-parse", "HEAD")
            _release(slot, SlotNote(IDLE, time.time(), head=head, keep=slot.note.keep))
        except (GitError, OSError) as again:
            _keep(slot, f"a move to a step's start failed ({exc}), and so did undoing it: {again}")
            warn(f"the pooled worktree {slot.path} is kept as it is: {again}")

    async def _attach(self, slot: Slot, branch: str, start: str) -> None:
        # Only a step's own new branch: git's check that a branch is checked out in one worktree
        # at most is in `checkout` and `worktree add`, which this does without.
        await git_locked(self._lock, self._repo.root, "update-ref", f"refs/heads/{branch}", start, "")
        await git(slot.path, "symbolic-ref", "HEAD", f"refs/heads/{branch}")

    async def _new_slot(self, note: SlotNote, branch: str, start: str) -> PooledWorktree | None:
        name = f"w{os.urandom(5).hex()}"
        path = slot_path(self._repo, name)
        claim_path = self._claims / f"{name}.lock"
        # Counting and claiming under the repository lock, so that steps starting together do not
        # all see room for one more.
        async with self._lock:
            if len(await anyio.to_thread.run_sync(_slot_names, self._claims)) >= self.size:
                return None
            claim = await anyio.to_thread.run_sync(try_lock_file, claim_path)
        if claim is None:
            raise OSError(f"could not claim {claim_path}")
        slot = Slot(name, path, claim_path, claim, note)
        slot.write(replace(note, keep=self.settings.keep))
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        try:
            with anyio.CancelScope(shield=True):
                await git_locked(
                    self._lock,
                    self._repo.root,
                    "worktree",
                    "add",
                    "--no-checkout",
                    "--detach",
                    "--lock",
                    "--reason",
                    LOCK_REASON,
                    str(path),
                    start,
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_forget_claim, slot)
            raise
        try:
            # Filling it runs outside the repository lock, in parallel with other steps.
            await git(path, "read-tree", "-u", "--reset", "HEAD")
            with anyio.CancelScope(shield=True):
                await self._attach(slot, branch, start)
        except BaseException:
            # It holds nothing but (part of) a checkout of ``start``.
            with anyio.CancelScope(shield=True):
                await self._retire(slot, lambda message: None)
            raise
        return PooledWorktree(slot, self)

    async def give_back(self, pooled: PooledWorktree, tip: str, warn: Say) -> bool:
        """Put a step's worktree, its work saved on its branch at ``tip``, back in the pool: detached
        at ``tip``, emptied but for the kept folders, and verified clean. False when it was removed
        instead (the pool is full, or disabled); it is kept as it is on any trouble."""
        slot = pooled.slot
        try:
            await git(slot.path, "update-ref", "--no-deref", "-m", "treeflow: back to the pool", "HEAD", tip)
            await self._empty(slot.path, self.settings.keep)
            await self._save_unexpected(slot, (), warn)
            head = await git(slot.path, "rev-parse", "HEAD")
        except (GitError, OSError) as exc:
            _keep(slot, f"it could not be made clean for the next step: {exc}")
            warn(f"the pooled worktree {slot.path} is kept as it is: {exc}")
            return True
        if await self._retired_if_over(slot, warn):
            return False
        _release(slot, SlotNote(IDLE, time.time(), head=head, keep=self.settings.keep))
        return True

    def kept_for(self, branch: str) -> Path | None:
        """The pooled worktree kept, its work unsaved, from a step that worked on ``branch``."""
        for name in _slot_names(self._claims):
            try:
                note = SlotNote.decode((self._claims / f"{name}.lock").read_bytes())
            except OSError:
                continue
            if note is not None and note.state == KEPT and note.branch == branch:
                return slot_path(self._repo, name)
        return None

    def keep(self, pooled: PooledWorktree, reason: str) -> None:
        """Leave a step's worktree as it is (its work could not be saved): never handed out again."""
        _keep(pooled.slot, reason)

    async def forget(self, pooled: PooledWorktree) -> None:
        """Drop a slot whose folder is gone (a step removed it): nothing in it is left to save."""
        await _forget_slot(self._repo, self._lock, pooled.slot)

    async def _retired_if_over(self, slot: Slot, warn: Say) -> bool:
        """Remove ``slot`` if the pool holds more than its size (or is off): counted and removed
        under the repository lock, so that steps ending together do not all remove theirs."""
        async with self._lock:
            count = len(await anyio.to_thread.run_sync(_slot_names, self._claims))
            if self.settings.enabled and count <= self.size:
                return False
            try:
                await git(self._repo.root, "worktree", "remove", "--force", "--force", str(slot.path))
            except GitError as exc:
                _keep(slot, f"it could not be removed: {exc}")
                warn(f"could not remove the pooled worktree {slot.path}: {exc}; `treeflow clean` removes it")
                return True
            await anyio.to_thread.run_sync(_forget_claim, slot)
        return True

    async def _retire(self, slot: Slot, warn: Say) -> None:
        try:
            await git_locked(
                self._lock, self._repo.root, "worktree", "remove", "--force", "--force", str(slot.path)
            )
        except GitError as exc:
            _keep(slot, f"it could not be removed: {exc}")
            warn(
                f"could not remove the pooled worktree {slot.path}: {exc}; `treeflow clean` removes it later"
            )
            return
        await anyio.to_thread.run_sync(_forget_claim, slot)

    async def _empty(self, path: Path, keep: tuple[str, ...]) -> None:
        await empty_worktree(path, keep)

    async def _save_unexpected(self, slot: Slot, known: tuple[str, ...], warn: Say) -> None:
        await save_unexpected(self._repo, self._lock, slot, known, warn)


async def empty_worktree(path: Path, keep: tuple[str, ...]) -> None:
    """Remove every untracked and ignored file but those the ``keep`` patterns match, and what
    treeflow recorded of the last step there (its `setup.copy` list)."""
    await git(path, "clean", "-ffdxq", *(f"--exclude={pattern}" for pattern in keep))
    record = Path(await git(path, "rev-parse", "--absolute-git-dir")) / RECORD_NAME
    await anyio.to_thread.run_sync(lambda: record.unlink(missing_ok=True))


async def save_unexpected(
    repo: Repository, lock: RepoLock, slot: Slot, known: tuple[str, ...], warn: Say
) -> None:
    """Make a slot clean at its HEAD without losing anything: what differs from HEAD and from each
    of the ``known`` commits too is committed onto HEAD and kept on a branch of its own, reported."""
    status = await git(slot.path, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if not status:
        return
    found = await _found_nowhere(slot.path, ("HEAD", *known))
    if found:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        branch = f"{SAVED_BRANCH_PREFIX}{slot.name}-{stamp}-{os.urandom(2).hex()}"
        message = f"treeflow: what the pooled worktree {slot.name} held that no commit has"
        commit = await commit_worktree(slot.path, message, [TREEFLOW_DIR], {})
        if commit is not None:
            await git_locked(lock, repo.root, "update-ref", f"refs/heads/{branch}", commit, "")
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            warn(f"the pooled worktree {slot.path} held changes no commit has ({shown}); saved on {branch}")
    await git(slot.path, "read-tree", "-u", "--reset", "HEAD")
    await empty_worktree(slot.path, slot.note.keep)
    left = await git(slot.path, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    if left:
        raise GitError(("status",), 1, f"still not clean: {left.replace(chr(0), ' ')[:200]}")


async def _found_nowhere(path: Path, commits: tuple[str, ...]) -> list[str]:
    """Files of the worktree at ``path`` (as .gitignore allows) that each of ``commits`` lacks or
    has otherwise. Missing files do not count: git has them. Works on a copy of its index."""
    git_dir = Path(await git(path, "rev-parse", "--absolute-git-dir"))
    index = git_dir / scratch_index_name()
    env: Mapping[str, str] = {"GIT_INDEX_FILE": str(index)}
    try:
        if not await anyio.to_thread.run_sync(_copy_index, git_dir / "index", index):
            await git(path, "read-tree", "HEAD", env=env)
        await git(path, "add", "--all", "--", ".", env=env)
        tree = await git(path, "write-tree", env=env)
    finally:
        index.unlink(missing_ok=True)
    found: set[str] | None = None
    for commit in commits:
        code, out, _ = await run_git(
            path, "diff", "--name-only", "-z", "--no-renames", "--diff-filter=AMT", commit, tree
        )
        differing = set(filter(None, out.split("\0"))) if code == 0 else set()
        found = differing if found is None else found & differing
    return sorted(found or ())


def _copy_index(source: Path, target: Path) -> bool:
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        return False
    return True


async def _checked_out_state(path: Path) -> str | None:
    """Why a slot cannot be moved at all, if it cannot: its folder or `.git` is gone, or its HEAD is
    on a branch (someone checked one out in it)."""
    if not await anyio.to_thread.run_sync(os.path.lexists, path / ".git"):
        return "its folder or its .git file is gone"
    code, out, _ = await run_git(path, "symbolic-ref", "--quiet", "HEAD")
    if code == 0:
        return f"it is on branch {out.strip().removeprefix('refs/heads/')}, not detached"
    return None


def _slot_names(folder: Path) -> list[str]:
    try:
        return sorted(name[: -len(".lock")] for name in os.listdir(folder) if name.endswith(".lock"))
    except FileNotFoundError:
        return []


def _claim(repo: Repository, name: str) -> Slot | None:
    """The slot ``name`` with its claim now held by this process, or None if another holds it."""
    claim_path = pool_claims_folder(repo) / f"{name}.lock"
    fd = try_lock_file(claim_path, create=False)
    if fd is None:
        return None
    note = SlotNote.decode(os.pread(fd, 65536, 0)) or SlotNote(TAKEN, 0.0)
    return Slot(name, slot_path(repo, name), claim_path, fd, note)


def _release(slot: Slot, note: SlotNote) -> None:
    slot.write(note)
    slot.close()


def _keep(slot: Slot, reason: str) -> None:
    _release(slot, replace(slot.note, state=KEPT, reason=reason, since=time.time()))


def _forget_claim(slot: Slot) -> None:
    # Unlinked before it is unlocked: whoever opens it meanwhile sees a lock on a file no longer
    # at its path, and lets go (see `try_lock_file`).
    slot.claim_path.unlink(missing_ok=True)
    slot.close()


async def _forget_slot(repo: Repository, lock: RepoLock, slot: Slot) -> None:
    """Unregister a slot whose folder is gone, and drop its claim."""
    async with lock:
        await run_git(repo.root, "worktree", "unlock", str(slot.path))
    await git_locked(lock, repo.root, "worktree", "prune")
    await anyio.to_thread.run_sync(_forget_claim, slot)


@dataclass(frozen=True)
class PoolAction:
    """What `settle_pool` did, or would do, with one slot."""

    what: str
    reason: str
    done: bool
    failed: bool = False

    def __str__(self) -> str:
        return f"{self.what}: {self.reason}"


async def settle_pool(
    repo: Repository,
    *,
    empty: bool,
    dry_run: bool = False,
    before: Callable[[], Awaitable[None]] | None = None,
) -> list[PoolAction]:
    """Save and make idle again every slot a dead treeflow process left taken; with ``empty``
    (`treeflow clean`), remove every slot no live process holds, after saving what it holds.
    ``before`` runs once, before the first slot that is not idle is touched (to end the git
    commands dead treeflow processes left running)."""
    lock = RepoLock(repo)
    identity: dict[str, str] | None = None
    actions: list[PoolAction] = []
    names = await anyio.to_thread.run_sync(_slot_names, pool_claims_folder(repo))
    for name in names:
        slot = await anyio.to_thread.run_sync(_claim, repo, name)
        if slot is None:
            if empty:
                actions.append(
                    PoolAction(f"kept pooled worktree {slot_path(repo, name)}", "a step is using it", False)
                )
            continue
        try:
            if empty and slot.note.state == KEPT and not await _fixed_since(slot):
                reason = (
                    f"{slot.note.reason}; save what you need, then remove it yourself "
                    f"(`git worktree remove --force --force {slot.path}`)"
                )
                actions.append(
                    PoolAction(f"kept pooled worktree {slot.path}", reason, False, failed=not dry_run)
                )
                continue
            if dry_run:
                if empty or slot.note.state == TAKEN:
                    verb = "remove" if empty else "save and give back"
                    actions.append(PoolAction(f"would {verb} pooled worktree {slot.path}", _why(slot), False))
                continue
            if slot.note.state == TAKEN or (empty and slot.note.state == KEPT):
                if before is not None:
                    await before()
                    before = None
                if identity is None:
                    identity = await identity_env(repo)
                action = await _settle(repo, lock, slot, identity)
                actions.append(action)
                if action.failed or slot.closed:
                    continue
            if empty:
                actions.append(await _remove_slot(repo, lock, slot))
        finally:
            slot.close()
    return actions


async def _fixed_since(slot: Slot) -> bool:
    """Whether a kept slot can be saved now: its folder is gone (nothing to save), or it is back
    on its step's branch."""
    if not await anyio.to_thread.run_sync(os.path.lexists, slot.path):
        return True
    if not await anyio.to_thread.run_sync(os.path.lexists, slot.path / ".git"):
        return False
    code, head, _ = await run_git(slot.path, "symbolic-ref", "--quiet", "HEAD")
    return code == 0 and head.strip() == f"refs/heads/{slot.note.branch}"


def _why(slot: Slot) -> str:
    if slot.note.state == TAKEN:
        return "a treeflow process that is gone left it in use; what it holds is saved first"
    if slot.note.state == KEPT:
        return f"kept earlier: {slot.note.reason}"
    return "the pool is emptied"


async def _settle(repo: Repository, lock: RepoLock, slot: Slot, identity: Mapping[str, str]) -> PoolAction:
    """Save what a slot left by a dead process holds, and make it idle."""
    said: list[str] = []
    try:
        if not await anyio.to_thread.run_sync(os.path.lexists, slot.path):
            await _forget_slot(repo, lock, slot)
            return PoolAction(f"dropped pooled worktree {slot.path}", "its folder is gone", True)
        if not await anyio.to_thread.run_sync(os.path.lexists, slot.path / ".git"):
            raise _Kept(f"its .git file is gone, so git cannot tell what changed in {slot.path}")
        git_dir = Path(await git(slot.path, "rev-parse", "--absolute-git-dir"))
        # A git killed with its process leaves its index lock behind; the claim is this process's
        # and recovery ended whatever git the dead one left running.
        await anyio.to_thread.run_sync(lambda: (git_dir / "index.lock").unlink(missing_ok=True))
        code, head, _ = await run_git(slot.path, "symbolic-ref", "--quiet", "HEAD")
        known: tuple[str, ...] = ()
        if code == 0:
            said.append(
                await _save_step_work(repo, lock, slot, head.strip().removeprefix("refs/heads/"), identity)
            )
            await empty_worktree(slot.path, slot.note.keep)
        elif slot.note.moving_to:
            known = (slot.note.moving_to,)
        await save_unexpected(repo, lock, slot, known, said.append)
        head = await git(slot.path, "rev-parse", "HEAD")
    except _Kept as kept:
        _keep(slot, str(kept))
        return PoolAction(f"kept pooled worktree {slot.path}", str(kept), False, failed=True)
    except (GitError, OSError) as exc:
        _keep(slot, f"what it holds could not be saved: {exc}")
        return PoolAction(
            f"kept pooled worktree {slot.path}",
            f"what it holds could not be saved: {exc}",
            False,
            failed=True,
        )
    slot.write(SlotNote(IDLE, time.time(), head=head, keep=slot.note.keep))
    return PoolAction(
        f"gave back pooled worktree {slot.path}",
        "; ".join(filter(None, said)) or "it held nothing to save",
        True,
    )


class _Kept(Exception):
    """A slot that must stay as it is, for the user to look at."""


async def _save_step_work(
    repo: Repository, lock: RepoLock, slot: Slot, branch: str, identity: Mapping[str, str]
) -> str:
    """Commit what a dead step left in its slot to its branch, and detach the slot there."""
    if branch != slot.note.branch:
        raise _Kept(f"it is on branch {branch}, not on its step's branch {slot.note.branch}")
    copied = await copied_files(slot.path, repo.root, ())
    message = "treeflow: work of a step, saved after an interruption"
    commit = await commit_worktree(slot.path, message, [TREEFLOW_DIR, *copied], identity)
    tip = await git(slot.path, "rev-parse", "HEAD")
    await git(slot.path, "update-ref", "--no-deref", "-m", "treeflow: back to the pool", "HEAD", tip)
    if tip == slot.note.moving_to:
        # The expected old value makes git refuse if anything moved the branch meanwhile.
        await git_locked(lock, repo.root, "update-ref", "-d", f"refs/heads/{branch}", tip)
        return ""
    return f"its step's work is saved on {branch}" + (f" ({commit[:12]})" if commit else "")


async def _remove_slot(repo: Repository, lock: RepoLock, slot: Slot) -> PoolAction:
    try:
        if await anyio.to_thread.run_sync(os.path.lexists, slot.path):
            await save_unexpected(repo, lock, slot, (), lambda message: None)
            await git_locked(lock, repo.root, "worktree", "remove", "--force", "--force", str(slot.path))
        else:
            await _forget_slot(repo, lock, slot)
            return PoolAction(f"dropped pooled worktree {slot.path}", "its folder is gone", True)
    except (GitError, OSError) as exc:
        _keep(slot, f"it could not be removed: {exc}")
        return PoolAction(
            f"kept pooled worktree {slot.path}", f"could not remove it: {exc}", False, failed=True
        )
    await anyio.to_thread.run_sync(_forget_claim, slot)
    return PoolAction(f"removed pooled worktree {slot.path}", "`treeflow clean` empties the pool", True)
