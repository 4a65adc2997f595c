"""The expression language on its own, and its checks in a workflow file at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from treeflow.core.expressions import (
    ExpressionError,
    Reference,
    as_text,
    evaluate,
    parse_expression,
)
from treeflow.core.spec import WorkflowError, parse_workflow
from treeflow.core.templates import find_templates, render


class Values:
    def __init__(self, **values: str) -> None:
        self.values = values

    def status(self, function: str) -> bool:
        return function in ("always", "success")

    def lookup(self, reference: Reference) -> str:
        return self.values.get(reference.text, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 == 1.0", True),
        ("'01' == 1", True),
        ("'abc' == 'ABC'", False),
        ("'b' > 'a'", True),
        ("10 > 9", True),
        ("'10' > '9'", True),  # both read as numbers
        ("'10x' > '9x'", False),  # text, by code point
        ("!''", True),
        ("!'false'", False),  # a non-empty text is true, whatever it says
        ("true && 'x'", "x"),
        ("'' || 'fallback'", "fallback"),
        ("success() && !failure()", True),
        ("(1 == 2) || (2 == 2) && false", False),
        ("env.A == 'it''s'", True),
        ('env.A == "it\'s"', True),
        ("needs.some-step.outputs.my-name", "value"),
        ("env.MISSING == ''", True),
    ],
)
def test_evaluation(text: str, expected: object) -> None:
    context = Values(**{"env.A": "it's", "needs.some-step.outputs.my-name": "value"})
    assert evaluate(parse_expression(text), context) == expected


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("foo()", 0, "unknown function `foo`"),
        ("success(1)", 8, "takes no arguments"),
        ("a == b == c", 7, "cannot be chained"),
        ("'open", 0, "not closed"),
        ("(a", 2, "expected `)`"),
        ("a &&", 4, "expected a value"),
        ("a $ b", 2, "unexpected character"),
        ("a b", 2, "unexpected `b`"),
        ("needs.", 6, "a name after `.`"),
        ("(" * 100 + "a" + ")" * 100, 64, "nested more than"),
    ],
)
def test_syntax_errors_say_where(text: str, offset: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert words in caught.value.message
    assert caught.value.offset == offset


def test_templates_are_replaced_by_their_values_as_text() -> None:
    context = Values(**{"env.N": "3"})
    text = "n=${{ env.N }} more=${{ env.N > 2 }} s=${{ '}}' }} end"
    assert render(text, lambda expression: evaluate(expression, context)) == "n=3 more=true s=}} end"
    assert [(t.start, t.end) for t in find_templates("a ${{ x }}b")] == [(2, 10)]
    assert as_text(2.0) == "2" and as_text(2.5) == "2.5"


def problems(text: str) -> list[str]:
    try:
        parse_workflow(text, Path("w.yml"))
    except WorkflowError as error:
        return [f"{e.line}:{e.column}: {e.message}" for e in error.errors]
    return []


def test_workflow_expressions_are_checked_where_they_are() -> None:
    text = """\
steps:
  build: {run: "true"}
  test:
    needs: build
    if: needs.build.outputs.ok == 'yes' && bogus()
    run: echo ${{ needs.buidl.status }} ${{ needs.deploy.outputs.url }}
  deploy:
    if: failure( ||
    run: |
      echo first
      echo ${{ matrix.python }} ${{ secrets.KEY }}
    env:
      URL: "${{ needs.build.outputs.url"
    agent: {prompt: "Use ${{ needs.build.outputs.v.x }}"}
"""
    assert problems(text) == [
        "5:44: step `test`: if: unknown function `bogus` (known: success(), failure(), always(), cancelled())",
        "6:19: step `test`: run: unknown step `buidl` in `needs.buidl`; did you mean `build`?",
        "6:45: step `test`: run: `needs.deploy`: step `test` does not need `deploy`; add it to its `needs:`",
        "8:18: step `deploy`: if: expected `)`: failure() takes no arguments, found `||`",
        "11:16: step `deploy`: run: `matrix.python`: step `deploy` has no `matrix:`",
        "11:37: step `deploy`: run: unknown name `secrets`: an expression reads `needs`, `env`, `matrix`, "
        "`failure`, or calls a status function",
        "13:13: step `deploy`: env: `${{` is not closed by `}}`",
        "14:12: step `deploy` has both `run:` and `agent:`; give it one of them",
        "14:30: step `deploy`: agent: `needs.build`: step `deploy` does not need `build`; add it to its `needs:`",
    ]


def test_a_condition_may_be_written_in_a_template_or_as_a_boolean() -> None:
    ok = """\
steps:
  a: {run: "true"}
  b: {needs: a, if: "${{ needs.a.status == 'succeeded' }}", run: "true"}
  c: {if: true, run: "true"}
  d: {if: "  always()  ", run: "true"}
"""
    assert problems(ok) == []
    workflow = parse_workflow(ok, Path("w.yml"))
    assert workflow.steps["d"].condition is not None
    assert workflow.steps["d"].condition.text == "always()"
    assert problems('steps: {a: {if: "${{ always() }} && true", run: "true"}}\n') == [
        "1:18: step `a`: if: write the condition bare, or as one `${{ … }}` and nothing else"
    ]
    assert problems('steps: {a: {if: "", run: "true"}}\n') == ["1:17: step `a`: if: the condition is empty"]
    assert problems('steps: {a: {if: [x], run: "true"}}\n') == [
        "1:17: step `a`: if must be an expression such as `failure()`"
    ]
