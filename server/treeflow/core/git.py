"""Async access to the git repository a workflow runs in."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import anyio


class GitError(Exception):
    """A git command failed; the message holds git's own words."""


class NotARepository(GitError):
    pass


@dataclass(frozen=True)
class Repository:
    root: Path
    common_dir: Path

    @property
    def state_dir(self) -> Path:
        """Where treeflow keeps its journal and logs: inside git's own folder, shared by all worktrees."""
        return self.common_dir / "treeflow"


async def git(cwd: Path, *args: str) -> str:
    """Run git with an argument list and return its stdout, stripped; raise GitError on failure."""
    result = await anyio.run_process(
        ["git", *args], cwd=cwd, check=False, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        message = result.stderr.decode("utf-8", errors="replace").strip()
        raise GitError(f"git {' '.join(args)}: {message or f'exit status {result.returncode}'}")
    return result.stdout.decode("utf-8", errors="replace").strip()


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
    root = Path(root_line)
    common = Path(common_line)
    if not common.is_absolute():
        common = (directory / common).resolve()
    return Repository(root=root, common_dir=common)


def _existing_directory(path: Path) -> Path:
    directory = path if path.is_dir() else path.parent
    if not directory.is_dir():
        raise NotARepository(f"{path}: no such directory")
    return directory


async def head_commit(repo: Repository) -> str | None:
    """The commit HEAD points at, or None in a repository without commits yet."""
    try:
        return await git(repo.root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        return None
