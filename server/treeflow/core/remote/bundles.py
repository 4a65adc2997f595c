"""Commits that travel as git bundles, on the coordinator's side: the start of a remote step going
out, its work coming back into the step's local worktree and branch."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
from pathlib import Path

import anyio

from treeflow.core.git import GitError, Repository, git, run_git
from treeflow.core.remote.messages import ShippedFile
from treeflow.core.setup_copy import copied_files


def repository_key(repo: Repository) -> str:
    """The name of this repository's cache repository on the workers: one per repository and
    machine, the same for every run from it."""
    where = f"{socket.gethostname()}\0{repo.common_dir}"
    return hashlib.sha256(where.encode()).hexdigest()[:24]


async def bundle_commits(repo: Repository, cwd: Path, ref: str, *since: str) -> bytes:
    """A bundle of what ``ref`` points at and its history (only what the ``since`` commits lack,
    when given: the receiver must have them)."""
    path = await anyio.to_thread.run_sync(_scratch, repo)
    try:
        await git(cwd, "bundle", "create", "--quiet", str(path), ref, *(f"^{commit}" for commit in since))
        return await anyio.to_thread.run_sync(path.read_bytes)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove, path)


async def bundle_commit(repo: Repository, commit: str, name: str, since: tuple[str, ...] = ()) -> bytes:
    """A bundle of ``commit`` and its history (only what the ``since`` commits lack), carried by a
    ref ``name`` made for it meanwhile. Of ``since``, only commits this repository has count; when
    they already hold all of ``commit``, the bundle has all of its history."""
    ref = f"refs/treeflow/ship/{name}"
    await git(repo.root, "update-ref", ref, commit)
    try:
        present = await _present_commits(repo, since)
        try:
            return await bundle_commits(repo, repo.root, ref, *present)
        except GitError:
            if not present:
                raise
            # Nothing left to send beyond them (git refuses an empty bundle): send it all.
            return await bundle_commits(repo, repo.root, ref)
    finally:
        with anyio.CancelScope(shield=True):
            await git(repo.root, "update-ref", "-d", ref, commit)


async def _present_commits(repo: Repository, commits: tuple[str, ...]) -> list[str]:
    if not commits:
        return []
    asked = "".join(f"{commit}^{{commit}}\n" for commit in commits).encode()
    code, out, _ = await run_git(repo.root, "cat-file", "--batch-check=%(objectname)", input=asked)
    found = set(out.split()) if code == 0 else set()
    return [commit for commit in commits if commit in found]


async def take_work(repo: Repository, worktree: Path, start: str, commit: str, bundle: bytes) -> None:
    """Move the step's worktree and branch from ``start`` to ``commit``, which ``bundle`` holds:
    only the files that differ are written, and the files `setup.copy` put there stay."""
    path = await anyio.to_thread.run_sync(_scratch, repo)
    try:
        await anyio.to_thread.run_sync(path.write_bytes, bundle)
        await git(worktree, "bundle", "unbundle", str(path))
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove, path)
    await git(worktree, "read-tree", "-u", "-m", "HEAD", commit)
    await git(worktree, "update-ref", "-m", "treeflow: work of a remote step", "HEAD", commit, start)


async def files_to_ship(worktree: Path) -> tuple[ShippedFile, ...]:
    """The files `setup.copy` put into ``worktree``, read to travel with the step."""
    paths = await copied_files(worktree)
    return await anyio.to_thread.run_sync(_read_files, worktree, paths)


def _read_files(worktree: Path, paths: list[str]) -> tuple[ShippedFile, ...]:
    shipped = []
    for relative in paths:
        path = worktree / relative
        if path.is_symlink():
            shipped.append(ShippedFile(relative, link=os.readlink(path)))
        elif path.is_file():
            shipped.append(ShippedFile(relative, path.read_bytes(), executable=os.access(path, os.X_OK)))
    return tuple(shipped)


def _scratch(repo: Repository) -> Path:
    folder = repo.state_dir / "bundles"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="remote-", suffix=".bundle", dir=folder)
    os.close(fd)
    return Path(name)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
