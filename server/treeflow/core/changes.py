"""What a commit changed against another: each file with its status and line counts, the patch, and
file contents at a revision, read through GitPython.

GitPython is synchronous, so every function here does its reading in a worker thread: the event
loop of the CLI or the language server never waits on it. Nothing here changes the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from git import Repo
from git.exc import BadName, GitCommandError

from treeflow.core.model import ChangeStatus

__all__ = ["ChangeSet", "ChangeStatus", "FileChange", "read_changes", "read_file_at", "read_patch"]


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
    # One `diff --raw --numstat` through GitPython's command interface: building GitPython's Diff
    # objects (or parsing a whole patch) takes two to four times as long for a few hundred files.
    with Repo(root) as repo:
        old, new = repo.commit(base).hexsha, repo.commit(commit).hexsha
        out = repo.git.diff("--raw", "--numstat", "-z", "-M", "--no-abbrev", "--no-ext-diff", old, new)
    files = sorted(_parse_raw_numstat(str(out)), key=lambda change: change.path)
    return ChangeSet(base=old, commit=new, files=tuple(files))


def _parse_raw_numstat(out: str) -> list[FileChange]:
    """`git diff --raw --numstat -z` output: every file's raw entry, then, in the same order, its
    line counts (``-`` for a binary file)."""
    fields = out.split("\0")
    raw: list[tuple[str, str | None, ChangeStatus]] = []
    at = 0
    while at < len(fields) and fields[at].startswith(":"):
        old_mode, new_mode, old_id, new_id, letter = fields[at][1:].split(" ")
        if letter[0] in "RC":
            old_path: str | None = fields[at + 1]
            path = fields[at + 2]
            at += 3
        else:
            old_path, path = None, fields[at + 1]
            at += 2
        raw.append(
            (
                path,
                old_path if letter[0] == "R" else None,
                _status(letter[0], old_id == new_id, old_mode != new_mode),
            )
        )
    changes = []
    for path, old_path, status in raw:
        added, deleted, named = fields[at].split("\t", 2)
        at += 1 if named else 3
        binary = added == "-"
        changes.append(
            FileChange(
                path, old_path, status, 0 if binary else int(added), 0 if binary else int(deleted), binary
            )
        )
    return changes


def _status(letter: str, same_contents: bool, mode_changed: bool) -> ChangeStatus:
    if letter == "A":
        return ChangeStatus.ADDED
    if letter == "D":
        return ChangeStatus.DELETED
    if letter == "R":
        return ChangeStatus.RENAMED
    if letter == "C":
        return ChangeStatus.ADDED
    if same_contents and mode_changed:
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
