"""Starting and resuming runs: the one way the CLI and the language server assemble a run.

A front end finds the workflow (or, to resume, the run's record), asks this module for a run, and
then only decides how to show it and how to cancel it. The run's journal is part of the run: it is
opened with it, sees every event before the front end's sink does, and is closed when it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import anyio

from treeflow.core import journal
from treeflow.core.events import EventSink, FanOut
from treeflow.core.git import Repository
from treeflow.core.git_workspace import GitWorkspace
from treeflow.core.journal import Journal, RunRecord
from treeflow.core.locations import round_name
from treeflow.core.model import RunResult, RunStatus, StepResult, Workflow
from treeflow.core.remote.choice import ExecutorChoice, choose_executor, make_executor
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import load_workflow
from treeflow.core.step_cache import StepCache


class RunRefused(Exception):
    """A run cannot be started or resumed as asked; the message says why."""


class RunNotFound(RunRefused):
    """The journal has no run of that id."""


class AmbiguousRunId(RunRefused):
    """More than one run's id begins with the prefix given."""


_CANDIDATES_SHOWN = 10


@dataclass(frozen=True)
class ResumePlan:
    """What a resume runs again, and where it starts from: the same run id and base, and for each
    step that already succeeded, its result and the commit its dependents start from (its branch
    instead, when that has moved since). With ``rebase`` the steps that run again start from the
    checkout as it is now rather than the run's base."""

    run_id: str
    steps: tuple[str, ...]
    base_commit: str | None
    completed: Mapping[str, StepResult] = field(default_factory=dict)
    start_points: Mapping[str, str] = field(default_factory=dict)
    rebase: bool = False
    # How each step that runs again ended before: an agent continues its session from there.
    earlier: Mapping[str, StepResult] = field(default_factory=dict)


def plan_resume(record: RunRecord, workflow: Workflow, *, rebase: bool = False) -> ResumePlan:
    """Plan to run again the steps of ``record`` that did not succeed, with ``workflow`` as it is now
    (and, with ``rebase``, the checkout as it is now as their base).

    Raises RunRefused for a run still going on, one that succeeded, one discarded, and one whose
    steps the workflow no longer has.
    """
    run = record.run
    if record.discarded_at is not None:
        raise RunRefused(f"run {run.run_id} was discarded: its branches are gone; start a new run")
    if run.status is RunStatus.RUNNING:
        raise RunRefused(f"run {run.run_id} is still going on in another treeflow process")
    if run.status is RunStatus.SUCCEEDED:
        raise RunRefused(f"run {run.run_id} succeeded; there is nothing to resume")
    gone = [step_id for step_id in record.steps if step_id not in workflow.steps]
    if gone:
        raise RunRefused(
            f"{run.workflow_path} no longer has step{'s' if len(gone) > 1 else ''} {', '.join(gone)} "
            f"of run {run.run_id}, so the run cannot be finished as it began; start a new run"
        )
    completed = {
        step_id: step.result for step_id, step in record.steps.items() if step.result.status.is_success
    }
    base = run.base_commit
    # A step that committed nothing hands its dependents the commit it started from.
    start_points = {
        step_id: record.steps[step_id].result.commit or record.steps[step_id].start_commit or base or ""
        for step_id in completed
    }
    # A fix loop goes on from its last round's work: the next round names that round as its need.
    for step_id, step in record.steps.items():
        if step_id not in completed and step.result.rounds:
            last = step.result.rounds[-1]
            start_points[round_name(step_id, last.number)] = last.commit or step.start_commit or base or ""
    return ResumePlan(
        run_id=run.run_id,
        steps=tuple(record.steps),
        base_commit=base,
        completed=completed,
        start_points=start_points,
        rebase=rebase,
        earlier={step_id: step.result for step_id, step in record.steps.items() if step_id not in completed},
    )


async def find_run(repo: Repository, given: str) -> RunRecord:
    """The run of ``repo`` that ``given`` names: a run id, any unique prefix of one, or ``last``
    for the newest run. Raises RunNotFound, or AmbiguousRunId naming some of the candidates."""
    path = journal.journal_path(repo)
    ids = await anyio.to_thread.run_sync(journal.matching_run_ids, path, given, _CANDIDATES_SHOWN + 1)
    if len(ids) > 1:
        shown = ", ".join(ids[:_CANDIDATES_SHOWN]) + (", ..." if len(ids) > _CANDIDATES_SHOWN else "")
        raise AmbiguousRunId(f"{given} could be any of several runs: {shown}; give more of the id")
    record = await anyio.to_thread.run_sync(journal.read_run, path, ids[0]) if ids else None
    if record is None:
        raise RunNotFound(f"no run {given} in the journal of {repo.root} (see `treeflow runs`)")
    return record


async def load_resume(repo: Repository, run_id: str, *, rebase: bool = False) -> tuple[Workflow, ResumePlan]:
    """The workflow and plan to resume run ``run_id`` of ``repo`` (as `find_run` takes it), read
    from its journal."""
    record = await find_run(repo, run_id)
    workflow = load_workflow(record.run.workflow_path)
    return workflow, plan_resume(record, workflow, rebase=rebase)


class StartedRun:
    """A run with its journal, ready to execute; made by `start_run`."""

    def __init__(self, run: Run, run_journal: Journal) -> None:
        self.run = run
        self._journal = run_journal

    @property
    def run_id(self) -> str:
        return self.run.run_id

    async def execute(self) -> RunResult:
        """Run every step to a final state; the journal has written all of it when this returns.

        Raises what the run raises when it is refused before any step starts.
        """
        try:
            return await self.run.execute()
        finally:
            await self.close()

    async def close(self) -> None:
        """Write what the journal still holds and stop its writer; for a run that never executes
        (its front end went away first) too. Closing again does nothing."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._journal.close)


def start_run(
    repo: Repository,
    workflow: Workflow,
    sink: EventSink,
    *,
    steps: Sequence[str] = (),
    max_parallel: int | None = None,
    resume: ResumePlan | None = None,
    reuse_cache: bool = True,
    executor: ExecutorChoice | None = None,
) -> StartedRun:
    """Assemble a run of ``workflow`` (or, with ``resume``, the rest of an earlier run) whose events
    go to the journal of ``repo`` and then to ``sink``.

    Steps with `cache:` replay the work of an earlier success with the same key, unless
    ``reuse_cache`` is false (`--no-cache`): then every step runs, and what succeeds is still kept.
    ``executor`` says where steps run; without it, the environment and the workflow decide (see
    `choose_executor`).

    Raises UnknownStep for a step ``steps`` names that the workflow does not have,
    JournalUnavailable when the journal cannot be opened, and ExecutorRefused when the executor
    cannot be used as asked (ExecutorUnavailable: its package is not installed).
    """
    choice = executor or choose_executor(workflow)
    run_journal = Journal(repo)
    try:
        if resume is None:
            options = RunOptions(select=tuple(steps), max_parallel=max_parallel)
            workspace = GitWorkspace(repo, workflow, max_parallel=max_parallel)
        else:
            options = RunOptions(
                select=resume.steps,
                max_parallel=max_parallel,
                run_id=resume.run_id,
                completed=resume.completed,
                earlier=resume.earlier,
            )
            workspace = GitWorkspace(
                repo,
                workflow,
                base=resume.base_commit,
                results=resume.start_points,
                rebase=resume.rebase,
                max_parallel=max_parallel,
            )
        if any(step.cache is not None for step in workflow.steps.values()):
            options = replace(options, cache=StepCache(repo, workspace, reuse=reuse_cache))
        executor_of_run = make_executor(choice, workspace, workflow, repo)
        run = Run(workflow, repo, FanOut([run_journal, sink]), options, executor_of_run)
    except BaseException:
        run_journal.close()
        raise
    return StartedRun(run, run_journal)
