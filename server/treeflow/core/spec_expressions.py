"""The expressions of a workflow file, read and checked where they stand: each step's `if:` and the
`${{ … }}` templates in the texts of its kind block and its `env`, every problem reported at the
line and column of the character it concerns.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from treeflow.core.expressions import Condition, Expression, ExpressionError, parse_expression, references
from treeflow.core.spec_reader import SpecError
from treeflow.core.step_context import reference_problem
from treeflow.core.templates import OPEN, find_templates, has_templates

_STR = "tag:yaml.org,2002:str"
_BOOL = "tag:yaml.org,2002:bool"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Site:
    """An expression in a scalar node: offsets in ``expression`` count from ``base`` in ``value``."""

    node: yaml.ScalarNode
    value: str
    expression: Expression
    base: int
    what: str  # where it is, for messages: "step `b`: if"


class ExpressionReader:
    """Reads the expressions of one file's steps and checks their references once every step is known."""

    def __init__(self, path: Path, text: str) -> None:
        self._path = path
        self._lines = _LINE_BREAK.split(text)
        self._sites: dict[str, list[Site]] = {}
        self.errors: list[SpecError] = []

    def condition(self, step_id: str, node: yaml.Node, what: str) -> Condition | None:
        """The `if:` of a step: an expression, bare or as one `${{ … }}`, or true or false."""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_STR, _BOOL):
            self._error(node, 0, f"{what}: if must be an expression such as `failure()`")
            return None
        if node.tag == _BOOL:
            text = "true" if str(node.value).lower() in ("true", "yes", "on") else "false"
            return Condition(text, parse_expression(text))
        value = str(node.value)
        try:
            expression, base = _condition_expression(value)
        except ExpressionError as exc:
            self._error(node, exc.offset, f"{what}: if: {exc.message}", value)
            return None
        self._sites.setdefault(step_id, []).append(Site(node, value, expression, base, f"{what}: if"))
        return Condition(value.strip(), expression)

    def templates(self, step_id: str, node: yaml.Node, what: str) -> None:
        """Read the templates of every text in ``node`` (a kind block, a step's `env`)."""
        for scalar in _texts(node):
            value = str(scalar.value)
            if not has_templates(value):
                continue
            try:
                found = find_templates(value)
            except ExpressionError as exc:
                self._error(scalar, exc.offset, f"{what}: {exc.message}", value)
                continue
            self._sites.setdefault(step_id, []).extend(
                Site(scalar, value, template.expression, template.inner_start, what) for template in found
            )

    def check_references(
        self,
        needs: dict[str, tuple[str, ...]],
        steps: Collection[str],
        matrix_keys: Mapping[str, tuple[str, ...]] | None = None,
        fixers: Collection[str] = (),
    ) -> None:
        """Report each reference to a step that does not exist or that its step does not need, to
        a matrix key its step's `matrix:` (``matrix_keys``, by step) does not have, and to
        `failure.*` outside the steps that run as ``fixers``."""
        for step_id, sites in self._sites.items():
            matrix = (matrix_keys or {}).get(step_id)
            for site in sites:
                for reference in references(site.expression):
                    problem = reference_problem(
                        reference,
                        step_id=step_id,
                        needs=needs.get(step_id, ()),
                        steps=steps,
                        matrix=matrix,
                        fixer=step_id in fixers,
                    )
                    if problem is not None:
                        self._error(
                            site.node, site.base + reference.offset, f"{site.what}: {problem}", site.value
                        )

    def _error(self, node: yaml.Node, offset: int, message: str, value: str = "") -> None:
        line, column = self._locate(node, value, offset)
        self.errors.append(SpecError(self._path, line, column, message))

    def _locate(self, node: yaml.Node, value: str, offset: int) -> tuple[int, int]:
        """The 1-based line and column of character ``offset`` of ``value`` in the file: found by
        looking for the line of the value that holds it among the node's lines (a value that YAML
        folded or unescaped, which the file does not hold as such, is placed at its node)."""
        start, end = node.start_mark, node.end_mark
        offset = max(0, min(offset, len(value)))
        line_start = value.rfind("\n", 0, offset) + 1
        line_end = value.find("\n", offset)
        piece = value[line_start : len(value) if line_end < 0 else line_end]
        if piece:
            for number in range(start.line, min(end.line, len(self._lines) - 1) + 1):
                source = self._lines[number]
                at = source.find(piece, start.column if number == start.line else 0)
                if at >= 0:
                    return number + 1, at + offset - line_start + 1
        return start.line + 1, start.column + 1


def _condition_expression(value: str) -> tuple[Expression, int]:
    """The expression of an `if:` and where it starts in ``value``. Raises ExpressionError."""
    stripped = value.strip()
    if not stripped.startswith(OPEN):
        if not stripped:
            raise ExpressionError("the condition is empty", 0)
        return parse_expression(value), 0
    found = find_templates(value)
    lead = len(value) - len(value.lstrip())
    if len(found) != 1 or found[0].start != lead or found[0].end != lead + len(stripped):
        raise ExpressionError("write the condition bare, or as one `${{ … }}` and nothing else", lead)
    return found[0].expression, found[0].inner_start


def _texts(node: yaml.Node) -> Iterator[yaml.ScalarNode]:
    """The text scalars in ``node``: itself, or those among the values of its mappings and the
    items of its lists, each node once (an alias may name a node again, or one holding itself)."""
    seen: set[int] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            if current.tag == _STR:
                yield current
        elif isinstance(current, yaml.MappingNode):
            pending.extend(reversed([value for _, value in current.value]))
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(reversed(current.value))
