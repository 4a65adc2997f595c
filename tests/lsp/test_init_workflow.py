"""`treeflow.initWorkflow` through a real LSP client: the starter is written, its code lens runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import git
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio


def add_makefile(workspace: Path) -> None:
    (workspace / "Makefile").write_text(
        "lint:\n\t@echo linted\ntest:\n\t@echo tested\nbuild:\n\t@echo built\n"
    )
    git(workspace, "add", "Makefile")
    git(workspace, "commit", "-qm", "a Makefile")


def open_document(client: LanguageClient, path: Path) -> None:
    uri, text = path.as_uri(), path.read_text()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)
        )
    )


@pytest.mark.slow
async def test_init_workflow_writes_the_starter_and_its_lens_runs_it(
    client: LanguageClient, workspace: Path
) -> None:
    add_makefile(workspace)
    created = await command(client, "treeflow.initWorkflow", {"folder": workspace.as_uri()})
    uri = (workspace / "treeflow.yml").as_uri()
    assert created == {
        "uri": uri,
        "created": True,
        "steps": ["lint", "test", "build"],
        "sources": ["Makefile"],
    }
    open_document(client, workspace / "treeflow.yml")
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    run_lens = next(
        lens.command for lens in lenses or [] if lens.command and lens.command.title == "▶ Run workflow"
    )
    assert run_lens.command == "treeflow.run"
    started = await command(client, run_lens.command, *(run_lens.arguments or []))
    run = await final_update(client, started["runId"])
    assert run["status"] == "succeeded"
    assert list(run["steps"]) == ["lint", "test", "build"]


async def test_init_workflow_without_a_folder_uses_the_first_workspace_folder(
    client: LanguageClient, workspace: Path
) -> None:
    created = await command(client, "treeflow.initWorkflow", {})
    assert created["uri"] == (workspace / "treeflow.yml").as_uri()
    assert created["steps"] == ["hello"]
    assert created["sources"] == []


async def test_an_existing_workflow_is_returned_unchanged(client: LanguageClient, workspace: Path) -> None:
    mine = "steps:\n  mine: {run: 'true'}\n"
    (workspace / "treeflow.yml").write_text(mine)
    created = await command(client, "treeflow.initWorkflow", {"folder": str(workspace)})
    assert created == {
        "uri": (workspace / "treeflow.yml").as_uri(),
        "created": False,
        "steps": ["mine"],
        "sources": [],
    }
    assert (workspace / "treeflow.yml").read_text() == mine


async def test_a_folder_outside_the_workspace_is_refused(
    client: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(Exception, match="is not a workspace folder") as caught:
        await command(client, "treeflow.initWorkflow", {"folder": elsewhere.as_uri()})
    assert "JsonRpc" in type(caught.value).__name__
    assert not (elsewhere / "treeflow.yml").exists()
