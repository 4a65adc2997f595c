"""editor-client/src/protocol.ts against the Python protocol: statuses, payload fields and their
types, command names, arguments and results, notification names. Each side may change only with
the other; the tests at the end show that a change on one side alone is caught."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

import attrs
import pytest

from treeflow.lsp import protocol
from treeflow.lsp.handlers import COMMANDS, command_types

PROTOCOL_TS = Path(__file__).parents[2] / "editor-client" / "src" / "protocol.ts"
# Every TypeScript interface is the Python class of the same name, except this one.
TS_NAMES = {"Run": "RunPayload"}
STATUS_UNIONS: dict[str, type[Enum]] = {
    "StepStatus": protocol.StepStatus,
    "RunStatus": protocol.RunStatus,
    "ChangeStatus": protocol.ChangeStatus,
    "Decision": protocol.Decision,
    "Channel": protocol.Channel,
    "ApplyMode": protocol.ApplyMode,
    "ConflictPolicy": protocol.ConflictPolicy,
    "ApplyOutcome": protocol.ApplyOutcome,
    "OutputStream": protocol.OutputStream,
}
CONSTANTS = {"RUN_UPDATED": protocol.RUN_UPDATED, "LOG": protocol.LOG}


@dataclass(frozen=True)
class PythonSide:
    statuses: dict[str, list[str]]
    classes: dict[str, type]
    # command name -> (argument class or None, result type)
    commands: dict[str, tuple[type | None, Any]]
    constants: dict[str, str]


@dataclass(frozen=True)
class TsField:
    name: str
    optional: bool
    type: str


@dataclass(frozen=True)
class TsSide:
    unions: dict[str, list[str]]
    interfaces: dict[str, list[TsField]]
    constants: dict[str, str]


def python_side() -> PythonSide:
    classes = {
        name: value for name, value in vars(protocol).items() if isinstance(value, type) and attrs.has(value)
    }
    return PythonSide(
        statuses={name: [member.value for member in enum] for name, enum in STATUS_UNIONS.items()},
        classes=classes,
        commands={name: command_types(handler) for name, handler in COMMANDS.items()},
        constants=dict(CONSTANTS),
    )


def parse_ts(text: str) -> TsSide:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)
    unions = {
        name: re.findall(r"'([^']*)'", body)
        for name, body in re.findall(r"export type (\w+) =([^;]*);", text)
    }
    interfaces = {}
    for name, body in re.findall(r"export interface (\w+) \{(.*?)\n\}", text, flags=re.DOTALL):
        fields = re.findall(r"^\s*'?([\w.]+)'?(\??):\s*(.+?);\s*$", body, flags=re.MULTILINE)
        interfaces[name] = [TsField(key, bool(mark), " ".join(kind.split())) for key, mark, kind in fields]
    constants = dict(re.findall(r"export const (\w+) = '([^']*)';", text))
    return TsSide(unions, interfaces, constants)


def ts_type(annotation: Any) -> str:
    """How protocol.ts spells a Python annotation."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(ts_type(argument) for argument in arguments)
    if origin is list:
        return f"{ts_type(arguments[0])}[]"
    if origin is dict:
        return f"Record<{ts_type(arguments[0])}, {ts_type(arguments[1])}>"
    if annotation is None or annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return annotation.__name__
    if isinstance(annotation, type) and attrs.has(annotation):
        return {py: ts for ts, py in TS_NAMES.items()}.get(annotation.__name__, annotation.__name__)
    return {str: "string", int: "number", float: "number", bool: "boolean"}[annotation]


def drift(ts: TsSide, py: PythonSide) -> list[str]:
    """Every difference between the two sides, in words."""
    problems: list[str] = []
    for name, values in py.statuses.items():
        if set(ts.unions.get(name, [])) != set(values):
            problems.append(f"{name}: TypeScript {ts.unions.get(name)}, Python {values}")
    interfaces = {name: fields for name, fields in ts.interfaces.items() if name != "ServerCommands"}
    python_names = {TS_NAMES.get(name, name) for name in interfaces}
    for name in sorted(set(py.classes) - python_names):
        problems.append(f"Python class {name} has no interface in protocol.ts")
    arguments = {argument for argument, _ in py.commands.values() if argument is not None}
    for name, fields in interfaces.items():
        cls = py.classes.get(TS_NAMES.get(name, name))
        if cls is None:
            problems.append(f"interface {name} has no Python class")
            continue
        hints = typing.get_type_hints(cls)
        wire = dict(zip(protocol.wire_names(cls), attrs.fields(cls), strict=True))
        if [field.name for field in fields] != list(wire):
            problems.append(f"{name}: TypeScript fields {[f.name for f in fields]}, Python {list(wire)}")
            continue
        for field in fields:
            attribute = wire[field.name]
            if field.type != ts_type(hints[attribute.name]):
                problems.append(
                    f"{name}.{field.name}: TypeScript {field.type}, Python {hints[attribute.name]}"
                )
            # What a client sends may leave out exactly what the server has a default for.
            if cls in arguments and field.optional != (attribute.default is not attrs.NOTHING):
                problems.append(f"{name}.{field.name}: optional on one side only")
    commands = {field.name: field.type for field in ts.interfaces.get("ServerCommands", [])}
    if set(commands) != set(py.commands):
        problems.append(f"commands: TypeScript {sorted(commands)}, Python {sorted(py.commands)}")
    for command, (argument, result) in py.commands.items():
        expected = f"[{'undefined' if argument is None else ts_type(argument)}, {ts_type(result)}]"
        if command in commands and commands[command] != expected:
            problems.append(f"{command}: TypeScript {commands[command]}, Python {expected}")
    if ts.constants != py.constants:
        problems.append(f"notification names: TypeScript {ts.constants}, Python {py.constants}")
    return problems


def test_protocol_ts_matches_the_python_protocol() -> None:
    assert drift(parse_ts(PROTOCOL_TS.read_text()), python_side()) == []


def test_the_comparison_sees_every_part_of_protocol_ts() -> None:
    ts = parse_ts(PROTOCOL_TS.read_text())
    assert set(ts.unions) == set(STATUS_UNIONS)
    assert {"Run", "StepState", "RunArgs", "LogParams", "ServerCommands"} <= set(ts.interfaces)
    assert len(next(f for f in ts.interfaces["ServerCommands"] if f.name == "treeflow.run").type) > 10
    assert set(ts.constants) == set(CONSTANTS)


TS_EDITS = {
    "a run status added": ("'cancelled' | 'interrupted';", "'cancelled' | 'interrupted' | 'paused';"),
    "a step status dropped": ("  | 'interrupted';\nexport type RunStatus", ";\nexport type RunStatus"),
    "a run field added": ("  done: number;", "  done: number;\n  paused_at: string | null;"),
    "a step field dropped": ("  commit: string | null;\n", ""),
    "a field renamed": ("  stepId: string;", "  step_id: string;"),
    "a field's type changed": ("  attempts: number;", "  attempts: string;"),
    "an argument made optional": ("file. */\n  workflow: string;", "file. */\n  workflow?: string;"),
    "an interface added": (
        "export interface RunArgs {",
        "export interface PauseArgs {\n  runId: string;\n}\n\nexport interface RunArgs {",
    ),
    "a command added": (
        "  'treeflow.getRun': [RunIdArgs, Run];",
        "  'treeflow.getRun': [RunIdArgs, Run];\n  'treeflow.pause': [RunIdArgs, RunStarted];",
    ),
    "a result changed": (
        "'treeflow.cancel': [RunIdArgs, CancelResult]",
        "'treeflow.cancel': [RunIdArgs, boolean]",
    ),
    "a notification renamed": ("'treeflow/log'", "'treeflow/output'"),
    "an apply mode added": ("'squash' | 'merge';", "'squash' | 'merge' | 'rebase';"),
}


@pytest.mark.parametrize("edit", list(TS_EDITS), ids=list(TS_EDITS))
def test_a_change_to_protocol_ts_alone_is_caught(edit: str) -> None:
    old, new = TS_EDITS[edit]
    text = PROTOCOL_TS.read_text()
    assert old in text
    assert drift(parse_ts(text.replace(old, new, 1)), python_side()) != []


@attrs.frozen
class _StepStateWithMore(protocol.StepState):
    paused_at: str | None = None


@attrs.frozen
class _PauseArgs:
    run_id: str


def _python_edits() -> dict[str, PythonSide]:
    py = python_side()
    run_statuses = [*py.statuses["RunStatus"], "paused"]
    step_statuses = [value for value in py.statuses["StepStatus"] if value != "interrupted"]
    return {
        "a run status added": replace(py, statuses={**py.statuses, "RunStatus": run_statuses}),
        "a step status dropped": replace(py, statuses={**py.statuses, "StepStatus": step_statuses}),
        "a step field added": replace(py, classes={**py.classes, "StepState": _StepStateWithMore}),
        "a class added": replace(py, classes={**py.classes, "PauseArgs": _PauseArgs}),
        "a command added": replace(
            py, commands={**py.commands, "treeflow.pause": (_PauseArgs, protocol.RunStarted)}
        ),
    }


@pytest.mark.parametrize("edit", list(_python_edits()))
def test_a_change_to_the_python_protocol_alone_is_caught(edit: str) -> None:
    assert drift(parse_ts(PROTOCOL_TS.read_text()), _python_edits()[edit]) != []
