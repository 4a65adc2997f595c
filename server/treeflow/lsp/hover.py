"""`textDocument/hover` in workflow files: what a key does and its default; for a step id, in its
own key or in a `needs`, what that step runs."""

from __future__ import annotations

from treeflow.lsp.key_help import choices_of, key_markdown, place_of, step_markdown
from treeflow.lsp.outline import Outline, Position, Role, Scalar
from treeflow.quoting import quoted


def hover_at(outline: Outline, at: Position) -> tuple[str, Scalar] | None:
    """The Markdown to show for the scalar at ``at``, and that scalar; None where there is nothing to say."""
    scalar = outline.scalar_at(at)
    if scalar is None:
        return None
    text = _markdown(outline, scalar)
    return None if text is None else (text, scalar)


def _markdown(outline: Outline, scalar: Scalar) -> str | None:
    if scalar in outline.mentions:
        if scalar.text not in outline.steps:
            return f"no step `{quoted(scalar.text)}` in this workflow"
        return step_markdown(outline, scalar.text)
    if scalar.role is Role.KEY and len(scalar.path) == 2 and scalar.path[0] == "steps":
        return step_markdown(outline, scalar.text)
    place = place_of(scalar.path)
    if place is None or place.key is None:
        return None
    if scalar.role is Role.KEY:
        return key_markdown(place.key)
    meaning = choices_of(place.shape).get(scalar.text)
    return None if meaning is None else f"**{scalar.text}**: {meaning}"
