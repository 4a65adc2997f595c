"""Async access to git: commands by argument list, a repository lock, snapshots, merges and commits.

Every call runs the git CLI as an anyio subprocess, so the event loop never waits on git.
Commands that change shared metadata (worktree registration, branch creation and deletion) run
under `RepoLock`, because concurrent `git worktree add` calls on one repository race in git itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import anyio

from treeflow.core.ownership import OWNER_VARIABLE, owner_mark, scratch_index_name
from treeflow.core.process import use_pidfd_child_watcher

# Messages git prints when another git process holds a lock or is half-way through registering a
# worktree; such failures are transient and worth another try.
_CONTENTION = (
    "could not lock",
    "unable to create",
    ".lock': file exists",
    "cannot lock ref",
    "failed to read",
    "another git process seems to be running",
)
_LOCK_RETRIES = 6
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "treeflow",
    "GIT_AUTHOR_EMAIL": "treeflow@localhost",
    "GIT_COMMITTER_NAME": "treeflow",
    "GIT_COMMITTER_EMAIL": "treeflow@localhost",
}


class GitError(Exception):
    """A git command failed; the message holds git's own words."""

    def __init__(self, args: tuple[str, ...], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)}: {stderr or f'exit status {returncode}'}")

    @property
    def is_contention(self) -> bool:
        text = self.stderr.lower()
        return any(marker in text for marker in _CONTENTION)


class NotARepository(Exception):
    pass


@dataclass(frozen=True)
class Repository:
    root: Path
    common_dir: Path

    @property
    def state_dir(self) -> Path:
        """Where treeflow keeps its journal, logs and lock: in git's folder, shared by all worktrees."""
        return self.common_dir / "treeflow"


# What `git rev-parse --local-env-vars` lists: set by git for its hooks (GIT_INDEX_FILE during a
# commit, say), they would point treeflow's git commands, and git run by steps, at the user's own
# index and repository instead of the worktree's.
REPOSITORY_ENV_VARS = frozenset(
    {
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_OBJECT_DIRECTORY",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_GRAFT_FILE",
        "GIT_INDEX_FILE",
        "GIT_NO_REPLACE_OBJECTS",
        "GIT_REPLACE_REF_BASE",
        "GIT_PREFIX",
        "GIT_INTERNAL_SUPER_PREFIX",
        "GIT_SHALLOW_FILE",
        "GIT_COMMON_DIR",
    }
)


def environ_without_repository() -> dict[str, str]:
    """This process's environment without the variables that tie git to one repository."""
    return {name: value for name, value in os.environ.items() if name not in REPOSITORY_ENV_VARS}


async def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None) -> str:
    """Run git with an argument list and return its stdout without the final newline."""
    code, out, err = await run_git(cwd, *args, env=env, input=input)
    if code != 0:
        raise GitError(args, code, err.strip())
    return out.rstrip("\n")


async def run_git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None
) -> tuple[int, str, str]:
    """Run git and return (exit status, stdout, stderr) whatever the status; ``input`` is its stdin."""
    use_pidfd_child_watcher()
    # The mark lets recovery find this git if treeflow dies before it (see treeflow.core.ownership).
    full_env = {**environ_without_repository(), **(env or {}), OWNER_VARIABLE: owner_mark()}
    # In a session of its own, git is out of reach of a terminal's Ctrl-C, which goes to the whole
    # foreground group: treeflow decides when a git command may be stopped, not the keyboard.
    for _ in range(3):
        result = await anyio.run_process(
            ["git", *args],
            cwd=cwd,
            check=False,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            env=full_env,
            start_new_session=True,
        )
        # A Ctrl-C in the instant between the fork and the new session still ends the child, before
        # it can exec git: nothing ran, so running it again is safe.
        if result.returncode != -signal.SIGINT:
            break
    return (
        result.returncode,
        result.stdout.decode("utf-8", errors="replace"),
        result.stderr.decode("utf-8", errors="replace"),
    )


class NestedRepositories(GitError):
    """The work holds git repositories of its own (a `git clone` into a subfolder): a commit would
    record each only as a pointer to a commit, and removing the worktree would lose its files."""

    def __init__(self, paths: list[str]) -> None:
        self.returncode = 0
        self.stderr = ""
        self.paths = paths
        Exception.__init__(
            self, f"it holds git repositories of its own, which a commit cannot keep: {', '.join(paths)}"
        )


class RepoLock:
    """Serializes git metadata operations on one repository, within and across treeflow processes.

    An anyio lock orders this process's own tasks; an flock on a file in the repository's state
    folder keeps other treeflow processes (CLI and language server) out at the same time.
    """

    def __init__(self, repo: Repository) -> None:
        self._path = repo.state_dir / "git.lock"
        self._lock = anyio.Lock()
        self._fd: int | None = None

    async def __aenter__(self) -> RepoLock:
        await self._lock.acquire()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                await _flock(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        except BaseException:
            self._lock.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._lock.release()


async def _flock(fd: int) -> None:
    # Polling a non-blocking flock keeps the wait cancellable and off worker threads.
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)


def try_lock_file(path: Path, *, create: bool = True) -> int | None:
    """Take an exclusive flock on ``path`` without waiting: the open descriptor, or None if it is held
    (or, without ``create``, does not exist).

    The kernel drops the lock when the process dies, so a held lock means a live owner.
    """
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # Its holder may have removed the file between our open and our lock: a lock on a file no
        # longer at ``path`` keeps nobody out.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        unlock_file(fd)
        if not create:
            return None


def unlock_file(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


async def git_locked(lock: RepoLock, cwd: Path, *args: str) -> str:
    """Run a metadata-changing git command under ``lock``, retrying while git reports contention."""
    delay = 0.01
    for attempt in range(1, _LOCK_RETRIES + 1):
        async with lock:
            try:
                # Killed mid-way, a command that writes refs can leave their lock files behind,
                # and git refuses to touch those refs until someone deletes the files.
                with anyio.CancelScope(shield=True):
                    return await git(cwd, *args)
            except GitError as exc:
                if not exc.is_contention or attempt == _LOCK_RETRIES:
                    raise
        await anyio.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


async def open_repository(path: Path) -> Repository:
    directory = _existing_directory(path)
    try:
        output = await git(directory, "rev-parse", "--show-toplevel", "--git-common-dir")
    except GitError as exc:
        raise NotARepository(
            f"{directory} is not inside a git repository (treeflow runs each step on a git branch; "
            "run `git init` first)"
        ) from exc
    root_line, common_line = output.splitlines()
    common = Path(common_line)
    if not common.is_absolute():
        common = (directory / common).resolve()
    return Repository(root=Path(root_line), common_dir=common)


def _existing_directory(path: Path) -> Path:
    directory = path if path.is_dir() else path.parent
    if not directory.is_dir():
        raise NotARepository(f"{path}: no such directory")
    return directory


async def head_commit(repo: Repository) -> str | None:
    """The commit HEAD points at, or None in a repository without commits yet."""
    code, out, _ = await run_git(repo.root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    return out.strip() if code == 0 else None


async def resolve_commit(repo: Repository, rev: str) -> str | None:
    code, out, _ = await run_git(
        repo.root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
    )
    return out.strip() if code == 0 else None


async def identity_env(repo: Repository) -> dict[str, str]:
    """Environment for commits treeflow makes: the user's identity if git has one, else treeflow's."""
    code, _, _ = await run_git(repo.root, "var", "GIT_COMMITTER_IDENT")
    return {} if code == 0 else dict(_FALLBACK_IDENTITY)


async def snapshot_working_tree(repo: Repository, head: str, message: str, env: Mapping[str, str]) -> str:
    """A commit of HEAD plus the uncommitted changes to tracked files, made without touching the
    user's index, working tree, stash or branch: git works on a copy of the index instead.

    Copying the index (rather than reading HEAD into a new one) keeps git's stat cache, so only
    files that really changed are hashed.
    """
    index = repo.state_dir / scratch_index_name()
    index.parent.mkdir(parents=True, exist_ok=True)
    real_index = Path(await git(repo.root, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    scratch = {**env, "GIT_INDEX_FILE": str(index)}
    try:
        if await anyio.to_thread.run_sync(_copy_if_exists, real_index, index):
            await git(repo.root, "add", "--update", "--", ".", env=scratch)
        else:
            await git(repo.root, "read-tree", head, env=scratch)
        tree = await git(repo.root, "write-tree", env=scratch)
    finally:
        with contextlib.suppress(FileNotFoundError):
            index.unlink()
    if tree == await git(repo.root, "rev-parse", f"{head}^{{tree}}"):
        return head
    return await git(repo.root, "commit-tree", "--no-gpg-sign", tree, "-p", head, "-m", message, env=env)


def _copy_if_exists(source: Path, target: Path) -> bool:
    # With its time: git compares each entry's time with the index file's own to find entries it
    # cannot trust (a file changed in the second the index was written); a copy made later would
    # hide such an edit.
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class MergeConflict:
    files: tuple[str, ...]


async def merge_commits(
    repo: Repository, commits: list[str], message: str, env: Mapping[str, str]
) -> str | MergeConflict:
    """One commit holding the work of every commit given: the newest when one contains the others,
    else a merge commit whose parents are all of them. Nothing in any checkout changes."""
    heads = list(dict.fromkeys(commits))
    if len(heads) > 1:
        # One call finds the commits no other one contains, instead of a check per pair.
        independent = set((await git(repo.root, "merge-base", "--independent", *heads)).split())
        heads = [commit for commit in heads if commit in independent]
    if len(heads) == 1:
        return heads[0]
    merged = heads[0]
    for other in heads[1:]:
        code, out, err = await run_git(
            repo.root, "merge-tree", "--write-tree", "--name-only", "--no-messages", merged, other
        )
        if code == 1:
            return MergeConflict(tuple(line for line in out.splitlines()[1:] if line))
        if code != 0:
            raise GitError(("merge-tree", merged, other), code, err.strip())
        tree = out.splitlines()[0]
        merged = await git(
            repo.root, "commit-tree", "--no-gpg-sign", tree, "-p", merged, "-p", other, "-m", message, env=env
        )
    parents = [arg for head in heads for arg in ("-p", head)]
    tree = await git(repo.root, "rev-parse", f"{merged}^{{tree}}")
    return await git(repo.root, "commit-tree", "--no-gpg-sign", tree, *parents, "-m", message, env=env)


async def changed_files(repo: Repository, base: str, commit: str) -> set[str]:
    out = await git(repo.root, "diff", "--name-only", "--no-renames", base, commit)
    return set(out.splitlines())


async def commit_worktree(
    worktree: Path, message: str, exclude: list[str], env: Mapping[str, str]
) -> str | None:
    """Commit every change in ``worktree`` (tracked and new files, as .gitignore allows, never the
    ``exclude`` paths) onto its current branch; return the new commit, or None if nothing changed.

    Plumbing rather than `git commit`, so that hooks, signing prompts and editors cannot stop
    treeflow from saving a step's work.
    """
    await git(worktree, "add", "--all", "--", ".")
    added = await _staged_additions(worktree)
    # Only files new to the branch are held back: edits to tracked files under an excluded path (a
    # workflow in `.treeflow/`, a tracked file `setup.copy` also copies) are work. Unstaging after
    # the fact, rather than excluding in the pathspec, because git refuses a pathspec that names an
    # ignored file such as a copied `.env`.
    present = set(await anyio.to_thread.run_sync(_existing, worktree, exclude))
    held_back = {path for path in added if is_within(path, present)}
    ordered = sorted(held_back)
    # In slices, since a copied `.venv` can hold back more paths than one command line takes.
    for first in range(0, len(ordered), _PATHS_PER_COMMAND):
        chosen = ordered[first : first + _PATHS_PER_COMMAND]
        await git(worktree, "reset", "--quiet", "--", *(f":(literal){path}" for path in chosen))
    gitlinks = [path for path, mode in added.items() if mode == _GITLINK and path not in held_back]
    nested = await _undeclared_submodules(worktree, gitlinks) if gitlinks else []
    if nested:
        raise NestedRepositories(nested)
    tree = await git(worktree, "write-tree")
    head, head_tree = (await git(worktree, "rev-parse", "HEAD", "HEAD^{tree}")).split()
    if tree == head_tree:
        return None
    commit = await git(worktree, "commit-tree", "--no-gpg-sign", tree, "-p", head, "-m", message, env=env)
    await git(worktree, "update-ref", "-m", "treeflow: save step work", "HEAD", commit, head)
    return commit


_GITLINK = "160000"
_PATHS_PER_COMMAND = 1000


def is_within(path: str, paths: set[str]) -> bool:
    """Whether ``path`` is one of ``paths`` or lies in a folder among them."""
    while path:
        if path in paths:
            return True
        path = path.rpartition("/")[0]
    return False


async def _staged_additions(worktree: Path) -> dict[str, str]:
    """Each path the index adds to the branch, with its mode."""
    raw = await git(worktree, "diff", "--cached", "--raw", "-z", "--no-renames", "--diff-filter=A")
    fields = raw.split("\0")
    return {path: meta.split(" ")[1] for meta, path in zip(fields[::2], fields[1::2], strict=False) if path}


async def _undeclared_submodules(worktree: Path, gitlinks: list[str]) -> list[str]:
    """The ``gitlinks`` that .gitmodules does not declare: repositories made inside the worktree."""
    code, declared, _ = await run_git(worktree, "config", "--file", ".gitmodules", "--get-regexp", r"\.path$")
    submodules = (
        {line.split(" ", 1)[1] for line in declared.splitlines() if " " in line} if code == 0 else set()
    )
    return [path for path in gitlinks if path not in submodules]


async def is_checked_out(worktree: Path) -> bool:
    """Whether files were ever checked out into ``worktree``: one made with `--no-checkout` and
    left so (its creator stopped first) has no index yet, and committing it would record every
    file as deleted."""
    if not await anyio.to_thread.run_sync(os.path.lexists, worktree / ".git"):
        return True  # not for git to say; whoever saves it finds out why it cannot be saved
    index = await git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index")
    return await anyio.to_thread.run_sync(os.path.exists, index)


def _existing(folder: Path, paths: list[str]) -> list[str]:
    return [path for path in paths if os.path.lexists(folder / path)]
