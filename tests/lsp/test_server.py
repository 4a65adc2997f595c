"""The language server through a real LSP client over stdio."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.conftest import git
from tests.helpers import has_text, pid_alive, read_pids, worktrees_left
from tests.lsp.conftest import write_workflow

pytestmark = pytest.mark.asyncio

FINAL = ("succeeded", "failed", "cancelled")
SCRIPTED_AGENT = Path(__file__).parents[1] / "agents" / "scripted_agent.py"


async def command(client: LanguageClient, name: str, *arguments: Any) -> Any:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=list(arguments))
    )


async def final_update(client: LanguageClient, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for run in client.runs_updated:  # type: ignore[attr-defined]
            if run["run_id"] == run_id and run["status"] in FINAL:
                return dict(run)
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} never finished")


def treeflow_worktrees(repo: Path) -> list[str]:
    """Worktrees left behind: any but the checkout and the pool's clean, idle ones."""
    return worktrees_left(repo)


async def test_list_workflows_finds_the_workspace_workflows(client: LanguageClient, workspace: Path) -> None:
    write_workflow(workspace, "name: checks\nsteps:\n  a: {run: 'true'}\n  b: {run: 'true', needs: [a]}\n")
    write_workflow(workspace, "steps: [", name=".treeflow/broken.yml")
    found = await command(client, "treeflow.listWorkflows")
    by_name = {entry["name"]: entry for entry in found}
    assert by_name["checks"]["steps"] == ["a", "b"]
    assert by_name["checks"]["needs"] == {"a": [], "b": ["a"]}
    assert by_name["checks"]["uri"] == (workspace / "treeflow.yml").as_uri()
    assert by_name["broken"]["errors"] != []


@pytest.mark.slow
async def test_a_run_reports_progress_begin_reports_end_and_a_final_update(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(
        workspace,
        """\
        name: small
        steps:
          first: {run: "echo one; sleep 0.3"}
          second: {run: "echo two > two.txt; sleep 0.3", needs: [first]}
        """,
    )
    started = await command(client, "treeflow.run", {"workflow": path.as_uri()})
    run_id = started["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded"
    assert run["done"] == run["total"] == 2
    assert run["result_branch"] == f"treeflow/runs/{run_id}"

    token = f"treeflow/run/{run_id}"
    reports = client.progress_reports[token]
    kinds = [type(report).__name__ for report in reports]
    assert kinds[0] == "WorkDoneProgressBegin"
    assert kinds[-1] == "WorkDoneProgressEnd"
    assert set(kinds[1:-1]) == {"WorkDoneProgressReport"}
    begin, end = reports[0], reports[-1]
    assert begin.title == "treeflow: small"
    assert begin.cancellable is True
    assert end.message.startswith("succeeded in ")
    messages = [report.message for report in reports[1:-1]]
    assert any(message.startswith("0/2 · running: first") for message in messages)
    assert any(message.startswith("1/2 · running: second") for message in messages)
    percentages = [report.percentage for report in reports[1:-1]]
    assert percentages == sorted(percentages)

    logs = [entry for entry in client.logs if entry["runId"] == run_id]  # type: ignore[attr-defined]
    assert "one\n" in "".join(entry["text"] for entry in logs if entry["stepId"] == "first")


@pytest.mark.slow
async def test_agent_progress_appears_in_the_progress_reports(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(
        workspace,
        f"""\
        steps:
          review:
            agent:
              prompt: review the change
              command: {sys.executable} {SCRIPTED_AGENT} succeed
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "succeeded", run
    messages = [report.message for report in client.progress_reports[f"treeflow/run/{run_id}"][1:-1]]
    assert any(message.startswith("0/1 · running: review (") and "quarter" in message for message in messages)


async def test_cancel_command_stops_the_run_and_leaves_nothing(
    client: LanguageClient, workspace: Path
) -> None:
    pids = workspace.parent / "pids"
    pids.mkdir()
    path = write_workflow(
        workspace,
        f"""\
        steps:
          slow: {{run: "echo partial > work.txt; sh -c 'sleep 60 & echo $! > {pids}/child; wait'"}}
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    deadline = time.monotonic() + 30
    while not has_text(pids / "child"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert await command(client, "treeflow.cancel", {"runId": run_id}) == {"cancelled": True}
    run = await final_update(client, run_id)
    assert run["status"] == "cancelled"
    assert run["steps"]["slow"]["status"] == "cancelled"
    assert [pid for pid in read_pids(pids).values() if pid_alive(pid)] == []
    assert treeflow_worktrees(workspace) == []
    assert git(workspace, "show", f"{run['steps']['slow']['branch']}:work.txt") == "partial"
    assert client.progress_reports[f"treeflow/run/{run_id}"][-1].message == "cancelled"
    assert await command(client, "treeflow.cancel", {"runId": run_id}) == {"cancelled": False}


@pytest.mark.slow
async def test_cancelling_the_progress_cancels_the_run(client: LanguageClient, workspace: Path) -> None:
    pids = workspace.parent / "pids"
    pids.mkdir()
    path = write_workflow(workspace, f"steps:\n  slow: {{run: 'echo $$ > {pids}/slow; exec sleep 60'}}\n")
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    deadline = time.monotonic() + 30
    while not has_text(pids / "slow"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    client.window_work_done_progress_cancel(
        types.WorkDoneProgressCancelParams(token=f"treeflow/run/{run_id}")
    )
    run = await final_update(client, run_id)
    assert run["status"] == "cancelled"
    assert [pid for pid in read_pids(pids).values() if pid_alive(pid)] == []


@pytest.mark.slow
async def test_two_runs_at_once(client: LanguageClient, workspace: Path) -> None:
    first = write_workflow(workspace, "name: one\nsteps:\n  a: {run: 'sleep 0.5; echo a > a.txt'}\n")
    second = write_workflow(
        workspace, "name: two\nsteps:\n  b: {run: 'sleep 0.5; echo b > b.txt'}\n", name=".treeflow/two.yml"
    )
    ids = [
        (await command(client, "treeflow.run", {"workflow": first.as_uri()}))["runId"],
        (await command(client, "treeflow.run", {"workflow": str(second)}))["runId"],
    ]
    assert ids[0] != ids[1]
    runs = [await final_update(client, run_id) for run_id in ids]
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    listed = await command(client, "treeflow.listRuns")
    assert {run["run_id"] for run in listed} == set(ids)
    fetched = await command(client, "treeflow.getRun", {"runId": ids[1]})
    assert fetched["workflow"] == "two"
    assert fetched["steps"]["b"]["status"] == "succeeded"


@pytest.mark.slow
async def test_a_cancelled_request_does_not_cancel_the_run(client: LanguageClient, workspace: Path) -> None:
    path = write_workflow(workspace, "steps:\n  a: {run: 'sleep 0.5'}\n")
    request = client.protocol.send_request_async(
        types.WORKSPACE_EXECUTE_COMMAND,
        types.ExecuteCommandParams(command="treeflow.run", arguments=[{"workflow": path.as_uri()}]),
    )
    started = await request
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=1))
    run = await final_update(client, started["runId"])
    assert run["status"] == "succeeded"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "arguments", "words"),
    [
        ("treeflow.run", [], "takes one argument"),
        ("treeflow.run", [{}], "needs `workflow`"),
        ("treeflow.run", [{"workflow": "WORKSPACE/no-such.yml"}], "no workflow file"),
        ("treeflow.run", [{"workflow": "WORKSPACE/treeflow.yml", "steps": "a"}], "must be a list"),
        ("treeflow.run", [{"workflow": "WORKSPACE/treeflow.yml", "steps": ["zzz"]}], "unknown step zzz"),
        ("treeflow.run", [{"workflow": "WORKSPACE/bad.yml"}], "bad.yml:1:1"),
        ("treeflow.cancel", [{"runId": "nope"}], "no run 'nope'"),
        ("treeflow.getRun", [{}], "needs `runId`"),
        ("treeflow.getRun", ["x"], "takes one argument"),
    ],
)
async def test_malformed_requests_get_clear_errors_and_the_server_stays_up(
    client: LanguageClient, workspace: Path, name: str, arguments: list[Any], words: str
) -> None:
    write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    write_workflow(workspace, "stepz: {}\n", name=".treeflow/bad.yml")
    resolved = [
        {k: v.replace("WORKSPACE", str(workspace)) if isinstance(v, str) else v for k, v in arg.items()}
        if isinstance(arg, dict)
        else arg
        for arg in arguments
    ]
    if "bad.yml" in str(arguments):
        resolved = [{"workflow": str(workspace / ".treeflow" / "bad.yml")}]
    with pytest.raises(Exception, match=words.replace("(", r"\(")) as caught:
        await command(client, name, *resolved)
    assert "JsonRpc" in type(caught.value).__name__
    assert await command(client, "treeflow.listRuns") == []


async def test_diagnostics_appear_for_a_broken_file_and_clear_when_fixed(
    client: LanguageClient, workspace: Path
) -> None:
    uri = (workspace / "treeflow.yml").as_uri()
    broken = "steps:\n  a: {run: x, needs: [nope]}\n  b: {rum: y}\n"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=broken)
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = client.diagnostics[uri]
    # The same errors, at the same places, as `treeflow validate` (which counts from 1).
    assert [(d.range.start.line, d.range.start.character) for d in found] == [(1, 22), (2, 5), (2, 6)]
    assert "unknown step `nope`" in found[0].message
    assert "needs `run:`" in found[1].message
    assert "did you mean `run`?" in found[2].message
    assert (found[0].range.end.line, found[0].range.end.character) == (1, 26)
    assert {d.source for d in found} == {"treeflow"}
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="steps:\n  a: {run: x}\n")],
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []


async def test_code_lenses_run_the_workflow_and_each_step(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "treeflow.yml").as_uri()
    text = "name: x\nsteps:\n  lint: {run: a}\n  unit:\n    run: b\n"
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)
        )
    )
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert lenses is not None
    summary = [
        (lens.range.start.line, lens.command.title, list(lens.command.arguments or []))
        for lens in lenses
        if lens.command
    ]
    assert summary == [
        (0, "▶ Run workflow", [{"workflow": uri}]),
        (2, "▶ Run step lint", [{"workflow": uri, "steps": ["lint"]}]),
        (3, "▶ Run step unit", [{"workflow": uri, "steps": ["unit"]}]),
    ]
    assert {lens.command.command for lens in lenses if lens.command} == {"treeflow.run"}


@pytest.mark.slow
async def test_run_updates_stay_under_ten_per_second_for_a_200_step_run(
    client: LanguageClient, workspace: Path
) -> None:
    steps = "\n".join(f"  s{i}: {{run: 'echo {i}'}}" for i in range(200))
    path = write_workflow(workspace, f"max_parallel: 4\ndefaults: {{worktree: false}}\nsteps:\n{steps}\n")
    started = time.monotonic()
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(client, run_id)
    elapsed = time.monotonic() - started
    assert run["status"] == "succeeded"
    updates = [r for r in client.runs_updated if r["run_id"] == run_id]  # type: ignore[attr-defined]
    # One per 100 ms at most, plus the final state that is always sent.
    assert len(updates) <= 10 * elapsed + 2
    assert updates[-1]["done"] == 200
    texts = "".join(e["text"] for e in client.logs if e["runId"] == run_id)  # type: ignore[attr-defined]
    assert texts.count("\n") == 200


@pytest.mark.slow
async def test_the_server_and_the_cli_write_the_journal_at_once(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(
        workspace,
        "defaults: {worktree: false}\nsteps:\n"
        + "".join(f"  s{i}: {{run: 'echo {i}'}}\n" for i in range(60)),
    )
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "treeflow.cli", "run", "--json", cwd=workspace, stdout=asyncio.subprocess.PIPE
    )
    served = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    output, _ = await asyncio.wait_for(cli.communicate(), timeout=120)
    from_cli = json.loads(output)["run_id"]
    assert (await final_update(client, served))["status"] == "succeeded"
    with sqlite3.connect(workspace / ".git" / "treeflow" / "journal.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Each sees the other's run: history lives in the journal, not in one process.
    for run_id in (served, from_cli):
        fetched = await command(client, "treeflow.getRun", {"runId": run_id})
        assert fetched["status"] == "succeeded"
        assert {step["status"] for step in fetched["steps"].values()} == {"succeeded"}
        assert len(fetched["steps"]) == 60


async def test_a_run_the_workspace_refuses_ends_failed_with_why(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "base: no-such-revision\nsteps:\n  a: {run: 'true'}\n")
    started = await command(client, "treeflow.run", {"workflow": path.as_uri()})
    run_id = started["runId"]
    run = await final_update(client, run_id)
    assert run["status"] == "failed"
    assert "is not a commit" in run["error"]
    again = await command(client, "treeflow.getRun", {"runId": run_id})
    assert (again["status"], again["error"]) == ("failed", run["error"])


@pytest.mark.slow
async def test_no_run_update_or_progress_report_repeats_the_one_before(
    client: LanguageClient, workspace: Path
) -> None:
    # Output alone changes nothing a run update or a progress report shows.
    path = write_workflow(
        workspace,
        """\
        steps:
          chatty: {run: "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.1; done"}
          after: {run: "echo done", needs: [chatty]}
        """,
    )
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    assert (await final_update(client, run_id))["status"] == "succeeded"
    updates = [run for run in client.runs_updated if run["run_id"] == run_id]  # type: ignore[attr-defined]
    assert [run["status"] for run in updates].count("succeeded") == 1
    assert all(before != after for before, after in itertools.pairwise(updates))
    progress = client.progress_reports[f"treeflow/run/{run_id}"]
    shown = [(report.message, report.percentage) for report in progress[:-1]]
    assert all(before != after for before, after in itertools.pairwise(shown)), shown
    logs = "".join(e["text"] for e in client.logs if e["runId"] == run_id)  # type: ignore[attr-defined]
    assert [line for line in logs.splitlines() if line.startswith("line ")] == [
        f"line {i}" for i in range(1, 9)
    ]
