"""Run a workflow: one task per step in an anyio task group.

A step starts as soon as every step it needs has succeeded (no waves), holds one slot of a
capacity limiter while it runs (retries and their back-off included), and ends in exactly one
final state. A failure with ``fail_fast`` cancels the steps running at that moment: they end ``cancelled``
(their process trees killed), and a step that was still to start then starts only if its `if:`
asks for it (`always()`, `cancelled()`, `failure()`); the others end ``skipped``. Without
``fail_fast`` only the failed step's dependents are skipped, unless their `if:` says otherwise.

An error in a step's task is that step's failure, not the task group's: it ends the step `failed`
with the error as its reason, and fail-fast goes on from there as after any failure, so a run never
ends with a step still `running` in it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio

from treeflow.core import graph, kinds, matrix
from treeflow.core.attempt import Attempt
from treeflow.core.events import (
    ApprovalDecided,
    ApprovalRequested,
    EventSink,
    RunFinished,
    RunStarted,
    RunWarning,
    StepFinished,
    StepPlaced,
    StepRetrying,
    StepRound,
    StepStarted,
)
from treeflow.core.executor import AttemptLost, Executor, LocalExecutor
from treeflow.core.expressions import ExpressionError, calls_status_function
from treeflow.core.fix_loop import LoopState, RoundHooks, first_round, run_rounds
from treeflow.core.gatekeeper import Gatekeeper
from treeflow.core.gates import Approval, Decision
from treeflow.core.git import GitError, Repository, environ_without_repository
from treeflow.core.journal.errors import JournalUnavailable
from treeflow.core.model import (
    AgentUsage,
    FixRound,
    RemotePlace,
    RunResult,
    RunStatus,
    Step,
    StepResult,
    StepStatus,
    Workflow,
)
from treeflow.core.outcome import StepOutcome
from treeflow.core.ports import PortPool
from treeflow.core.process import DEFAULT_KILL_GRACE_S
from treeflow.core.setup_record import record_setup, setup_digest, setup_is_current
from treeflow.core.spec_fix_loop import fixer_ids
from treeflow.core.step_cache import CacheMiss, StepCache
from treeflow.core.step_context import StepContext
from treeflow.core.step_outputs import OutputsError, output_variables, outputs_file, read_outputs
from treeflow.core.steplog import StepLog
from treeflow.core.workspace import CheckoutWorkspace, RunRefusal, StepPlace, StepSetupError
from treeflow.quoting import quoted

log = logging.getLogger(__name__)

_SETUP_DONE = StepOutcome(StepStatus.SUCCEEDED)
_PENDING = StepResult()
# A step whose machines keep going away fails after this many lost attempts beyond its `retry`.
_MAX_LOST_ATTEMPTS = 3


@dataclass(slots=True)
class _RunningStep:
    """What the runner knows of a step while it runs, changed in place as the step goes on; `result`
    is the value it amounts to, made when an event or a snapshot needs it."""

    started_at: float
    status: StepStatus = StepStatus.RUNNING
    attempts: int = 0
    exit_code: int | None = None
    ended_at: float | None = None
    branch: str | None = None
    commit: str | None = None
    log: Path | None = None
    error: str | None = None
    duration_s: float | None = None
    progress: float | None = None
    message: str | None = None
    summary: str | None = None
    agent: AgentUsage | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)
    rounds: list[FixRound] = field(default_factory=list)
    approval: Approval | None = None
    cached_from: str | None = None
    worker: str | None = None
    # Whether its setup or first attempt has begun: stopped before that, a step counts as skipped.
    began: bool = False
    # Its log while it runs: named in the result from its first write, so that it can be read live.
    log_file: StepLog | None = None

    def note_progress(self, fraction: float | None, message: str | None, summary: str | None) -> None:
        self.progress, self.message, self.summary = fraction, message, summary

    def note_agent(self, usage: AgentUsage) -> None:
        self.agent = usage

    def note_round(self, fix_round: FixRound) -> None:
        """Keep a round of its fix loop, in place of what was known of it before."""
        if self.rounds and self.rounds[-1].number == fix_round.number:
            self.rounds[-1] = fix_round
        else:
            self.rounds.append(fix_round)

    def note_remote(self, remote: RemotePlace) -> None:
        if remote.worker is not None:
            self.worker = remote.worker

    def note_exit(self, exit_code: int | None) -> None:
        """A process of the step ended: its status stands for the step's until the attempt's
        outcome says otherwise (a step killed as it was stopped has no outcome but this)."""
        if exit_code is not None:
            self.exit_code = exit_code

    def _log_so_far(self) -> Path | None:
        if self.log is None and self.log_file is not None and self.log_file.created:
            return self.log_file.path
        return self.log

    def result(self) -> StepResult:
        return StepResult(
            status=self.status,
            attempts=self.attempts,
            exit_code=self.exit_code,
            started_at=self.started_at,
            ended_at=self.ended_at,
            branch=self.branch,
            commit=self.commit,
            log=self._log_so_far(),
            error=self.error,
            duration_s=self.duration_s,
            progress=self.progress,
            message=self.message,
            summary=self.summary,
            agent=self.agent,
            outputs=self.outputs,
            rounds=tuple(self.rounds),
            approval=self.approval,
            cached_from=self.cached_from,
            worker=self.worker,
        )


@dataclass(frozen=True)
class RunOptions:
    select: tuple[str, ...] = ()
    max_parallel: int | None = None
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    run_id: str | None = None
    # Steps that already succeeded in an earlier execution of this run (see `treeflow resume`).
    completed: Mapping[str, StepResult] = field(default_factory=dict)
    # How the steps that run again ended in that earlier execution (an agent resumes its session).
    earlier: Mapping[str, StepResult] = field(default_factory=dict)
    # Where steps with `cache:` look up and keep their work; None: every step runs.
    cache: StepCache | None = None


class UnknownStep(ValueError):
    pass


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()


def select_steps(workflow: Workflow, selected: Iterable[str]) -> list[str]:
    """The ids to run, in file order: all steps, or the selected ones and everything they need (a
    matrix step selected by its id is every combination of it). Fixers run only inside the fix
    loops of the steps they fix, never as steps of their own."""
    fixers = fixer_ids(workflow.steps)
    names = list(selected)
    if not names:
        return [step_id for step_id in workflow.steps if step_id not in fixers]
    named = {name: matrix.named_steps(workflow.steps.keys(), name) for name in names}
    unknown = [name for name, found in named.items() if not found]
    if unknown:
        known = ", ".join(matrix.written_ids(workflow.steps))
        raise UnknownStep(f"unknown step {quoted(', '.join(unknown))} in {workflow.path} (steps: {known})")
    only_fixers = [name for name in names if name in fixers]
    if only_fixers:
        fixed = [s.id for s in workflow.steps.values() if s.on_failure and s.on_failure.fixer in only_fixers]
        raise UnknownStep(
            f"step {quoted(', '.join(only_fixers))} of {workflow.path} runs only as the fixer of "
            f"{quoted(', '.join(fixed))} (their `on_failure`); "
            f"run {'those' if len(fixed) > 1 else 'it'} instead"
        )
    wanted = [step_id for found in named.values() for step_id in found]
    needs = {step_id: step.needs for step_id, step in workflow.steps.items()}
    chosen = graph.closure(wanted, needs)
    return [step_id for step_id in workflow.steps if step_id in chosen]


class Run:
    """One execution of a workflow. Create it, then ``await execute()``; ``cancel()`` may come at any time.

    Events carry values that never change: each step's result is made once, when the step ends
    (a running step's state is the runner's own, changed in place), and `snapshot` gathers the run's
    result as it stands.
    """

    def __init__(
        self,
        workflow: Workflow,
        repo: Repository,
        sink: EventSink,
        options: RunOptions = RunOptions(),
        executor: Executor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.workflow = workflow
        self.repo = repo
        self._sink = sink
        self._options = options
        self._executor = executor or LocalExecutor(CheckoutWorkspace(repo))
        self._rng = rng or random.Random()
        self._ports = PortPool()
        self._base_env = {**environ_without_repository(), **workflow.env}
        # Made once: each step's context walks it, and remaking it per step costs O(steps²).
        self._needs = {step.id: step.needs for step in workflow.steps.values()}
        step_ids = select_steps(workflow, options.select)
        self.run_id = options.run_id or new_run_id()
        # Each step's result as last made: pending, carried over from an earlier execution, or final.
        self._steps = {step_id: options.completed.get(step_id) or _PENDING for step_id in step_ids}
        self._running: dict[str, _RunningStep] = {}
        self._status = RunStatus.RUNNING
        self._base_commit: str | None = None
        self._result_branch: str | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._duration_s: float | None = None
        self._warnings: list[str] = []
        self._done = {step_id: anyio.Event() for step_id in step_ids}
        self._cancel_scope: anyio.CancelScope | None = None
        # Each step's own scope, which a fail-fast cancels while the step runs.
        self._step_scopes: dict[str, anyio.CancelScope] = {}
        self._cancel_requested = False
        self._failed_first: str | None = None
        # Why the run failed beyond its steps' own outcomes (its work could not be gathered, say).
        self._fault: str | None = None
        # Why a step's cached work was not used, for the top of its log.
        self._cache_notes: dict[str, bytes] = {}
        self._replay_limiter = anyio.CapacityLimiter(self.max_parallel)
        self.log_dir = repo.state_dir / "logs" / self.run_id
        self._gatekeeper = Gatekeeper(repo, self.run_id)
        # The scope of each step waiting at its approval gate, which a fail-fast cancels.
        self._gate_scopes: dict[str, anyio.CancelScope] = {}

    @property
    def max_parallel(self) -> int:
        return self._options.max_parallel or self.workflow.max_parallel or os.cpu_count() or 1

    def cancel(self) -> None:
        """Stop the run: running steps end ``cancelled`` with their trees killed, the rest ``skipped``."""
        self._cancel_requested = True
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    def leave_gates_open(self) -> None:
        """Keep the requests of the steps waiting at their approval gates open when the run is
        cancelled (by a process that is stopping, not by a person): its next resume offers them
        again, and acts on a decision made in between."""
        self._gatekeeper.keep_open = True

    def snapshot(self) -> RunResult:
        """The run's result as it stands now, its steps' results included; a value the run goes on
        without changing."""
        return RunResult(
            run_id=self.run_id,
            workflow=self.workflow.name,
            workflow_path=self.workflow.path,
            status=self._status,
            base_commit=self._base_commit,
            result_branch=self._result_branch,
            started_at=self._started_at,
            ended_at=self._ended_at,
            steps={**self._steps, **{step_id: step.result() for step_id, step in self._running.items()}},
            duration_s=self._duration_s,
            warnings=tuple(self._warnings),
        )

    def warn(self, step_id: str | None, message: str) -> None:
        self._warnings.append(f"{step_id}: {message}" if step_id else message)
        self._sink.emit(RunWarning(self.run_id, step_id, message))

    async def execute(self) -> RunResult:
        """Run every step to a final state and return the final result.

        Raises what the executor raises when it refuses the run (`RunRefusal`), before any step
        starts. Anything else that goes wrong ends the run `failed`, saying why: a step it happens
        in fails with it, and a run that cannot start has every step skipped.
        """
        self._started_at = time.time()
        started = time.monotonic()
        try:
            self._base_commit = await self._executor.open(self.snapshot(), self.warn)
        except Exception as exc:
            if self._cancel_requested:
                # Cancelled while the workspace was being prepared (a terminal's Ctrl-C can kill a git
                # command in the instant before it leaves treeflow's process group): what failed then
                # is an effect of the cancel, and the run simply never started.
                self._sink.emit(RunStarted(self.snapshot()))
                return self._end_unstarted(RunStatus.CANCELLED, "the run was cancelled", started)
            if isinstance(exc, RunRefusal):
                raise
            log.debug("run %s could not start", self.run_id, exc_info=True)
            self._sink.emit(RunStarted(self.snapshot()))
            self.warn(None, f"the run could not start: {describe_error(exc)}")
            return self._end_unstarted(RunStatus.FAILED, "the run could not start", started)
        self._sink.emit(RunStarted(self.snapshot()))
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.warn(None, f"step logs cannot be kept in {self.log_dir}: {exc.strerror or exc}")
        limiter = anyio.CapacityLimiter(self.max_parallel)
        try:
            with anyio.CancelScope() as self._cancel_scope:
                if self._cancel_requested:
                    self._cancel_scope.cancel()
                async with anyio.create_task_group() as group:
                    for step_id in self._steps:
                        group.start_soon(self._step_task, self.workflow.steps[step_id], limiter)
        except Exception as exc:
            # Each step ends with its own errors, so only a fault in treeflow's bookkeeping gets
            # here; the run still ends, failed, and says why rather than leaving steps running.
            log.debug("run %s: its task group failed", self.run_id, exc_info=True)
            self._fault = f"treeflow failed: {describe_error(exc)}"
            self.warn(None, self._fault)
            for step_id in self._steps:
                if not self._step_status(step_id).is_final:
                    self._finish_with_error(step_id, self._fault)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_executor()
            final = self._end(self._outcome(), started)
        return final

    async def _close_executor(self) -> None:
        """Gather the run's work; when that fails, the run fails, saying why."""
        try:
            self._result_branch = await self._executor.close(self.snapshot())
        except Exception as exc:
            log.debug("run %s: gathering its work failed", self.run_id, exc_info=True)
            self._fault = f"the run's work could not be gathered: {describe_error(exc)}"
            self.warn(None, self._fault)

    def _end_unstarted(self, status: RunStatus, why: str, started: float) -> RunResult:
        """End a run that never started a step: each step skipped, saying why."""
        for step_id in self._steps:
            if not self._step_status(step_id).is_final:
                self._finish(step_id, StepStatus.SKIPPED, f"not started: {why}")
        return self._end(status, started)

    def _end(self, status: RunStatus, started: float) -> RunResult:
        self._status = status
        self._ended_at = time.time()
        self._duration_s = time.monotonic() - started
        final = self.snapshot()
        self._sink.emit(RunFinished(final))
        return final

    def _outcome(self) -> RunStatus:
        if self._cancel_requested:
            return RunStatus.CANCELLED
        # A step skipped by its `if:` is no failure; one skipped for any other reason comes with one.
        if self._fault is None and all(
            self._step_status(step_id).is_success or self._step_status(step_id) is StepStatus.SKIPPED
            for step_id in self._steps
        ):
            return RunStatus.SUCCEEDED
        return RunStatus.FAILED

    async def _step_task(self, step: Step, limiter: anyio.CapacityLimiter) -> None:
        if step.id in self._options.completed:
            self._done[step.id].set()
            return
        with anyio.CancelScope() as self._step_scopes[step.id]:
            try:
                # Once its last need has ended, the step takes its next state (skipped, at its gate,
                # running) in the same turn of the event loop, without a checkpoint on the way when a
                # slot is free: a snapshot taken in between would show it pending after its needs ended.
                for need in step.needs:
                    if not self._done[need].is_set():
                        await self._done[need].wait()
                context = self._context_to_start(step)
                if context is not None and step.gate is not None:
                    context = await self._wait_at_gate(step, context)
                if context is not None and await self._replayed(step, context):
                    context = None
                if context is not None:
                    await _take_slot(limiter)
                    try:
                        # A fail-fast while it waited for a slot may have changed its condition's mind.
                        if not context.stopping and self._stopping():
                            context.stopping = True
                            context = self._context_to_start(step, context)
                        if context is not None:
                            await self._run_step(step, context)
                    finally:
                        limiter.release()
                # An error raised while the step was being stopped took the place of the cancellation;
                # the step has ended with it, and the cancellation goes on from here.
                await anyio.lowlevel.checkpoint_if_cancelled()
            except anyio.get_cancelled_exc_class():
                if not self._step_status(step.id).is_final:
                    self._finish_interrupted(step.id)
                raise
            except Exception as exc:
                # What `_run_step` did not get to end (its own bookkeeping failed) ends here.
                log.debug("step %s of run %s failed", step.id, self.run_id, exc_info=True)
                if not self._step_status(step.id).is_final:
                    self._finish_with_error(
                        step.id, f"treeflow could not go on with it: {describe_error(exc)}"
                    )
        failed = self._step_status(step.id) in (StepStatus.FAILED, StepStatus.TIMED_OUT)
        if failed and self.workflow.fail_fast:
            self._fail_fast(step.id)

    def _context_to_start(self, step: Step, known: StepContext | None = None) -> StepContext | None:
        """What the step's expressions see, once its needs have ended, if its condition lets it
        start; else None, the step having ended `skipped` (or `failed`, when an expression cannot
        be evaluated), saying why."""
        context = known
        try:
            if context is None:
                before = graph.closure(step.needs, self._needs)
                context = StepContext(
                    step_id=step.id,
                    needs=matrix.needs_results(step.needs, self.workflow.steps, self._steps),
                    before={earlier: self._step_status(earlier) for earlier in before},
                    env={**self._base_env, **step.env},
                    stopping=self._stopping(),
                    matrix=None if step.matrix is None else step.matrix.values,
                )
                context.env = {**self._base_env, **context.render_env(step.env)}
                self._warn_missing(step.id, context)
            holds = context.holds(step.condition)
            context.missing.clear()
        except ExpressionError as exc:
            self._finish(step.id, StepStatus.FAILED, f"its expressions cannot be evaluated: {exc}")
            return None
        if holds:
            return context
        self._finish(step.id, StepStatus.SKIPPED, self._skip_reason(step, context))
        return None

    async def _wait_at_gate(self, step: Step, context: StepContext) -> StepContext | None:
        """Wait for a person to approve the step; None once it ended otherwise (rejected, timed
        out, or skipped after a fail-fast withdrew its request and its condition said so)."""
        assert step.gate is not None
        while True:
            try:
                gate = replace(step.gate, message=context.render(step.gate.message))
            except ExpressionError as exc:
                self._finish(step.id, StepStatus.FAILED, f"its approval message cannot be evaluated: {exc}")
                return None
            with anyio.CancelScope() as self._gate_scopes[step.id]:
                note = functools.partial(self._note_approval, step.id)
                approval = await self._gatekeeper.pass_gate(step.id, gate, note)
            withdrawn = self._gate_scopes.pop(step.id).cancelled_caught
            if not withdrawn:
                break
            context.stopping = True
            known = self._context_to_start(step, context)
            if known is None:
                return None
            context = known
        if approval.decision is Decision.APPROVED:
            return context
        if approval.decision is Decision.TIMED_OUT:
            waited = _seconds(step.gate.timeout_s or 0)
            self._finish(step.id, StepStatus.TIMED_OUT, f"no decision on its approval gate within {waited}")
        else:
            self._finish(step.id, StepStatus.FAILED, approval.describe())
        return None

    def _note_approval(self, step_id: str, approval: Approval) -> None:
        self._steps[step_id] = replace(self._steps[step_id], approval=approval)
        if approval.waiting:
            self._sink.emit(ApprovalRequested(self.run_id, step_id, approval))
        else:
            self._sink.emit(ApprovalDecided(self.run_id, step_id, approval))

    def _skip_reason(self, step: Step, context: StepContext) -> str:
        condition = step.condition
        if condition is not None and (
            calls_status_function(condition.expression) or context.status("success")
        ):
            return f"its condition is false: `if: {quoted(condition.text)}`"
        if context.stopping:
            return self._stop_reason(began=False)
        for need in step.needs:
            if not self._step_status(need).is_success:
                return f"needs `{need}`, which {self._said(need)}"
        earlier = next((name for name, status in context.before.items() if not status.is_success), None)
        if earlier is None:
            return "its condition is false"
        return f"`{earlier}`, which it needs through its needs, {self._said(earlier)}"

    def _warn_missing(self, step_id: str, context: StepContext) -> None:
        """Say once which outputs the step reads that their steps did not write."""
        for reference in dict.fromkeys(context.missing):
            need = reference.split(".")[1]
            self.warn(step_id, f"`{reference}` is empty: `{need}` wrote no such output")
        context.missing.clear()

    async def _run_step(self, step: Step, context: StepContext) -> None:
        """Prepare the step's place, run its setup and attempts there, and end it with their outcome;
        a step with `on_failure:` does that in rounds (see `treeflow.core.fix_loop`).

        Whatever goes wrong on the way ends the step too: an error of treeflow's own (git, the
        disk, anything unexpected) fails it with that error, saying so.
        """
        result = self._running[step.id] = _RunningStep(
            started_at=time.time(), approval=self._steps[step.id].approval
        )
        started = time.monotonic()
        port = self._ports.acquire()
        where = LoopState()
        log_file = result.log_file = StepLog(
            self._log_path(step.id), functools.partial(self._log_failed, step.id)
        )
        if step.id in self._cache_notes:
            log_file.write(self._cache_notes.pop(step.id))
        # It starts from the work of the needs that succeeded; a failed step's work stays on its branch.
        from_work = tuple(need for need in step.needs if self._steps[need].status.is_success)
        # How it ended, kept aside until `_finish`: while its work is being saved it is still running,
        # so that no snapshot shows it ended without its duration, or ended while its dependents wait.
        status: StepStatus = StepStatus.FAILED
        error: str | None = None
        run_in = functools.partial(self._run_in_place, step, context, result, port, log_file)
        try:
            if step.on_failure is None:
                async with self._placed(replace(step, needs=from_work), step.id) as where.place:
                    outcome = await run_in(where.place)
            else:
                earlier = self._options.earlier.get(step.id)
                result.rounds = list(earlier.rounds if earlier is not None else ())
                hooks = RoundHooks(
                    place=functools.partial(self._placed, step_id=step.id),
                    run_step=lambda place, now: run_in(place, f"round {now.number} of {now.of}"),
                    run_fixer=functools.partial(self._fix, step, result, port, log_file),
                    log_path=lambda: _flushed(log_file),
                    changed=functools.partial(self._round_changed, step.id, result),
                )
                outcome = await run_rounds(
                    hooks, replace(step, needs=from_work), step.on_failure, where, first=first_round(earlier)
                )
            if outcome.exit_code is not None:
                result.exit_code = outcome.exit_code
            status, error = outcome.status, outcome.error
        except StepSetupError as exc:
            status, error = StepStatus.FAILED, str(exc)
        except Exception as exc:
            log.debug("step %s of run %s failed", step.id, self.run_id, exc_info=True)
            problem = describe_error(exc)
            if not self._stopping():
                doing = (
                    "could not prepare its worktree"
                    if where.place is None
                    else "treeflow could not go on with it"
                )
                status, error = StepStatus.FAILED, f"{doing}: {problem}"
            elif where.place is None:
                # The step would not have run anyway (a Ctrl-C can end the git command making its
                # worktree); calling it failed would blame it for the stop.
                status, error = StepStatus.SKIPPED, self._stop_reason(began=False)
            else:
                # Stopped by the cancel or a fail-fast, then this went wrong as it was being ended.
                status = StepStatus.CANCELLED if result.began else StepStatus.SKIPPED
                error = f"{self._stop_reason(result.began)}; then {problem}"
        finally:
            log_file.close()
            result.log = log_file.path if log_file.created else None
            place = where.place
            if place is not None:
                saved = where.worked or place
                result.branch, result.commit = saved.branch, saved.commit
                if place.unsaved is not None and status is StepStatus.SUCCEEDED:
                    # Steps after it would start without its work.
                    status, error = StepStatus.FAILED, f"its work was not saved: {place.unsaved}"
            self._ports.release(port)
            result.duration_s = time.monotonic() - started
        if status is StepStatus.SUCCEEDED and self._options.cache is not None:
            await self._keep_in_cache(step.id, result)
        self._finish(step.id, status, error)

    @contextlib.asynccontextmanager
    async def _placed(self, step: Step, step_id: str) -> AsyncIterator[StepPlace]:
        """The executor's place for ``step`` (the step itself, or a round of its fix loop named as
        the round), announced as the place of step ``step_id``."""
        async with self._executor.step_place(self.run_id, step) as place:
            self._sink.emit(
                StepPlaced(
                    self.run_id, step_id, place.cwd, place.worktree, place.work_branch, place.start_commit
                )
            )
            yield place

    async def _run_in_place(
        self,
        step: Step,
        context: StepContext,
        result: _RunningStep,
        port: int,
        log_file: StepLog,
        place: StepPlace,
        round_label: str | None = None,
    ) -> StepOutcome:
        """The step's setup, then its attempts, in ``place``."""
        if round_label is not None:
            log_file.write(f"\n--- treeflow: {round_label} ---\n".encode())
        attempt = functools.partial(self._attempt, step, context, result, place, port, log_file)
        outcome = await self._setup(step, result, place, attempt)
        if outcome.status is StepStatus.SUCCEEDED:
            outcome = await self._attempts(step, context, result, attempt)
        return outcome

    async def _fix(
        self,
        step: Step,
        result: _RunningStep,
        port: int,
        log_file: StepLog,
        place: StepPlace,
        failure: Mapping[str, str],
    ) -> StepOutcome:
        """Run the fixer of ``step`` in ``place``, reading ``failure``: its attempts, with its own
        retries and timeout. Its processes, output and progress count as the step's."""
        assert step.on_failure is not None
        fixer = self.workflow.steps[step.on_failure.fixer]
        context = StepContext(
            step_id=fixer.id,
            needs=matrix.needs_results(fixer.needs, self.workflow.steps, self._steps),
            before={},
            env={**self._base_env, **fixer.env},
            failure=failure,
        )
        try:
            context.env = {**self._base_env, **context.render_env(fixer.env)}
            spec = context.render_spec(fixer.spec)
        except ExpressionError as exc:
            return StepOutcome(StepStatus.FAILED, error=f"its expressions cannot be evaluated: {exc}")
        self._warn_missing(step.id, context)
        kind = kinds.kind_for(fixer.kind)
        acting = replace(fixer, id=step.id)
        outcome = StepOutcome(StepStatus.FAILED)
        for number in range(1, fixer.retry.attempts + 1):
            if number > 1:
                await anyio.sleep(fixer.retry.delay_before(number, self._rng))
            header = f"fixer `{fixer.id}`" + (f", attempt {number}" if number > 1 else "")
            log_file.write(f"\n--- treeflow: round {failure['round']}: {header} ---\n".encode())
            attempt = self._attempt(acting, context, result, place, port, log_file, number)
            env = {name: value for name, value in attempt.env.items() if name != "TREEFLOW_OUTPUT"}
            env.update(TREEFLOW_FIXING=step.id, TREEFLOW_ROUND=failure["round"])
            # The step's exit code is its own; the fixer's says how the fix went, in its round.
            attempt = replace(attempt, env=env, note_exit=_ignore_exit)
            outcome = await self._timed(fixer, kind.run(spec, attempt))
            if outcome.status is StepStatus.SUCCEEDED:
                break
        return outcome

    def _round_changed(self, step_id: str, result: _RunningStep, fix_round: FixRound) -> None:
        result.note_round(fix_round)
        self._sink.emit(StepRound(self.run_id, step_id, fix_round))

    def _log_path(self, step_id: str) -> Path:
        return self.log_dir / f"{matrix.safe_name(step_id)}.log"

    async def _replayed(self, step: Step, context: StepContext) -> bool:
        """Whether the step ended `cached`: its key matched the work of an earlier success, which
        was replayed onto its start commit with its log and outputs. Else it runs, and when an entry
        was found but not used, its log begins by saying why."""
        cache = self._options.cache
        if cache is None or step.cache is None or self._stopping():
            return False
        placed = replace(step, needs=tuple(n for n in step.needs if self._steps[n].status.is_success))
        # Replays run no command of the step's: they take no slot of max_parallel, only one of
        # their own, so that they go on beside the steps that run.
        async with self._replay_limiter:
            started_at, started = time.time(), time.monotonic()
            reused = await cache.reuse(self.run_id, placed, context, self.workflow)
        if isinstance(reused, CacheMiss):
            if reused.note is not None:
                self._cache_notes[step.id] = f"--- treeflow: {reused.note}; the step runs ---\n".encode()
            return False
        result = self._running[step.id] = _RunningStep(started_at=started_at, began=True)
        place, entry = reused.place, reused.entry
        result.branch, result.commit = place.branch, place.commit
        result.outputs, result.cached_from = dict(entry.outputs), entry.source
        self._sink.emit(StepPlaced(self.run_id, step.id, place.cwd, None, None, place.start_commit))
        with StepLog(self._log_path(step.id), functools.partial(self._log_failed, step.id)) as log_file:
            log_file.write(f"--- treeflow: cached: the work of {entry.source}, replayed ---\n".encode())
            log_file.write(reused.log)
        result.log = log_file.path if log_file.created else None
        result.duration_s = time.monotonic() - started
        self._finish(step.id, StepStatus.CACHED, None)
        return True

    async def _keep_in_cache(self, step_id: str, result: _RunningStep) -> None:
        """Keep a succeeded step's work, log and outputs under the key it was looked up by."""
        assert self._options.cache is not None
        try:
            await self._options.cache.keep(self.run_id, step_id, result.commit, result.log, result.outputs)
        except (GitError, OSError, JournalUnavailable) as exc:
            self.warn(step_id, f"its work could not be kept in the cache: {describe_error(exc)}")

    def _log_failed(self, step_id: str, error: OSError) -> None:
        self.warn(step_id, f"its log {self._log_path(step_id)} is incomplete: {error.strerror or error}")

    def _attempt(
        self,
        step: Step,
        context: StepContext,
        result: _RunningStep,
        place: StepPlace,
        port: int,
        log_file: StepLog,
        number: int,
        earlier: StepResult | None = None,
    ) -> Attempt:
        env = {**context.env, **output_variables({n: r.outputs for n, r in context.needs.items()})}
        env.update(
            TREEFLOW_RUN_ID=self.run_id,
            TREEFLOW_STEP=step.id,
            TREEFLOW_WORKTREE=str(place.cwd),
            TREEFLOW_PORT=str(port),
            TREEFLOW_ATTEMPT=str(number),
        )
        if number > 0:  # `setup.run` sets no outputs
            env["TREEFLOW_OUTPUT"] = str(outputs_file(self.log_dir, step.id, number))
        return Attempt(
            run_id=self.run_id,
            step=step,
            number=number,
            place=place,
            env=env,
            log=log_file,
            kill_grace_s=self._options.kill_grace_s,
            executor=self._executor,
            sink=self._sink,
            note_progress=result.note_progress,
            note_exit=result.note_exit,
            warn=functools.partial(self.warn, step.id),
            note_agent=result.note_agent,
            note_remote=result.note_remote,
            earlier=earlier,
        )

    async def _setup(
        self,
        step: Step,
        result: _RunningStep,
        place: StepPlace,
        attempt: Callable[[int, StepResult | None], Attempt],
    ) -> StepOutcome:
        """Run `setup.run` in a fresh worktree (as attempt 0); its failure fails the step without retries."""
        command = self.workflow.setup.run
        if not place.fresh or command is None:
            return _SETUP_DONE
        setup = attempt(0, None)
        digest = await setup_digest(place.worktree, command, self.workflow.setup.when_changed)
        if digest is not None and await setup_is_current(digest):
            setup.log.write(
                b"--- treeflow: setup skipped: done in this worktree, when_changed files unchanged ---\n"
            )
            return _SETUP_DONE
        result.began = True
        setup.log.write(b"--- treeflow: setup ---\n")
        outcome = await self._timed(step, setup.run_to_outcome(command))
        setup.log.write(b"--- treeflow: end of setup ---\n")
        if outcome.status is StepStatus.SUCCEEDED:
            if digest is not None:
                await record_setup(digest)
            return _SETUP_DONE
        return replace(outcome, error=f"setup failed: {outcome.error}")

    async def _attempts(
        self,
        step: Step,
        inputs: StepContext,
        result: _RunningStep,
        attempt: Callable[[int, StepResult | None], Attempt],
    ) -> StepOutcome:
        kind = kinds.kind_for(step.kind)
        policy = step.retry
        try:
            spec = inputs.render_spec(step.spec)
        except ExpressionError as exc:
            return StepOutcome(StepStatus.FAILED, error=f"its expressions cannot be evaluated: {exc}")
        self._warn_missing(step.id, inputs)
        outcome = StepOutcome(StepStatus.FAILED)
        earlier = self._options.earlier.get(step.id)
        # Attempts whose machine went away are run again without counting against `retry`.
        lost = 0
        number = 0
        while number < policy.attempts + lost:
            number += 1
            if number > 1:
                earlier = StepResult(
                    status=outcome.status, attempts=number - 1, error=outcome.error, agent=result.agent
                )
            context = attempt(number, earlier)
            if number > 1:
                delay = policy.delay_before(number, self._rng)
                reason = outcome.error or "failed"
                self._sink.emit(StepRetrying(self.run_id, step.id, number, delay, reason))
                await anyio.sleep(delay)
                context.log.write(
                    f"\n--- treeflow: attempt {number} of {policy.attempts + lost} ---\n".encode()
                )
            result.attempts, result.began, result.exit_code = number, True, None
            self._fresh_outputs_file(step.id, number)
            self._sink.emit(StepStarted(self.run_id, step.id, number, context.log.path))
            try:
                outcome = await self._timed(step, kind.run(spec, context))
            except AttemptLost as exc:
                context.log.write(f"--- treeflow: attempt {number} lost: {exc} ---\n".encode())
                outcome = StepOutcome(StepStatus.FAILED, error=f"attempt {number} lost: {exc}")
                lost += 1 if lost < _MAX_LOST_ATTEMPTS else 0
                continue
            outcome = self._with_outputs(step.id, number, outcome, result)
            if outcome.status is StepStatus.SUCCEEDED:
                break
        return outcome

    def _fresh_outputs_file(self, step_id: str, number: int) -> None:
        """No outputs file for the attempt until it writes one: a resumed run's attempt 1 must not
        find the last one's. (Creating an empty file costs more than starting a short command.)"""
        if step_id not in self._options.earlier:
            return  # the step never ran in this run's folder before
        path = outputs_file(self.log_dir, step_id, number)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self.warn(step_id, f"its outputs file {path} cannot be cleared: {exc.strerror or exc}")

    def _with_outputs(
        self, step_id: str, number: int, outcome: StepOutcome, result: _RunningStep
    ) -> StepOutcome:
        """Keep the attempt's outputs as the step's; an outputs file that cannot be read fails an
        attempt that succeeded (and is a warning on one that did not)."""
        path = outputs_file(self.log_dir, step_id, number)
        try:
            written = read_outputs(path)
        except (OutputsError, OSError) as exc:
            problem = f"its outputs file $TREEFLOW_OUTPUT ({path}): {exc}"
            result.outputs = dict(outcome.outputs)
            if outcome.status is StepStatus.SUCCEEDED:
                return replace(outcome, status=StepStatus.FAILED, error=problem)
            self.warn(step_id, problem)
            return outcome
        result.outputs = {**written, **outcome.outputs}
        return outcome

    async def _timed(self, step: Step, attempt: Awaitable[StepOutcome]) -> StepOutcome:
        """The outcome of ``attempt``, or `timed_out` once the step's timeout has passed (the attempt
        cancelled, its processes ended)."""
        with anyio.move_on_after(step.timeout_s) as deadline:
            outcome = await attempt
        if deadline.cancelled_caught:
            return StepOutcome(StepStatus.TIMED_OUT, error=f"timed out after {_seconds(step.timeout_s or 0)}")
        return outcome

    def _fail_fast(self, failed: str) -> None:
        """Stop the steps running now. Those that start later do so because their `if:` asked to
        run after a failure, so a later failure does not stop them."""
        if self._failed_first is not None:
            return
        self._failed_first = failed
        for step_id in self._running:
            self._step_scopes[step_id].cancel()
        # Nobody should be asked to approve a step the run is stopping.
        for scope in self._gate_scopes.values():
            scope.cancel()

    def _stopping(self) -> bool:
        """Whether the run is stopping its steps: cancelled, or after a failure with fail-fast."""
        return self._cancel_requested or self._failed_first is not None

    def _stop_reason(self, began: bool) -> str:
        if self._failed_first is not None and not self._cancel_requested:
            why = f"`{self._failed_first}` {self._said(self._failed_first)} (fail_fast)"
        else:
            why = "the run was cancelled"
        return why if began else f"not started: {why}"

    def _finish_interrupted(self, step_id: str) -> None:
        """End a step the run stopped: `cancelled` once its setup or first attempt began, before
        that `skipped` (even while its worktree was being made)."""
        running = self._running.get(step_id)
        began = running is not None and running.began
        self._finish(step_id, StepStatus.CANCELLED if began else StepStatus.SKIPPED, self._stop_reason(began))

    def _finish_with_error(self, step_id: str, error: str) -> None:
        running = self._running.get(step_id)
        self._finish(step_id, StepStatus.FAILED if running is not None else StepStatus.SKIPPED, error)

    def _finish(self, step_id: str, status: StepStatus, error: str | None) -> None:
        running = self._running.pop(step_id, None)
        if running is None or (status is StepStatus.SKIPPED and not running.began):  # it never started
            result = replace(self._steps[step_id], status=status, error=error)
        else:
            running.status, running.error, running.ended_at = status, error, time.time()
            result = running.result()
        self._steps[step_id] = result
        self._done[step_id].set()
        self._sink.emit(StepFinished(self.run_id, step_id, result))

    def _step_status(self, step_id: str) -> StepStatus:
        running = self._running.get(step_id)
        return self._steps[step_id].status if running is None else running.status

    def _said(self, step_id: str) -> str:
        status = self._step_status(step_id)
        return {
            StepStatus.FAILED: "failed",
            StepStatus.TIMED_OUT: "timed out",
            StepStatus.CANCELLED: "was cancelled",
            StepStatus.SKIPPED: "was skipped",
        }.get(status, status.value)


async def _take_slot(limiter: anyio.CapacityLimiter) -> None:
    """Acquire a slot; at once, with no checkpoint, when one is free."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()


def _flushed(log_file: StepLog) -> Path:
    log_file.flush()
    return log_file.path


def _ignore_exit(exit_code: int | None) -> None:
    return None


def describe_error(exc: BaseException) -> str:
    """What went wrong, in one line: git's and the system's messages as they are, anything else
    with its type; the errors of a group one after the other."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe_error(inner) for inner in exc.exceptions)
    if isinstance(exc, GitError | OSError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _seconds(value: float) -> str:
    return f"{value:g}s"
