"""`treeflow/log` says which stream each stretch of a step's output came from."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio


async def test_stderr_lines_arrive_marked_as_stderr(client: LanguageClient, workspace: Path) -> None:
    path = write_workflow(
        workspace,
        """\
        steps:
          talk: {run: "echo to-out; echo to-err >&2; echo warn-1 >&2; echo more-out"}
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"
    logs = [entry for entry in client.logs if entry["runId"] == run_id]  # type: ignore[attr-defined]
    lines = {
        stream: [line for entry in logs if entry["stream"] == stream for line in entry["text"].splitlines()]
        for stream in ("stdout", "stderr")
    }
    assert lines == {"stdout": ["to-out", "more-out"], "stderr": ["to-err", "warn-1"]}
