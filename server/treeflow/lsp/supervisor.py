"""Runs started from the editor live here, not in the request that started them.

pygls cancels a request's handler on `$/cancelRequest`, and a handler returns long before a run
ends; so each run is a task of the supervisor's own task group, with its own cancel scope (inside
`Run`), and outlives whatever asked for it. Stopping the server cancels every run and waits for each
to kill its processes and save and remove its worktrees.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup

from treeflow.core.git import NotARepository, open_repository
from treeflow.core.model import RunStatus
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import load_workflow
from treeflow.core.worktree import GitWorkspace, WorkspaceError
from treeflow.lsp.progress import Client, RunReporter, run_payload

log = logging.getLogger(__name__)

PROGRESS_CREATE_TIMEOUT_S = 5.0


class RunRequestError(Exception):
    """A run cannot be started or found as asked; the message says why."""


@dataclass
class ProgressHost:
    """What the supervisor needs from the LSP connection for work-done progress."""

    supported: Callable[[], bool]
    create: Callable[[str], Awaitable[None]]
    on_cancel: Callable[[str, Callable[[], None]], None]


@dataclass
class _Supervised:
    run: Run
    reporter: RunReporter
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None

    def payload(self) -> dict[str, Any]:
        payload = run_payload(self.run.result)
        payload["error"] = self.error
        return payload


class Supervisor:
    def __init__(self, group: TaskGroup, client: Client, progress: ProgressHost) -> None:
        self._group = group
        self._client = client
        self._progress = progress
        self._runs: dict[str, _Supervised] = {}

    async def start(self, workflow_path: Path, steps: Sequence[str] = ()) -> str:
        """Start a run of ``workflow_path`` and return its id at once; the run goes on by itself.

        Raises RunRequestError for an invalid workflow, an unknown step or a missing repository.
        """
        workflow = load_workflow(workflow_path)
        try:
            repo = await open_repository(workflow_path.parent)
        except NotARepository as exc:
            raise RunRequestError(str(exc)) from exc
        reporter = RunReporter(self._client)
        try:
            run = Run(workflow, repo, reporter, RunOptions(select=tuple(steps)), GitWorkspace(repo, workflow))
        except ValueError as exc:
            raise RunRequestError(str(exc)) from exc
        reporter.bind(run.result)
        supervised = _Supervised(run, reporter)
        self._runs[run.result.run_id] = supervised
        self._group.start_soon(self._supervise, supervised, name=f"treeflow run {run.result.run_id}")
        return run.result.run_id

    async def _supervise(self, supervised: _Supervised) -> None:
        run, reporter = supervised.run, supervised.reporter
        token = f"treeflow/run/{run.result.run_id}"
        try:
            if self._progress.supported():
                with anyio.move_on_after(PROGRESS_CREATE_TIMEOUT_S):
                    await self._progress.create(token)
                    reporter.token = token
                    self._progress.on_cancel(token, run.cancel)
            reporter.begin(f"treeflow: {run.workflow.name}")
            async with anyio.create_task_group() as pumping:
                pumping.start_soon(reporter.pump)
                try:
                    await run.execute()
                except WorkspaceError as exc:
                    supervised.error = str(exc)
                    run.result.status = RunStatus.FAILED
                    log.error("run %s of %s refused: %s", run.result.run_id, run.workflow.path, exc)
                finally:
                    pumping.cancel_scope.cancel()
        finally:
            reporter.end(supervised.error)
            supervised.done.set()

    def cancel(self, run_id: str) -> bool:
        """Cancel a run; False if it had already ended."""
        supervised = self._find(run_id)
        if supervised.done.is_set():
            return False
        supervised.run.cancel()
        return True

    def list_runs(self) -> list[dict[str, Any]]:
        return [supervised.payload() for supervised in reversed(self._runs.values())]

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._find(run_id).payload()

    def _find(self, run_id: str) -> _Supervised:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunRequestError(f"no run {run_id!r} in this server") from None

    async def stop_all(self) -> None:
        """Cancel every run and wait until each has cleaned up."""
        for supervised in self._runs.values():
            supervised.run.cancel()
        for supervised in self._runs.values():
            await supervised.done.wait()
