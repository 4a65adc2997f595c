"""Help while writing a workflow file, as LSP methods:

- `textDocument/completion`, `completionItem/resolve`: keys valid at the cursor, step ids in `needs`
  (documented when resolved), values of `base` and of other keys with choices (treeflow.lsp.completion)
- `textDocument/hover`: a key's meaning and default, a step's command (treeflow.lsp.hover)
- `textDocument/definition`, `references`, `prepareRename`, `rename`: step ids
  (treeflow.lsp.navigation)
- `textDocument/documentSymbol`, `foldingRange`, `selectionRange` (treeflow.lsp.symbols)

Each works on the text the client sent for a workflow file it has open, never on the file on disk,
read by treeflow.lsp.outline, which copes with a file that is not valid YAML mid-edit. Positions
cross here between the client's units (UTF-16 by default) and the code points the outline counts.

The modules doing the work are imported by each handler, by the rule of deferred imports (see
treeflow.lsp.handlers): with the key descriptions they load the engine's parser and step kinds,
about 90 ms that an editor would otherwise wait for before `initialize` is answered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

if TYPE_CHECKING:
    from pygls.workspace import TextDocument

    from treeflow.lsp.outline import Outline, Position
    from treeflow.lsp.server import TreeflowServer

OpenWorkflow = Callable[["TreeflowServer", str], "TextDocument | None"]
_TRIGGERS = [":", "[", ",", "-", " "]


def register(server: TreeflowServer, open_workflow: OpenWorkflow) -> None:
    """Add the authoring features to ``server``; ``open_workflow`` gives the open workflow file at a URI."""

    def read(ls: TreeflowServer, uri: str) -> tuple[_Units, Outline] | None:
        from treeflow.lsp.outline import read_outline

        document = open_workflow(ls, uri)
        return None if document is None else (_Units(document), read_outline(document.source))

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=_TRIGGERS, resolve_provider=True),
    )
    def completion(ls: TreeflowServer, params: types.CompletionParams) -> types.CompletionList | None:
        from treeflow.lsp.completion import completion_items

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        items = completion_items(outline, units.position(params.position))
        for item in items:
            if isinstance(item.text_edit, types.TextEdit):
                item.text_edit.range = units.range(item.text_edit.range)
            if item.kind == types.CompletionItemKind.Reference:
                item.data = [params.text_document.uri, item.label]
        return types.CompletionList(is_incomplete=False, items=items)

    @server.feature(types.COMPLETION_ITEM_RESOLVE)
    def resolve_completion(ls: TreeflowServer, item: types.CompletionItem) -> types.CompletionItem:
        from treeflow.lsp.key_help import step_markdown

        match item.data:
            case [str(uri), str(step)]:
                found = read(ls, uri)
                if found is not None and step in found[1].steps:
                    markdown = step_markdown(found[1], step)
                    item.documentation = types.MarkupContent(types.MarkupKind.Markdown, markdown)
        return item

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: TreeflowServer, params: types.HoverParams) -> types.Hover | None:
        from treeflow.lsp.hover import hover_at
        from treeflow.lsp.navigation import span

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        shown = hover_at(outline, units.position(params.position))
        if shown is None:
            return None
        text, scalar = shown
        return types.Hover(
            contents=types.MarkupContent(types.MarkupKind.Markdown, text),
            range=units.range(span(scalar)),
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: TreeflowServer, params: types.DefinitionParams) -> types.Location | None:
        from treeflow.lsp.navigation import definition as step_definition

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        declared = step_definition(outline, units.position(params.position))
        if declared is None:
            return None
        return types.Location(params.text_document.uri, units.range(declared))

    @server.feature(types.TEXT_DOCUMENT_REFERENCES)
    def references(ls: TreeflowServer, params: types.ReferenceParams) -> list[types.Location] | None:
        from treeflow.lsp.navigation import references as step_references

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        at = units.position(params.position)
        ranges = step_references(outline, at, params.context.include_declaration)
        return [types.Location(params.text_document.uri, units.range(r)) for r in ranges]

    @server.feature(types.TEXT_DOCUMENT_PREPARE_RENAME)
    def prepare_rename(
        ls: TreeflowServer, params: types.PrepareRenameParams
    ) -> types.PrepareRenamePlaceholder | None:
        from treeflow.lsp.navigation import rename_range

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        where = rename_range(outline, units.position(params.position))
        if where is None:
            return None
        placeholder = outline.lines[where.start.line][where.start.character : where.end.character]
        return types.PrepareRenamePlaceholder(units.range(where), placeholder)

    @server.feature(types.TEXT_DOCUMENT_RENAME, types.RenameOptions(prepare_provider=True))
    def rename(ls: TreeflowServer, params: types.RenameParams) -> types.WorkspaceEdit | None:
        from treeflow.lsp.navigation import RenameRefused, rename_edits

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        try:
            edits = rename_edits(outline, units.position(params.position), params.new_name)
        except RenameRefused as exc:
            raise JsonRpcInvalidParams(str(exc)) from None
        if not edits:
            return None
        for edit in edits:
            edit.range = units.range(edit.range)
        return types.WorkspaceEdit(changes={params.text_document.uri: edits})

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbol(
        ls: TreeflowServer, params: types.DocumentSymbolParams
    ) -> list[types.DocumentSymbol] | None:
        from treeflow.lsp.symbols import document_symbols

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        symbols = document_symbols(outline)
        units.symbols(symbols)
        return symbols

    @server.feature(types.TEXT_DOCUMENT_FOLDING_RANGE)
    def folding_range(
        ls: TreeflowServer, params: types.FoldingRangeParams
    ) -> list[types.FoldingRange] | None:
        from treeflow.lsp.symbols import folding_ranges

        found = read(ls, params.text_document.uri)
        return None if found is None else folding_ranges(found[1])

    @server.feature(types.TEXT_DOCUMENT_SELECTION_RANGE)
    def selection_range(
        ls: TreeflowServer, params: types.SelectionRangeParams
    ) -> list[types.SelectionRange] | None:
        from treeflow.lsp.symbols import selection_ranges

        found = read(ls, params.text_document.uri)
        if found is None:
            return None
        units, outline = found
        positions = [units.position(position) for position in params.positions]
        chains = selection_ranges(outline, positions)
        for chain in chains:
            link: types.SelectionRange | None = chain
            while link is not None:
                link.range = units.range(link.range)
                link = link.parent
        return chains


class _Units:
    """Positions of one document between the client's units and code points."""

    def __init__(self, document: TextDocument) -> None:
        self._codec = document.position_codec
        # pygls splits the text again on every access to `lines`.
        self._lines = document.lines

    def position(self, position: types.Position) -> Position:
        converted = self._codec.position_from_client_units(self._lines, position)
        return converted.line, converted.character

    def range(self, server_range: types.Range) -> types.Range:
        start, end = server_range.start, server_range.end
        if self._ascii(start.line) and self._ascii(end.line):
            # Every encoding counts an ASCII character as one unit, as the server does: only the end
            # of the line bounds a column (pygls' conversion sums the line's units for each column,
            # the most of the time a completion list with two hundred step ids takes).
            return types.Range(self._within_line(start), self._within_line(end))
        return self._codec.range_to_client_units(self._lines, server_range)

    def _ascii(self, line: int) -> bool:
        return 0 <= line < len(self._lines) and self._lines[line].isascii()

    def _within_line(self, position: types.Position) -> types.Position:
        return types.Position(position.line, min(position.character, len(self._lines[position.line])))

    def symbols(self, symbols: Sequence[types.DocumentSymbol]) -> None:
        for symbol in symbols:
            symbol.range = self.range(symbol.range)
            symbol.selection_range = self.range(symbol.selection_range)
            self.symbols(symbol.children or [])
