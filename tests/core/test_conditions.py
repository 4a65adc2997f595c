"""`if:` on steps, run by the engine with real processes: status functions after failures and
fail-fast, comparisons over needs, outputs and the environment, and why a step was skipped."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import run_workflow
from treeflow.core.model import RunStatus, StepStatus

pytestmark = pytest.mark.anyio


async def test_an_always_step_runs_after_fail_fast_stopped_the_others(repo: Path) -> None:
    workflow = """\
        steps:
          slow: {run: "touch started; sleep 60"}
          broken: {run: "while [ ! -e started ]; do sleep 0.01; done; exit 3"}
          build: {run: "touch built", needs: [broken]}
          report:
            needs: [slow, broken]
            if: always()
            run: echo "$TREEFLOW_STEP saw ${{ needs.broken.status }} and ${{ needs.slow.status }}" > report.txt
          notify: {run: touch notified, needs: [slow], if: cancelled()}
          only_on_success: {run: touch succeeded, needs: [slow], if: success()}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    steps = result.steps
    assert steps["broken"].status is StepStatus.FAILED
    assert steps["slow"].status is StepStatus.CANCELLED
    assert steps["build"].status is StepStatus.SKIPPED
    assert steps["build"].error == "not started: `broken` failed (fail_fast)"
    assert steps["report"].status is StepStatus.SUCCEEDED
    assert (repo / "report.txt").read_text() == "report saw failed and cancelled\n"
    assert steps["notify"].status is StepStatus.SUCCEEDED
    assert (repo / "notified").exists()
    assert steps["only_on_success"].status is StepStatus.SKIPPED
    assert steps["only_on_success"].error == "its condition is false: `if: success()`"
    assert not (repo / "succeeded").exists()
    assert result.status is RunStatus.FAILED


async def test_a_failure_step_runs_only_when_something_before_it_failed(repo: Path) -> None:
    workflow = """\
        fail_fast: false
        steps:
          unit: {run: "test -e pass"}
          build: {run: "true", needs: [unit]}
          on_failure: {run: touch diagnosed, needs: [build], if: failure()}
        """
    with anyio.fail_after(30):
        failing = await run_workflow(repo, workflow)
    assert failing.steps["build"].status is StepStatus.SKIPPED
    assert failing.steps["build"].error == "needs `unit`, which failed"
    # `unit` failed before `build`, which it needs: failure() looks at every step before it.
    assert failing.steps["on_failure"].status is StepStatus.SUCCEEDED
    assert (repo / "diagnosed").exists()

    (repo / "diagnosed").unlink()
    (repo / "pass").touch()
    with anyio.fail_after(30):
        passing = await run_workflow(repo, workflow)
    assert passing.steps["on_failure"].status is StepStatus.SKIPPED
    assert passing.steps["on_failure"].error == "its condition is false: `if: failure()`"
    assert not (repo / "diagnosed").exists()
    # A step its condition skipped is no failure of the run.
    assert passing.status is RunStatus.SUCCEEDED


async def test_comparisons_read_outputs_statuses_and_the_environment(repo: Path) -> None:
    workflow = """\
        env: {TARGET: staging}
        steps:
          plan: {run: 'echo "deploy=yes" >> "$TREEFLOW_OUTPUT"; echo "count=12" >> "$TREEFLOW_OUTPUT"'}
          deploy:
            needs: plan
            if: ${{ needs.plan.outputs.deploy == 'yes' && env.TARGET == "staging" }}
            run: touch deployed
          many: {needs: plan, if: needs.plan.outputs.count > 9, run: touch many}
          by_text: {needs: plan, if: "needs.plan.outputs.count < '9' && !(needs.plan.status != 'succeeded')", run: touch by_text}
          production: {needs: plan, if: env.TARGET == 'production' || false, run: touch production}
          missing: {needs: plan, if: needs.plan.outputs.nothing == '', run: touch missing}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    ran = {step_id for step_id, step in result.steps.items() if step.status is StepStatus.SUCCEEDED}
    assert ran == {"plan", "deploy", "many", "missing"}
    assert result.steps["by_text"].status is StepStatus.SKIPPED
    assert (
        result.steps["production"].error
        == "its condition is false: `if: env.TARGET == 'production' || false`"
    )
    assert result.status is RunStatus.SUCCEEDED


async def test_a_condition_without_a_status_function_also_needs_its_needs_to_succeed(repo: Path) -> None:
    workflow = """\
        fail_fast: false
        steps:
          a: {run: "exit 1"}
          checks_status: {needs: a, if: "needs.a.status == 'failed'", run: touch plain}
          with_always: {needs: a, if: "always() && needs.a.status == 'failed'", run: touch with_always}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    assert result.steps["checks_status"].status is StepStatus.SKIPPED
    assert result.steps["checks_status"].error == "needs `a`, which failed"
    assert result.steps["with_always"].status is StepStatus.SUCCEEDED
    assert (repo / "with_always").exists()


async def test_success_looks_at_every_step_before_it(repo: Path) -> None:
    workflow = """\
        fail_fast: false
        steps:
          a: {run: "exit 1"}
          cleanup: {needs: a, if: always(), run: "true"}
          after_cleanup: {needs: cleanup, run: touch after}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    assert result.steps["cleanup"].status is StepStatus.SUCCEEDED
    assert result.steps["after_cleanup"].status is StepStatus.SKIPPED
    assert result.steps["after_cleanup"].error == "`a`, which it needs through its needs, failed"


async def test_a_false_condition_skips_a_step_and_its_dependents(repo: Path) -> None:
    workflow = """\
        steps:
          disabled: {if: false, run: touch disabled}
          after: {needs: disabled, run: touch after}
          anyway: {needs: after, if: always(), run: touch anyway}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    assert result.steps["disabled"].error == "its condition is false: `if: false`"
    assert result.steps["after"].status is StepStatus.SKIPPED
    assert result.steps["after"].error == "needs `disabled`, which was skipped"
    assert result.steps["anyway"].status is StepStatus.SUCCEEDED
    assert not (repo / "disabled").exists() and not (repo / "after").exists()
    assert result.status is RunStatus.SUCCEEDED


async def test_a_step_after_a_failure_starts_from_the_work_of_the_needs_that_succeeded(repo: Path) -> None:
    workflow = """\
        fail_fast: false
        steps:
          good: {run: "echo good > good.txt"}
          bad: {run: "echo bad > bad.txt; exit 1"}
          report: {needs: [good, bad], if: always(), run: "ls *.txt > seen"}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow, worktrees=True)
    report = result.steps["report"]
    assert report.status is StepStatus.SUCCEEDED
    assert report.branch is not None
    assert git(repo, "show", f"{report.branch}:seen") == "good.txt"
    assert result.steps["bad"].branch is not None
    assert git(repo, "show", f"{result.steps['bad'].branch}:bad.txt") == "bad"
