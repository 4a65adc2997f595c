"""`textDocument/codeAction`: quick fixes for diagnostics that name a likely intended word.

The parser's "unknown key `rn` …; did you mean `run`?" (and the same for step ids, matrix keys and
`needs.<step>` in expressions) says what to write; the fix writes it in place of the unknown word,
found in the diagnostic's line at or after where the diagnostic starts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types

_UNKNOWN = re.compile(r"unknown (?:[a-z]+ )+`([^`\n]+)`")
_SUGGESTION = re.compile(r"; did you mean `([^`\n]+)`\?$")
# What may surround the unknown word: not a character that could continue it.
_WORD_CHAR = re.compile(r"[\w-]")


def quick_fixes(
    uri: str, lines: Sequence[str], diagnostics: Sequence[types.Diagnostic]
) -> list[types.CodeAction]:
    """One preferred quick fix per treeflow diagnostic of the document at ``uri`` (its ``lines``)
    that suggests a word."""
    actions = []
    for diagnostic in diagnostics:
        edit = _replacement(lines, diagnostic)
        if edit is None:
            continue
        actions.append(
            types.CodeAction(
                title=f"Change to `{edit.new_text}`",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True,
                edit=types.WorkspaceEdit(changes={uri: [edit]}),
            )
        )
    return actions


def _replacement(lines: Sequence[str], diagnostic: types.Diagnostic) -> types.TextEdit | None:
    if diagnostic.source != "treeflow":
        return None
    unknown = _UNKNOWN.search(diagnostic.message)
    suggestion = _SUGGESTION.search(diagnostic.message)
    start = diagnostic.range.start
    if unknown is None or suggestion is None or not 0 <= start.line < len(lines):
        return None
    wrong, right = unknown.group(1), suggestion.group(1)
    line = lines[start.line]
    column = _word_at_or_after(line, wrong, start.character)
    if column is None:
        return None
    return types.TextEdit(
        range=types.Range(
            types.Position(start.line, column), types.Position(start.line, column + len(wrong))
        ),
        new_text=right,
    )


def _word_at_or_after(line: str, word: str, column: int) -> int | None:
    """Where ``word`` stands as a whole word in ``line`` from ``column`` on, if it does."""
    position = line.find(word, column)
    while position != -1:
        before = line[position - 1] if position > 0 else ""
        after = line[position + len(word)] if position + len(word) < len(line) else ""
        if not _WORD_CHAR.fullmatch(before or " ") and not _WORD_CHAR.fullmatch(after or " "):
            return position
        position = line.find(word, position + 1)
    return None
