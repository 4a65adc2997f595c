"""Where steps run: the contract between the runner and the code that prepares and cleans up places."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from treeflow.core.git import Repository
from treeflow.core.model import RunResult, Step

Warn = Callable[[str | None, str], None]
"""Reports something the user must know about a step (or the run, for None) without failing it."""


class RunRefusal(Exception):
    """The run cannot take place here at all (a repository without commits, an unknown base, the
    same run going on elsewhere): it is refused before it starts, rather than run and failed."""


class StepSetupError(Exception):
    """A step cannot start (its needs' work conflicts, a setup file is refused); it fails with this."""


@dataclass
class StepPlace:
    """The directory a step runs in, and the branch and commit its work ended up on."""

    cwd: Path
    fresh: bool = False
    worktree: Path | None = None
    work_branch: str | None = None  # the branch the step works on, while it runs
    start_commit: str | None = None
    branch: str | None = None  # the branch that keeps the step's work, once it has ended with some
    commit: str | None = None
    unsaved: str | None = None  # why the work could not be committed (the worktree is kept)


class Workspace(Protocol):
    async def open(self, run: RunResult, warn: Warn) -> str | None:
        """Prepare the run as it starts and return its base commit, if it has one. Raise
        `RunRefusal` to refuse the run; any other error ends it failed before any step starts."""
        ...

    def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
        """A place for one step, cleaned up on exit whatever the outcome."""
        ...

    async def close(self, run: RunResult) -> str | None:
        """Finish the run as it ended (gather its work) and return the branch that holds its result,
        if any; called once, even when the run was cancelled."""
        ...


class CheckoutWorkspace:
    """Every step runs directly in the repository's checkout; nothing is committed."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def open(self, run: RunResult, warn: Warn) -> str | None:
        return None

    @asynccontextmanager
    async def step_place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
        yield StepPlace(cwd=self._repo.root)

    async def close(self, run: RunResult) -> str | None:
        return None
