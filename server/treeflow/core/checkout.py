"""The user's checkout as trees: what HEAD, the index and the working tree hold, read without
changing any of them; and the few writes that change chosen files of the working tree or chosen
entries of the index, nothing else.

Reading works on copies of the index (git's `write-tree` and `add` would rewrite the real one's
cache), so the user's index file stays byte for byte as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from treeflow.core.git import GitError, Repository, environ_without_repository, git, run_git
from treeflow.core.ownership import scratch_index_name

_NO_OBJECT = "0" * 40
# What a checkout in the middle of one of these holds, by the file git keeps for it.
_OPERATIONS = {
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase (or `git am`)",
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "BISECT_LOG": "a bisect",
}


class CheckoutRefused(Exception):
    """The checkout is in no state to be changed: a bare repository, a rebase going on, …"""


@dataclass(frozen=True)
class CheckoutState:
    """The checkout at one moment. ``work_tree`` holds the tracked files as they are on disk plus
    ``untracked``, the untracked files asked about that exist."""

    head: str | None
    head_ref: str | None  # the branch HEAD points at; None when detached
    index_tree: str
    work_tree: str
    untracked: tuple[str, ...]


@dataclass(frozen=True)
class TreeChange:
    """One entry of `git diff-tree --raw`: a path whose mode or contents differ between two trees."""

    path: str
    old_mode: str
    new_mode: str
    new_object: str

    @property
    def deleted(self) -> bool:
        return self.new_mode == "000000"


async def refuse_if_busy(repo: Repository) -> None:
    """Raise CheckoutRefused while a rebase, merge, cherry-pick, revert or bisect is going on."""
    names = list(_OPERATIONS)
    paths = (await git(repo.root, "rev-parse", "--path-format=absolute", *_git_paths(names))).splitlines()
    for name, path in zip(names, paths, strict=True):
        if await anyio.to_thread.run_sync(os.path.lexists, path):
            raise CheckoutRefused(
                f"{repo.root} is in the middle of {_OPERATIONS[name]}; finish or abort it first"
            )


def _git_paths(names: Iterable[str]) -> list[str]:
    return [arg for name in names for arg in ("--git-path", name)]


async def refuse_if_bare(directory: Path) -> None:
    code, out, _ = await run_git(directory, "rev-parse", "--is-bare-repository")
    if code == 0 and out.strip() == "true":
        raise CheckoutRefused(f"{directory} is a bare repository: it has no working tree to change")


async def read_state(repo: Repository, paths: Iterable[str] = ()) -> CheckoutState:
    """HEAD, the index and the working tree as they are; of the untracked files, only those at
    ``paths`` (ignored ones too) are taken into the working tree's tree."""
    head_ref = await _head_ref(repo)
    code, out, _ = await run_git(repo.root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    head = out.strip() if code == 0 else None
    async with _index_copy(repo) as env:
        try:
            index_tree = await git(repo.root, "write-tree", env=env)
        except GitError as exc:
            raise CheckoutRefused(
                f"the index of {repo.root} holds unresolved conflicts; resolve them first"
            ) from exc
        await git(repo.root, "add", "--update", "--", ".", env=env)
        untracked = await _untracked_present(repo, paths, env)
        if untracked:
            await git(repo.root, "add", "--force", "--", *_literal(untracked), env=env)
        work_tree = await git(repo.root, "write-tree", env=env)
    return CheckoutState(head, head_ref, index_tree, work_tree, tuple(untracked))


async def _head_ref(repo: Repository) -> str | None:
    code, out, _ = await run_git(repo.root, "symbolic-ref", "--quiet", "HEAD")
    return out.strip() if code == 0 else None


async def _untracked_present(repo: Repository, paths: Iterable[str], env: Mapping[str, str]) -> list[str]:
    wanted = sorted(set(paths))
    if not wanted:
        return []
    present = await anyio.to_thread.run_sync(_existing_files, repo.root, wanted)
    if not present:
        return []
    # The whole listing: matching hundreds of pathspecs costs git more than listing every entry.
    tracked = set((await git(repo.root, "ls-files", "-z", env=env)).split("\0"))
    return [path for path in present if path not in tracked]


def _existing_files(root: Path, paths: list[str]) -> list[str]:
    return [path for path in paths if os.path.islink(root / path) or os.path.isfile(root / path)]


def _literal(paths: Iterable[str]) -> list[str]:
    return [f":(literal){path}" for path in paths]


@contextlib.asynccontextmanager
async def _index_copy(repo: Repository, tree: str | None = None) -> AsyncIterator[dict[str, str]]:
    """An environment whose git works on a copy of the index (or, given ``tree``, an index of
    that tree), removed afterwards."""
    scratch = repo.state_dir / scratch_index_name()
    scratch.parent.mkdir(parents=True, exist_ok=True)
    env = {"GIT_INDEX_FILE": str(scratch)}
    try:
        if tree is not None:
            await git(repo.root, "read-tree", tree, env=env)
        else:
            real = Path(await git(repo.root, "rev-parse", "--path-format=absolute", "--git-path", "index"))
            if not await anyio.to_thread.run_sync(_copy_if_exists, real, scratch):
                await git(repo.root, "read-tree", "--empty", env=env)
        yield env
    finally:
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()


def _copy_if_exists(source: Path, target: Path) -> bool:
    # With its time: git compares each entry's time with the index file's own to find entries it
    # cannot trust (a file changed in the second the index was written); a copy made later would
    # hide such an edit.
    try:
        shutil.copy2(source, target)
    except FileNotFoundError:
        return False
    return True


async def tree_changes(
    repo: Repository, old: str, new: str, paths: Iterable[str] | None = None
) -> list[TreeChange]:
    """Every path whose mode or contents differ from tree ``old`` to tree ``new`` (only under
    ``paths`` when given), renames not looked for."""
    limit = None if paths is None else list(paths)
    if old == new or limit == []:
        return []
    out = await git(
        repo.root,
        "diff-tree",
        "-r",
        "-z",
        "--raw",
        "--no-renames",
        old,
        new,
        *(["--", *_literal(limit)] if limit is not None else []),
    )
    fields = out.split("\0")
    changes = []
    for meta, path in zip(fields[::2], fields[1::2], strict=False):
        if not meta:
            continue
        old_mode, new_mode, _, new_object, _ = meta.lstrip(":").split(" ")
        changes.append(TreeChange(path, old_mode, new_mode, new_object))
    return changes


async def write_files(repo: Repository, old: str, new: str, paths: Iterable[str] | None = None) -> list[str]:
    """Change the working tree's files that differ from tree ``old`` to tree ``new`` (only under
    ``paths`` when given) to what ``new`` holds; the index and HEAD are not touched. Returns the
    paths written or removed."""
    changes = await tree_changes(repo, old, new, paths)
    gone = [change.path for change in changes if change.deleted]
    written = [change.path for change in changes if not change.deleted]
    if gone:
        await anyio.to_thread.run_sync(_remove_files, repo.root, gone)
    if written:
        async with _index_copy(repo, new) as env:
            listing = "".join(f"{path}\0" for path in written).encode()
            await git(repo.root, "checkout-index", "--force", "-z", "--stdin", env=env, input=listing)
    return [change.path for change in changes]


def _remove_files(root: Path, paths: list[str]) -> None:
    for path in paths:
        target = root / path
        with contextlib.suppress(FileNotFoundError):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        folder = target.parent
        while folder != root:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


async def set_index_entries(repo: Repository, old: str, new: str, paths: Iterable[str] | None = None) -> None:
    """Make the index entries that differ from tree ``old`` to tree ``new`` what ``new`` holds,
    leaving every other entry (and its cached file status) as it is."""
    changes = await tree_changes(repo, old, new, paths)
    if not changes:
        return
    lines = [
        f"0 {_NO_OBJECT}\t{change.path}\0"
        if change.deleted
        else f"{change.new_mode} {change.new_object}\t{change.path}\0"
        for change in changes
    ]
    await git(repo.root, "update-index", "-z", "--index-info", input="".join(lines).encode())


async def save_index_file(repo: Repository) -> str | None:
    """Store the index file, byte for byte, as a blob; None when there is none."""
    path = await _index_path(repo)
    if not await anyio.to_thread.run_sync(path.exists):
        return None
    return await git(repo.root, "hash-object", "-w", "--no-filters", "--", str(path))


async def restore_index_file(repo: Repository, blob: str) -> None:
    """Put back the index file stored by `save_index_file`, through git's lock file, as git
    itself replaces it, so that no git command reads it half-written."""
    done = await anyio.run_process(
        ["git", "cat-file", "blob", blob], cwd=repo.root, env=environ_without_repository()
    )
    data = done.stdout
    path = await _index_path(repo)
    await anyio.to_thread.run_sync(_replace_locked, path, data)


async def _index_path(repo: Repository) -> Path:
    return Path(await git(repo.root, "rev-parse", "--path-format=absolute", "--git-path", "index"))


def _replace_locked(path: Path, data: bytes) -> None:
    lock = path.with_name(path.name + ".lock")
    with open(lock, "xb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(lock, path)
