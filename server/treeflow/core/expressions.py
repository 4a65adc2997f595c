"""The expression language of `if:` and `${{ … }}`: a tokenizer, a recursive-descent parser and an
evaluator, with no `eval` anywhere.

    expression := or
    or         := and ("||" and)*
    and        := comparison ("&&" comparison)*
    comparison := unary (("==" | "!=" | "<" | "<=" | ">" | ">=") unary)?
    unary      := "!" unary | primary
    primary    := number | string | "true" | "false" | call | reference | "(" expression ")"
    call       := name "(" ")"
    reference  := name ("." member)*

Values are text, numbers and booleans; a value that is missing (an output a step did not write, an
unset variable) is the empty text. What a reference means is not decided here: the evaluator asks a
`Context`, and `step_context` knows `needs`, `env` and `matrix`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from treeflow.quoting import quoted

Value = str | float | bool

STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")
"""The functions an expression may call, each without arguments: how the steps before it went."""

COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
_OPERATORS = ("&&", "||", *COMPARISONS, "!", "(", ")", ".", ",")
# Deeper nesting than any condition a person writes; past it the parser would exhaust the stack.
MAX_DEPTH = 64
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MEMBER = re.compile(r"[A-Za-z0-9_-]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMERIC_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")


class ExpressionError(ValueError):
    """An expression that cannot be read; ``offset`` is where in its text the problem is."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value
    offset: int


@dataclass(frozen=True, slots=True)
class Reference:
    """``needs.build.outputs.version`` as ``("needs", "build", "outputs", "version")``."""

    path: tuple[str, ...]
    offset: int

    @property
    def text(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expression
    offset: int


@dataclass(frozen=True, slots=True)
class Binary:
    operator: str  # one of COMPARISONS, "&&" or "||"
    left: Expression
    right: Expression
    offset: int


Expression = Literal | Reference | Call | Not | Binary


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "name", "number", "string", an operator, or "end"
    text: str
    offset: int
    value: Value = ""


def tokenize(text: str) -> list[_Token]:
    """The tokens of ``text``, ending with an "end" token. Raises ExpressionError."""
    tokens: list[_Token] = []
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if position >= len(text):
            tokens.append(_Token("end", "", position))
            return tokens
        char = text[position]
        after_dot = bool(tokens) and tokens[-1].kind == "."
        if char in "'\"":
            token = _string(text, position)
        elif after_dot and (match := _MEMBER.match(text, position)):
            token = _Token("name", match.group(), position)
        elif match := _NUMBER.match(text, position):
            token = _Token("number", match.group(), position, float(match.group()))
        elif match := _NAME.match(text, position):
            token = _Token("name", match.group(), position)
        else:
            operator = next((op for op in _OPERATORS if text.startswith(op, position)), None)
            if operator is None:
                raise ExpressionError(f"unexpected character {quoted(repr(char))}", position)
            token = _Token(operator, operator, position)
        tokens.append(token)
        position += len(token.text)


def _string(text: str, start: int) -> _Token:
    """A string literal in single or double quotes; the quote doubled stands for itself."""
    quote = text[start]
    position = start + 1
    parts: list[str] = []
    while True:
        end = text.find(quote, position)
        if end < 0:
            raise ExpressionError("a string is not closed", start)
        parts.append(text[position:end])
        if text.startswith(quote, end + 1):
            parts.append(quote)
            position = end + 2
            continue
        return _Token("string", text[start : end + 1], start, "".join(parts))


def parse_expression(text: str) -> Expression:
    """The expression ``text`` holds. Raises ExpressionError, and nothing else, for any text."""
    parser = _Parser(tokenize(text))
    expression = parser.expression()
    token = parser.peek()
    if token.kind != "end":
        raise ExpressionError(f"unexpected {_describe(token)} after the expression", token.offset)
    return expression


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._index = 0
        self._depth = 0

    def peek(self) -> _Token:
        return self._tokens[self._index]

    def _take(self) -> _Token:
        token = self._tokens[self._index]
        if token.kind != "end":
            self._index += 1
        return token

    def _expect(self, kind: str, what: str) -> _Token:
        token = self._take()
        if token.kind != kind:
            raise ExpressionError(f"expected {what}, found {_describe(token)}", token.offset)
        return token

    def expression(self) -> Expression:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} deep", self.peek().offset)
        try:
            return self._or()
        finally:
            self._depth -= 1

    def _or(self) -> Expression:
        left = self._and()
        while self.peek().kind == "||":
            operator = self._take()
            left = Binary("||", left, self._and(), operator.offset)
        return left

    def _and(self) -> Expression:
        left = self._comparison()
        while self.peek().kind == "&&":
            operator = self._take()
            left = Binary("&&", left, self._comparison(), operator.offset)
        return left

    def _comparison(self) -> Expression:
        left = self._unary()
        if self.peek().kind not in COMPARISONS:
            return left
        operator = self._take()
        right = self._unary()
        if self.peek().kind in COMPARISONS:
            raise ExpressionError(
                "comparisons cannot be chained; join them with && or ||", self.peek().offset
            )
        return Binary(operator.kind, left, right, operator.offset)

    def _unary(self) -> Expression:
        token = self.peek()
        if token.kind != "!":
            return self._primary()
        self._take()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(f"nested more than {MAX_DEPTH} deep", token.offset)
        try:
            return Not(self._unary(), token.offset)
        finally:
            self._depth -= 1

    def _primary(self) -> Expression:
        token = self._take()
        if token.kind in ("number", "string"):
            return Literal(token.value, token.offset)
        if token.kind == "(":
            inner = self.expression()
            self._expect(")", "`)`")
            return inner
        if token.kind != "name":
            raise ExpressionError(f"expected a value, found {_describe(token)}", token.offset)
        if token.text in ("true", "false"):
            return Literal(token.text == "true", token.offset)
        if self.peek().kind == "(":
            return self._call(token)
        path = [token.text]
        while self.peek().kind == ".":
            self._take()
            path.append(self._expect("name", "a name after `.`").text)
        return Reference(tuple(path), token.offset)

    def _call(self, name: _Token) -> Call:
        if name.text not in STATUS_FUNCTIONS:
            known = ", ".join(f"{function}()" for function in STATUS_FUNCTIONS)
            raise ExpressionError(f"unknown function `{quoted(name.text)}` (known: {known})", name.offset)
        self._take()
        self._expect(")", f"`)`: {name.text}() takes no arguments")
        return Call(name.text, name.offset)


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "the end of the expression"
    return f"`{quoted(token.text)}`"


def walk(expression: Expression) -> Iterator[Expression]:
    """``expression`` and every expression inside it."""
    yield expression
    if isinstance(expression, Not):
        yield from walk(expression.operand)
    elif isinstance(expression, Binary):
        yield from walk(expression.left)
        yield from walk(expression.right)


def references(expression: Expression) -> list[Reference]:
    return [part for part in walk(expression) if isinstance(part, Reference)]


def calls_status_function(expression: Expression) -> bool:
    """Whether the expression decides for itself how the steps before it must have gone."""
    return any(isinstance(part, Call) for part in walk(expression))


class Context(Protocol):
    """What an expression's calls and references stand for where it is evaluated."""

    def status(self, function: str) -> bool:
        """The value of ``success()``, ``failure()``, ``always()`` or ``cancelled()``."""
        ...

    def lookup(self, reference: Reference) -> Value:
        """The value a reference stands for; raises ExpressionError for one that means nothing."""
        ...


def evaluate(expression: Expression, context: Context) -> Value:
    """The value of ``expression``. `&&` and `||` give one of their operands, as in JavaScript:
    ``needs.a.outputs.tag || 'latest'``."""
    match expression:
        case Literal():
            return expression.value
        case Reference():
            return context.lookup(expression)
        case Call():
            return context.status(expression.name)
        case Not():
            return not truthy(evaluate(expression.operand, context))
        case Binary(operator="&&"):
            left = evaluate(expression.left, context)
            return evaluate(expression.right, context) if truthy(left) else left
        case Binary(operator="||"):
            left = evaluate(expression.left, context)
            return left if truthy(left) else evaluate(expression.right, context)
        case Binary():
            return compare(
                expression.operator, evaluate(expression.left, context), evaluate(expression.right, context)
            )
    raise AssertionError(f"not an expression: {expression!r}")


def truthy(value: Value) -> bool:
    """False for `false`, 0 and the empty text; true for anything else (the text "false" too)."""
    if isinstance(value, str):
        return value != ""
    return bool(value)


def compare(operator: str, left: Value, right: Value) -> bool:
    """Two values that both read as numbers compare as numbers, any others as text."""
    left_number, right_number = as_number(left), as_number(right)
    ordered: tuple[float, float] | tuple[str, str]
    if left_number is not None and right_number is not None:
        ordered = (left_number, right_number)
    else:
        ordered = (as_text(left), as_text(right))
    a, b = ordered
    match operator:
        case "==":
            return a == b
        case "!=":
            return a != b
        case "<":
            return a < b  # type: ignore[operator]
        case "<=":
            return a <= b  # type: ignore[operator]
        case ">":
            return a > b  # type: ignore[operator]
        case ">=":
            return a >= b  # type: ignore[operator]
    raise AssertionError(f"not a comparison: {operator}")


def as_number(value: Value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return value
    if not _NUMERIC_TEXT.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def as_text(value: Value) -> str:
    """A value as text: `true`, `false`, `3`, `2.5`, or the text itself."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    return value


@dataclass(frozen=True, slots=True)
class Condition:
    """A step's `if:`, as written and as parsed."""

    text: str
    expression: Expression
