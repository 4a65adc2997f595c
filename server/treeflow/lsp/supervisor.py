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

from treeflow.core import journal
from treeflow.core.events import FanOut
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import NotARepository, Repository, open_repository
from treeflow.core.journal import Journal, JournalUnavailable
from treeflow.core.model import RunResult, RunStatus
from treeflow.core.recovery import recover
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import load_workflow
from treeflow.core.worktree import GitWorkspace, WorkspaceError
from treeflow.lsp.progress import Client, RunReporter, run_payload

log = logging.getLogger(__name__)

PROGRESS_CREATE_TIMEOUT_S = 5.0
HISTORY_LIMIT = 50


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
    journal: Journal
    # Set before the final update goes out, so a cancel after that update answers False even
    # while the journal is still closing.
    ended: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    error: str | None = None
    # Waiting for the client to accept a progress token; a cancel must not wait for that.
    preparing: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    def cancel(self) -> None:
        self.preparing.cancel()
        self.run.cancel()

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
            run_journal = Journal(repo)
        except JournalUnavailable as exc:
            raise RunRequestError(str(exc)) from exc
        try:
            run = Run(
                workflow,
                repo,
                FanOut([run_journal, reporter]),
                RunOptions(select=tuple(steps)),
                LocalExecutor(GitWorkspace(repo, workflow)),
            )
        except ValueError as exc:
            await anyio.to_thread.run_sync(run_journal.close)
            raise RunRequestError(str(exc)) from exc
        reporter.bind(run.result)
        supervised = _Supervised(run, reporter, run_journal)
        self._runs[run.result.run_id] = supervised
        self._group.start_soon(self._supervise, supervised, name=f"treeflow run {run.result.run_id}")
        return run.result.run_id

    async def _supervise(self, supervised: _Supervised) -> None:
        run, reporter = supervised.run, supervised.reporter
        token = f"treeflow/run/{run.result.run_id}"
        try:
            if self._progress.supported():
                with supervised.preparing, anyio.move_on_after(PROGRESS_CREATE_TIMEOUT_S):
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
            with anyio.CancelScope(shield=True):
                await reporter.wait_turn()
            supervised.ended = True
            reporter.end(supervised.error)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(supervised.journal.close)
            supervised.done.set()

    def cancel(self, run_id: str) -> bool:
        """Cancel a run; False if it had already ended."""
        supervised = self._find(run_id)
        if supervised.ended:
            return False
        supervised.cancel()
        return True

    async def recover(self, repos: Sequence[Repository]) -> None:
        """Recover runs of these repositories whose treeflow process died."""
        for repo in repos:
            try:
                await recover(repo, log.warning)
            except JournalUnavailable as exc:
                log.error("%s; runs of %s that a crash interrupted are not recovered", exc, repo.root)

    async def list_runs(self, repos: Sequence[Repository]) -> list[dict[str, Any]]:
        """The runs of this server and, from the journals of ``repos``, earlier ones; newest first."""
        live = [supervised.payload() for supervised in reversed(self._runs.values())]
        known = {payload["run_id"] for payload in live}
        history: list[dict[str, Any]] = []
        for repo in repos:
            try:
                records = await anyio.to_thread.run_sync(
                    journal.read_runs, journal.journal_path(repo), HISTORY_LIMIT
                )
            except JournalUnavailable as exc:
                raise RunRequestError(str(exc)) from exc
            history.extend(_payload(record.run) for record in records if record.run.run_id not in known)
        history.sort(key=lambda payload: payload["started_at"] or "", reverse=True)
        return live + history

    async def get_run(self, run_id: str, repos: Sequence[Repository]) -> dict[str, Any]:
        if run_id in self._runs:
            return self._runs[run_id].payload()
        for repo in repos:
            try:
                record = await anyio.to_thread.run_sync(journal.read_run, journal.journal_path(repo), run_id)
            except JournalUnavailable as exc:
                raise RunRequestError(str(exc)) from exc
            if record is not None:
                return _payload(record.run)
        raise RunRequestError(f"no run {run_id!r} in this workspace")

    def _find(self, run_id: str) -> _Supervised:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunRequestError(f"no run {run_id!r} in this server") from None

    async def stop_all(self) -> None:
        """Cancel every run and wait until each has cleaned up."""
        for supervised in self._runs.values():
            supervised.cancel()
        for supervised in self._runs.values():
            await supervised.done.wait()


def _payload(run: RunResult) -> dict[str, Any]:
    payload = run_payload(run)
    payload["error"] = None
    return payload
