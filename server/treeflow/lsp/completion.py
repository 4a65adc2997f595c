"""`textDocument/completion` in workflow files: the keys valid where the cursor is, the step ids a
`needs` can name, and the values a key offers (`base`, booleans, closed choices such as an agent's
`use:`), each with its documentation (a step's when the client resolves its item).

Where the cursor is comes from `outline`, which reads files mid-edit; a place it cannot tell gets
no items rather than wrong ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lsprotocol import types

from treeflow.core.spec_keys import Flag, Key, TextList
from treeflow.lsp.key_help import choices_of, fields_of, key_markdown, place_of
from treeflow.lsp.outline import Frame, Outline, Position, Role, Scalar

_WORD_BEFORE = re.compile(r"[\w.\-/]*$")
# Outside a scalar, a `#` at the start of a line or after a space begins a comment.
_COMMENT = re.compile(r"(^|\s)#")
_FLAGS = {"true": "Yes.", "false": "No."}


@dataclass(frozen=True)
class Spot:
    """Where completion is asked: a key of the mapping at ``path``, or the value of the key at ``path``."""

    path: tuple[str, ...]
    key: bool


def completion_items(outline: Outline, at: Position) -> list[types.CompletionItem]:
    spot = spot_at(outline, at)
    place = None if spot is None else place_of(spot.path)
    if spot is None or place is None:
        return []
    line, column = at
    text = outline.line(line)
    column = min(column, len(text))
    start = column - len(_word_before(text[:column]))
    replace = types.Range(types.Position(line, start), types.Position(line, column))
    if spot.key:
        written = _written_keys(outline, spot.path, at)
        keys = fields_of(place.shape, written) or ()
        return [_key_item(key, index, replace) for index, key in enumerate(keys) if key.name not in written]
    # A value typed right after `:`, `,` or `-` needs the space YAML wants there.
    space = " " if start > 0 and text[start - 1] in ":,-" else ""
    names_steps = isinstance(place.shape, TextList) and place.shape.step_ids
    if names_steps:
        # A step's documentation is made when the client shows it (`completionItem/resolve`): a
        # list of every step is long, and only the focused item's is read.
        return [
            types.CompletionItem(
                label=step,
                kind=types.CompletionItemKind.Reference,
                text_edit=types.TextEdit(replace, space + step),
                sort_text=f"{index:04d}",
            )
            for index, step in enumerate(_needable_steps(outline, spot.path, at))
        ]
    offered = dict(_FLAGS) if isinstance(place.shape, Flag) else choices_of(place.shape)
    return [
        types.CompletionItem(
            label=value,
            kind=types.CompletionItemKind.Value,
            documentation=types.MarkupContent(types.MarkupKind.Markdown, doc),
            text_edit=types.TextEdit(replace, space + value),
            sort_text=f"{index:04d}",
        )
        for index, (value, doc) in enumerate(offered.items())
    ]


def _written_keys(outline: Outline, path: tuple[str, ...], at: Position) -> dict[str, str | None]:
    """The keys already in the mapping at ``path``, with their scalar values; not the one being typed."""
    typed = outline.scalar_at(at)
    being_typed = typed.text if typed is not None and typed.role is Role.KEY else None
    return {
        name: value.text if (value := outline.value_of((*path, name))) else None
        for name in outline.keys_under(path)
        if name != being_typed
    }


def _word_before(text: str) -> str:
    """The part of a key or value already typed at the end of ``text``."""
    match = _WORD_BEFORE.search(text)
    return match.group() if match else ""


def _key_item(key: Key, index: int, replace: types.Range) -> types.CompletionItem:
    return types.CompletionItem(
        label=key.name,
        kind=types.CompletionItemKind.Property,
        detail=key.shape.wording,
        documentation=types.MarkupContent(types.MarkupKind.Markdown, key_markdown(key)),
        text_edit=types.TextEdit(replace, f"{key.name}: "),
        sort_text=f"{index:04d}",
    )


def _needable_steps(outline: Outline, needs_path: tuple[str, ...], at: Position) -> list[str]:
    """The steps a step may need: every other one not already named."""
    step_id = needs_path[1]
    named = {
        mention.text for mention in outline.mentions if mention.path == needs_path and not mention.holds(at)
    }
    return [other for other in outline.steps if other != step_id and other not in named]


def spot_at(outline: Outline, at: Position) -> Spot | None:
    """What the cursor at ``at`` is typing, or None where the file gives no way to tell."""
    under = outline.scalar_at(at)
    if under is not None:
        if under.role is Role.KEY:
            return Spot(under.path[:-1], key=True)
        return Spot(under.path, key=_key_begun_as_value(outline, under))
    frames = outline.frames_at(at)
    if frames and frames[-1].flow:
        top = frames[-1]
        if top.mapping and top.expects_key:
            return Spot(top.path, key=True)
        return Spot(top.child_path() if top.mapping else top.path, key=False)
    line, column = at
    before = outline.line(line)[:column]
    lead = before[: len(before) - len(_word_before(before))]
    if _COMMENT.search(lead):
        return None
    indent = len(before) - len(before.lstrip())
    if lead.strip() == "-":
        return _list_item(frames, lead.index("-"))
    return _block_spot(_open_at(frames, indent), line, indent)


def _key_begun_as_value(outline: Outline, value: Scalar) -> bool:
    """A word on the line below `agent:` is, to YAML, the value of `agent`; to the one typing it, the
    start of a key of the mapping `agent:` takes."""
    place = place_of(value.path)
    if place is None or (place.key is not None and fields_of(place.shape) is None):
        return False
    key = next((s for s in outline.scalars if s.role is Role.KEY and s.path == value.path), None)
    return key is not None and value.start[0] > key.start[0]


def _list_item(frames: list[Frame], dash: int) -> Spot | None:
    for frame in reversed(frames):
        if not frame.mapping and frame.column == dash:
            return Spot(frame.path, key=False)
        if frame.mapping and frame.column <= dash and not frame.expects_key:
            return Spot(frame.child_path(), key=False)
    return None


def _open_at(frames: list[Frame], indent: int) -> list[Frame]:
    """The block collections a line indented by ``indent`` is still inside."""
    kept = list(frames)
    while kept and (kept[-1].column > indent or (not kept[-1].mapping and kept[-1].column >= indent)):
        kept.pop()
    return kept


def _block_spot(frames: list[Frame], line: int, indent: int) -> Spot | None:
    if not frames:
        return Spot((), key=True) if indent == 0 else None
    top = frames[-1]
    if not top.mapping:
        return Spot(top.path, key=False)
    if not top.expects_key and top.key_line == line:
        return Spot(top.child_path(), key=False)
    if top.column == indent:
        return Spot(top.path, key=True)
    if top.expects_key or top.key is None:
        return None
    # Indented under a key whose value is still to be written: its keys, if it takes a mapping.
    child = top.child_path()
    place = place_of(child)
    takes_keys = place is not None and (place.key is None or fields_of(place.shape) is not None)
    return Spot(child, key=takes_keys)
