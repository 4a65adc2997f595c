"""Property-based tests of the expression parser, the `${{ }}` finder and the outputs-file parser:
whatever text they are given, they return a value or raise their own documented error, located
inside the text, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from tests.test_fuzz_spec import assert_well_reported, read
from treeflow.core.expressions import ExpressionError, Reference, Value, evaluate, parse_expression
from treeflow.core.step_outputs import OutputsError, parse_outputs
from treeflow.core.templates import find_templates

PIECES = [
    "needs",
    "env",
    "matrix",
    ".",
    "a",
    "outputs",
    "status",
    "x-y",
    "3",
    "1.5e3",
    "'s'",
    "'",
    '"',
    "''",
    "(",
    ")",
    "!",
    "&&",
    "||",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "success()",
    "failure(",
    "always",
    "cancelled()",
    "true",
    "false",
    " ",
    "${{",
    "}}",
    "\n",
    "\0",
    "é",
    ",",
]
expression_like = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
any_text = st.one_of(st.text(max_size=80), expression_like)


T = TypeVar("T")


def outcome_of(parse: Callable[[str], T], text: str) -> T | ExpressionError | OutputsError:
    """What ``parse`` makes of ``text``: its value, or the error it is documented to raise."""
    try:
        return parse(text)
    except (ExpressionError, OutputsError) as error:
        return error


class Anything:
    def status(self, function: str) -> bool:
        return function != "failure"

    def lookup(self, reference: Reference) -> Value:
        return reference.path[-1]


@fuzz_settings(examples=1500)
@given(any_text)
def test_any_text_is_an_expression_or_an_expression_error(text: str) -> None:
    outcome = outcome_of(parse_expression, text)
    if isinstance(outcome, ExpressionError):
        assert 0 <= outcome.offset <= len(text)
        assert outcome.message
    else:
        evaluate(outcome, Anything())


@fuzz_settings(examples=1000)
@given(
    st.lists(st.one_of(any_text, st.sampled_from(["${{ ", " }}", "${{ env.X }}"])), max_size=6).map("".join)
)
def test_any_text_has_templates_or_a_template_error(text: str) -> None:
    templates = outcome_of(find_templates, text)
    if isinstance(templates, ExpressionError):
        assert 0 <= templates.offset <= len(text)
        return
    for template in templates:
        assert text[template.start : template.start + 3] == "${{"
        assert text[template.end - 2 : template.end] == "}}"


OUTPUT_PIECES = ["name", "=", "<<", "EOF", "\n", "\r\n", "\r", "a-b", "1x", " ", "value", "\0", "é", ""]


@fuzz_settings(examples=1500)
@given(st.one_of(st.text(max_size=120), st.lists(st.sampled_from(OUTPUT_PIECES), max_size=30).map("".join)))
def test_any_text_is_outputs_or_an_outputs_error(text: str) -> None:
    outputs = outcome_of(parse_outputs, text)
    if isinstance(outputs, OutputsError):
        assert 1 <= outputs.line <= text.count("\n") + 1
        return
    for name, value in outputs.items():
        assert name and "\0" not in value


@fuzz_settings(examples=300)
@given(any_text, any_text)
def test_any_condition_or_template_in_a_workflow_is_reported_where_it_is(
    condition: str, command: str
) -> None:
    text = f"steps:\n  a: {{run: 'true'}}\n  b:\n    needs: a\n    if: {condition!r}\n    run: {command!r}\n"
    outcome = read(text)
    assert_well_reported(outcome)
    # The workflow text itself may be broken YAML; one that parses has its `if:` kept.
    if not isinstance(outcome, Exception) and condition.strip():
        assert outcome.steps["b"].condition is not None


def test_example_outputs() -> None:
    assert parse_outputs("a=1\r\nb<<EOF\nx\ny\nEOF\n\nc==d\na=2\n") == {"a": "2", "b": "x\ny", "c": "=d"}
    assert parse_outputs("empty=\nlines<<END\nEND\n") == {"empty": "", "lines": ""}
    for text, line in [("x", 1), ("ok=1\n9a=1", 2), ("v<<EOF\nno end", 1), ("v<<\n", 1), ("a b=1", 1)]:
        error = outcome_of(parse_outputs, text)
        assert isinstance(error, OutputsError), text
        assert error.line == line, text


def test_unclosed_templates_in_a_workflow_are_located() -> None:
    for text in [
        "steps:\n  a: {run: 'true', if: '${{'}\n",
        "steps:\n  a: {run: '${{ env.X', env: {X: '${{'}}}\n",
    ]:
        outcome = read(text)
        assert not isinstance(outcome, Path)
        assert_well_reported(outcome)
