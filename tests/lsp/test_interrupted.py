"""A run whose CLI was killed, seen by a language server started afterwards on the repository."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient

from tests.conftest import make_repo
from tests.helpers import pid_alive, wait_for_files
from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command

pytestmark = pytest.mark.asyncio


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A repository whose `treeflow run` was killed with SIGKILL while its step ran."""
    repo = make_repo(tmp_path / "workspace")
    pid_file = tmp_path / "step.pid"
    write_workflow(repo, f"name: long\nsteps:\n  sleeper: {{run: 'echo $$ > {pid_file}; exec sleep 60'}}\n")
    cli = subprocess.Popen(
        [sys.executable, "-m", "treeflow.cli", "run"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_files([pid_file])
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=10)
    return repo


@pytest.mark.slow
async def test_the_first_list_of_runs_already_shows_the_run_interrupted(
    client: LanguageClient, workspace: Path
) -> None:
    # Asked at once: the answer waits for the recovery that `initialized` started.
    [run] = await command(client, "treeflow.listRuns")
    assert run["workflow"] == "long"
    assert run["status"] == "interrupted"
    assert run["steps"]["sleeper"]["status"] == "interrupted"
    assert run["error"] is None
    assert await command(client, "treeflow.getRun", {"runId": run["run_id"]}) == run
    step_pid = int((workspace.parent / "step.pid").read_text())
    assert not pid_alive(step_pid)
