"""What a client is told of a run while it changes: each update one consistent state, a cancel
shown while steps stop, and no work-done progress for a client that shows runs itself."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.helpers import has_text, wait_until_async
from tests.lsp.conftest import make_client, write_workflow
from tests.lsp.test_server import command, final_update
from treeflow.lsp.protocol import InitializationOptions, read_initialization_options

FINAL_STEP = ("succeeded", "failed", "timed_out", "cancelled", "skipped")


def updates_of(client: LanguageClient, run_id: str) -> list[dict[str, Any]]:
    return [run for run in client.runs_updated if run["run_id"] == run_id]  # type: ignore[attr-defined]


def inconsistencies(run: dict[str, Any], needs: dict[str, list[str]]) -> list[str]:
    """What in one run object could not all be true at one moment."""
    found = []
    steps = run["steps"]
    for step_id, step in steps.items():
        if step["status"] in FINAL_STEP and step["started_at"] and step["duration_s"] is None:
            found.append(f"{step_id} {step['status']} without its duration")
        waiting_on = [need for need in needs.get(step_id, []) if steps[need]["status"] not in FINAL_STEP]
        if step["status"] == "pending" and needs.get(step_id) and not waiting_on:
            found.append(f"{step_id} pending after its needs ended")
    done = sum(1 for step in steps.values() if step["status"] in FINAL_STEP and step["status"] != "cancelled")
    if run["done"] != done:
        found.append(f"done {run['done']}, but {done} steps ended by themselves")
    return found


@pytest.mark.slow
@pytest.mark.asyncio
async def test_each_run_update_is_one_consistent_state(client: LanguageClient, workspace: Path) -> None:
    # Steps that write many files take a while to save; their dependents start the moment they have.
    many = "mkdir -p out; for i in $(seq 400); do echo $i > out/{name}$i.txt; done"
    path = write_workflow(
        workspace,
        f"""\
        max_parallel: 8
        steps:
          a: {{run: "{many.format(name="a")}"}}
          b: {{run: "{many.format(name="b")}; sleep 0.2"}}
          c: {{run: "{many.format(name="c")}; sleep 0.1"}}
          d: {{run: "{many.format(name="d")}; sleep 0.3"}}
          ab: {{run: "ls out | wc -l", needs: [a, b]}}
          cd: {{run: "ls out | wc -l", needs: [c, d]}}
          all: {{run: "true", needs: [ab, cd]}}
        """,
    )
    needs = {"ab": ["a", "b"], "cd": ["c", "d"], "all": ["ab", "cd"]}
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"
    updates = updates_of(client, run_id)
    assert len(updates) > 3
    problems = {i: found for i, run in enumerate(updates) if (found := inconsistencies(run, needs))}
    assert problems == {}


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_cancel_shows_at_once_while_a_step_takes_its_kill_grace(
    client: LanguageClient, workspace: Path
) -> None:
    marks = workspace.parent / "marks"
    marks.mkdir()
    # Ignores SIGTERM: only the SIGKILL after the 5 s grace ends it.
    stubborn = f"trap '' TERM; echo $$ > {marks}/stubborn; while :; do sleep 0.1; done"
    path = write_workflow(
        workspace,
        f"""\
        name: stubborn
        steps:
          quick: {{run: "true"}}
          stubborn: {{run: "{stubborn}"}}
          later: {{run: "true", needs: [stubborn]}}
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    await wait_until_async(lambda: has_text(marks / "stubborn"), "the stubborn step to start")
    await wait_until_async(
        lambda: any(run["steps"]["quick"]["status"] == "succeeded" for run in updates_of(client, run_id)),
        "the quick step to succeed",
    )
    seen = len(updates_of(client, run_id))
    asked = time.monotonic()
    assert await command(client, "treeflow.cancel", {"runId": run_id}) == {"cancelled": True}

    cancelling = await wait_until_async(
        lambda: next((run for run in updates_of(client, run_id)[seen:] if run["cancelling"]), None),
        "an update saying the run is cancelling",
    )
    assert time.monotonic() - asked < 2.5, "shown well within the step's 5 s kill grace"
    assert cancelling["status"] == "running"
    assert cancelling["steps"]["stubborn"]["status"] == "running"
    listed = await command(client, "treeflow.getRun", {"runId": run_id})
    assert listed["cancelling"] is True

    final = await final_update(client, run_id)
    assert (final["status"], final["cancelling"]) == ("cancelled", False)
    assert final["steps"]["stubborn"]["status"] == "cancelled"
    assert final["steps"]["later"]["status"] == "skipped"
    assert (final["done"], final["total"]) == (2, 3), "the step the cancel stopped is not done"
    after = updates_of(client, run_id)[seen:]
    assert [run["cancelling"] for run in after[after.index(cancelling) : -1]] == [True] * (
        len(after) - after.index(cancelling) - 1
    )
    assert all(run["done"] < run["total"] for run in after), "no update counts every step done"
    reports = client.progress_reports[f"treeflow/run/{run_id}"]
    messages = [report.message for report in reports if isinstance(report, types.WorkDoneProgressReport)]
    assert "cancelling · stopping: stubborn" in messages
    assert reports[-1].message == "cancelled"


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
        client_factory=make_client,
    ),
)
async def own_progress_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    """A client like the extension: it shows the progress of runs itself."""
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="workspace")],
            initialization_options={"showsRunProgress": True},
        )
    )
    yield lsp_client
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_a_client_that_shows_runs_itself_gets_no_work_done_progress(
    own_progress_client: LanguageClient, workspace: Path
) -> None:
    client = own_progress_client
    path = write_workflow(workspace, "steps:\n  a: {run: 'echo a'}\n")
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"
    assert client.progress_reports == {}


def test_initialization_options_of_any_client_are_read_without_failing() -> None:
    assert read_initialization_options({"showsRunProgress": True, "other": 1}) == (
        InitializationOptions(shows_run_progress=True),
        [],
    )
    assert read_initialization_options(None) == (InitializationOptions(), [])
    options, problems = read_initialization_options({"showsRunProgress": "yes"})
    assert options == InitializationOptions()
    assert problems == ["initializationOptions.showsRunProgress: true or false expected"]
    assert read_initialization_options(["x"])[0] == InitializationOptions()
