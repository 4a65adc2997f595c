"""A fix loop through a real LSP client: `treeflow/runUpdated` shows the step's round while its
fixer runs, and every round with its branch once the run is over; `on_failure` problems are
diagnostics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp.conftest import write_workflow
from tests.lsp.test_authoring import document, open_text
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio


async def update_where(client: LanguageClient, run_id: str, holds: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for run in client.runs_updated:  # type: ignore[attr-defined]
            if run["run_id"] == run_id and holds(run):
                return dict(run)
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} sent no such update")


async def test_run_updates_show_the_rounds_of_a_fix_loop(client: LanguageClient, workspace: Path) -> None:
    # The fixer waits for the test to have seen it at work, so the update is seen while it runs.
    seen = workspace.parent / "seen"
    path = write_workflow(
        workspace,
        f"""\
        steps:
          test:
            run: 'test -f fixed'
            on_failure: {{run_step: fix, max_rounds: 3}}
          fix:
            run: 'while [ ! -f {seen} ]; do sleep 0.05; done; touch fixed'
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]

    def fixing(run: dict[str, Any]) -> bool:
        rounds = run["steps"]["test"]["rounds"]
        return bool(rounds) and rounds[-1]["fix_status"] == "running"

    during = await update_where(client, run_id, fixing)
    seen.touch()
    step = during["steps"]["test"]
    assert step["status"] == "running"
    [now] = step["rounds"]
    assert (now["round"], now["of"], now["status"], now["fixer"]) == (1, 3, "failed", "fix")

    final = await final_update(client, run_id)
    assert final["status"] == "succeeded"
    rounds = final["steps"]["test"]["rounds"]
    assert [(r["round"], r["status"], r["fix_status"]) for r in rounds] == [
        (1, "failed", "succeeded"),
        (2, "succeeded", None),
    ]
    assert rounds[0]["branch"] == f"treeflow/{run_id}/test.round-1"
    assert final["steps"]["test"]["branch"] == rounds[0]["branch"]
    assert list(final["steps"]) == ["test"]


async def test_fix_loop_problems_are_diagnostics(client: LanguageClient, workspace: Path) -> None:
    text = "steps:\n  test: {run: x, on_failure: {run_step: fx}}\n  fix: {run: 'echo ${{ failure.tail }}'}\n"
    uri = open_text(client, workspace, text)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = [(d.range.start.line, d.range.start.character, d.message) for d in client.diagnostics[uri]]
    assert found == [
        (1, 40, "step `test`: on_failure.run_step: unknown step `fx`; did you mean `fix`?"),
        (
            2,
            23,
            "step `fix`: run: `failure.tail`: only a fixer (a step named by an `on_failure.run_step`) "
            "reads `failure.*`",
        ),
    ]


async def test_a_fixer_gets_no_code_lens_and_is_not_offered_as_a_step(
    client: LanguageClient, workspace: Path
) -> None:
    text = "steps:\n  test: {run: x, on_failure: {run_step: fix}}\n  fix: {run: 'true'}\n"
    uri = open_text(client, workspace, text)
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(document(uri)))
    assert lenses is not None
    assert [lens.command.title for lens in lenses if lens.command is not None] == [
        "▶ Run workflow",
        "▶ Run step test",
    ]
    path = write_workflow(workspace, text, ".treeflow/fixing.yml")
    listed = await command(client, "treeflow.listWorkflows")
    [entry] = [entry for entry in listed if entry["uri"] == path.as_uri()]
    assert entry["steps"] == ["test"]
