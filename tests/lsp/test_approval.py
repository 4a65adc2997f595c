"""Approval gates through a real LSP client: the run object shows a step waiting for approval,
`treeflow.approve` decides it, `treeflow approve` in another process reaches a run of the server,
and a gate survives the server restarting: offered again, a decision resumes the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.helpers import wait_until_async
from tests.lsp.conftest import make_client, session, write_workflow
from tests.lsp.test_server import command, final_update
from treeflow.core.gatekeeper import current_user

pytestmark = pytest.mark.asyncio

GATED = """\
name: release
steps:
  build: {run: echo built}
  deploy:
    needs: [build]
    approve: {message: "Deploy to staging?", timeout: 10m}
    run: echo deployed > deployed.txt
"""
SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
    client_factory=make_client,
)


async def waiting_update(client: LanguageClient, run_id: str) -> dict[str, Any]:
    """The first `runUpdated` of the run in which `deploy` waits for approval."""

    def waiting() -> dict[str, Any] | None:
        for run in client.runs_updated:  # type: ignore[attr-defined]
            approval = run["steps"]["deploy"]["approval"]
            if run["run_id"] == run_id and approval is not None and approval["decision"] is None:
                found: dict[str, Any] = run
                return found
        return None

    return await wait_until_async(waiting, "deploy to wait for approval")


async def test_the_run_shows_the_gate_waiting_and_approve_lets_it_go_on(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, GATED)
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    waiting = await waiting_update(client, run_id)
    assert waiting["status"] == "running"
    assert waiting["steps"]["deploy"]["status"] == "pending"
    assert waiting["steps"]["build"]["status"] == "succeeded"
    assert waiting["steps"]["deploy"]["approval"]["message"] == "Deploy to staging?"
    assert waiting["steps"]["deploy"]["approval"]["expires_at"] is not None
    await wait_until_async(
        lambda: any(
            "waiting for approval: deploy" in (report.message or "")
            for report in client.progress_reports.get(f"treeflow/run/{run_id}", [])
        ),
        "the progress to say deploy waits",
    )

    decided = await command(
        client, "treeflow.approve", {"runId": run_id, "stepId": "deploy", "approve": True}
    )
    assert decided["resumed"] is False
    assert decided["approval"]["decision"] == "approved"
    assert decided["approval"]["via"] == "editor"
    assert decided["approval"]["decided_by"] == current_user()
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    assert run["steps"]["deploy"]["approval"]["decision"] == "approved"

    with pytest.raises(Exception, match="is not waiting for approval: approved by"):
        await command(client, "treeflow.approve", {"runId": run_id, "stepId": "deploy", "approve": False})
    with pytest.raises(Exception, match="has no step nope"):
        await command(client, "treeflow.approve", {"runId": run_id, "stepId": "nope", "approve": True})
    with pytest.raises(Exception, match=r"treeflow\.approve needs `approve`"):
        await command(client, "treeflow.approve", {"runId": run_id, "stepId": "deploy"})


@pytest.mark.slow
async def test_treeflow_approve_in_another_process_reaches_a_run_of_the_server(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, GATED)
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    await waiting_update(client, run_id)
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "treeflow.cli", "approve", run_id[:15], "deploy", "--reject"],
            cwd=workspace,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    run = await final_update(client, run_id)
    assert run["status"] == "failed"
    assert run["steps"]["deploy"]["status"] == "failed"
    assert run["steps"]["deploy"]["error"] == f"rejected by {current_user()} (cli)"
    assert run["steps"]["deploy"]["approval"]["via"] == "cli"


@pytest.mark.slow
async def test_a_gate_survives_the_server_restarting_and_a_decision_resumes_the_run(
    workspace: Path,
) -> None:
    path = write_workflow(workspace, GATED)
    first = await SERVER.start()
    try:
        async with session(first, workspace):
            run_id = (await command(first, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
            await waiting_update(first, run_id)
    finally:
        await first.stop()

    second = await SERVER.start()
    try:
        async with session(second, workspace):
            listed = {run["run_id"]: run for run in await command(second, "treeflow.listRuns")}
            stopped = listed[run_id]
            # The server that ran it stopped it; its request stays open, to be offered again.
            assert stopped["status"] == "cancelled"
            assert stopped["steps"]["deploy"]["approval"]["decision"] is None
            assert stopped["steps"]["deploy"]["approval"]["message"] == "Deploy to staging?"

            decided = await command(
                second, "treeflow.approve", {"runId": run_id, "stepId": "deploy", "approve": True}
            )
            assert decided["resumed"] is True
            run = await final_update(second, run_id)
            assert run["status"] == "succeeded", run
            assert run["steps"]["build"]["attempts"] == 1  # carried over, not run again
            approval = run["steps"]["deploy"]["approval"]
            assert (approval["decision"], approval["via"]) == ("approved", "editor")
    finally:
        await second.stop()
