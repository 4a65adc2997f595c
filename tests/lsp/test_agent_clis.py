"""An agent CLI step through the language server: what its stream says reaches `treeflow/runUpdated`,
the work-done progress and the step's log lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_lsp import LanguageClient

from tests.agents.test_agent_clis import FAKE_CLIS
from tests.helpers import wait_until_async
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
    assert "→ Edit: /home/dev/project/src/api.py" in logged


async def test_an_agent_steps_transcript_is_its_stream_as_markdown(
    client: LanguageClient, workspace: Path
) -> None:
    variables = {"PATH": f"{FAKE_CLIS}:{os.environ['PATH']}", "FAKE_AGENT_SCENARIO": "malformed"}
    path = write_workflow(
        workspace,
        f"env: {json.dumps(variables)}\nsteps:\n"
        "  fix: {agent: {use: claude, prompt: Make the test pass}}\n"
        "  plain: {run: echo hello}\n",
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    assert (
        run["steps"]["fix"]["agent"]["last_message"]
        == "The test passes now: api.py returned the wrong value."
    )

    markdown = (await command(client, "treeflow.agentTranscript", {"runId": run_id, "stepId": "fix"}))[
        "markdown"
    ]
    assert markdown.startswith("# fix: Claude Code\n")
    assert "```sh\nclaude -p --output-format stream-json" in markdown
    assert "I'll run the failing test first." in markdown
    assert "**→ Bash: pytest \\-q tests/test\\_api.py**" in markdown
    assert "Result:\n\n```\nF\n1 failed in 0.02s\n```" in markdown
    assert "```\nwarning: retrying\n```" in markdown
    assert "_1 line(s) that were not complete events were skipped._" in markdown
    assert "**Totals:** 5 turns · 43,568 tokens in, 218 out · $0.0412" in markdown
    assert "**Result:** succeeded" in markdown
    assert '"type"' not in markdown

    with pytest.raises(Exception, match="not an agent CLI step"):
        await command(client, "treeflow.agentTranscript", {"runId": run_id, "stepId": "plain"})
    with pytest.raises(Exception, match="has no step"):
        await command(client, "treeflow.agentTranscript", {"runId": run_id, "stepId": "nope"})


async def test_a_running_agent_steps_log_and_transcript_are_read_live(
    client: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    # The recorded stream, stopped after the agent's first tool call, as if the tool took a minute.
    streams = tmp_path / "streams"
    (streams / "claude").mkdir(parents=True)
    recorded = (FAKE_CLIS / "streams" / "claude" / "success.jsonl").read_text().splitlines()
    call = next(number for number, line in enumerate(recorded) if '"name":"Bash"' in line)
    (streams / "claude" / "paused.jsonl").write_text("\n".join([*recorded[: call + 1], "!sleep 60"]))
    variables = {
        "PATH": f"{FAKE_CLIS}:{os.environ['PATH']}",
        "FAKE_AGENT_SCENARIO": "paused",
        "FAKE_AGENT_STREAMS": str(streams),
    }
    path = write_workflow(
        workspace,
        f"env: {json.dumps(variables)}\nsteps:\n  fix: {{agent: {{use: claude, prompt: Make the test pass}}}}\n",
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]

    def running_with_its_call() -> dict[str, Any] | None:
        for update in client.runs_updated:  # type: ignore[attr-defined]
            step = update["steps"]["fix"]
            if update["run_id"] == run_id and step["agent"] and step["agent"]["action"]:
                return dict(step)
        return None

    step = await wait_until_async(running_with_its_call, "the agent's first tool call")
    assert step["status"] == "running"
    assert step["log"] is not None and Path(step["log"]).is_file()
    markdown = (await command(client, "treeflow.agentTranscript", {"runId": run_id, "stepId": "fix"}))[
        "markdown"
    ]
    assert "**→ Bash: pytest \\-q tests/test\\_api.py**" in markdown
    assert "**Result:** none reported (yet)" in markdown

    await command(client, "treeflow.cancel", {"runId": run_id})
    assert (await final_update(client, run_id))["status"] == "cancelled"
