"""Helpers for the review tests: run a workflow through the engine, and take the whole state of a
checkout (every file with its kind and bytes, the index entries and file, HEAD) to compare."""

from __future__ import annotations

import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from treeflow.core.events import NullSink
from treeflow.core.git import open_repository
from treeflow.core.journal import RunRecord
from treeflow.core.service import find_run, start_run
from treeflow.core.spec import load_workflow


async def run_workflow(repo: Path, yaml_text: str, workflow_file: Path | None = None) -> RunRecord:
    """Run ``yaml_text`` (kept outside the checkout, so that it is no untracked file there) and
    return the run as the journal has it."""
    path = workflow_file or repo.parent / f"{repo.name}-workflow.yml"
    path.write_text(textwrap.dedent(yaml_text))
    repository = await open_repository(repo)
    result = await start_run(repository, load_workflow(path), NullSink()).execute()
    return await find_run(repository, result.run_id)


@dataclass(frozen=True)
class Checkout:
    """Everything a user has in a checkout: files (path -> (kind, bytes)), index, HEAD."""

    files: dict[str, tuple[str, bytes]]
    index_entries: str
    index_file: bytes
    head: str

    def text(self) -> dict[str, str]:
        """The files as ``{path: text}``, links as ``-> target`` and executables with a ``*``."""
        marks = {"file": "", "exec": "*", "link": "-> "}
        return {
            path: marks[kind] + data.decode(errors="replace") for path, (kind, data) in self.files.items()
        }


def checkout(repo: Path) -> Checkout:
    files: dict[str, tuple[str, bytes]] = {}
    for folder, dirs, names in os.walk(repo):
        dirs[:] = [name for name in dirs if not (folder == str(repo) and name == ".git")]
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
            full = Path(folder, name)
            relative = full.relative_to(repo).as_posix()
            if full.is_symlink():
                files[relative] = ("link", os.readlink(full).encode())
            else:
                kind = "exec" if os.access(full, os.X_OK) else "file"
                files[relative] = (kind, full.read_bytes())
    return Checkout(
        files=dict(sorted(files.items())),
        index_entries=_git(repo, "ls-files", "--stage"),
        index_file=(repo / ".git" / "index").read_bytes(),
        head=_git(repo, "rev-parse", "HEAD")
        + " "
        + _git(repo, "symbolic-ref", "--quiet", "HEAD", check=False),
    )


def staged(repo: Path) -> dict[str, str]:
    """The index's files as text."""
    paths = _git(repo, "ls-files").splitlines()
    return {path: _git(repo, "show", f":{path}", strip=False) for path in paths}


def _git(repo: Path, *args: str, check: bool = True, strip: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check)
    return done.stdout.strip() if strip else done.stdout
