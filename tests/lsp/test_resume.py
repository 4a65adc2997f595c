"""`treeflow.resume` through a real LSP client: the run service resumes a run the editor names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest
from pytest_lsp import LanguageClient

from tests.conftest import git
from tests.lsp.conftest import write_workflow
from tests.lsp.test_server import command, final_update

pytestmark = pytest.mark.asyncio

FLAKY = """\
fail_fast: false
steps:
  good: {{run: 'echo g > g.txt'}}
  flaky: {{run: 'test -e {flag} && echo f > f.txt'}}
  after: {{run: 'cat g.txt f.txt > both.txt', needs: [good, flaky]}}
"""


async def test_resume_runs_again_what_failed_under_the_same_id(
    client: LanguageClient, workspace: Path
) -> None:
    flag = workspace.parent / "fixed"
    path = write_workflow(workspace, FLAKY.format(flag=flag))
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    first = await final_update(client, run_id)
    assert first["status"] == "failed"
    assert first["steps"]["after"]["status"] == "skipped"
    client.runs_updated.clear()  # type: ignore[attr-defined]

    flag.write_text("now it works")
    resumed = await command(client, "treeflow.resume", {"runId": run_id})
    assert resumed == {"runId": run_id}
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    assert run["steps"]["good"]["attempts"] == 1
    assert run["steps"]["good"]["commit"] == first["steps"]["good"]["commit"]
    assert git(workspace, "show", f"{run['result_branch']}:both.txt").split() == ["g", "f"]
    listed = {entry["run_id"]: entry for entry in await command(client, "treeflow.listRuns")}
    assert listed[run_id]["status"] == "succeeded"


async def test_resume_refuses_what_it_cannot_resume_with_a_clear_error(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"
    with pytest.raises(Exception, match="nothing to resume"):
        await command(client, "treeflow.resume", {"runId": run_id})
    with pytest.raises(Exception, match="no run 'nope' in this workspace"):
        await command(client, "treeflow.resume", {"runId": "nope"})


async def test_a_run_of_the_cli_is_resumed_from_the_editor(client: LanguageClient, workspace: Path) -> None:
    flag = workspace.parent / "fixed"
    write_workflow(workspace, FLAKY.format(flag=flag))
    done = await anyio.run_process(
        [sys.executable, "-m", "treeflow.cli", "run", "--json"], cwd=workspace, check=False
    )
    assert done.returncode == 1, done.stderr.decode()
    run_id = json.loads(done.stdout)["run_id"]
    flag.write_text("now it works")
    assert (await command(client, "treeflow.resume", {"runId": run_id})) == {"runId": run_id}
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run


async def test_resume_with_rebase_takes_the_checkout_as_the_new_base(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "steps:\n  s: {run: 'cat fix.txt > seen.txt'}\n")
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    first = await final_update(client, run_id)
    assert first["status"] == "failed"
    client.runs_updated.clear()  # type: ignore[attr-defined]
    (workspace / "fix.txt").write_text("fixed\n")
    git(workspace, "add", "fix.txt")
    git(workspace, "commit", "--quiet", "-m", "fix")

    assert await command(client, "treeflow.resume", {"runId": run_id, "rebase": True}) == {"runId": run_id}
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    assert run["base_commit"] == git(workspace, "rev-parse", "HEAD")
    assert git(workspace, "show", f"{run['result_branch']}:seen.txt") == "fixed"
