"""Help while writing a workflow, through a real client: completion, hover, step-id navigation and
rename, symbols, folding and selection ranges; on the text the client has, also while it is broken."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from tests.helpers import wait_until_async

pytestmark = pytest.mark.asyncio

CURSOR = "‸"
WORKFLOW = """\
name: checks
base: working
steps:
  lint: {run: ruff check .}
  unit:
    run: pytest -q
    retry: {attempts: 3}
  build:
    run: npm run build
    needs: [lint, "unit"]
  review:
    needs:
      - build
    agent:
      prompt: Review this branch
"""
_versions = itertools.count(1)


def split_cursor(text: str) -> tuple[str, types.Position]:
    """``text`` without its cursor mark, and where the mark was."""
    text = textwrap.dedent(text)
    before = text[: text.index(CURSOR)]
    line = before.count("\n")
    return text.replace(CURSOR, "", 1), types.Position(line, len(before) - (before.rfind("\n") + 1))


def open_text(client: LanguageClient, workspace: Path, text: str, name: str = "treeflow.yml") -> str:
    uri = (workspace / name).as_uri()
    item = types.TextDocumentItem(uri=uri, language_id="yaml", version=next(_versions), text=text)
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    return uri


def document(uri: str) -> types.TextDocumentIdentifier:
    return types.TextDocumentIdentifier(uri=uri)


async def complete(client: LanguageClient, workspace: Path, marked: str) -> dict[str, types.CompletionItem]:
    text, position = split_cursor(marked)
    uri = open_text(client, workspace, text)
    answer = await client.text_document_completion_async(types.CompletionParams(document(uri), position))
    items = answer.items if isinstance(answer, types.CompletionList) else (answer or [])
    return {item.label: item for item in items}


def doc_of(item: types.CompletionItem | types.Hover) -> str:
    content = item.documentation if isinstance(item, types.CompletionItem) else item.contents
    assert isinstance(content, types.MarkupContent), content
    assert content.kind == types.MarkupKind.Markdown
    return content.value


def no_errors_logged(client: LanguageClient) -> None:
    # A handler's exception reaches the client's log as an error, or as a refused request.
    bad = [
        m.message
        for m in client.log_messages
        if m.type in (types.MessageType.Error, types.MessageType.Warning)
        or any(word in m.message for word in ("refused", "Error", "Traceback"))
    ]
    assert bad == []


async def test_top_level_keys_are_offered_with_their_documentation(
    client: LanguageClient, workspace: Path
) -> None:
    items = await complete(client, workspace, "name: x\nma‸\n")
    assert list(items) == [
        "version",
        "max_parallel",
        "fail_fast",
        "base",
        "defaults",
        "setup",
        "pool",
        "executor",
        "env",
        "steps",
    ]
    assert "How many steps may run at once" in doc_of(items["max_parallel"])
    assert "Default: the number of CPUs." in doc_of(items["max_parallel"])
    edit = items["max_parallel"].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.new_text == "max_parallel: "
    assert (edit.range.start.character, edit.range.end.character) == (0, 2)


@pytest.mark.parametrize(
    ("marked", "expected"),
    [
        (
            "steps:\n  a:\n    run: x\n    ‸\n",
            [
                "agent",
                "needs",
                "if",
                "timeout",
                "retry",
                "env",
                "worktree",
                "matrix",
                "approve",
                "cache",
                "executor",
                "resources",
                "on_failure",
            ],
        ),
        (
            "steps:\n  a: {run: x, ‸}\n",
            [
                "agent",
                "needs",
                "if",
                "timeout",
                "retry",
                "env",
                "worktree",
                "matrix",
                "approve",
                "cache",
                "executor",
                "resources",
                "on_failure",
            ],
        ),
        (
            "steps:\n  a:\n    agent:\n      ‸\n",
            [
                "prompt",
                "command",
                "report",
                "heartbeat",
                "use",
                "model",
                "args",
                "env",
                "permissions",
                "program",
                "repository",
            ],
        ),
        (
            "steps:\n  a:\n    agent:\n      use: claude\n      ‸\n",
            ["prompt", "model", "args", "env", "permissions", "program", "heartbeat"],
        ),
        ("steps:\n  a:\n    agent: {use: cursor-cloud, ‸}\n", ["prompt", "model", "repository"]),
        ("steps:\n  a:\n    agent: {report: exit, ‸}\n", ["command", "prompt", "heartbeat"]),
        ("steps:\n  a:\n    run: x\n    retry: {‸}\n", ["attempts", "backoff", "max_backoff", "jitter"]),
        ("defaults:\n  retry:\n    att‸\nsteps: {}\n", ["attempts", "backoff", "max_backoff", "jitter"]),
        ("setup:\n  ‸\nsteps:\n  a: {run: x}\n", ["copy", "run", "when_changed"]),
        ("defaults:\n  ‸\n", ["timeout", "retry", "worktree"]),
        ("steps:\n  a:\n    run: x\n    matrix:\n      python: ['3.12']\n      ‸\n", ["include", "exclude"]),
        ("steps:\n  a:\n    run: x\n    on_failure: {‸}\n", ["run_step", "then", "max_rounds"]),
    ],
    ids=[
        "step",
        "step-flow",
        "agent",
        "agent-cli",
        "agent-cloud",
        "agent-exit",
        "retry-flow",
        "defaults-retry",
        "setup",
        "defaults",
        "matrix",
        "on-failure",
    ],
)
async def test_the_keys_valid_at_the_cursor(
    client: LanguageClient, workspace: Path, marked: str, expected: list[str]
) -> None:
    items = await complete(client, workspace, marked)
    assert list(items) == expected
    assert all(doc_of(item) for item in items.values())


async def test_a_kind_key_says_what_the_kind_does(client: LanguageClient, workspace: Path) -> None:
    items = await complete(client, workspace, "steps:\n  a:\n    ‸\n")
    assert "/bin/sh -e -c" in doc_of(items["run"])
    assert "`use: cursor-cloud`" in doc_of(items["agent"])


@pytest.mark.parametrize(
    "marked",
    [
        "steps:\n  a: {run: x}\n  b: {run: y}\n  c: {run: z, needs: [‸]}\n",
        "steps:\n  a: {run: x}\n  b: {run: y}\n  c:\n    run: z\n    needs:\n      - ‸\n",
        "steps:\n  a: {run: x}\n  b: {run: y}\n  c:\n    run: z\n    needs:\n    - ‸\n",
        "steps:\n  a: {run: x}\n  b: {run: y}\n  c:\n    run: z\n    needs: ‸\n",
    ],
    ids=["flow", "block", "block-at-key-indent", "single"],
)
async def test_needs_offers_the_other_steps_with_their_commands(
    client: LanguageClient, workspace: Path, marked: str
) -> None:
    items = await complete(client, workspace, marked)
    assert list(items) == ["a", "b"]
    # A step's documentation comes when the client resolves the item it shows.
    assert items["a"].documentation is None
    resolved = await client.completion_item_resolve_async(items["a"])
    assert "**step a**: a shell command\n\n```sh\nx\n```" in doc_of(resolved)


async def test_needs_leaves_out_the_steps_already_named(client: LanguageClient, workspace: Path) -> None:
    items = await complete(
        client, workspace, "steps:\n  a: {run: x}\n  b: {run: y}\n  c: {run: z, needs: [a, ‸]}\n"
    )
    assert list(items) == ["b"]


async def test_use_offers_every_agent_treeflow_knows(client: LanguageClient, workspace: Path) -> None:
    items = await complete(client, workspace, "steps:\n  a:\n    agent: {use: ‸, prompt: x}\n")
    assert list(items) == ["claude", "codex", "gemini", "cursor", "opencode", "cursor-cloud"]
    assert doc_of(items["claude"]) == "Claude Code"
    assert doc_of(items["cursor-cloud"]) == "Cursor Cloud Agent"
    shown = await hover(client, workspace, "steps:\n  a:\n    agent: {use: co‸dex, prompt: x}\n")
    assert shown is not None
    assert doc_of(shown) == "**codex**: " + items["codex"].documentation.value  # type: ignore[union-attr]


async def test_values_of_base_and_of_booleans(client: LanguageClient, workspace: Path) -> None:
    items = await complete(client, workspace, "base: ‸\nsteps:\n  a: {run: x}\n")
    assert list(items) == ["working", "head"]
    assert "uncommitted changes included" in doc_of(items["working"])
    items = await complete(client, workspace, "steps:\n  a:\n    run: x\n    worktree:‸\n")
    edit = items["false"].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.new_text == " false"  # typed right after the colon


@pytest.mark.parametrize(
    ("marked", "expected"),
    [
        ("steps:\n  a:\n    run: x\n    ti‸\n  b: {run: y}\n", "timeout"),  # no colon yet
        ("steps:\n  a:\n    run: x\n    ne‸\n    retry: 2\n", "needs"),  # a key without its colon mid-mapping
        ('steps:\n  a:\n    run: "unterminated\n    ‸\n  b: {run: y}\n', "timeout"),
        ("steps:\n  a:\n\trun: x\n    ‸\n", "needs"),  # a tab, which YAML refuses as indentation
        ("steps:\n  a: {run: x, needs: [b\n  b: {run: y}\nna‸\n", None),
        ("steps: [\n‸", None),
        ("%YAML 9\n--- !!bad\n? ‸\n", None),
        ("\x00‸", None),
        ("‸", "steps"),
    ],
)
async def test_completion_answers_in_a_file_broken_mid_typing(
    client: LanguageClient, workspace: Path, marked: str, expected: str | None
) -> None:
    items = await complete(client, workspace, marked)
    if expected is not None:
        assert expected in items
    no_errors_logged(client)


async def test_completion_reads_the_clients_text_not_the_file_on_disk(
    client: LanguageClient, workspace: Path
) -> None:
    (workspace / "treeflow.yml").write_text("steps:\n  on_disk: {run: x}\n")
    text, position = split_cursor("steps:\n  typed: {run: x}\n  b: {run: y, needs: [‸]}\n")
    uri = open_text(client, workspace, "steps: {}\n")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=next(_versions)),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    answer = await client.text_document_completion_async(types.CompletionParams(document(uri), position))
    assert isinstance(answer, types.CompletionList)
    assert [item.label for item in answer.items] == ["typed"]


async def test_a_file_that_is_no_workflow_gets_no_help(client: LanguageClient, workspace: Path) -> None:
    text, position = split_cursor("steps:\n  ‸\n")
    uri = open_text(client, workspace, text, name="docker-compose.yml")
    assert (
        await client.text_document_completion_async(types.CompletionParams(document(uri), position)) is None
    )
    assert await client.text_document_hover_async(types.HoverParams(document(uri), position)) is None
    assert await client.text_document_document_symbol_async(types.DocumentSymbolParams(document(uri))) is None


async def hover(client: LanguageClient, workspace: Path, marked: str) -> types.Hover | None:
    text, position = split_cursor(marked)
    uri = open_text(client, workspace, text)
    return await client.text_document_hover_async(types.HoverParams(document(uri), position))


async def test_hover_on_a_key_says_what_it_does_and_its_default(
    client: LanguageClient, workspace: Path
) -> None:
    shown = await hover(client, workspace, WORKFLOW.replace("retry: {attempts", "retry: {att‸empts"))
    assert shown is not None
    assert "**attempts**: a whole number, at least 1" in doc_of(shown)
    assert "Default: 1." in doc_of(shown)
    assert shown.range == types.Range(types.Position(6, 12), types.Position(6, 20))
    shown = await hover(client, workspace, WORKFLOW.replace("base:", "ba‸se:"))
    assert shown is not None
    assert "What the steps start from" in doc_of(shown)
    assert "Default: working." in doc_of(shown)


async def test_hover_on_a_needed_step_shows_its_command(client: LanguageClient, workspace: Path) -> None:
    shown = await hover(client, workspace, WORKFLOW.replace("- build", "- bu‸ild"))
    assert shown is not None
    assert "**step build**: a shell command" in doc_of(shown)
    assert "```sh\nnpm run build\n```" in doc_of(shown)
    assert "needs `lint`, `unit`" in doc_of(shown)
    shown = await hover(client, workspace, WORKFLOW.replace('"unit"', '"un‸it"'))
    assert shown is not None
    assert "pytest -q" in doc_of(shown)


async def test_hover_on_an_unknown_step_and_on_a_value(client: LanguageClient, workspace: Path) -> None:
    shown = await hover(client, workspace, "steps:\n  a: {run: x, needs: [nop‸e]}\n")
    assert shown is not None
    assert doc_of(shown) == "no step `nope` in this workflow"
    shown = await hover(client, workspace, "base: he‸ad\nsteps:\n  a: {run: x}\n")
    assert shown is not None
    assert doc_of(shown).startswith("**head**: The last commit")
    assert await hover(client, workspace, "name: chec‸ks\nsteps:\n  a: {run: x}\n") is None


def spans(locations: list[types.Location]) -> list[tuple[int, int, int]]:
    return [(loc.range.start.line, loc.range.start.character, loc.range.end.character) for loc in locations]


async def test_definition_and_references_of_a_step(client: LanguageClient, workspace: Path) -> None:
    text, position = split_cursor(WORKFLOW.replace("[lint,", "[li‸nt,"))
    uri = open_text(client, workspace, text)
    found = await client.text_document_definition_async(types.DefinitionParams(document(uri), position))
    assert isinstance(found, types.Location)
    assert (found.uri, spans([found])) == (uri, [(3, 2, 6)])
    text, position = split_cursor(WORKFLOW.replace("  build:", "  bu‸ild:"))
    uri = open_text(client, workspace, text)
    references = await client.text_document_references_async(
        types.ReferenceParams(
            context=types.ReferenceContext(include_declaration=True),
            text_document=document(uri),
            position=position,
        )
    )
    assert spans(references or []) == [(7, 2, 7), (12, 8, 13)]
    references = await client.text_document_references_async(
        types.ReferenceParams(
            context=types.ReferenceContext(include_declaration=False),
            text_document=document(uri),
            position=position,
        )
    )
    assert spans(references or []) == [(12, 8, 13)]


async def test_rename_a_step_changes_its_key_and_every_needs(client: LanguageClient, workspace: Path) -> None:
    text, position = split_cursor(WORKFLOW.replace('"unit"', '"un‸it"'))
    uri = open_text(client, workspace, text)
    prepared = await client.text_document_prepare_rename_async(
        types.PrepareRenameParams(document(uri), position)
    )
    assert isinstance(prepared, types.PrepareRenamePlaceholder)
    assert prepared.placeholder == "unit"
    assert prepared.range == types.Range(types.Position(9, 19), types.Position(9, 23))  # inside the quotes
    edit = await client.text_document_rename_async(types.RenameParams(document(uri), position, "tests"))
    assert edit is not None and edit.changes is not None
    renamed = apply(text, edit.changes[uri])
    assert "  tests:\n    run: pytest -q" in renamed
    assert 'needs: [lint, "tests"]' in renamed
    assert "unit" not in renamed
    edit = await client.text_document_rename_async(types.RenameParams(document(uri), position, "123"))
    assert edit is not None and edit.changes is not None
    assert '  "123":\n' in apply(text, edit.changes[uri])  # YAML would read a bare 123 as a number


@pytest.mark.parametrize(
    ("new_name", "words"),
    [("lint", "already in this workflow"), ("a b", "cannot be a step id"), ("-x", "cannot be a step id")],
)
async def test_rename_refuses_an_id_that_cannot_be(
    client: LanguageClient, workspace: Path, new_name: str, words: str
) -> None:
    text, position = split_cursor(WORKFLOW.replace("  unit:", "  un‸it:"))
    uri = open_text(client, workspace, text)
    with pytest.raises(JsonRpcException, match=words):
        await client.text_document_rename_async(types.RenameParams(document(uri), position, new_name))
    assert [m.message for m in client.log_messages if m.type == types.MessageType.Error] == []


async def test_only_step_ids_can_be_renamed(client: LanguageClient, workspace: Path) -> None:
    text, position = split_cursor(WORKFLOW.replace("run: pytest", "r‸un: pytest"))
    uri = open_text(client, workspace, text)
    assert (
        await client.text_document_prepare_rename_async(types.PrepareRenameParams(document(uri), position))
        is None
    )


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        assert edit.range.start.line == edit.range.end.line
        line = lines[edit.range.start.line]
        lines[edit.range.start.line] = (
            line[: edit.range.start.character] + edit.new_text + line[edit.range.end.character :]
        )
    return "\n".join(lines)


async def test_the_outline_lists_the_steps_with_their_kind(client: LanguageClient, workspace: Path) -> None:
    uri = open_text(client, workspace, WORKFLOW)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(document(uri)))
    assert symbols is not None
    assert all(isinstance(symbol, types.DocumentSymbol) for symbol in symbols)
    assert [symbol.name for symbol in symbols] == ["name", "base", "steps"]
    [steps] = [symbol for symbol in symbols if symbol.name == "steps"]  # type: ignore[union-attr]
    assert isinstance(steps, types.DocumentSymbol) and steps.children
    assert [(s.name, s.detail, s.range.start.line, s.range.end.line) for s in steps.children] == [
        ("lint", "run: ruff check .", 3, 3),
        ("unit", "run: pytest -q", 4, 6),
        ("build", "run: npm run build", 7, 9),
        ("review", "agent: Review this branch", 10, 14),
    ]


async def test_folding_by_step_and_selection_that_grows(client: LanguageClient, workspace: Path) -> None:
    uri = open_text(client, workspace, WORKFLOW)
    folds = await client.text_document_folding_range_async(types.FoldingRangeParams(document(uri)))
    assert {(fold.start_line, fold.end_line) for fold in folds or []} >= {(2, 14), (4, 6), (7, 9), (10, 14)}
    _, position = split_cursor(WORKFLOW.replace("pytest -q", "pyt‸est -q"))
    [chain] = await client.text_document_selection_range_async(
        types.SelectionRangeParams(document(uri), [position])
    ) or [None]
    ranges = []
    link = chain
    while link is not None:
        ranges.append(
            (
                (link.range.start.line, link.range.start.character),
                (link.range.end.line, link.range.end.character),
            )
        )
        link = link.parent
    assert ranges == [
        ((5, 9), (5, 18)),  # the command
        ((5, 4), (5, 18)),  # run: …
        ((4, 2), (6, 24)),  # the step
        ((2, 0), (14, 32)),  # steps:
        ((0, 0), (14, 32)),  # the file
    ]


async def test_positions_are_in_the_clients_units(client: LanguageClient, workspace: Path) -> None:
    # "é" and "😀" are one code point each, "😀" two UTF-16 units: the step after them starts later.
    text, position = split_cursor(
        'name: é😀\nsteps:\n  a: {run: "😀", needs: [b]}\n  b: {run: y, needs: [‸]}\n'
    )
    uri = open_text(client, workspace, text)
    found = await client.text_document_definition_async(
        types.DefinitionParams(document(uri), types.Position(2, len('  a: {run: "😀", needs: [') + 1))
    )
    assert isinstance(found, types.Location)
    assert spans([found]) == [(3, 2, 3)]
    answer = await client.text_document_completion_async(types.CompletionParams(document(uri), position))
    assert isinstance(answer, types.CompletionList)
    assert [item.label for item in answer.items] == ["a"]


async def test_typing_a_burst_of_changes_ends_with_the_last_ones_diagnostics(
    client: LanguageClient, workspace: Path
) -> None:
    uri = open_text(client, workspace, "steps:\n  a: {run: x}\n")
    typed = ["steps:\n  a: {run: x}\n  b: {r", "steps:\n  a: {run: x}\n  b: {run: y, needs: [c]}\n"]
    for text in typed:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=next(_versions)),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
    _, position = split_cursor(typed[-1].replace("[c]", "[‸c]"))
    answer = await client.text_document_completion_async(types.CompletionParams(document(uri), position))
    assert isinstance(answer, types.CompletionList)
    assert [item.label for item in answer.items] == ["a"]

    def last_diagnostics() -> list[str]:
        return [d.message for d in client.diagnostics.get(uri, [])]

    await wait_until_async(
        lambda: any("unknown step `c`" in message for message in last_diagnostics()),
        "the last text's diagnostics",
    )
    assert len(last_diagnostics()) == 1
