"""Approval gates run by the engine with real processes: a step waits after its needs and before
its command until a person decides; rejected, timed out, cancelled or withdrawn by a fail-fast."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.helpers import Recorder, make_run, wait_until_async
from treeflow.core.events import ApprovalDecided, ApprovalRequested
from treeflow.core.gatekeeper import NotWaiting, decide, doorbell
from treeflow.core.gates import Channel, Decision
from treeflow.core.git import open_repository
from treeflow.core.journal import journal_path, read_run
from treeflow.core.model import RunResult, RunStatus, StepStatus
from treeflow.core.runner import Run
from treeflow.core.spec import WorkflowError, parse_workflow

pytestmark = pytest.mark.anyio

GATED = """\
    steps:
      build: {run: touch built}
      deploy:
        needs: [build]
        approve: {message: "Deploy to staging?", timeout: 1h}
        run: touch deployed
      notify: {run: touch notified, needs: [deploy]}
    """


async def _until_waiting(recorder: Recorder, step_id: str) -> ApprovalRequested:
    def requested() -> ApprovalRequested | None:
        found = [e for e in recorder.of(ApprovalRequested) if isinstance(e, ApprovalRequested)]
        return next((e for e in found if e.step_id == step_id), None)

    return await wait_until_async(requested, f"{step_id} waiting for approval")


async def _run_deciding(
    repo: Path, workflow: str, step_id: str, *, approve: bool, note: str | None = None
) -> tuple[RunResult, Recorder]:
    recorder = Recorder()
    run = await make_run(repo, workflow, recorder)
    result: RunResult | None = None

    async def execute() -> None:
        nonlocal result
        result = await run.execute()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(execute)
            await _until_waiting(recorder, step_id)
            await decide(
                await open_repository(repo),
                run.run_id,
                step_id,
                approve=approve,
                via=Channel.CLI,
                note=note,
                by="alice",
            )
    assert result is not None
    return result, recorder


async def test_an_approved_gate_runs_its_step_after_the_approval(repo: Path) -> None:
    recorder = Recorder()
    run = await make_run(repo, GATED, recorder)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(30):
            request = await _until_waiting(recorder, "deploy")
        # Its need ended before it was asked, and nothing of its own has run.
        assert (repo / "built").exists()
        assert not (repo / "deployed").exists()
        assert request.approval.message == "Deploy to staging?"
        assert request.approval.expires_at is not None
        assert request.approval.expires_at == pytest.approx(time.time() + 3600, abs=60)
        waiting = run.snapshot().steps["deploy"]
        assert waiting.status is StepStatus.PENDING
        assert waiting.approval is not None and waiting.approval.waiting
        await decide(
            await open_repository(repo), run.run_id, "deploy", approve=True, via=Channel.CLI, by="alice"
        )
    result = run.snapshot()
    assert result.status is RunStatus.SUCCEEDED
    assert (repo / "deployed").exists() and (repo / "notified").exists()
    approval = result.steps["deploy"].approval
    assert approval is not None
    assert (approval.decision, approval.decided_by, approval.via) == (Decision.APPROVED, "alice", Channel.CLI)
    assert approval.decided_at is not None
    decided = [e for e in recorder.of(ApprovalDecided) if isinstance(e, ApprovalDecided)]
    assert [e.approval.decision for e in decided] == [Decision.APPROVED]
    # The journal keeps the decision, and the doorbell is gone with the wait.
    record = read_run(journal_path(await open_repository(repo)), run.run_id)
    assert record is None or record.run.steps["deploy"].approval == approval
    assert not doorbell((repo / ".git" / "treeflow"), run.run_id, "deploy").exists()


async def test_a_rejected_gate_fails_its_step_with_the_message_and_skips_what_needs_it(repo: Path) -> None:
    result, _ = await _run_deciding(repo, GATED, "deploy", approve=False, note="not on a Friday")
    deploy = result.steps["deploy"]
    assert deploy.status is StepStatus.FAILED
    assert deploy.error == "rejected by alice (cli): not on a Friday"
    assert not (repo / "deployed").exists()
    assert result.steps["notify"].status is StepStatus.SKIPPED
    assert result.steps["notify"].error == "not started: `deploy` failed (fail_fast)"
    assert result.status is RunStatus.FAILED


async def test_a_gate_nobody_decides_times_out(repo: Path) -> None:
    workflow = """\
        steps:
          deploy: {run: touch deployed, approve: {message: Ship it?, timeout: 300ms}}
          notify: {run: touch notified, needs: [deploy]}
        """
    recorder = Recorder()
    with anyio.fail_after(30):
        result = await (await make_run(repo, workflow, recorder)).execute()
    deploy = result.steps["deploy"]
    assert deploy.status is StepStatus.TIMED_OUT
    assert deploy.error == "no decision on its approval gate within 0.3s"
    assert deploy.approval is not None and deploy.approval.decision is Decision.TIMED_OUT
    assert not (repo / "deployed").exists()
    assert result.steps["notify"].status is StepStatus.SKIPPED


async def test_cancelling_a_run_that_waits_at_a_gate_withdraws_the_request(repo: Path) -> None:
    recorder = Recorder()
    run = await make_run(repo, GATED, recorder)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(30):
            await _until_waiting(recorder, "deploy")
        run.cancel()
    result = run.snapshot()
    assert result.status is RunStatus.CANCELLED
    deploy = result.steps["deploy"]
    assert deploy.status is StepStatus.SKIPPED
    assert deploy.approval is not None and deploy.approval.decision is Decision.WITHDRAWN
    with pytest.raises(NotWaiting, match="the run stopped waiting"):
        await decide(await open_repository(repo), run.run_id, "deploy", approve=True, via=Channel.CLI)


async def test_a_gate_left_open_by_a_stopping_process_is_acted_on_when_the_run_asks_again(
    repo: Path,
) -> None:
    recorder = Recorder()
    run = await make_run(repo, GATED, recorder)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(30):
            await _until_waiting(recorder, "deploy")
        run.leave_gates_open()
        run.cancel()
    assert run.snapshot().steps["deploy"].approval is not None
    assert run.snapshot().steps["deploy"].approval.waiting  # type: ignore[union-attr]
    # Decided while no process waits: the next execution of the run goes on at once.
    repository = await open_repository(repo)
    await decide(repository, run.run_id, "deploy", approve=True, via=Channel.EDITOR, by="bob")
    again = await make_run(repo, GATED, Recorder(), run_id=run.run_id)
    with anyio.fail_after(30):
        result = await again.execute()
    assert result.status is RunStatus.SUCCEEDED
    approval = result.steps["deploy"].approval
    assert approval is not None and (approval.decided_by, approval.via) == ("bob", Channel.EDITOR)


async def test_a_fail_fast_withdraws_a_waiting_gate(repo: Path) -> None:
    workflow = """\
        steps:
          deploy: {run: touch deployed, approve: Deploy?}
          unit: {run: "while [ ! -e go ]; do sleep 0.01; done; exit 3"}
        """
    recorder = Recorder()
    run = await make_run(repo, workflow, recorder)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(30):
            await _until_waiting(recorder, "deploy")
        (repo / "go").touch()
    result = run.snapshot()
    deploy = result.steps["deploy"]
    assert result.steps["unit"].status is StepStatus.FAILED
    assert deploy.status is StepStatus.SKIPPED
    assert deploy.error == "not started: `unit` failed (fail_fast)"
    assert deploy.approval is not None and deploy.approval.decision is Decision.WITHDRAWN
    assert not (repo / "deployed").exists()


async def test_a_step_waiting_for_approval_holds_no_slot(repo: Path) -> None:
    workflow = """\
        max_parallel: 1
        steps:
          deploy: {run: touch deployed, approve: Deploy?}
          unit: {run: touch tested}
        """
    recorder = Recorder()
    run: Run = await make_run(repo, workflow, recorder)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(30):
            await _until_waiting(recorder, "deploy")
            await wait_until_async(lambda: run.snapshot().steps["unit"].status.is_final, "unit to end")
        assert run.snapshot().steps["unit"].status is StepStatus.SUCCEEDED
        await decide(await open_repository(repo), run.run_id, "deploy", approve=True, via=Channel.CLI)
    assert run.snapshot().steps["deploy"].status is StepStatus.SUCCEEDED


def test_approve_takes_a_message_or_a_mapping_and_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "treeflow.yml"
    short = parse_workflow("steps:\n  a: {run: x, approve: Ship it?}\n", path)
    assert short.steps["a"].gate is not None and short.steps["a"].gate.message == "Ship it?"
    full = parse_workflow("steps:\n  a: {run: x, approve: {message: Ship?, timeout: 2m}}\n", path)
    assert full.steps["a"].gate is not None and full.steps["a"].gate.timeout_s == 120
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(
            "steps:\n  a: {run: x, approve: {timeout: 2m}}\n  b: {run: x, approve: {message: ok, wait: 1}}\n",
            path,
        )
    messages = [str(error) for error in caught.value.errors]
    assert any(":2:" in m and "needs `message:`" in m for m in messages), messages
    assert any(":3:" in m and "wait" in m for m in messages), messages


async def test_a_gate_message_reads_the_outputs_of_what_the_step_needs(repo: Path) -> None:
    workflow = """\
        steps:
          build: {run: 'echo version=1.4.2 >> "$TREEFLOW_OUTPUT"'}
          deploy:
            needs: [build]
            approve: "Deploy ${{ needs.build.outputs.version }} to ${{ env.TARGET }}?"
            env: {TARGET: staging}
            run: touch deployed
        """
    result, recorder = await _run_deciding(repo, workflow, "deploy", approve=True)
    [request] = [e for e in recorder.of(ApprovalRequested) if isinstance(e, ApprovalRequested)]
    assert request.approval.message == "Deploy 1.4.2 to staging?"
    assert result.status is RunStatus.SUCCEEDED


def test_a_gate_message_with_a_broken_template_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(
            "steps:\n  a: {run: x}\n  b: {run: x, needs: [a], approve: 'Ship ${{ needs.nope.outputs.v }}?'}\n",
            tmp_path / "treeflow.yml",
        )
    messages = [str(error) for error in caught.value.errors]
    assert any(":3:" in m and "nope" in m for m in messages), messages
