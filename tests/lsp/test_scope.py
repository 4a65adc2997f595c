"""The server runs only workflow files inside its workspace folders, and quotes only workflows."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.lsp.conftest import make_client, write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio

INVALID_PARAMS = -32602
SECRET = "hunter2-do-not-show"


async def refused_run(client: LanguageClient, workflow: str) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as refused:
        await command(client, "treeflow.run", {"workflow": workflow})
    assert refused.value.code == INVALID_PARAMS
    return refused.value


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file beside the workspace, as a secret the client has no business reading through us."""
    path = tmp_path / "elsewhere" / "shadow"
    path.parent.mkdir()
    path.write_text(f"root:{SECRET}:19000:0:99999:7:::\n")
    return path


async def test_a_file_outside_the_workspace_is_refused_unread(client: LanguageClient, outside: Path) -> None:
    for named in (str(outside), outside.as_uri()):
        refused = await refused_run(client, named)
        assert "outside the workspace folders" in refused.message
        assert "only workflow files inside its workspace folders" in refused.message
        assert SECRET not in refused.message


async def test_a_symlink_in_the_workspace_to_a_file_outside_is_refused(
    client: LanguageClient, workspace: Path, outside: Path
) -> None:
    (workspace / ".treeflow").mkdir()
    link = workspace / ".treeflow" / "linked.yml"
    link.symlink_to(outside)
    refused = await refused_run(client, str(link))
    assert "outside the workspace folders" in refused.message
    assert SECRET not in refused.message
    listed = await command(client, "treeflow.listWorkflows")
    [entry] = [entry for entry in listed if entry["uri"] == link.as_uri()]
    assert entry["steps"] == []
    assert "outside the workspace folders" in entry["errors"][0]
    assert SECRET not in str(listed)


async def test_a_file_in_the_workspace_that_is_no_workflow_is_not_quoted(
    client: LanguageClient, workspace: Path
) -> None:
    for name, text in ((".env", f"API_KEY={SECRET}\n"), ("notes.yml", f"password: {SECRET}\n")):
        (workspace / name).write_text(text)
        refused = await refused_run(client, str(workspace / name))
        assert "is not a workflow" in refused.message
        assert "mapping with `steps:`" in refused.message
        assert SECRET not in refused.message


async def test_a_workflow_under_any_name_still_gets_its_errors(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "steps:\n  a: {rum: x}\n", name="ci/pipeline.yml")
    refused = await refused_run(client, path.as_uri())
    assert "did you mean `run`?" in refused.message


@pytest.mark.slow
async def test_a_workflow_in_the_workspace_reached_through_a_symlink_runs(
    client: LanguageClient, workspace: Path
) -> None:
    target = write_workflow(workspace, "steps:\n  a: {run: 'true'}\n", name="flows/real.yml")
    link = workspace / "treeflow.yml"
    link.symlink_to(target)
    run_id = (await command(client, "treeflow.run", {"workflow": link.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"


async def test_code_lenses_only_for_open_workflows_of_the_workspace(
    client: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    on_disk = write_workflow(workspace, "steps:\n  on-disk-only: {run: x}\n")
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=on_disk.as_uri()))
    )
    assert not lenses

    elsewhere = (tmp_path / "other" / "treeflow.yml").as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=elsewhere, language_id="yaml", version=1, text="steps:\n  a: {rum: x}\n"
            )
        )
    )
    # The client's own text is checked wherever the file is...
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert any("did you mean `run`?" in found.message for found in client.diagnostics[elsewhere])
    # ...but a file outside the workspace gets no lens that treeflow.run would refuse.
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=elsewhere))
    )
    assert not lenses


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
        client_factory=make_client,
    ),
)
async def bare_client(lsp_client: LanguageClient) -> AsyncIterator[LanguageClient]:
    """A client that initializes the session itself, with whatever folders a test gives."""
    yield lsp_client
    await lsp_client.shutdown_session()


async def initialize(client: LanguageClient, root: Path | None) -> None:
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri() if root else None,
        )
    )


async def test_without_workspace_folders_nothing_runs(bare_client: LanguageClient, workspace: Path) -> None:
    await initialize(bare_client, None)
    path = write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    refused = await refused_run(bare_client, str(path))
    assert "the server has no workspace folder" in refused.message


@pytest.mark.slow
async def test_a_root_uri_alone_counts_as_the_workspace_folder(
    bare_client: LanguageClient, workspace: Path, outside: Path
) -> None:
    await initialize(bare_client, workspace)
    path = write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    run_id = (await command(bare_client, "treeflow.run", {"workflow": str(path)}))["runId"]
    assert (await final_update(bare_client, run_id))["status"] == "succeeded"
    assert "outside the workspace folders" in (await refused_run(bare_client, str(outside))).message
