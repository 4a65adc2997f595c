"""A run the executor refuses before any step starts ends at once, saying why in one line."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.conftest import make_client, session, write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, as far as anything can tell."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SCHEDULER = f"tcp://127.0.0.1:{_closed_port()}"


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
        client_factory=make_client,
        server_env={**os.environ, "TREEFLOW_DASK_SCHEDULER": SCHEDULER},
    ),
)
async def dask_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    async with session(lsp_client, workspace):
        yield lsp_client


async def test_a_dask_scheduler_that_cannot_be_reached_refuses_the_run_with_its_reason(
    dask_client: LanguageClient, workspace: Path
) -> None:
    pytest.importorskip("distributed")
    workflow = write_workflow(workspace, "name: far\nexecutor: dask\nsteps:\n  a: {run: 'true'}\n")
    run_id = (await command(dask_client, "treeflow.run", {"workflow": workflow.as_uri()}))["runId"]
    ended = await final_update(dask_client, run_id)
    assert ended["status"] == "failed"
    assert SCHEDULER in ended["error"]
    # The refusal's own words, not the name of a Python exception.
    assert "SchedulerUnreachable" not in ended["error"]
