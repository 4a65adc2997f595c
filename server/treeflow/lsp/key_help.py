"""What the editor says about the keys of a workflow file and its steps, from the parser's own key
descriptions (`treeflow.core.spec_keys` and each step kind's `doc` and `shape`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from treeflow.core import kinds
from treeflow.core.spec_keys import WORKFLOW_KEYS, Either, Fields, Key, Shape, Steps, Text
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
        keys = fields_of(place.shape)
        key = next((key for key in keys if key.name == name), None) if keys else None
        if key is None:
            return None
        place = Place(key, key.shape)
    return place


def fields_of(shape: Shape) -> tuple[Key, ...] | None:
    """The keys a mapping of ``shape`` may have, if it is one."""
    if isinstance(shape, Fields):
        return shape.keys
    if isinstance(shape, Either):
        return next((keys for each in shape.shapes if (keys := fields_of(each)) is not None), None)
    return None


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
