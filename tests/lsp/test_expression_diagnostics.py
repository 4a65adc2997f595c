"""Problems in conditions and `${{ }}` templates as diagnostics of a real LSP client, at the
character `treeflow validate` names."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

pytestmark = pytest.mark.asyncio

WORKFLOW = """\
steps:
  build: {run: "true"}
  test:
    needs: build
    if: needs.biuld.status == 'failed'
    run: echo ${{ needs.build.outputs.version }} ${{ needs.deploy.status }}
  deploy:
    if: sometimes()
    run: echo ${{ needs.build.status
"""


async def test_expression_problems_are_diagnostics(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "treeflow.yml").as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=WORKFLOW)
        )
    )
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = [
        (d.range.start.line, d.range.start.character, d.range.end.character, d.message)
        for d in client.diagnostics[uri]
    ]
    assert found == [
        (4, 8, 26, "step `test`: if: unknown step `biuld` in `needs.biuld`; did you mean `build`?"),
        (
            5,
            53,
            72,
            "step `test`: run: `needs.deploy`: step `test` does not need `deploy`; add it to its `needs:`",
        ),
        (
            7,
            8,
            19,
            "step `deploy`: if: unknown function `sometimes` (known: success(), failure(), always(), "
            "cancelled())",
        ),
        (8, 14, 15, "step `deploy`: run: `${{` is not closed by `}}`"),
    ]
