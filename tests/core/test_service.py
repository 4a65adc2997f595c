"""The run service: what a resume runs again and where it starts, decided from a run's record."""

from __future__ import annotations

from pathlib import Path

import pytest

from treeflow.core.journal import RunRecord, StepRecord
from treeflow.core.model import RunResult, RunStatus, StepResult, StepStatus, Workflow
from treeflow.core.service import RunRefused, plan_resume
from treeflow.core.spec import parse_workflow

WORKFLOW = """\
steps:
  a: {run: 'true'}
  b: {run: 'true'}
  c: {run: 'true', needs: [a, b]}
"""


def record(status: RunStatus, steps: dict[str, StepRecord]) -> RunRecord:
    run = RunResult(
        run_id="r1",
        workflow="w",
        workflow_path=Path("/repo/treeflow.yml"),
        status=status,
        base_commit="base0",
        steps={step_id: step.result for step_id, step in steps.items()},
    )
    return RunRecord(run=run, owner_pid=None, owner_start=None, steps=steps)


def step(status: StepStatus, commit: str | None = None, start: str | None = None) -> StepRecord:
    return StepRecord(
        result=StepResult(status=status, commit=commit), start_commit=start, work_branch=None, worktree=None
    )


def workflow(text: str = WORKFLOW) -> Workflow:
    return parse_workflow(text, Path("/repo/treeflow.yml"))


def test_a_resume_carries_over_what_succeeded_and_starts_dependents_from_its_work() -> None:
    plan = plan_resume(
        record(
            RunStatus.FAILED,
            {
                "a": step(StepStatus.SUCCEEDED, commit="work-a"),
                "b": step(StepStatus.SUCCEEDED, start="base0"),
                "c": step(StepStatus.FAILED),
            },
        ),
        workflow(),
    )
    assert plan.run_id == "r1"
    assert plan.steps == ("a", "b", "c")
    assert plan.base_commit == "base0"
    assert set(plan.completed) == {"a", "b"}
    # `b` committed nothing: its dependents start from where it started.
    assert plan.start_points == {"a": "work-a", "b": "base0"}


@pytest.mark.parametrize("status", [RunStatus.CANCELLED, RunStatus.INTERRUPTED, RunStatus.FAILED])
def test_runs_that_did_not_succeed_can_be_resumed(status: RunStatus) -> None:
    plan = plan_resume(record(status, {"a": step(StepStatus.CANCELLED)}), workflow())
    assert plan.completed == {}


@pytest.mark.parametrize(
    ("status", "reason"),
    [(RunStatus.SUCCEEDED, "nothing to resume"), (RunStatus.RUNNING, "still going on")],
)
def test_a_run_that_succeeded_or_still_runs_is_not_resumed(status: RunStatus, reason: str) -> None:
    with pytest.raises(RunRefused, match=reason):
        plan_resume(record(status, {"a": step(StepStatus.SUCCEEDED)}), workflow())


def test_a_run_whose_steps_the_workflow_lost_is_not_resumed() -> None:
    with pytest.raises(RunRefused, match="no longer has steps b, c of run r1"):
        plan_resume(
            record(
                RunStatus.FAILED,
                {"a": step(StepStatus.FAILED), "b": step(StepStatus.FAILED), "c": step(StepStatus.FAILED)},
            ),
            workflow("steps:\n  a: {run: 'true'}\n"),
        )


def test_a_resume_may_take_the_checkout_as_its_new_base() -> None:
    steps = {"a": step(StepStatus.SUCCEEDED, commit="work-a"), "c": step(StepStatus.FAILED)}
    assert not plan_resume(record(RunStatus.FAILED, steps), workflow()).rebase
    assert plan_resume(record(RunStatus.FAILED, steps), workflow(), rebase=True).rebase
