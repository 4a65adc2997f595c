"""A worker's cache repository: the commits steps start from, and a worktree per step.

Each coordinating repository gets one bare repository on the worker machine, kept between runs,
so a commit arrives once per machine: a step whose start commit is already there needs no bundle.
Worker processes on one machine share it; what changes git's metadata (unbundling, adding and
removing worktrees, refs) holds the cache's lock file.

A step's worktree is not removed once its work has arrived: emptied of every file git does not
track (what the step built, the files shipped with it), it waits in the cache's pool, and the
next step takes it and checks out its own start commit, which writes only the files that differ.
A worktree goes back only after one was taken or made for a step, so the pool never holds more
than the steps that ran on the machine at once. Checking out every file is most of what a fresh
worktree costs in a large repository (about 2 s for 5,000 files on a busy machine, against a few
tens of ms moved).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio

from treeflow.core.agent_protocol import TREEFLOW_DIR
from treeflow.core.git import GitError, commit_worktree, git, run_git
from treeflow.core.remote.messages import KeptWork, ShippedFile
from treeflow.core.worktree_writes import writable_folder

CACHE_VARIABLE = "TREEFLOW_WORKER_CACHE"
"""Where a worker keeps its cache repositories; by default ``~/.cache/treeflow/worker``."""

_BASES = "refs/treeflow/bases/"
# A new base usually descends from one of the last few; more would only lengthen the message.
_KNOWN_BASES_SENT = 8
_REPO_KEY = re.compile(r"[0-9a-f]{8,64}")
_SESSION = re.compile(r"[A-Za-z0-9_.-]{1,200}")


def cache_root() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "treeflow" / "worker"


@dataclass(frozen=True)
class SavedWork:
    """What a step's worktree holds after a command: its commit, the bundle of the commits from the
    start, and why it could not be committed, if it could not."""

    commit: str
    bundle: bytes | None
    error: str | None = None


class WorkerCache:
    """The cache repository of one coordinating repository, named by ``repo_key``."""

    def __init__(self, root: Path, repo_key: str) -> None:
        if not _REPO_KEY.fullmatch(repo_key):
            raise ValueError(f"not a repository key: {repo_key!r}")
        self.folder = root / repo_key
        self.repo = self.folder / "repo.git"
        self.pool = self.folder / "pool"
        self._lock_path = self.folder / "lock"

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        fd = await anyio.to_thread.run_sync(self._open_lock)
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _open_lock(self) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        return os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    async def ensure(self) -> None:
        """Make the repository if this machine has none for the key yet."""
        if await anyio.to_thread.run_sync((self.repo / "HEAD").exists):
            return
        async with self.locked():
            if not await anyio.to_thread.run_sync((self.repo / "HEAD").exists):
                await git(self.folder, "init", "--quiet", "--bare", str(self.repo))

    async def has_commit(self, commit: str) -> bool:
        code, _, _ = await run_git(self.repo, "cat-file", "-e", f"{commit}^{{commit}}")
        return code == 0

    async def receive(self, bundles: Iterable[bytes]) -> None:
        """Unpack ``bundles`` in order into the repository; each may need the ones before it."""
        async with self.locked():
            for data in bundles:
                path = await anyio.to_thread.run_sync(self._spill, data)
                try:
                    await git(self.repo, "bundle", "unbundle", str(path))
                finally:
                    await anyio.to_thread.run_sync(path.unlink)

    async def keep_base(self, commit: str) -> None:
        """Remember ``commit`` as a base this machine has, for later runs' bases to travel as only
        what it lacks (and to keep its commits from git's garbage collection)."""
        async with self.locked():
            await git(self.repo, "update-ref", f"{_BASES}{commit}", commit)

    async def known_bases(self) -> tuple[str, ...]:
        """The newest bases this machine has kept, newest first."""
        code, out, _ = await run_git(
            self.repo,
            "for-each-ref",
            "--sort=-committerdate",
            f"--count={_KNOWN_BASES_SENT}",
            "--format=%(objectname)",
            _BASES,
        )
        return tuple(out.split()) if code == 0 else ()

    def _spill(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix="incoming-", suffix=".bundle", dir=self.folder)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        return Path(name)

    def worktree_path(self, session: str) -> Path:
        if not _SESSION.fullmatch(session):
            raise ValueError(f"not a session name: {session!r}")
        return self.folder / "worktrees" / session

    def outputs_path(self, session: str) -> Path:
        return self.folder / "outputs" / session

    async def worktree(self, session: str, start: str) -> tuple[Path, bool]:
        """The session's worktree at ``start`` if it has none yet (one from the pool, when one
        waits there), and whether it was made now."""
        path = self.worktree_path(session)
        if await anyio.to_thread.run_sync(os.path.lexists, path / ".git"):
            return path, False
        async with self.locked():
            await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
            pooled = await anyio.to_thread.run_sync(self._waiting)
            if pooled is None:
                await git(self.repo, "worktree", "add", "--quiet", "--detach", str(path), start)
                return path, True
            moved, _, _ = await run_git(self.repo, "worktree", "move", str(pooled), str(path))
            if moved != 0:
                # One git no longer takes (its worker killed while pooling it): dropped, so that it
                # is not picked again, and this step gets a new one.
                await self._remove(pooled)
                await git(self.repo, "worktree", "add", "--quiet", "--detach", str(path), start)
                return path, True
        code, _, _ = await run_git(path, "checkout", "--quiet", "--force", "--detach", start)
        if code != 0:
            await self._discard(path)
            async with self.locked():
                await git(self.repo, "worktree", "add", "--quiet", "--detach", str(path), start)
        return path, True

    def _waiting(self) -> Path | None:
        try:
            return next(entry for entry in self.pool.iterdir() if (entry / ".git").exists())
        except (FileNotFoundError, StopIteration):
            return None

    async def save(
        self,
        session: str,
        start: str,
        message: str,
        identity: Mapping[str, str],
        held_back: list[str],
    ) -> SavedWork:
        """Commit what the session's worktree holds and bundle the commits since ``start``."""
        path = self.worktree_path(session)
        try:
            made = await commit_worktree(path, message, [TREEFLOW_DIR, *held_back], identity)
            # Without changes to commit, HEAD is still where the step's own commits (if any) left it.
            commit = made or await git(path, "rev-parse", "HEAD")
        except (GitError, OSError) as exc:
            return SavedWork(start, None, f"could not commit the work on the worker: {exc}")
        if commit == start:
            return SavedWork(commit, None)
        # A bundle needs a ref to carry; it stays until the session is released, so the work is
        # here to fetch again if the first answer never arrives (see `kept`).
        ref = session_ref(session)
        async with self.locked():
            await git(self.repo, "update-ref", ref, commit)
        bundle = self._bundle_path(session)
        await anyio.to_thread.run_sync(lambda: bundle.parent.mkdir(parents=True, exist_ok=True))
        code, _, err = await run_git(self.repo, "bundle", "create", "--quiet", str(bundle), ref, f"^{start}")
        if code != 0:
            return SavedWork(commit, None, f"could not bundle the work on the worker: {err.strip()}")
        data = await anyio.to_thread.run_sync(bundle.read_bytes)
        return SavedWork(commit, data)

    def _bundle_path(self, session: str) -> Path:
        return self.folder / "outgoing" / f"{session}.bundle"

    async def kept(self, session: str, have: str) -> KeptWork | None:
        """The work the session keeps for a coordinator that has ``have``: what its last saved
        command committed; None when it keeps none (it was released, or never committed)."""
        if not _SESSION.fullmatch(session):
            raise ValueError(f"not a session name: {session!r}")
        if not await anyio.to_thread.run_sync((self.repo / "HEAD").exists):
            return None
        ref = session_ref(session)
        code, out, _ = await run_git(self.repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if code != 0:
            return None
        commit = out.strip()
        if commit == have:
            return KeptWork(commit, None)
        # The coordinator's commit came from here or through here; a cache that lost it since
        # sends the whole history instead.
        since = [f"^{have}"] if await self.has_commit(have) else []
        # Each answer its own file: two worker processes of this machine may be asked at once.
        bundle = self.folder / "outgoing" / f"{session}.{uuid.uuid4().hex}.kept.bundle"
        await anyio.to_thread.run_sync(lambda: bundle.parent.mkdir(parents=True, exist_ok=True))
        try:
            await git(self.repo, "bundle", "create", "--quiet", str(bundle), ref, *since)
            return KeptWork(commit, await anyio.to_thread.run_sync(bundle.read_bytes))
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: bundle.unlink(missing_ok=True))

    async def release(self, session: str) -> None:
        """Put the session's worktree in the pool, emptied (or remove it, should that fail), and
        remove its ref, bundle and outputs file, once its work has arrived."""
        path = self.worktree_path(session)
        held = await anyio.to_thread.run_sync(os.path.lexists, path / ".git")
        # Its work is on the coordinator now: every file git does not track goes at once, so that
        # files shipped with the step (a copied `.env`) do not outlive it on this machine.
        emptied = held and (await run_git(path, "clean", "-ffdxq"))[0] == 0
        async with self.locked():
            if held and not (emptied and await self._pool_it(path)):
                await self._remove(path)
            await run_git(self.repo, "update-ref", "-d", session_ref(session))
            await anyio.to_thread.run_sync(self._remove_leftovers, session)

    async def _pool_it(self, path: Path) -> bool:
        await anyio.to_thread.run_sync(lambda: self.pool.mkdir(parents=True, exist_ok=True))
        slot = self.pool / uuid.uuid4().hex
        code, _, _ = await run_git(self.repo, "worktree", "move", str(path), str(slot))
        return code == 0

    async def _discard(self, path: Path) -> None:
        async with self.locked():
            await self._remove(path)

    async def _remove(self, path: Path) -> None:
        await run_git(self.repo, "worktree", "remove", "--force", str(path))
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(path, ignore_errors=True))

    def _remove_leftovers(self, session: str) -> None:
        shutil.rmtree(self.worktree_path(session), ignore_errors=True)
        for path in (self._bundle_path(session), self.outputs_path(session)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def session_ref(session: str) -> str:
    return f"refs/treeflow/sessions/{session}"


def place_files(worktree: Path, files: Iterable[ShippedFile]) -> list[str]:
    """Write the shipped `setup.copy` files into ``worktree`` (never through a link) and return
    their paths, which are never committed."""
    placed = []
    for shipped in files:
        relative = PurePosixPath(shipped.path)
        folder = writable_folder(worktree, relative.parent)
        target = folder / relative.name
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        if shipped.link is not None:
            os.symlink(shipped.link, target)
        else:
            target.write_bytes(shipped.data)
            if shipped.executable:
                target.chmod(0o755)
        placed.append(shipped.path)
    return placed
