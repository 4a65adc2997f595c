"""`setup: {run: …, when_changed: [...]}`: whether `setup.run` has to run in a worktree again.

After `setup.run` succeeds in a worktree, a record in the worktree's own git folder keeps a digest
of the command and of the files `when_changed` names, and the untracked and ignored paths present
then (what the setup made: `node_modules`, `.venv`). A pooled worktree that comes back to a step
with the same digest and every one of those paths still there needs no setup; anything else (a
changed lockfile, another command, a product the pool did not keep) runs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio

from treeflow.core.git import git

RECORD_NAME = "treeflow-setup"


@dataclass(frozen=True)
class SetupDigest:
    """Where `setup.run` is about to run, and the digest it runs with."""

    worktree: Path
    digest: str


async def setup_digest(
    worktree: Path | None, command: str, when_changed: tuple[str, ...]
) -> SetupDigest | None:
    """A digest of ``command`` and of the path and content of every file ``when_changed`` matches
    in ``worktree`` (a missing file counts as missing); None without `when_changed` or a worktree."""
    if worktree is None or not when_changed:
        return None
    digest = await anyio.to_thread.run_sync(_digest, worktree, command, when_changed)
    return SetupDigest(worktree, digest)


def _digest(worktree: Path, command: str, when_changed: tuple[str, ...]) -> str:
    digest = hashlib.sha256(command.encode())
    for pattern in when_changed:
        digest.update(b"\0pattern\0" + pattern.encode())
        for match in sorted(worktree.glob("/".join(PurePosixPath(pattern).parts))):
            if not match.is_file() or ".git" in match.relative_to(worktree).parts:
                continue
            digest.update(b"\0file\0" + match.relative_to(worktree).as_posix().encode() + b"\0")
            with match.open("rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


async def setup_is_current(setup: SetupDigest) -> bool:
    """Whether `setup.run` last succeeded in the worktree with this digest and what it made is still
    there. Otherwise the record is forgotten: a setup cut short or failed must not count as done."""
    path = await _record_path(setup.worktree)
    try:
        fields = json.loads(await anyio.Path(path).read_text())
        digest, products = str(fields["digest"]), [str(item) for item in fields["products"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if digest == setup.digest and all(await anyio.to_thread.run_sync(_all_exist, setup.worktree, products)):
        return True
    await anyio.Path(path).unlink(missing_ok=True)
    return False


def _all_exist(worktree: Path, paths: list[str]) -> list[bool]:
    return [os.path.lexists(worktree / path) for path in paths]


async def record_setup(setup: SetupDigest) -> None:
    """After `setup.run` succeeded: the digest, and the untracked and ignored paths there now."""
    listing = await git(
        setup.worktree, "status", "--porcelain=v1", "-z", "--ignored=traditional", "--untracked-files=normal"
    )
    products = sorted(
        entry[3:].rstrip("/") for entry in listing.split("\0") if entry.startswith(("?? ", "!! "))
    )
    data = json.dumps({"digest": setup.digest, "products": products})
    await anyio.Path(await _record_path(setup.worktree)).write_text(data)


async def _record_path(worktree: Path) -> Path:
    return Path(await git(worktree, "rev-parse", "--absolute-git-dir")) / RECORD_NAME
