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

from treeflow.core.git import Repository, git
from treeflow.core.remote.messages import ShippedFile
from treeflow.core.setup_copy import copied_files


def repository_key(repo: Repository) -> str:
    """The name of this repository's cache repository on the workers: one per repository and
    machine, the same for every run from it."""
    where = f"{socket.gethostname()}\0{repo.common_dir}"
    return hashlib.sha256(where.encode()).hexdigest()[:24]


async def bundle_commits(repo: Repository, cwd: Path, ref: str, since: str | None = None) -> bytes:
    """A bundle of what ``ref`` points at and its history (only what ``since`` lacks, when given)."""
    path = await anyio.to_thread.run_sync(_scratch, repo)
    try:
        await git(cwd, "bundle", "create", "--quiet", str(path), ref, *([f"^{since}"] if since else []))
        return await anyio.to_thread.run_sync(path.read_bytes)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove, path)


async def bundle_commit(repo: Repository, commit: str, name: str) -> bytes:
    """A bundle of ``commit`` and its history, carried by a ref ``name`` made for it meanwhile."""
    ref = f"refs/treeflow/ship/{name}"
    await git(repo.root, "update-ref", ref, commit)
    try:
        return await bundle_commits(repo, repo.root, ref)
    finally:
        with anyio.CancelScope(shield=True):
            await git(repo.root, "update-ref", "-d", ref, commit)


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
