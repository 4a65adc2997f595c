"""What the editor says about the keys of a workflow file and its steps, from the parser's own key
descriptions (`treeflow.core.spec_keys` and each step kind's `doc` and `shape`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from treeflow.core import kinds
from treeflow.core.spec_keys import WORKFLOW_KEYS, Either, Fields, Key, Matrix, Shape, Steps, Text
from treeflow.lsp.outline import Outline

_TOP = Fields(WORKFLOW_KEYS)
# A step's command as a hover shows it: long prompts are cut.
_MAX_SHOWN = 300


@dataclass(frozen=True)
class Place:
    """What a path of keys leads to: the key written last (None for a step id or the top), and
    the shape of its value."""

    key: Key | None
    shape: Shape


def place_of(path: tuple[str, ...]) -> Place | None:
    """Where ``path`` leads in the workflow format, or None when no key of the format is there."""
    place = Place(None, _TOP)
    for name in path:
        if isinstance(place.shape, Steps):
            place = Place(None, Fields(kinds.step_keys()))
            continue
        # A key several forms of a block have (an agent's `use`) takes what any of them takes.
        same = [key for keys in variants_of(place.shape) for key in keys if key.name == name]
        if not same:
            return None
        shape = same[0].shape if len(same) == 1 else Either(tuple(key.shape for key in same))
        place = Place(same[0], shape)
    return place


def variants_of(shape: Shape) -> list[tuple[Key, ...]]:
    """The forms a mapping of ``shape`` may take, each the keys that go together."""
    if isinstance(shape, Fields | Matrix):
        return [shape.keys]
    if isinstance(shape, Either):
        return [keys for each in shape.shapes for keys in variants_of(each)]
    return []


def fields_of(shape: Shape, written: Mapping[str, str | None] | None = None) -> tuple[Key, ...] | None:
    """The keys a mapping of ``shape`` may have, if it is one; with ``written`` (the keys already
    there and their values), only those of the forms that fit them."""
    variants = variants_of(shape)
    if not variants:
        return None
    if written:
        variants = [keys for keys in variants if _fits(keys, written)] or variants
    merged: dict[str, Key] = {}
    for keys in variants:
        for key in keys:
            merged.setdefault(key.name, key)
    return tuple(merged.values())


def _fits(keys: tuple[Key, ...], written: Mapping[str, str | None]) -> bool:
    by_name = {key.name: key for key in keys}
    for name, value in written.items():
        key = by_name.get(name)
        if key is None:
            return False
        shape = key.shape
        if value is not None and isinstance(shape, Text) and shape.closed and value not in shape.choices:
            return False
    return True


def choices_of(shape: Shape) -> dict[str, str]:
    """Values worth offering for ``shape``, each with what it means."""
    if isinstance(shape, Text):
        return dict(shape.choices)
    if isinstance(shape, Either):
        return {name: doc for each in shape.shapes for name, doc in choices_of(each).items()}
    return {}


def key_markdown(key: Key) -> str:
    lines = [f"**{key.name}**: {key.shape.wording}" + (" (required)" if key.required else ""), "", key.doc]
    if key.default is not None:
        lines += ["", f"Default: {key.default}."]
    return "\n".join(lines)


def step_kind(outline: Outline, step_id: str) -> str | None:
    """The kind key written in step ``step_id``, the first if it has several."""
    return next((key for key in outline.keys_under(("steps", step_id)) if key in kinds.KINDS), None)


def step_command(outline: Outline, step_id: str) -> str | None:
    """What step ``step_id`` does, as written: its kind key's value, or an agent's prompt."""
    kind = step_kind(outline, step_id)
    if kind is None:
        return None
    path = ("steps", step_id, kind)
    written = outline.value_of(path)
    inner = fields_of(kinds.KINDS[kind].shape) or ()
    for key in sorted(inner, key=lambda key: not key.required):
        written = written or outline.value_of((*path, key.name))
    return None if written is None else written.text


def step_markdown(outline: Outline, step_id: str) -> str:
    kind = step_kind(outline, step_id)
    command = step_command(outline, step_id)
    summary = kinds.KINDS[kind].summary if kind is not None else "no kind key yet"
    lines = [f"**step {step_id}**: {summary}"]
    if kind is not None and command is not None:
        shown = command if len(command) <= _MAX_SHOWN else command[:_MAX_SHOWN] + "…"
        # A fence longer than any run of backticks in the command, so that none can end it.
        fence = "`" * max(3, 1 + max((len(run) for run in re.findall("`+", shown)), default=0))
        lines += ["", fence + ("sh" if kind == "run" else "text"), shown, fence]
    needs = outline.needs.get(step_id, [])
    if needs:
        lines += ["", "needs " + ", ".join(f"`{name}`" for name in needs)]
    return "\n".join(lines)
