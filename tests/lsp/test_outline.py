"""The tolerant reading of workflow files the editor features share, in-process."""

from __future__ import annotations

import pytest
from lsprotocol import types
from pygls.workspace import PositionCodec, TextDocument

from treeflow.core.spec import MAX_WORKFLOW_BYTES
from treeflow.lsp.authoring import _Units
from treeflow.lsp.completion import completion_items
from treeflow.lsp.hover import hover_at
from treeflow.lsp.outline import _CHECKPOINT_TOKENS, Role, _Walk, read_outline


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


def test_the_collections_open_at_a_position_are_the_same_taken_up_from_a_checkpoint() -> None:
    # Long enough for several checkpoints, with flow collections, block lists and a broken line.
    step = "  s{0}:\n    run: make {0}\n    needs: [s{0}, {{x: [1]}}]\n    env:\n    - A\n"
    text = "version: 1\nsteps:\n" + "".join(step.format(n) for n in range(40))
    text = text.replace("    run: make 7\n", "    run make: : 7 [\n")
    outline = read_outline(text)
    assert len(outline.tokens) > 4 * _CHECKPOINT_TOKENS
    # The walk from the first token, taken along as the position moves on.
    walk, taken = _Walk(), 0
    for line, content in enumerate(text.split("\n")):
        for column in range(len(content) + 2):
            while taken < len(outline.tokens):
                mark = outline.tokens[taken].start_mark
                if (mark.line, mark.column) >= (line, column):
                    break
                walk.take(outline.tokens[taken])
                taken += 1
            assert outline.frames_at((line, column)) == walk.frames, (line, column)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_ranges_reach_the_client_in_its_units_whatever_the_line_holds(encoding: str) -> None:
    text = "steps:\n  a: {run: echo hi}\n  b: {run: echo 😋 é, needs: [a]}\r\n  c: {run: x}"
    document = TextDocument("file:///treeflow.yml", text, position_codec=PositionCodec(encoding))
    units = _Units(document)
    lines = document.lines
    for line in range(len(lines) + 1):
        for start in range(0, 40, 3):
            for end in (start, start + 1, start + 9, 60):
                server_range = types.Range(types.Position(line, start), types.Position(line, end))
                expected = document.position_codec.range_to_client_units(lines, server_range)
                assert units.range(server_range) == expected, (line, start, end)
    across = types.Range(types.Position(0, 2), types.Position(3, 4))
    assert units.range(across) == document.position_codec.range_to_client_units(lines, across)
