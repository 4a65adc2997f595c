"""Step ids across a workflow file: go to definition and find references (`textDocument/definition`,
`references`), and rename (`prepareRename`, `rename`), which changes the step's key and every
`needs` that names it, keeping each one's quotes.

An id is found by where it is written, so a step's id and a `needs` naming it are renamed even in a
file that does not parse."""

from __future__ import annotations

import yaml
from lsprotocol import types

from treeflow.core.spec import STEP_ID
from treeflow.lsp.outline import Outline, Position, Role, Scalar
from treeflow.quoting import quoted


class RenameRefused(Exception):
    """A new step id that cannot be one, or that another step has; the message says which."""


def step_id_at(outline: Outline, at: Position) -> Scalar | None:
    """The step id at ``at``: a step's key, or a step named in a `needs`."""
    scalar = outline.scalar_at(at)
    if scalar is None:
        return None
    is_key = scalar.role is Role.KEY and len(scalar.path) == 2 and scalar.path[0] == "steps"
    return scalar if is_key or scalar in outline.mentions else None


def definition(outline: Outline, at: Position) -> types.Range | None:
    named = step_id_at(outline, at)
    declared = None if named is None else outline.steps.get(named.text)
    return None if declared is None else span(declared)


def references(outline: Outline, at: Position, with_declaration: bool) -> list[types.Range]:
    named = step_id_at(outline, at)
    if named is None:
        return []
    found = [span(mention) for mention in outline.mentions if mention.text == named.text]
    declared = outline.steps.get(named.text)
    if with_declaration and declared is not None:
        found.insert(0, span(declared))
    return found


def rename_range(outline: Outline, at: Position) -> types.Range | None:
    """Where the id under ``at`` is written (inside its quotes), if it is a step's."""
    named = step_id_at(outline, at)
    if named is None or named.text not in outline.steps:
        return None
    return _inner(named)


def rename_edits(outline: Outline, at: Position, new_id: str) -> list[types.TextEdit]:
    named = step_id_at(outline, at)
    if named is None or named.text not in outline.steps:
        return []
    if not STEP_ID.fullmatch(new_id) or new_id.startswith("-"):
        raise RenameRefused(
            f"{quoted(repr(new_id))} cannot be a step id: use 1 to 64 letters, digits, '-' or '_', "
            "not starting with '-'"
        )
    if new_id != named.text and new_id.casefold() in {step.casefold() for step in outline.steps}:
        raise RenameRefused(
            f"a step `{quoted(new_id)}` is already in this workflow (ids may not differ only in case)"
        )
    written = [outline.steps[named.text], *(m for m in outline.mentions if m.text == named.text)]
    # An id YAML would read as something else (`123`, `true`, `null`) stays a string in quotes.
    plain = new_id if isinstance(yaml.safe_load(new_id), str) else f'"{new_id}"'
    return [types.TextEdit(_inner(scalar), new_id if scalar.quoted else plain) for scalar in written]


def span(scalar: Scalar) -> types.Range:
    return types.Range(types.Position(*scalar.start), types.Position(*scalar.end))


def _inner(scalar: Scalar) -> types.Range:
    start, end = scalar.inner
    return types.Range(types.Position(*start), types.Position(*end))
