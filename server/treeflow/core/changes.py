"""What a commit changed against another: each file with its status and line counts, the patch, and
file contents at a revision, read through GitPython.

GitPython is synchronous, so every function here does its reading in a worker thread: the event
loop of the CLI or the language server never waits on it. Nothing here changes the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
from git import Repo
from git.diff import Diff
from git.exc import BadName, GitCommandError


class ChangeStatus(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    MODE = "mode"  # only the file's mode changed (its executable bit)


@dataclass(frozen=True)
class FileChange:
    path: str
    old_path: str | None  # where a renamed file was; None for any other change
    status: ChangeStatus
    additions: int
    deletions: int
    binary: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "old_path": self.old_path,
            "status": self.status.value,
            "additions": self.additions,
            "deletions": self.deletions,
            "binary": self.binary,
        }


@dataclass(frozen=True)
class ChangeSet:
    """What ``commit`` changed relative to ``base``, file by file, in path order."""

    base: str
    commit: str
    files: tuple[FileChange, ...]

    @property
    def additions(self) -> int:
        return sum(change.additions for change in self.files)

    @property
    def deletions(self) -> int:
        return sum(change.deletions for change in self.files)

    def stat_json(self) -> dict[str, int]:
        return {"files": len(self.files), "additions": self.additions, "deletions": self.deletions}

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "commit": self.commit,
            **self.stat_json(),
            "files": [change.to_json() for change in self.files],
        }


async def read_changes(root: Path, base: str, commit: str) -> ChangeSet:
    """The files ``commit`` changed relative to ``base`` (renames found), with their line counts."""
    return await anyio.to_thread.run_sync(_read_changes, root, base, commit)


async def read_patch(root: Path, base: str, commit: str) -> bytes:
    """The patch from ``base`` to ``commit`` as `git diff` writes it, bytes as they are."""
    return await anyio.to_thread.run_sync(_read_patch, root, base, commit)


async def read_file_at(root: Path, rev: str, path: str) -> bytes | None:
    """The contents of ``path`` at revision ``rev`` (a symbolic link's target for a link), or None
    when it has no such file."""
    return await anyio.to_thread.run_sync(_read_file_at, root, rev, path)


def _read_changes(root: Path, base: str, commit: str) -> ChangeSet:
    with Repo(root) as repo:
        old, new = repo.commit(base), repo.commit(commit)
        diffs = old.diff(new, create_patch=True, M=True)
        files = sorted((_file_change(diff) for diff in diffs), key=lambda change: change.path)
        return ChangeSet(base=old.hexsha, commit=new.hexsha, files=tuple(files))


def _file_change(diff: Diff) -> FileChange:
    patch = diff.diff if isinstance(diff.diff, bytes) else b""
    binary = patch.startswith(b"Binary files ")
    additions = deletions = 0
    if not binary:
        for line in patch.split(b"\n"):
            if line.startswith(b"+"):
                additions += 1
            elif line.startswith(b"-"):
                deletions += 1
    path = diff.b_path or diff.a_path or ""
    status = _status(diff, patch)
    old_path = diff.a_path if status is ChangeStatus.RENAMED else None
    return FileChange(path, old_path, status, additions, deletions, binary)


def _status(diff: Diff, patch: bytes) -> ChangeStatus:
    if diff.new_file:
        return ChangeStatus.ADDED
    if diff.deleted_file:
        return ChangeStatus.DELETED
    if diff.renamed_file:
        return ChangeStatus.RENAMED
    if not patch and diff.a_mode != diff.b_mode:
        return ChangeStatus.MODE
    return ChangeStatus.MODIFIED


def _read_patch(root: Path, base: str, commit: str) -> bytes:
    with Repo(root) as repo:
        patch = repo.git.diff("--no-color", "--no-ext-diff", "-M", base, commit, "--", stdout_as_string=False)
    data = patch if isinstance(patch, bytes) else str(patch).encode()
    return data + b"\n" if data and not data.endswith(b"\n") else data


def _read_file_at(root: Path, rev: str, path: str) -> bytes | None:
    with Repo(root) as repo:
        try:
            tree = repo.commit(rev).tree
            blob = tree[path]
        except (KeyError, BadName, ValueError, GitCommandError):
            return None
        if blob.type != "blob":
            return None
        data: bytes = blob.data_stream.read()
        return data
