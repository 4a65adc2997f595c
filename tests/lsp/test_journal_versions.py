"""The language server beside a `treeflow` CLI of another version on the same repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.journal_versions import other_treeflow
from tests.lsp.conftest import write_workflow
from treeflow.core.journal import JOURNAL_FORMAT

pytestmark = pytest.mark.asyncio


async def command(client: LanguageClient, name: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(arguments))
    )


async def test_a_newer_cli_on_the_repository_is_named_instead_of_misread(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    assert await command(client, "treeflow.listRuns") == []

    newer = other_treeflow(workspace, "7.2.0", JOURNAL_FORMAT + 1, "run")
    assert newer.returncode == 0, newer.stderr

    for name, argument in (("treeflow.listRuns", None), ("treeflow.run", {"workflow": path.as_uri()})):
        with pytest.raises(JsonRpcException) as refused:
            await command(client, name, *([] if argument is None else [argument]))
        message = str(refused.value)
        assert "written by treeflow 7.2.0" in message, message
        assert f"journal format {JOURNAL_FORMAT + 1}" in message
