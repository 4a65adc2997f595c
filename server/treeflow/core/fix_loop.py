"""Bounded fix loops: a step with `on_failure: {run_step: fix, max_rounds: 3}` runs in rounds.

Round ``n`` is one run of the step (its setup, its attempts with their retries) in a worktree of its
own on branch `treeflow/<run_id>/<step>.round-<n>` (`locations.round_branch`). When that run fails
or times out and rounds are left, the fixer runs in the same worktree, on top of the failed work,
with the failure in its expressions (`failure.log_tail`, `failure.exit_code`, …); the round's
branch then holds both. Round ``n + 1`` starts from that branch. The step ends as its last round
did: its first success, the failure of its last round, or the failure of a fixer, which ends the
loop. A cancellation or a fail-fast ends the round it comes in; its work is saved all the same.

Each round's place comes from the executor like any step's, named as the round, so the places,
branches and recovery of rounds are those of steps. A round that follows another names it as its
one need: the workspace starts it from the work that round left.

A resumed run continues a loop where it stopped: the step runs again as the round after the last
one recorded, from that round's work (its branch as it is now), with `max_rounds` rounds ahead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio

from treeflow.core.locations import round_name
from treeflow.core.model import FixLoop, FixRound, Step, StepResult, StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.workspace import StepPlace

LOG_TAIL_LINES = 60
LOG_TAIL_CHARS = 6000
_TAIL_READ_BYTES = 64 * 1024
_FIXABLE = (StepStatus.FAILED, StepStatus.TIMED_OUT)


@dataclass(frozen=True)
class RoundHooks:
    """What a loop needs of the run it is in."""

    # The place of one round: ``step`` named as the round, with the needs it starts from.
    place: Callable[[Step], AbstractAsyncContextManager[StepPlace]]
    # The step's setup and attempts in the place of a round.
    run_step: Callable[[StepPlace, FixRound], Awaitable[StepOutcome]]
    # The fixer's attempts in a round's place, with the failure it reads as `failure.*`.
    run_fixer: Callable[[StepPlace, Mapping[str, str]], Awaitable[StepOutcome]]
    # The step's log file, flushed, where each round's output is found.
    log_path: Callable[[], Path | None]
    # Keeps the round in the step's result and tells the run's sinks.
    changed: Callable[[FixRound], None]


@dataclass
class LoopState:
    """Where a step ran: its place, or the place of its loop's last round, and the place of the
    last round that left work (whose branch and commit are the step's)."""

    place: StepPlace | None = None
    worked: StepPlace | None = None


def first_round(earlier: StepResult | None) -> int:
    """The number of the loop's first round in this execution: after the rounds a resumed run's
    earlier execution recorded."""
    if earlier is None or not earlier.rounds:
        return 1
    return earlier.rounds[-1].number + 1


async def run_rounds(
    hooks: RoundHooks, step: Step, loop: FixLoop, state: LoopState, *, first: int = 1
) -> StepOutcome:
    """Run ``step`` in rounds until one succeeds, a fixer fails, or ``loop.max_rounds`` rounds ran;
    return the outcome the step ends with. ``state`` follows the rounds' places.

    Round ``first`` starts like the step would (from its needs), or, on resume, from the work of
    round ``first - 1``. Once the rounds are over, the step itself takes a place without a worktree
    that starts from the last round's work: that is how the workspace learns where the steps that
    need it start.
    """
    outcome, last = await _rounds(hooks, step, loop, state, first)
    async with hooks.place(replace(step, needs=(round_name(step.id, last),), worktree=False)):
        pass
    return outcome


async def _rounds(
    hooks: RoundHooks, step: Step, loop: FixLoop, state: LoopState, first: int
) -> tuple[StepOutcome, int]:
    """The outcome of the rounds and the number of the last one that ran."""
    last = first + loop.max_rounds - 1
    needs = step.needs if first == 1 else (round_name(step.id, first - 1),)
    outcome = StepOutcome(StepStatus.FAILED)
    for number in range(first, last + 1):
        fix_round = FixRound(number, last, started_at=time.time())
        hooks.changed(fix_round)
        fixed: StepOutcome | None = None
        try:
            async with hooks.place(replace(step, id=round_name(step.id, number), needs=needs)) as place:
                state.place = place
                # Where its work goes, should the run die before the round ends.
                fix_round = replace(fix_round, branch=place.work_branch)
                hooks.changed(fix_round)
                log = hooks.log_path()
                since = await _log_size(log)
                outcome = await hooks.run_step(place, fix_round)
                fix_round = replace(
                    fix_round, status=outcome.status, exit_code=outcome.exit_code, error=outcome.error
                )
                if outcome.status in _FIXABLE and number < last:
                    fix_round = replace(fix_round, fixer=loop.fixer, fix_status=StepStatus.RUNNING)
                    hooks.changed(fix_round)
                    tail = await _log_tail(hooks.log_path(), since)
                    failure = failure_fields(step.id, number, outcome, tail)
                    fixed = await hooks.run_fixer(place, failure)
                    fix_round = replace(fix_round, fix_status=fixed.status, fix_error=fixed.error)
        finally:
            # Also when the round was stopped: what it did is on its branch, and the round says so.
            if state.place is not None:
                fix_round = replace(fix_round, branch=state.place.branch, commit=state.place.commit)
                if state.place.commit is not None:
                    state.worked = state.place
            if fix_round.status is StepStatus.RUNNING:
                fix_round = replace(fix_round, status=StepStatus.CANCELLED)
            if fix_round.fix_status is StepStatus.RUNNING:
                fix_round = replace(fix_round, fix_status=StepStatus.CANCELLED)
            hooks.changed(replace(fix_round, ended_at=time.time()))
        if fixed is None or state.place is None or state.place.unsaved is not None:
            return outcome, number
        if fixed.status is not StepStatus.SUCCEEDED:
            why = fixed.error or fixed.status.value.replace("_", " ")
            error = f"{outcome.error or 'failed'}; its fixer `{loop.fixer}` failed in round {number}: {why}"
            return replace(outcome, error=error), number
        needs = (round_name(step.id, number),)
    return outcome, last


def failure_fields(step_id: str, number: int, outcome: StepOutcome, log_tail: str) -> dict[str, str]:
    """The `failure.*` values a fixer reads (see `step_context.FAILURE_FIELDS`)."""
    return {
        "step": step_id,
        "exit_code": "" if outcome.exit_code is None else str(outcome.exit_code),
        "error": outcome.error or outcome.status.value.replace("_", " "),
        "log_tail": log_tail,
        "round": str(number),
    }


async def _log_size(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return (await anyio.Path(path).stat()).st_size
    except OSError:
        return 0


async def _log_tail(path: Path | None, since: int) -> str:
    """The last lines the step wrote to its log from byte ``since`` on (this round's output)."""
    if path is None:
        return ""
    return await anyio.to_thread.run_sync(read_tail, path, since)


def read_tail(path: Path, since: int) -> str:
    """The last `LOG_TAIL_LINES` lines of ``path`` after byte ``since``, at most `LOG_TAIL_CHARS`
    characters of them; the empty text when there are none or the file cannot be read."""
    try:
        with path.open("rb") as file:
            end = file.seek(0, 2)
            start = max(since, end - _TAIL_READ_BYTES)
            file.seek(start)
            data = file.read(end - start)
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    if start > since and lines:
        lines = lines[1:]  # the first line read is cut
    text = "\n".join(lines[-LOG_TAIL_LINES:])
    return text[-LOG_TAIL_CHARS:]
