"""The worktree pool is the repository's: a worktree the CLI gave back serves a step the language
server runs, and back."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from tests.helpers import worktrees_left
from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio


async def cli_run(workspace: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "treeflow.cli",
        "run",
        cwd=workspace,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, output.decode()


async def test_the_cli_and_the_language_server_share_the_pool(
    client: LanguageClient, workspace: Path, tmp_path: Path
) -> None:
    where = tmp_path / "where"
    where.mkdir()
    path = write_workflow(workspace, f"steps:\n  s: {{run: 'pwd > {where}/$TREEFLOW_RUN_ID'}}\n")
    await cli_run(workspace)
    [by_cli] = [entry.read_text() for entry in where.iterdir()]
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    assert (where / run_id).read_text() == by_cli
    assert Path(by_cli.strip()).parent.name == "pool"
    await cli_run(workspace)
    assert {entry.read_text() for entry in where.iterdir()} == {by_cli}
    assert worktrees_left(workspace) == []
