"""A workflow file's structure as far as it can be read, also while it is being typed and is not YAML.

The editor asks for completion mostly when the file is broken (a key half typed, a colon missing).
So this reads YAML tokens, not a document: the scanner stops at the first error, the line it names
is blanked (keeping every position) and the text is scanned again, a few times at most. From the
tokens come each scalar with the keys above it (`Scalar`), each key with the extent of its value
(`Entry`), and the open collections at any position (`frames_at`), which give completion its place.

Positions are 0-based (line, column) pairs, columns in code points, as the YAML scanner counts them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import Enum

import yaml

Position = tuple[int, int]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Each repair is a whole scan again; a file broken in more places than this is read up to the rest.
_MAX_REPAIRS = 8


class Role(Enum):
    KEY = "key"
    VALUE = "value"  # the scalar value of a key
    ITEM = "item"  # a scalar in a list


@dataclass(frozen=True, slots=True)
class Scalar:
    role: Role
    path: tuple[str, ...]
    """The keys above it; a key's path and a value's end with that key, an item's with its list's."""
    text: str
    start: Position
    end: Position
    quoted: bool

    def holds(self, at: Position) -> bool:
        return self.start <= at <= self.end

    @property
    def inner(self) -> tuple[Position, Position]:
        """Where its text is, within its quotes if it has them."""
        if not self.quoted or self.start[0] != self.end[0]:
            return self.start, self.end
        return (self.start[0], self.start[1] + 1), (self.end[0], self.end[1] - 1)


@dataclass(frozen=True, slots=True)
class Entry:
    """A key and its value, from the key's first character to its value's last."""

    path: tuple[str, ...]
    start: Position
    end: Position

    def holds(self, at: Position) -> bool:
        return self.start <= at <= self.end


@dataclass(slots=True)
class Frame:
    """A collection open at some point of the file."""

    path: tuple[str, ...]
    mapping: bool
    flow: bool
    column: int
    indentless: bool = False  # a block list written at its key's own indentation
    key: str | None = None
    key_line: int = -1
    expects_key: bool = True
    entry_start: Position | None = None

    def child_path(self) -> tuple[str, ...]:
        return (*self.path, self.key) if self.mapping and self.key is not None else self.path


@dataclass(frozen=True, slots=True)
class _Token:
    kind: type[yaml.Token]
    start: Position
    end: Position
    value: str
    quoted: bool


@dataclass(frozen=True)
class Outline:
    lines: tuple[str, ...]
    tokens: tuple[_Token, ...]
    scalars: tuple[Scalar, ...]
    entries: tuple[Entry, ...]
    steps: dict[str, Scalar] = field(default_factory=dict)
    """Each step id's key, the first where an id is written twice."""

    def line(self, number: int) -> str:
        return self.lines[number] if 0 <= number < len(self.lines) else ""

    def scalar_at(self, at: Position) -> Scalar | None:
        return next((scalar for scalar in self.scalars if scalar.holds(at)), None)

    def keys_under(self, path: tuple[str, ...]) -> list[str]:
        """The keys written in the mapping at ``path``."""
        depth = len(path) + 1
        return [
            s.text
            for s in self.scalars
            if s.role is Role.KEY and len(s.path) == depth and s.path[:-1] == path
        ]

    def value_of(self, path: tuple[str, ...]) -> Scalar | None:
        """The scalar value written for the key at ``path``."""
        return next((s for s in self.scalars if s.role is Role.VALUE and s.path == path), None)

    def step_mentions(self) -> list[Scalar]:
        """Every step id named in a `needs`, as a single value or in a list."""
        return [
            scalar
            for scalar in self.scalars
            if scalar.role is not Role.KEY
            and len(scalar.path) == 3
            and scalar.path[0] == "steps"
            and scalar.path[2] == "needs"
        ]

    def frames_at(self, at: Position) -> list[Frame]:
        """The collections open just before ``at``, outermost first."""
        walk = _Walk()
        for token in self.tokens:
            if token.start >= at:
                break
            walk.take(token)
        return walk.frames


@functools.lru_cache(maxsize=8)
def read_outline(text: str) -> Outline:
    """The outline of ``text``; the same text asked again (hover after completion, say) is not read again."""
    tokens = _scan(text)
    walk = _Walk()
    for token in tokens:
        walk.take(token)
    walk.finish()
    steps: dict[str, Scalar] = {}
    for scalar in walk.scalars:
        if scalar.role is Role.KEY and len(scalar.path) == 2 and scalar.path[0] == "steps":
            steps.setdefault(scalar.text, scalar)
    return Outline(tuple(text.splitlines()), tuple(tokens), tuple(walk.scalars), tuple(walk.entries), steps)


def _scan(text: str) -> list[_Token]:
    blanked: set[int] = set()
    tokens: list[_Token] = []
    for _ in range(_MAX_REPAIRS + 1):
        tokens = []
        try:
            for token in yaml.scan(text, Loader=_LOADER):
                tokens.append(_slim(token))
            return tokens
        except yaml.MarkedYAMLError as exc:
            mark = exc.context_mark or exc.problem_mark
            if mark is None or mark.line in blanked:
                return tokens
            blanked.add(mark.line)
            text = _blank_line(text, mark.line)
        except yaml.YAMLError:  # a character YAML does not allow: no place to repair
            return tokens
    return tokens


def _blank_line(text: str, line: int) -> str:
    lines = text.split("\n")
    if line < len(lines):
        lines[line] = " " * len(lines[line])
    return "\n".join(lines)


def _slim(token: yaml.Token) -> _Token:
    start, end = token.start_mark, token.end_mark
    value = getattr(token, "value", "")
    return _Token(
        type(token),
        (start.line, start.column),
        (end.line, end.column),
        value if isinstance(value, str) else "",
        getattr(token, "style", None) in ("'", '"'),
    )


class _Walk:
    """Follows the tokens in order, keeping the open collections and recording scalars and entries."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.scalars: list[Scalar] = []
        self.entries: list[Entry] = []
        self._last_end: Position = (0, 0)

    def take(self, token: _Token) -> None:
        kind = token.kind
        if kind in (yaml.BlockMappingStartToken, yaml.FlowMappingStartToken):
            self._open(token, mapping=True, flow=kind is yaml.FlowMappingStartToken)
        elif kind in (yaml.BlockSequenceStartToken, yaml.FlowSequenceStartToken):
            self._open(token, mapping=False, flow=kind is yaml.FlowSequenceStartToken)
        elif kind is yaml.BlockEntryToken:
            top = self._top()
            if top is not None and top.mapping:
                self._open(token, mapping=False, flow=False, indentless=True)
            self._last_end = token.end
        elif kind is yaml.KeyToken:
            self._close_indentless()
            top = self._top()
            if top is not None and top.mapping:
                self._end_entry(top)
                top.expects_key = True
        elif kind is yaml.ValueToken:
            top = self._top()
            if top is not None and top.mapping:
                top.expects_key = False
            self._last_end = token.end
        elif kind is yaml.FlowEntryToken:
            top = self._top()
            if top is not None and top.mapping:
                self._end_entry(top)
                top.expects_key = True
        elif kind is yaml.BlockEndToken:
            self._close_indentless()
            self._close()
        elif kind in (yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken):
            self._close()
            self._last_end = token.end
        elif kind is yaml.ScalarToken:
            self._scalar(token)
        elif kind is yaml.AliasToken:
            self._last_end = token.end

    def finish(self) -> None:
        while self.frames:
            self._close()

    def _top(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def _open(self, token: _Token, *, mapping: bool, flow: bool, indentless: bool = False) -> None:
        top = self._top()
        path = top.child_path() if top is not None else ()
        self.frames.append(Frame(path, mapping, flow, token.start[1], indentless))

    def _close(self) -> None:
        if self.frames:
            frame = self.frames.pop()
            self._end_entry(frame)

    def _close_indentless(self) -> None:
        while self.frames and self.frames[-1].indentless:
            self.frames.pop()

    def _end_entry(self, frame: Frame) -> None:
        if frame.mapping and frame.entry_start is not None and frame.key is not None:
            self.entries.append(Entry((*frame.path, frame.key), frame.entry_start, self._last_end))
            frame.entry_start = None

    def _scalar(self, token: _Token) -> None:
        self._last_end = token.end
        top = self._top()
        if top is None:
            return
        if top.mapping and top.expects_key:
            self._end_entry(top)
            top.key, top.key_line, top.entry_start = token.value, token.start[0], token.start
            role, path = Role.KEY, (*top.path, token.value)
        elif top.mapping:
            role, path = Role.VALUE, top.child_path()
        else:
            role, path = Role.ITEM, top.path
        self.scalars.append(Scalar(role, path, token.value, token.start, token.end, token.quoted))
