"""Workflow files (YAML, version 1) to a `Workflow`, with every error located at file:line:col.

The file is composed into YAML nodes rather than loaded into plain objects, so that each value keeps
its position and every problem in the file can be reported in one pass.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml

from treeflow.core.graph import find_cycles
from treeflow.core.model import DEFAULT_HEARTBEAT_S, AgentSpec, RetryPolicy, SetupSpec, Step, Workflow

# libyaml's loader parses ten times faster than the pure-Python one and keeps node positions.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STEP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

_TOP_KEYS = ("version", "name", "max_parallel", "fail_fast", "base", "defaults", "setup", "env", "steps")
_DEFAULT_KEYS = ("timeout", "retry", "worktree")
_RETRY_KEYS = ("attempts", "backoff", "max_backoff", "jitter")
_SETUP_KEYS = ("copy", "run")
_STEP_KEYS = ("run", "agent", "needs", "timeout", "retry", "env", "worktree")
_AGENT_KEYS = ("prompt", "command", "heartbeat")

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


class WorkflowError(Exception):
    """A workflow file that cannot be run; ``errors`` holds every problem found, in file order."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.column))
        super().__init__("\n".join(str(e) for e in self.errors))


def load_workflow(path: Path) -> Workflow:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WorkflowError([SpecError(path, 1, 1, f"cannot read workflow file: {exc}")]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        valid = data[: exc.start].decode("utf-8")
        line, column = _line_column(valid, len(valid))
        message = f"not UTF-8 text: {exc.reason} (byte 0x{data[exc.start]:02x})"
        raise WorkflowError([SpecError(path, line, column, message)]) from exc
    return parse_workflow(text, path)


def parse_workflow(text: str, path: Path) -> Workflow:
    return _Parser(path).parse(text)


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


class _Parser:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors: list[SpecError] = []

    def error(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.errors.append(SpecError(self.path, mark.line + 1, mark.column + 1, message))

    def parse(self, text: str) -> Workflow:
        try:
            try:
                root = yaml.compose(text, Loader=_FAST_LOADER)
            except yaml.YAMLError:
                root = self.compose_for_errors(text)
        except RecursionError:
            too_deep = SpecError(self.path, 1, 1, "YAML syntax: nested too deeply to be a workflow")
            raise WorkflowError([too_deep]) from None
        if root is None:
            raise WorkflowError([SpecError(self.path, 1, 1, "the file is empty: a workflow needs `steps:`")])
        workflow = self.workflow(root)
        if self.errors or workflow is None:
            raise WorkflowError(self.errors)
        return workflow

    def compose_for_errors(self, text: str) -> yaml.Node | None:
        """Parse again with the pure-Python loader, whose syntax errors say more (a tab, say)."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            raise WorkflowError([SpecError(self.path, line, column, f"YAML syntax: {problem}")]) from exc
        except yaml.reader.ReaderError as exc:
            line, column = _line_column(text, exc.position)
            raise WorkflowError([SpecError(self.path, line, column, f"YAML syntax: {exc.reason}")]) from exc

    # Structure

    def mapping(self, node: yaml.Node, what: str, known: tuple[str, ...]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping, not {_kind(node)}")
            return None
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, f"{what} keys must be plain names")
                continue
            if key in result:
                self.error(key_node, f"duplicate key `{key}` in {what}")
                continue
            if known and key not in known:
                self.error(key_node, _unknown_key(key, what, known))
                continue
            result[key] = value_node
        return result

    def scalar(self, node: yaml.Node, what: str, tags: tuple[str, ...], expected: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            self.error(node, f"{what} must be {expected}, not {_kind(node)}")
            return None
        return str(node.value)

    def string(self, node: yaml.Node, what: str) -> str | None:
        return self.scalar(node, what, (_STR,), "a string")

    def command(self, node: yaml.Node, what: str) -> str | None:
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
        if not isinstance(number, int) or isinstance(number, bool):
            self.error(node, f"{what} must be a whole number, not {node.value!r}")
            return None
        if number < minimum:
            self.error(node, f"{what} must be at least {minimum}, not {number}")
            return None
        return number

    def fraction(self, node: yaml.Node, what: str) -> float | None:
        value = self.scalar(node, what, (_INT, _FLOAT), "a number between 0 and 1")
        if value is None:
            return None
        number = float(_construct(node))
        if not 0.0 <= number <= 1.0:
            self.error(node, f"{what} must be between 0 and 1, not {value}")
            return None
        return number

    def duration(self, node: yaml.Node, what: str) -> float | None:
        if isinstance(node, yaml.ScalarNode) and node.tag in (_INT, _FLOAT):
            seconds = float(_construct(node))
            if not math.isfinite(seconds):
                self.error(node, f"{what} must be a finite duration, not {node.value}")
                return None
        else:
            text = self.scalar(node, what, (_STR,), "a duration such as 250ms, 10s, 5m or 1h")
            if text is None:
                return None
            parsed = parse_duration(text)
            if parsed is None:
                self.error(node, f"{what}: bad duration {text!r} (write 250ms, 10s, 5m, 1h or 1h30m)")
                return None
            seconds = parsed
        if seconds <= 0:
            self.error(node, f"{what} must be longer than zero")
            return None
        return seconds

    def string_list(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
            return [(node.value, node)]
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"{what} must be a list of strings, not {_kind(node)}")
            return []
        items = []
        for item in node.value:
            value = self.string(item, f"each entry of {what}")
            if value is not None:
                items.append((value, item))
        return items

    def env(self, node: yaml.Node, what: str) -> dict[str, str]:
        entries = self.mapping(node, what, ())
        result: dict[str, str] = {}
        key_nodes = {key.value: key for key, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
        for name, value_node in (entries or {}).items():
            if not name or "=" in name or "\0" in name:
                self.error(key_nodes[name], f"{what}: {name!r} cannot be the name of an environment variable")
                continue
            value = self.scalar(value_node, f"{what}.{name}", (_STR, _INT, _FLOAT, _BOOL), "a string")
            if value is not None:
                result[name] = value
        return result

    def optional(
        self, fields: dict[str, yaml.Node], key: str, read: Callable[[yaml.Node], T | None]
    ) -> T | None:
        node = fields.get(key)
        return None if node is None else read(node)

    # Sections

    def workflow(self, root: yaml.Node) -> Workflow | None:
        fields = self.mapping(root, "the workflow", _TOP_KEYS)
        if fields is None:
            return None
        version = self.optional(fields, "version", lambda n: self.integer(n, "version", 1))
        if version is not None and version != 1:
            self.error(fields["version"], f"unsupported version {version}: this treeflow reads version 1")
        name = self.optional(fields, "name", lambda n: self.string(n, "name")) or self.path.stem
        max_parallel = self.optional(fields, "max_parallel", lambda n: self.integer(n, "max_parallel", 1))
        fail_fast = self.optional(fields, "fail_fast", lambda n: self.boolean(n, "fail_fast"))
        base = self.optional(fields, "base", lambda n: self.command(n, "base")) or "working"
        defaults = self.defaults(fields.get("defaults"))
        setup = self.setup(fields.get("setup"))
        env = self.optional(fields, "env", lambda n: self.env(n, "env")) or {}
        steps = self.steps(fields.get("steps"), root, defaults)
        return Workflow(
            name=name,
            path=self.path,
            steps=steps,
            max_parallel=max_parallel,
            fail_fast=True if fail_fast is None else fail_fast,
            base=base,
            setup=setup,
            env=env,
        )

    def defaults(self, node: yaml.Node | None) -> Step:
        """Workflow-wide step defaults, carried in a template `Step`."""
        template = Step(id="")
        if node is None:
            return template
        fields = self.mapping(node, "defaults", _DEFAULT_KEYS)
        if fields is None:
            return template
        timeout = self.optional(fields, "timeout", lambda n: self.duration(n, "defaults.timeout"))
        retry = self.optional(fields, "retry", lambda n: self.retry(n, "defaults.retry", template.retry))
        worktree = self.optional(fields, "worktree", lambda n: self.boolean(n, "defaults.worktree"))
        return Step(
            id="",
            timeout_s=timeout,
            retry=retry or template.retry,
            worktree=template.worktree if worktree is None else worktree,
        )

    def retry(self, node: yaml.Node, what: str, inherited: RetryPolicy) -> RetryPolicy | None:
        if isinstance(node, yaml.ScalarNode):
            attempts = self.integer(node, f"{what} (attempts)", 1)
            return (
                None
                if attempts is None
                else RetryPolicy(attempts, inherited.backoff_s, inherited.max_backoff_s, inherited.jitter)
            )
        fields = self.mapping(node, what, _RETRY_KEYS)
        if fields is None:
            return None
        attempts = self.optional(fields, "attempts", lambda n: self.integer(n, f"{what}.attempts", 1))
        backoff = self.optional(fields, "backoff", lambda n: self.duration(n, f"{what}.backoff"))
        max_backoff = self.optional(fields, "max_backoff", lambda n: self.duration(n, f"{what}.max_backoff"))
        jitter = self.optional(fields, "jitter", lambda n: self.fraction(n, f"{what}.jitter"))
        return RetryPolicy(
            attempts=attempts or inherited.attempts,
            backoff_s=inherited.backoff_s if backoff is None else backoff,
            max_backoff_s=inherited.max_backoff_s if max_backoff is None else max_backoff,
            jitter=inherited.jitter if jitter is None else jitter,
        )

    def setup(self, node: yaml.Node | None) -> SetupSpec:
        if node is None:
            return SetupSpec()
        fields = self.mapping(node, "setup", _SETUP_KEYS)
        if fields is None:
            return SetupSpec()
        copy = []
        if "copy" in fields:
            copy = [value for value, _ in self.string_list(fields["copy"], "setup.copy")]
        run = self.optional(fields, "run", lambda n: self.command(n, "setup.run"))
        return SetupSpec(copy=tuple(copy), run=run)

    def steps(self, node: yaml.Node | None, root: yaml.Node, defaults: Step) -> dict[str, Step]:
        if node is None:
            self.error(root, "the workflow has no `steps:`")
            return {}
        entries = self.mapping(node, "steps", ())
        if entries is None:
            return {}
        if not entries:
            self.error(node, "`steps:` is empty: a workflow needs at least one step")
            return {}
        steps: dict[str, Step] = {}
        need_nodes: dict[str, list[tuple[str, yaml.Node]]] = {}
        key_nodes: dict[str, yaml.Node] = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                key_nodes.setdefault(key.value, key)
        for step_id, step_node in entries.items():
            if not STEP_ID.fullmatch(step_id):
                self.error(
                    key_nodes[step_id],
                    f"bad step id {step_id!r}: use 1 to 64 letters, digits, '-' or '_'",
                )
            step, needs = self.step(step_id, step_node, defaults, key_nodes[step_id].start_mark.line + 1)
            need_nodes[step_id] = needs
            if step is not None:
                steps[step_id] = step
        self.check_needs(entries, need_nodes, key_nodes)
        return steps

    def step(
        self, step_id: str, node: yaml.Node, defaults: Step, line: int
    ) -> tuple[Step | None, list[tuple[str, yaml.Node]]]:
        what = f"step `{step_id}`"
        fields = self.mapping(node, what, _STEP_KEYS)
        if fields is None:
            return None, []
        run = self.optional(fields, "run", lambda n: self.command(n, f"{what}: run"))
        agent = self.optional(fields, "agent", lambda n: self.agent(n, what))
        if "run" in fields and "agent" in fields:
            self.error(fields["agent"], f"{what} has both `run:` and `agent:`; give it one of them")
        elif "run" not in fields and "agent" not in fields:
            self.error(node, f"{what} needs `run:` (a shell command) or `agent:` (a coding-agent job)")
        needs = self.string_list(fields["needs"], f"{what}: needs") if "needs" in fields else []
        timeout = self.optional(fields, "timeout", lambda n: self.duration(n, f"{what}: timeout"))
        retry = self.optional(fields, "retry", lambda n: self.retry(n, f"{what}: retry", defaults.retry))
        env = self.optional(fields, "env", lambda n: self.env(n, f"{what}: env")) or {}
        worktree = self.optional(fields, "worktree", lambda n: self.boolean(n, f"{what}: worktree"))
        step = Step(
            id=step_id,
            run=run,
            agent=agent,
            needs=tuple(dict.fromkeys(name for name, _ in needs)),
            timeout_s=defaults.timeout_s if timeout is None else timeout,
            retry=retry or defaults.retry,
            worktree=defaults.worktree if worktree is None else worktree,
            env=env,
            line=line,
        )
        return step, needs

    def agent(self, node: yaml.Node, what: str) -> AgentSpec | None:
        fields = self.mapping(node, f"{what}: agent", _AGENT_KEYS)
        if fields is None:
            return None
        if "prompt" not in fields:
            self.error(node, f"{what}: agent needs a `prompt:`")
        prompt = self.optional(fields, "prompt", lambda n: self.command(n, f"{what}: agent.prompt"))
        command = self.optional(fields, "command", lambda n: self.command(n, f"{what}: agent.command"))
        heartbeat = self.optional(fields, "heartbeat", lambda n: self.duration(n, f"{what}: agent.heartbeat"))
        if prompt is None:
            return None
        return AgentSpec(prompt=prompt, command=command, heartbeat_s=heartbeat or DEFAULT_HEARTBEAT_S)

    def check_needs(
        self,
        entries: dict[str, yaml.Node],
        need_nodes: dict[str, list[tuple[str, yaml.Node]]],
        key_nodes: dict[str, yaml.Node],
    ) -> None:
        for step_id, needs in need_nodes.items():
            for name, name_node in needs:
                if name == step_id:
                    self.error(name_node, f"step `{step_id}` needs itself")
                elif name not in entries:
                    self.error(name_node, _unknown_step(name, step_id, list(entries)))
        graph = {
            step_id: [name for name, _ in needs if name in entries and name != step_id]
            for step_id, needs in need_nodes.items()
        }
        for cycle in find_cycles(graph):
            first, second = cycle[0], cycle[1]
            at = next((n for name, n in need_nodes[first] if name == second), key_nodes[first])
            self.error(at, "dependency cycle: " + " -> ".join(cycle))


def _construct(node: yaml.Node) -> float:
    """The number YAML gives an int or float scalar node (hex, base 60, `.inf`, …)."""
    value = yaml.SafeLoader("").construct_object(node)
    assert isinstance(value, int | float)
    return value


def _line_column(text: str, position: int) -> tuple[int, int]:
    before = text[:position].removeprefix("\ufeff")  # a byte-order mark is not a column
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return {
        _STR: f"the string {node.value!r}",
        _INT: f"the number {node.value}",
        _FLOAT: f"the number {node.value}",
        _BOOL: f"the boolean {node.value}",
        _NULL: "an empty value",
    }.get(node.tag, f"{node.value!r}")


def _unknown_key(key: str, what: str, known: tuple[str, ...]) -> str:
    message = f"unknown key `{key}` in {what}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean `{close[0]}`?"
    return f"{message} (known keys: {', '.join(known)})"


def _unknown_step(name: str, step_id: str, known: list[str]) -> str:
    message = f"step `{step_id}` needs unknown step `{name}`"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"{message}; did you mean `{close[0]}`?" if close else message


def find_workflow(directory: Path) -> Path:
    """The workflow of a repository: `treeflow.yml`, else the single file in `.treeflow/`.

    Raises FileNotFoundError with a message saying what was looked for.
    """
    for name in ("treeflow.yml", "treeflow.yaml"):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    folder = directory / ".treeflow"
    found = sorted(
        entry
        for entry in (folder.iterdir() if folder.is_dir() else [])
        if entry.suffix in (".yml", ".yaml") and entry.is_file()
    )
    if len(found) == 1:
        return found[0]
    if found:
        names = ", ".join(os.path.relpath(entry, directory) for entry in found)
        raise FileNotFoundError(f"several workflows in {folder}: {names}; name one")
    raise FileNotFoundError(f"no workflow in {directory}: expected treeflow.yml or one .treeflow/*.yml")
