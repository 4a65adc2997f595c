"""The tolerant reading of workflow files the editor features share, in-process."""

from __future__ import annotations

from treeflow.core.spec import MAX_WORKFLOW_BYTES
from treeflow.lsp.completion import completion_items
from treeflow.lsp.hover import hover_at
from treeflow.lsp.outline import Role, read_outline


def test_keys_values_and_items_keep_the_keys_above_them() -> None:
    outline = read_outline('steps:\n  a: {run: x, needs: [b, "c"]}\n  b:\n    needs:\n    - a\n')
    found = [(s.role, s.path, s.text) for s in outline.scalars]
    assert (Role.VALUE, ("steps", "a", "run"), "x") in found
    assert (Role.ITEM, ("steps", "a", "needs"), "c") in found
    assert (Role.ITEM, ("steps", "b", "needs"), "a") in found
    assert outline.needs == {"a": ["b", "c"], "b": ["a"]}
    assert list(outline.steps) == ["a", "b"]


def test_a_broken_line_is_skipped_and_the_rest_still_read() -> None:
    outline = read_outline("steps:\n  a:\n    run: x\n    ti\n  b: {run: y, needs: [a]}\n")
    assert list(outline.steps) == ["a", "b"]
    assert outline.needs == {"b": ["a"]}


def test_no_completion_inside_a_comment() -> None:
    outline = read_outline("steps:\n  a:\n    run: x\n    # ru\n")
    assert completion_items(outline, (3, 8)) == []


def test_a_text_larger_than_a_workflow_is_not_read() -> None:
    text = "steps:\n" + "  a: {run: x}\n" + "#" * MAX_WORKFLOW_BYTES
    outline = read_outline(text)
    assert outline.scalars == ()
    assert completion_items(outline, (1, 4)) == []


def test_a_command_cannot_end_the_hovers_code_block() -> None:
    outline = read_outline("steps:\n  a: {run: 'echo ```'}\n  b: {run: y, needs: [a]}\n")
    shown = hover_at(outline, (2, 22))
    assert shown is not None
    assert "````sh\necho ```\n````" in shown[0]
