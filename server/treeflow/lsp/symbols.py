"""The shape of a workflow file for the editor: document symbols (the top-level keys, and under
`steps` each step with its kind), folding ranges for every key whose value spans lines (each step
among them), and selection ranges that grow from a word to its key, its step, `steps:`, the file."""

from __future__ import annotations

from lsprotocol import types

from treeflow.lsp.key_help import step_command, step_kind
from treeflow.lsp.outline import Entry, Outline, Position

_MAX_DETAIL = 60


def document_symbols(outline: Outline) -> list[types.DocumentSymbol]:
    symbols = []
    for entry in outline.entries:
        if len(entry.path) != 1:
            continue
        name = entry.path[0]
        children = (
            [_step_symbol(outline, step) for step in _step_entries(outline)] if name == "steps" else None
        )
        kind = types.SymbolKind.Namespace if name == "steps" else types.SymbolKind.Property
        symbols.append(_symbol(outline, entry, name, kind, detail=None, children=children))
    return sorted(symbols, key=lambda symbol: (symbol.range.start.line, symbol.range.start.character))


def _step_entries(outline: Outline) -> list[Entry]:
    return [entry for entry in outline.entries if len(entry.path) == 2 and entry.path[0] == "steps"]


def _step_symbol(outline: Outline, entry: Entry) -> types.DocumentSymbol:
    step_id = entry.path[1]
    kind = step_kind(outline, step_id)
    command = step_command(outline, step_id) or ""
    if len(command) > _MAX_DETAIL:
        command = command[:_MAX_DETAIL] + "…"
    detail = f"{kind}: {command}".strip() if kind else "no kind key"
    return _symbol(outline, entry, step_id, types.SymbolKind.Function, detail, children=None)


def _symbol(
    outline: Outline,
    entry: Entry,
    name: str,
    kind: types.SymbolKind,
    detail: str | None,
    children: list[types.DocumentSymbol] | None,
) -> types.DocumentSymbol:
    key_end = (entry.start[0], entry.start[1] + len(name))
    return types.DocumentSymbol(
        name=name,
        kind=kind,
        range=_range(entry.start, max(entry.end, key_end)),
        selection_range=_range(entry.start, key_end),
        detail=detail,
        children=children,
    )


def folding_ranges(outline: Outline) -> list[types.FoldingRange]:
    return [
        types.FoldingRange(
            start_line=entry.start[0], end_line=entry.end[0], kind=types.FoldingRangeKind.Region
        )
        for entry in sorted(outline.entries, key=lambda entry: entry.start)
        if entry.end[0] > entry.start[0]
    ]


def selection_ranges(outline: Outline, positions: list[Position]) -> list[types.SelectionRange]:
    whole = _range((0, 0), _end_of(outline))
    chains = []
    for at in positions:
        chain = types.SelectionRange(range=whole)
        around = sorted(
            (entry for entry in outline.entries if entry.holds(at)),
            key=lambda entry: (entry.start, _negated(entry.end)),
        )
        for entry in around:
            chain = types.SelectionRange(range=_range(entry.start, entry.end), parent=chain)
        scalar = outline.scalar_at(at)
        if scalar is not None:
            chain = types.SelectionRange(range=_range(scalar.start, scalar.end), parent=chain)
        chains.append(chain)
    return chains


def _negated(position: Position) -> Position:
    return (-position[0], -position[1])


def _end_of(outline: Outline) -> Position:
    if not outline.lines:
        return (0, 0)
    return (len(outline.lines) - 1, len(outline.lines[-1]))


def _range(start: Position, end: Position) -> types.Range:
    return types.Range(types.Position(*start), types.Position(*end))
