"""`${{ expression }}` in a step's texts (its command, an agent's prompt, its environment): found,
parsed, and replaced by the expression's value as text.

A template ends at the first `}}` outside a string literal, so `${{ 'a}}b' }}` is one template.
There is no escape: a text that must hold `${{` literally can get it from a variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from treeflow.core.expressions import Expression, ExpressionError, Value, as_text, parse_expression

OPEN = "${{"
CLOSE = "}}"


@dataclass(frozen=True, slots=True)
class Template:
    """One `${{ … }}` in a text: where it starts and ends there, and the expression inside."""

    start: int
    end: int  # just after its `}}`
    expression: Expression

    @property
    def inner_start(self) -> int:
        return self.start + len(OPEN)


def has_templates(text: str) -> bool:
    return OPEN in text


def find_templates(text: str) -> list[Template]:
    """Every template in ``text``, in order. Raises ExpressionError, its offset counted in ``text``."""
    found: list[Template] = []
    position = 0
    while (start := text.find(OPEN, position)) >= 0:
        inner = start + len(OPEN)
        end = _closing(text, inner)
        if end < 0:
            raise ExpressionError("`${{` is not closed by `}}`", start)
        source = text[inner:end]
        if not source.strip():
            raise ExpressionError("`${{ }}` holds no expression", start)
        try:
            expression = parse_expression(source)
        except ExpressionError as exc:
            raise ExpressionError(exc.message, inner + exc.offset) from None
        found.append(Template(start, end + len(CLOSE), expression))
        position = end + len(CLOSE)
    return found


def _closing(text: str, position: int) -> int:
    """Where the `}}` that closes a template opened before ``position`` is, or -1."""
    quote: str | None = None
    while position < len(text):
        char = text[position]
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif text.startswith(CLOSE, position):
            return position
        position += 1
    return -1


def render(text: str, value_of: Callable[[Expression], Value]) -> str:
    """``text`` with each template replaced by its expression's value as text. Raises
    ExpressionError for a template that cannot be read."""
    if not has_templates(text):
        return text
    parts: list[str] = []
    position = 0
    for template in find_templates(text):
        parts.append(text[position : template.start])
        parts.append(as_text(value_of(template.expression)))
        position = template.end
    parts.append(text[position:])
    return "".join(parts)
