"""Quick fixes for diagnostics that say "did you mean …?", with a real client."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio


async def open_with_diagnostics(client: LanguageClient, workspace: Path, text: str) -> list[types.Diagnostic]:
    uri = (workspace / "treeflow.yml").as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return list(client.diagnostics[uri])


async def fixes(
    client: LanguageClient, workspace: Path, diagnostics: list[types.Diagnostic]
) -> list[types.CodeAction]:
    uri = (workspace / "treeflow.yml").as_uri()
    found = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=diagnostics[0].range,
            context=types.CodeActionContext(diagnostics=diagnostics),
        )
    )
    return [action for action in found or [] if isinstance(action, types.CodeAction)]


def edits(action: types.CodeAction) -> list[tuple[int, int, int, str]]:
    assert action.edit is not None and action.edit.changes is not None
    [changes] = action.edit.changes.values()
    return [(e.range.start.line, e.range.start.character, e.range.end.character, e.new_text) for e in changes]


async def test_a_misspelt_key_gets_a_preferred_fix_that_writes_the_key_meant(
    client: LanguageClient, workspace: Path
) -> None:
    diagnostics = await open_with_diagnostics(
        client, workspace, "steps:\n  a: {run: x}\n  b: {run: y, nedes: [a]}\n"
    )
    [mistake] = diagnostics
    assert mistake.message.endswith("did you mean `needs`?")
    [action] = await fixes(client, workspace, [mistake])
    assert action.title == "Change to `needs`"
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.is_preferred
    assert edits(action) == [(2, 14, 19, "needs")]


async def test_a_misspelt_step_in_needs_and_in_an_expression_are_fixed_where_they_stand(
    client: LanguageClient, workspace: Path
) -> None:
    text = (
        "steps:\n"
        "  lint: {run: x}\n"
        "  unit: {run: y, needs: [lnt]}\n"
        "  report: {run: 'echo ${{ needs.unti.status }}', needs: [unit], if: always()}\n"
    )
    diagnostics = await open_with_diagnostics(client, workspace, text)
    assert len(diagnostics) == 2, [d.message for d in diagnostics]
    found = await fixes(client, workspace, diagnostics)
    assert sorted(edits(action)[0] for action in found) == [(2, 25, 28, "lint"), (3, 32, 36, "unit")]


async def test_diagnostics_without_a_suggestion_get_no_fix(client: LanguageClient, workspace: Path) -> None:
    diagnostics = await open_with_diagnostics(client, workspace, "steps:\n  a: {run: x, needs: [zzzzzz]}\n")
    assert diagnostics and "did you mean" not in diagnostics[0].message
    assert await fixes(client, workspace, diagnostics) == []
