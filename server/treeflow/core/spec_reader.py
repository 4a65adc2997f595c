"""Reading values out of a workflow file's YAML nodes, each problem recorded at file:line:col.

`SpecReader` is what the workflow parser and every step kind read their part of the file with: each
method checks one node, records an error naming ``what`` was expected where it is wrong, and returns
None so that reading goes on and a file's problems are all reported in one pass.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from treeflow.quoting import quoted

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Longer than any step should take; past it, timers and back-off arithmetic meet float overflow.
MAX_DURATION_S = 30 * 24 * 3600.0
_MAX_DURATION_TEXT = "720h (30 days)"

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

T = TypeVar("T")


@dataclass(frozen=True)
class SpecError:
    path: Path
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


def parse_duration(text: str) -> float | None:
    """Seconds in ``250ms``, ``10s``, ``5m``, ``1h`` or a sum such as ``1m30s``; None if malformed."""
    text = text.strip()
    if not text:
        return None
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


class SpecReader:
    """Checked reads of the nodes of one workflow file; ``errors`` collects what was wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[SpecError] = []

    def error(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.errors.append(SpecError(self.path, mark.line + 1, mark.column + 1, message))

    def mapping(self, node: yaml.Node, what: str, known: tuple[str, ...]) -> dict[str, yaml.Node] | None:
        """The entries of a mapping by key; with ``known``, any other key is an error (and left out)."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping, not {describe(node)}")
            return None
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, f"{what} keys must be plain names")
                continue
            if key in result:
                self.error(key_node, f"duplicate key `{quoted(key)}` in {what}")
                continue
            if known and key not in known:
                self.error(key_node, _unknown_key(key, what, known))
                continue
            result[key] = value_node
        return result

    def scalar(self, node: yaml.Node, what: str, tags: tuple[str, ...], expected: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            self.error(node, f"{what} must be {expected}, not {describe(node)}")
            return None
        value = str(node.value)
        if "\0" in value:
            # No command line, argument, environment variable or git revision can hold one.
            self.error(node, f"{what} contains a NUL byte (\\0), which no command or variable can hold")
            return None
        return value

    def string(self, node: yaml.Node, what: str) -> str | None:
        return self.scalar(node, what, (_STR,), "a string")

    def command(self, node: yaml.Node, what: str) -> str | None:
        """A string that is not blank."""
        value = self.string(node, what)
        if value is not None and not value.strip():
            self.error(node, f"{what} is empty")
            return None
        return value

    def boolean(self, node: yaml.Node, what: str) -> bool | None:
        value = self.scalar(node, what, (_BOOL,), "true or false")
        return None if value is None else value.lower() in ("true", "yes", "on")

    def integer(self, node: yaml.Node, what: str, minimum: int) -> int | None:
        if self.scalar(node, what, (_INT,), "a whole number") is None:
            return None
        number = _construct(node)
        if not isinstance(number, int):
            self.error(node, f"{what} must be a whole number, not {quoted(repr(node.value))}")
            return None
        if number < minimum:
            self.error(node, f"{what} must be at least {minimum}, not {number}")
            return None
        return number

    def fraction(self, node: yaml.Node, what: str) -> float | None:
        value = self.scalar(node, what, (_INT, _FLOAT), "a number between 0 and 1")
        if value is None:
            return None
        number = _construct(node)
        if number is None:
            self.error(node, f"{what} must be a number between 0 and 1, not {quoted(repr(value))}")
            return None
        if not 0.0 <= number <= 1.0:
            self.error(node, f"{what} must be between 0 and 1, not {quoted(value)}")
            return None
        return float(number)

    def duration(self, node: yaml.Node, what: str) -> float | None:
        """Seconds, longer than zero: ``250ms``, ``10s``, ``5m``, ``1h``, ``1h30m`` or a bare number."""
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT):
            number = _construct(node)
            if number is None:
                self.error(node, f"{what} must be a number of seconds, not {quoted(repr(node.value))}")
                return None
            if isinstance(number, float) and not math.isfinite(number):
                self.error(node, f"{what} must be a finite duration, not {quoted(node.value)}")
                return None
            # Bounded before the conversion: a whole number too large for a float overflows it.
            seconds = float(max(-1, min(number, 2 * MAX_DURATION_S)))
        else:
            text = self.scalar(node, what, (_STR,), "a duration such as 250ms, 10s, 5m or 1h")
            if text is None:
                return None
            parsed = parse_duration(text)
            if parsed is None:
                self.error(
                    node, f"{what}: bad duration {quoted(repr(text))} (write 250ms, 10s, 5m, 1h or 1h30m)"
                )
                return None
            seconds = parsed
        if seconds <= 0:
            self.error(node, f"{what} must be longer than zero")
            return None
        if seconds > MAX_DURATION_S:
            self.error(node, f"{what} must be at most {_MAX_DURATION_TEXT}, not {quoted(node.value)}")
            return None
        return seconds

    def string_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """A list of strings, or a single string, each with its node."""
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
            value = self.string(node, what)
            return [] if value is None else [(value, node)]
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list of strings, not {describe(node)}")
            return []
        items = []
        for item in node.value:
            value = self.string(item, f"each entry of {what}")
            if value is not None:
                items.append((value, item))
        return items

    def env(self, node: yaml.Node, what: str) -> dict[str, str]:
        """Environment variables: names that can be one, values as written."""
        entries = self.mapping(node, what, ())
        result: dict[str, str] = {}
        key_nodes = (
            {key.value: key for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
            if isinstance(node, yaml.MappingNode)
            else {}
        )
        for name, value_node in (entries or {}).items():
            if not name or "=" in name or "\0" in name:
                self.error(
                    key_nodes[name],
                    f"{what}: {quoted(repr(name))} cannot be the name of an environment variable",
                )
                continue
            value = self.scalar(value_node, f"{what}.{name}", (_STR, _INT, _FLOAT, _BOOL), "a string")
            if value is not None:
                result[name] = value
        return result

    def optional(
        self, fields: dict[str, yaml.Node], key: str, read: Callable[[yaml.Node], T | None]
    ) -> T | None:
        """``read`` applied to ``fields[key]``, or None when the key is absent."""
        node = fields.get(key)
        return None if node is None else read(node)


def describe(node: yaml.Node) -> str:
    """What a node holds, as an error message names it: "a list", "the number 3", …"""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        _STR: f"the string {quoted(repr(node.value))}",
        _INT: f"the number {quoted(node.value)}",
        _FLOAT: f"the number {quoted(node.value)}",
        _BOOL: f"the boolean {quoted(node.value)}",
        _NULL: "an empty value",
    }.get(node.tag, quoted(repr(node.value)))


def _construct(node: yaml.Node) -> int | float | None:
    """The number YAML gives an int or float scalar node (hex, base 60, `.inf`, …), or None when
    its text is not one.

    YAML resolves a plain scalar to int or float only if its text looks like one, but an explicit
    tag (`!!int abc`, `!!float ""`) skips that check, and the constructors then fail on the text.
    """
    try:
        value = yaml.SafeLoader("").construct_object(node)
    except (ValueError, IndexError):
        return None
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _unknown_key(key: str, what: str, known: tuple[str, ...]) -> str:
    message = f"unknown key `{quoted(key)}` in {what}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean `{quoted(close[0])}`?"
    return f"{message} (known keys: {', '.join(known)})"
