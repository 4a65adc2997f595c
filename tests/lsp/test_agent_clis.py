"""An agent CLI step through the language server: what its stream says reaches `treeflow/runUpdated`,
the work-done progress and the step's log lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from tests.agents.test_agent_clis import FAKE_CLIS
from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio


@pytest.mark.slow
async def test_an_agent_clis_progress_and_totals_reach_the_client(
    client: LanguageClient, workspace: Path
) -> None:
    variables = {"PATH": f"{FAKE_CLIS}:{os.environ['PATH']}", "FAKE_AGENT_SCENARIO": "slow"}
    path = write_workflow(
        workspace,
        f"env: {json.dumps(variables)}\nsteps:\n  fix: {{agent: {{use: claude, prompt: Make the test pass}}}}\n",
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    agent = run["steps"]["fix"]["agent"]
    assert agent["cli"] == "claude" and agent["session_id"]
    assert (agent["turns"], agent["output_tokens"], agent["cost_usd"]) == (5, 218, 0.0412)

    updates = [update["steps"]["fix"] for update in client.runs_updated if update["run_id"] == run_id]  # type: ignore[attr-defined]
    actions = {step["agent"]["action"] for step in updates if step["agent"] is not None}
    assert "Bash: pytest -q tests/test_api.py" in actions
    messages = [report.message for report in client.progress_reports[f"treeflow/run/{run_id}"][1:-1]]
    assert "0/1 · running: fix (Bash: pytest -q tests/test_api.py)" in messages
    logged = "".join(entry["text"] for entry in client.logs if entry["stepId"] == "fix")  # type: ignore[attr-defined]
    assert "→ Edit: /work/repo/src/api.py" in logged
