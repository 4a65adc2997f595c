"""Runs started from the editor live here, not in the request that started them.

pygls cancels a request's handler on `$/cancelRequest`, and a handler returns long before a run
ends; so each run is a task of the supervisor's own task group, with its own cancel scope (inside
`Run`), and outlives whatever asked for it. Stopping the server cancels every run and waits for each
to kill its processes and save and remove its worktrees.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from treeflow.core import journal
from treeflow.core.gatekeeper import NotWaiting, decide
from treeflow.core.gates import Approval, Channel
from treeflow.core.git import NotARepository, Repository, open_repository
from treeflow.core.journal import JournalUnavailable
from treeflow.core.model import RunResult, RunStatus, Workflow
from treeflow.core.recovery import recover
from treeflow.core.remote.choice import ExecutorRefused
from treeflow.core.runner import Run, UnknownStep
from treeflow.core.service import (
    ResumePlan,
    RunNotFound,
    RunRefused,
    StartedRun,
    load_resume,
    start_run,
)
from treeflow.core.spec import load_workflow
from treeflow.core.workspace import RunRefusal
from treeflow.lsp.progress import Client, RunReporter
from treeflow.lsp.protocol import RunPayload, run_payload

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
    started: StartedRun
    reporter: RunReporter
    # Set before the final update goes out, so a cancel after that update answers False.
    ended: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    # Why the workspace refused the run before any step started; the run then counts as failed.
    error: str | None = None
    # Waiting for the client to accept a progress token; a cancel must not wait for that.
    preparing: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    # Asked to stop, by whichever way (a command, the progress's cancel, the server stopping).
    cancel_requested: bool = False

    @property
    def run(self) -> Run:
        return self.started.run

    def cancel(self) -> None:
        self.cancel_requested = True
        self.preparing.cancel()
        self.run.cancel()
        # Steps may take their kill grace to stop: clients show that the run is stopping meanwhile.
        self.reporter.changed()

    def snapshot(self) -> RunResult:
        """The run as it stands now."""
        run = self.run.snapshot()
        return run if self.error is None else replace(run, status=RunStatus.FAILED)

    def cancelling(self) -> bool:
        return self.cancel_requested

    def payload(self) -> RunPayload:
        """The run as its updates last told the client, so that a list answered between two updates
        is never ahead of the next one (a client takes an update that came after it asked for the
        list over the list); before the first update, as it stands."""
        sent = self.reporter.sent
        return (
            sent
            if sent is not None
            else run_payload(self.snapshot(), self.error, cancelling=self.cancel_requested)
        )


class Supervisor:
    def __init__(self, group: TaskGroup, client: Client, progress: ProgressHost) -> None:
        self._group = group
        self._client = client
        self._progress = progress
        self._runs: dict[str, _Supervised] = {}
        self._executions: dict[str, int] = {}
        # Until the first recovery (on `initialized`) is over, the journal still calls a run whose
        # process died `running`; a list asked for meanwhile waits rather than show it so.
        self._recovered = anyio.Event()

    async def start(self, workflow_path: Path, steps: Sequence[str] = ()) -> str:
        """Start a run of ``workflow_path`` and return its id at once; the run goes on by itself.

        Raises RunRequestError for an invalid workflow, an unknown step or a missing repository.
        """
        workflow = load_workflow(workflow_path)
        repo = await _repository_of(workflow_path.parent)
        return self._launch(repo, workflow, steps=steps)

    async def resume(self, run_id: str, repos: Sequence[Repository], *, rebase: bool = False) -> str:
        """Run again the steps of run ``run_id`` that did not succeed, under the same id; at once
        (with ``rebase``, from the checkout as it is now).

        Raises RunRequestError for a run that is not in these repositories' journals, still going
        on, succeeded, or whose steps its workflow no longer has.
        """
        await self._recovered.wait()
        live = self._runs.get(run_id)
        if live is not None and not live.ended:
            raise RunRequestError(f"run {run_id} is still going on")
        for repo in repos:
            try:
                workflow, plan = await load_resume(repo, run_id, rebase=rebase)
            except RunNotFound:
                continue
            except (RunRefused, JournalUnavailable) as exc:
                raise RunRequestError(str(exc)) from exc
            return self._launch(repo, workflow, resume=plan)
        raise RunRequestError(f"no run {run_id!r} in this workspace")

    def _launch(
        self,
        repo: Repository,
        workflow: Workflow,
        *,
        steps: Sequence[str] = (),
        resume: ResumePlan | None = None,
    ) -> str:
        reporter = RunReporter(self._client)
        try:
            started = start_run(repo, workflow, reporter, steps=steps, resume=resume)
        except (JournalUnavailable, UnknownStep, ExecutorRefused) as exc:
            raise RunRequestError(str(exc)) from exc
        supervised = _Supervised(started, reporter)
        reporter.follow(supervised.snapshot, supervised.cancelling)
        self._runs[started.run_id] = supervised
        self._group.start_soon(self._supervise, supervised, name=f"treeflow run {started.run_id}")
        return started.run_id

    async def _supervise(self, supervised: _Supervised) -> None:
        run, reporter = supervised.run, supervised.reporter
        run_id = run.run_id
        try:
            try:
                await self._offer_progress(supervised)
                reporter.begin(f"treeflow: {run.workflow.name}")
                async with anyio.create_task_group() as pumping:
                    pumping.start_soon(reporter.pump)
                    try:
                        await supervised.started.execute()
                    except RunRefusal as exc:
                        supervised.error = str(exc)
                        log.error("run %s of %s refused: %s", run_id, run.workflow.path, exc)
                    finally:
                        pumping.cancel_scope.cancel()
            finally:
                await supervised.started.close()
        # This task belongs to the server's task group: anything escaping it would end the server
        # and every other run in it. Cancellation is a BaseException (alone or in a group) and
        # still propagates; an ExceptionGroup of plain errors is an Exception and ends this run only.
        except Exception as exc:
            supervised.error = _describe_error(exc)
            log.exception("run %s of %s failed: %s", run_id, run.workflow.path, supervised.error)
        finally:
            with anyio.CancelScope(shield=True):
                await reporter.wait_turn()
            supervised.ended = True
            reporter.end(supervised.error)
            supervised.done.set()

    async def _offer_progress(self, supervised: _Supervised) -> None:
        """Ask the client for a work-done progress token; the run goes on without one if refused."""
        if not self._progress.supported():
            return
        run_id = supervised.run.run_id
        # A progress token is never used twice, and a resumed run has the id of the run it resumes.
        self._executions[run_id] = executions = self._executions.get(run_id, 0) + 1
        token = f"treeflow/run/{run_id}" + (f"/{executions}" if executions > 1 else "")
        with supervised.preparing, anyio.move_on_after(PROGRESS_CREATE_TIMEOUT_S):
            try:
                await self._progress.create(token)
            except Exception:
                log.warning("run %s: the client refused progress token %s", run_id, token, exc_info=True)
                return
            supervised.reporter.token = token
            self._progress.on_cancel(token, supervised.cancel)

    async def approve(
        self, run_id: str, step_id: str, repos: Sequence[Repository], *, approve: bool, note: str | None
    ) -> tuple[Approval, bool]:
        """Decide the approval gate ``step_id`` of run ``run_id`` waits at; return the decision and
        whether the run was resumed to act on it (no process was waiting: its server stopped, or
        its process died), as `treeflow resume` would.

        Raises RunRequestError for an unknown run or step, one not waiting for approval, and a
        resume refused (the decision then stays for the next resume).
        """
        await self._recovered.wait()
        for repo in repos:
            try:
                record = await anyio.to_thread.run_sync(journal.read_run, journal.journal_path(repo), run_id)
            except JournalUnavailable as exc:
                raise RunRequestError(str(exc)) from exc
            if record is None:
                continue
            if step_id not in record.run.steps:
                raise RunRequestError(f"run {run_id} has no step {step_id}")
            try:
                approval = await decide(repo, run_id, step_id, approve=approve, via=Channel.EDITOR, note=note)
            except NotWaiting as exc:
                raise RunRequestError(str(exc)) from exc
            live = self._runs.get(run_id)
            if (live is not None and not live.ended) or (
                record.run.status is RunStatus.RUNNING and record.owner_alive()
            ):
                return approval, False
            try:
                await self.resume(run_id, [repo])
            except RunRequestError as exc:
                raise RunRequestError(f"{approval.describe()}, but run {run_id} cannot go on: {exc}") from exc
            return approval, True
        raise RunRequestError(f"no run {run_id!r} in this workspace")

    def cancel(self, run_id: str) -> bool:
        """Cancel a run; False if it had already ended."""
        supervised = self._find(run_id)
        if supervised.ended:
            return False
        supervised.cancel()
        return True

    async def recover(self, repos: Sequence[Repository]) -> None:
        """Recover runs of these repositories whose treeflow process died."""
        try:
            for repo in repos:
                try:
                    await recover(repo, log.warning)
                except JournalUnavailable as exc:
                    log.error("%s; runs of %s that a crash interrupted are not recovered", exc, repo.root)
        finally:
            self._recovered.set()

    async def wait_recovered(self) -> None:
        """Until the first recovery is over, a run a crash interrupted still reads as running."""
        await self._recovered.wait()

    async def list_runs(self, repos: Sequence[Repository]) -> list[RunPayload]:
        """The runs of this server and, from the journals of ``repos``, earlier ones; newest first."""
        await self._recovered.wait()
        live = [supervised.payload() for supervised in reversed(self._runs.values())]
        known = {payload.run_id for payload in live}
        history: list[RunPayload] = []
        for repo in repos:
            try:
                records = await anyio.to_thread.run_sync(
                    journal.read_runs, journal.journal_path(repo), HISTORY_LIMIT
                )
            except JournalUnavailable as exc:
                raise RunRequestError(str(exc)) from exc
            history.extend(run_payload(record.run) for record in records if record.run.run_id not in known)
        history.sort(key=lambda payload: payload.started_at or "", reverse=True)
        return live + history

    async def get_run(self, run_id: str, repos: Sequence[Repository]) -> RunPayload:
        await self._recovered.wait()
        if run_id in self._runs:
            return self._runs[run_id].payload()
        for repo in repos:
            try:
                record = await anyio.to_thread.run_sync(journal.read_run, journal.journal_path(repo), run_id)
            except JournalUnavailable as exc:
                raise RunRequestError(str(exc)) from exc
            if record is not None:
                return run_payload(record.run)
        raise RunRequestError(f"no run {run_id!r} in this workspace")

    def _find(self, run_id: str) -> _Supervised:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunRequestError(f"no run {run_id!r} in this server") from None

    async def stop_all(self) -> None:
        """Cancel every run and wait until each has cleaned up; a run waiting at an approval gate
        keeps its request open, for its resume to offer again."""
        for supervised in self._runs.values():
            supervised.run.leave_gates_open()
            supervised.cancel()
        for supervised in self._runs.values():
            await supervised.done.wait()


def _describe_error(exc: BaseException) -> str:
    """What went wrong, in one line: the type and message of each error, groups opened up."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe_error(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _repository_of(folder: Path) -> Repository:
    try:
        return await open_repository(folder)
    except NotARepository as exc:
        raise RunRequestError(str(exc)) from exc
