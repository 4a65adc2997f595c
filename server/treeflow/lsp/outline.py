"""A workflow file's structure as far as it can be read, also while it is being typed and is not YAML.

The editor asks for completion mostly when the file is broken (a key half typed, a colon missing).
So this reads YAML tokens, not a document: the scanner stops at the first error, the line it names
is blanked (keeping every position) and the text is scanned again, a few times at most. From the
tokens come each scalar with the keys above it (`Scalar`), each key with the extent of its value
(`Entry`), and the open collections at any position (`frames_at`), which give completion its place.

Positions are 0-based (line, column) pairs, columns in code points, as the YAML scanner counts them.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, NamedTuple

import yaml

from treeflow.core.spec import MAX_WORKFLOW_BYTES

Position = tuple[int, int]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Each repair is a whole scan again; a file broken in more places than this is read up to the rest.
_MAX_REPAIRS = 8
# The open collections are kept every so many tokens, so that a request walks at most these again.
_CHECKPOINT_TOKENS = 64


class Role(Enum):
    KEY = "key"
    VALUE = "value"  # the scalar value of a key
    ITEM = "item"  # a scalar in a list


class Scalar(NamedTuple):
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


class Entry(NamedTuple):
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

    def copy(self) -> Frame:
        return Frame(
            self.path,
            self.mapping,
            self.flow,
            self.column,
            self.indentless,
            self.key,
            self.key_line,
            self.expects_key,
            self.entry_start,
        )


class _Checkpoint(NamedTuple):
    """The walk's state before the token at ``token_index``."""

    token_index: int
    frames: tuple[Frame, ...]
    last_end: Position


class Outline:
    """What was read of one text, with the look-ups the editor's requests make, each prepared once."""

    def __init__(
        self, text: str, tokens: list[yaml.Token], walk: _Walk, checkpoints: list[_Checkpoint]
    ) -> None:
        self.lines = tuple(text.splitlines())
        self.tokens = tuple(tokens)
        self._checkpoints = tuple(checkpoints)
        # The furthest start of any token up to each one: non-decreasing, so searchable, and the
        # first to reach a position is the first token that starts there or beyond.
        self._reach: list[Position] = []
        furthest: Position = (-1, -1)
        for token in tokens:
            furthest = max(furthest, (token.start_mark.line, token.start_mark.column))
            self._reach.append(furthest)
        self.scalars = tuple(walk.scalars)
        self.entries = tuple(walk.entries)
        self.steps: dict[str, Scalar] = {}
        """Each step id's key, the first where an id is written twice."""
        self._keys: dict[tuple[str, ...], list[str]] = {}
        self._values: dict[tuple[str, ...], Scalar] = {}
        for scalar in self.scalars:
            if scalar.role is Role.KEY:
                self._keys.setdefault(scalar.path[:-1], []).append(scalar.text)
                if len(scalar.path) == 2 and scalar.path[0] == "steps":
                    self.steps.setdefault(scalar.text, scalar)
            elif scalar.role is Role.VALUE:
                self._values.setdefault(scalar.path, scalar)
        self.mentions = tuple(
            scalar
            for scalar in self.scalars
            if scalar.role is not Role.KEY
            and len(scalar.path) == 3
            and scalar.path[0] == "steps"
            and scalar.path[2] == "needs"
        )
        """Every step id named in a `needs`, as a single value or in a list."""
        self.needs: dict[str, list[str]] = {}
        """The ids each step's `needs` names, as written."""
        for mention in self.mentions:
            self.needs.setdefault(mention.path[1], []).append(mention.text)

    def line(self, number: int) -> str:
        return self.lines[number] if 0 <= number < len(self.lines) else ""

    def scalar_at(self, at: Position) -> Scalar | None:
        return next((scalar for scalar in self.scalars if scalar.holds(at)), None)

    def keys_under(self, path: tuple[str, ...]) -> list[str]:
        """The keys written in the mapping at ``path``."""
        return self._keys.get(path, [])

    def value_of(self, path: tuple[str, ...]) -> Scalar | None:
        """The scalar value written for the key at ``path``."""
        return self._values.get(path)

    def frames_at(self, at: Position) -> list[Frame]:
        """The collections open just before ``at``, outermost first: the walk over the tokens that
        start before ``at``, taken up from the last checkpoint on the way."""
        stop = bisect.bisect_left(self._reach, at)
        checkpoint = self._checkpoints[stop // _CHECKPOINT_TOKENS]
        walk = _Walk.resume(checkpoint)
        for token in self.tokens[checkpoint.token_index : stop]:
            walk.take(token)
        return walk.frames


@functools.lru_cache(maxsize=4)
def read_outline(text: str) -> Outline:
    """The outline of ``text``; the same text asked again (hover after completion, say) is not read again.

    A text larger than a workflow may be has none: the parser refuses it unread too.
    """
    tokens = _scan(text) if len(text) <= MAX_WORKFLOW_BYTES else []
    walk = _Walk()
    checkpoints: list[_Checkpoint] = []
    for index, token in enumerate(tokens):
        if index % _CHECKPOINT_TOKENS == 0:
            checkpoints.append(walk.checkpoint(index))
        walk.take(token)
    if len(tokens) % _CHECKPOINT_TOKENS == 0:
        checkpoints.append(walk.checkpoint(len(tokens)))
    walk.finish()
    return Outline(text, tokens, walk, checkpoints)


def _scan(text: str) -> list[yaml.Token]:
    blanked: set[int] = set()
    tokens: list[yaml.Token] = []
    for _ in range(_MAX_REPAIRS + 1):
        tokens = []
        try:
            tokens.extend(yaml.scan(text, Loader=_LOADER))
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


class _Walk:
    """Follows the tokens in order, keeping the open collections and recording scalars and entries."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.scalars: list[Scalar] = []
        self.entries: list[Entry] = []
        self._last_end: Position = (0, 0)

    def checkpoint(self, token_index: int) -> _Checkpoint:
        return _Checkpoint(token_index, tuple(frame.copy() for frame in self.frames), self._last_end)

    @classmethod
    def resume(cls, checkpoint: _Checkpoint) -> _Walk:
        walk = cls()
        walk.frames = [frame.copy() for frame in checkpoint.frames]
        walk._last_end = checkpoint.last_end
        return walk

    def take(self, token: yaml.Token) -> None:
        handle = self._handlers.get(type(token))
        if handle is not None:
            handle(self, token)

    def _mapping_start(self, token: yaml.Token) -> None:
        self._open(token, mapping=True, flow=type(token) is yaml.FlowMappingStartToken)

    def _sequence_start(self, token: yaml.Token) -> None:
        self._open(token, mapping=False, flow=type(token) is yaml.FlowSequenceStartToken)

    def _block_entry(self, token: yaml.Token) -> None:
        top = self._top()
        if top is not None and top.mapping:
            self._open(token, mapping=False, flow=False, indentless=True)
        self._last_end = _end(token)

    def _key(self, token: yaml.Token) -> None:
        self._close_indentless()
        self._next_entry()

    def _flow_entry(self, token: yaml.Token) -> None:
        self._next_entry()

    def _value(self, token: yaml.Token) -> None:
        top = self._top()
        if top is not None and top.mapping:
            top.expects_key = False
        self._last_end = _end(token)

    def _block_end(self, token: yaml.Token) -> None:
        self._close_indentless()
        self._close()

    def _flow_end(self, token: yaml.Token) -> None:
        self._close()
        self._last_end = _end(token)

    def _alias(self, token: yaml.Token) -> None:
        self._last_end = _end(token)

    def _next_entry(self) -> None:
        top = self._top()
        if top is not None and top.mapping:
            self._end_entry(top)
            top.expects_key = True

    def finish(self) -> None:
        while self.frames:
            self._close()

    def _top(self) -> Frame | None:
        return self.frames[-1] if self.frames else None

    def _open(self, token: yaml.Token, *, mapping: bool, flow: bool, indentless: bool = False) -> None:
        top = self._top()
        path = top.child_path() if top is not None else ()
        self.frames.append(Frame(path, mapping, flow, token.start_mark.column, indentless))

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

    def _scalar(self, token: yaml.ScalarToken) -> None:
        start, end = (token.start_mark.line, token.start_mark.column), _end(token)
        self._last_end = end
        top = self._top()
        if top is None:
            return
        if top.mapping and top.expects_key:
            self._end_entry(top)
            top.key, top.key_line, top.entry_start = token.value, start[0], start
            role, path = Role.KEY, (*top.path, token.value)
        elif top.mapping:
            role, path = Role.VALUE, top.child_path()
        else:
            role, path = Role.ITEM, top.path
        self.scalars.append(Scalar(role, path, token.value, start, end, token.style in ("'", '"')))

    _handlers: ClassVar[dict[type[yaml.Token], Callable[[_Walk, Any], None]]] = {
        yaml.BlockMappingStartToken: _mapping_start,
        yaml.FlowMappingStartToken: _mapping_start,
        yaml.BlockSequenceStartToken: _sequence_start,
        yaml.FlowSequenceStartToken: _sequence_start,
        yaml.BlockEntryToken: _block_entry,
        yaml.KeyToken: _key,
        yaml.ValueToken: _value,
        yaml.FlowEntryToken: _flow_entry,
        yaml.BlockEndToken: _block_end,
        yaml.FlowMappingEndToken: _flow_end,
        yaml.FlowSequenceEndToken: _flow_end,
        yaml.ScalarToken: _scalar,
        yaml.AliasToken: _alias,
    }


def _end(token: yaml.Token) -> Position:
    return token.end_mark.line, token.end_mark.column
