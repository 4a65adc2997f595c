"""A starter treeflow.yml made from what a repository already runs: package.json scripts,
pytest, ruff and mypy of a Python project, Makefile targets, GitHub Actions jobs.

`treeflow init` and the editor's "Create Workflow" write it; it always passes `treeflow validate`.
Reading the repository is synchronous file work: async callers run it in a worker thread.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path

from treeflow.core.spec import find_workflow, parse_workflow
from treeflow.core.starter import ci, make, node, python
from treeflow.core.starter.model import Found, FoundCommand, FoundSetup, Role
from treeflow.core.starter.plan import Starter, StarterStep, plan
from treeflow.core.starter.render import render

__all__ = [
    "STARTER_NAME",
    "Found",
    "FoundCommand",
    "FoundSetup",
    "Role",
    "Starter",
    "StarterStep",
    "WorkflowExists",
    "WrittenStarter",
    "find_starter",
    "starter_text",
    "write_starter",
]

STARTER_NAME = "treeflow.yml"
# In the order their steps appear: the repository's own scripts before what CI repeats of them.
_SOURCES = (node.find, python.find, make.find, ci.find)


class WorkflowExists(Exception):
    """The folder has a workflow already; ``path`` is that file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} already exists; `treeflow init --force` replaces it with a starter workflow"
        )


def find_starter(folder: Path) -> Starter:
    """The starter workflow for the repository at ``folder``."""
    starter = plan([found for source in _SOURCES if (found := source(folder)) is not None])
    if starter.setup is None:
        return starter
    ignored = _ignore_patterns(folder)
    not_ignored = tuple(name for name in starter.setup.keep if not _ignored(name, ignored))
    return dataclasses.replace(starter, not_ignored=not_ignored)


def starter_text(starter: Starter, folder: Path) -> str:
    text = render(starter)
    # Checked here, so that a command read from the repository that the parser would refuse is
    # a bug found by treeflow, never a broken file handed to the user.
    parse_workflow(text, folder / STARTER_NAME)
    return text


@dataclasses.dataclass(frozen=True)
class WrittenStarter:
    path: Path
    starter: Starter


def write_starter(folder: Path, *, force: bool = False) -> WrittenStarter:
    """Writes the starter to ``folder``/treeflow.yml.

    Raises WorkflowExists when the folder has a workflow (treeflow.yml, treeflow.yaml or one in
    `.treeflow/`), unless ``force``, which replaces treeflow.yml.
    """
    target = folder / STARTER_NAME
    if not force:
        existing = _existing_workflow(folder)
        if existing is not None:
            raise WorkflowExists(existing)
    starter = find_starter(folder)
    text = starter_text(starter, folder)
    # "x" refuses a file that appeared since the check, so nothing is ever overwritten unasked.
    with target.open("w" if force else "x", encoding="utf-8") as file:
        file.write(text)
    return WrittenStarter(target, starter)


def _ignore_patterns(folder: Path) -> list[str]:
    """The patterns of the repository's top .gitignore and its own exclude file (a starter's
    guess: nested .gitignore files and the global one are not read)."""
    patterns: list[str] = []
    for path in (folder / ".gitignore", folder / ".git" / "info" / "exclude"):
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        patterns.extend(line.strip() for line in lines if line.strip() and not line.startswith(("#", "!")))
    return patterns


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern.strip("/")) for pattern in patterns)


def _existing_workflow(folder: Path) -> Path | None:
    try:
        return find_workflow(folder)
    except FileNotFoundError:
        # Several files in .treeflow/ (`treeflow run` asks which) are workflows too.
        nested = folder / ".treeflow"
        found = sorted(nested.iterdir()) if nested.is_dir() else []
        return next((path for path in found if path.suffix in (".yml", ".yaml") and path.is_file()), None)
