"""Matrix steps in the editor, through a real LSP client: their problems as diagnostics at the
character `treeflow validate` names, one code lens per matrix step, hover on `matrix`."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from tests.lsp.conftest import write_workflow
from tests.lsp.test_authoring import doc_of, document, hover, open_text
from tests.lsp.test_server import command, final_update
from treeflow.core import journal

pytestmark = pytest.mark.asyncio

BROKEN = """\
steps:
  test:
    matrix:
      python: ["3.11", "3.12"]
      shard: []
      exclude: [{os: linux}]
    if: matrix.pyhton != '3.12'
    run: pytest --shard ${{ matrix.shard.index }}
"""


async def test_matrix_problems_are_diagnostics(client: LanguageClient, workspace: Path) -> None:
    uri = open_text(client, workspace, BROKEN)
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = [
        (d.range.start.line, d.range.start.character, d.range.end.character, d.message)
        for d in client.diagnostics[uri]
    ]
    assert found == [
        (4, 13, 14, "step `test`: matrix.shard is an empty list: give it at least one value"),
        (5, 17, 19, "step `test`: matrix.exclude: unknown matrix key `os` (keys: python, shard)"),
        (
            6,
            8,
            21,
            "step `test`: if: unknown matrix key `pyhton` (keys: python, shard); did you mean `python`?",
        ),
        (7, 28, 46, "step `test`: run: write `matrix.<key>` to read a value of the step's matrix"),
    ]


async def test_a_matrix_step_has_one_code_lens_that_runs_every_combination(
    client: LanguageClient, workspace: Path
) -> None:
    text = (
        "steps:\n"
        "  test:\n"
        "    matrix: {python: ['3.11', '3.12'], shard: [1, 2, 3]}\n"
        "    run: pytest\n"
        "  join: {needs: test, run: 'true'}\n"
    )
    uri = open_text(client, workspace, text)
    lenses = await client.text_document_code_lens_async(types.CodeLensParams(document(uri)))
    assert lenses is not None
    shown = [
        (lens.range.start.line, lens.command.title, list(lens.command.arguments or []))
        for lens in lenses
        if lens.command is not None
    ]
    assert shown[1:] == [
        (1, "▶ Run step test (6 combinations)", [{"workflow": uri, "steps": ["test"]}]),
        (4, "▶ Run step join", [{"workflow": uri, "steps": ["join"]}]),
    ]


async def test_hover_on_matrix_and_its_include(client: LanguageClient, workspace: Path) -> None:
    text = "steps:\n  test:\n    mat‸rix: {python: ['3.12'], include: [{python: '3.13'}]}\n    run: pytest\n"
    shown = await hover(client, workspace, text)
    assert shown is not None
    assert doc_of(shown).startswith("**matrix**: a mapping of keys to lists of values")
    assert "Default: none: the step runs once." in doc_of(shown)
    shown = await hover(client, workspace, text.replace("mat‸rix", "matrix").replace("include", "inc‸lude"))
    assert shown is not None
    assert doc_of(shown).startswith("**include**: a list of mappings of matrix keys to values")


async def test_a_matrix_step_is_listed_once_and_running_it_runs_every_combination(
    client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(
        workspace,
        """\
        steps:
          other: {run: "true"}
          test: {matrix: {shard: [1, 2]}, run: "echo ${{ matrix.shard }} > shard.txt"}
          report: {run: "true", needs: [test, other]}
        """,
    )
    listed = await command(client, "treeflow.listWorkflows")
    [entry] = [entry for entry in listed if entry["uri"] == path.as_uri()]
    assert entry["steps"] == ["other", "test", "report"]
    # A step that needs a matrix step needs it once, by the id in the file.
    assert entry["needs"] == {"other": [], "test": [], "report": ["test", "other"]}
    run_id = (await command(client, "treeflow.run", {"workflow": path.as_uri(), "steps": ["test"]}))["runId"]
    final = await final_update(client, run_id)
    assert final["status"] == "succeeded"
    # The test client reads the notification into named tuples, which cannot keep a key such as
    # `test[shard=1]`; the journal has the ids as the server sent them.
    record = journal.read_run(workspace / ".git" / "treeflow" / "journal.db", run_id)
    assert record is not None
    assert {step_id: step.result.status.value for step_id, step in record.steps.items()} == {
        "test[shard=1]": "succeeded",
        "test[shard=2]": "succeeded",
    }
    assert [step["branch"] for step in final["steps"].values()] == [
        f"treeflow/{run_id}/test.shard-1",
        f"treeflow/{run_id}/test.shard-2",
    ]
