"""Malformed requests: each gets a JSON-RPC error, promptly, and the server keeps answering."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.lsp.conftest import write_workflow

INVALID_PARAMS = -32602
ANSWER_WITHIN_S = 10
LONGEST_SANE_MESSAGE = 2000

pytestmark = pytest.mark.asyncio


async def refusal(client: LanguageClient, method: str, params: Any) -> JsonRpcException:
    """The error answering a request sent as it is: the client's own typed sending would refuse
    to send params that do not fit the method."""
    msg_id = str(uuid.uuid4())
    answer: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = answer
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    request = asyncio.wrap_future(answer)
    with pytest.raises(JsonRpcException) as refused:
        await asyncio.wait_for(request, timeout=ANSWER_WITHIN_S)
    return refused.value


async def still_answers(client: LanguageClient) -> None:
    listed = client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="treeflow.listWorkflows", arguments=[])
    )
    assert await asyncio.wait_for(listed, timeout=ANSWER_WITHIN_S) is not None


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("workspace/executeCommand", ["treeflow.listWorkflows"]),
        ("workspace/executeCommand", {"arguments": []}),
        ("textDocument/codeLens", {"textDocument": {}}),
        ("textDocument/codeLens", {"textDocument": 5}),
        ("textDocument/codeLens", None),
    ],
)
async def test_a_request_with_malformed_params_is_refused_by_name(
    client: LanguageClient, method: str, params: Any
) -> None:
    refused = await refusal(client, method, params)
    assert refused.code == INVALID_PARAMS
    assert method in refused.message
    await still_answers(client)


async def test_a_workflow_path_too_long_for_the_system_is_refused_briefly(client: LanguageClient) -> None:
    workflow = "w" * (10 * 1024 * 1024)
    refused = await refusal(
        client,
        "workspace/executeCommand",
        {"command": "treeflow.run", "arguments": [{"workflow": workflow}]},
    )
    assert refused.code == INVALID_PARAMS
    assert len(refused.message) < LONGEST_SANE_MESSAGE
    assert "…" in refused.message
    await still_answers(client)


async def test_a_long_list_of_unknown_steps_is_quoted_briefly(
    client: LanguageClient, workspace: Path
) -> None:
    workflow = write_workflow(
        workspace,
        """\
        name: one
        steps:
          only:
            run: "true"
        """,
    )
    steps = [f"missing-{index}" for index in range(200_000)]
    refused = await refusal(
        client,
        "workspace/executeCommand",
        {"command": "treeflow.run", "arguments": [{"workflow": str(workflow), "steps": steps}]},
    )
    assert refused.code == INVALID_PARAMS
    assert "missing-0" in refused.message
    assert len(refused.message) < LONGEST_SANE_MESSAGE
    await still_answers(client)


async def test_a_refused_request_is_logged_in_one_short_line(client: LanguageClient) -> None:
    huge = "x" * 1_000_000
    refused = await refusal(client, "textDocument/codeLens", {"textDocument": 5, "huge": huge})
    assert refused.code == INVALID_PARAMS
    await still_answers(client)
    [logged] = [entry.message for entry in client.log_messages if "request refused" in entry.message]
    assert "\n" not in logged
    assert "Traceback" not in logged
    assert "xxxx…" in logged
    assert len(logged) < LONGEST_SANE_MESSAGE
