"""Workflow files (YAML, version 1) to a `Workflow`, with every error located at file:line:col.

The file is composed into YAML nodes rather than loaded into plain objects, so that each value keeps
its position and every problem in the file can be reported in one pass.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import yaml

from treeflow.core import kinds
from treeflow.core.gates import Gate
from treeflow.core.graph import find_cycles
from treeflow.core.matrix import expand
from treeflow.core.model import (
    EXECUTORS,
    CacheSpec,
    PoolSettings,
    Resources,
    RetryPolicy,
    SetupSpec,
    Step,
    Workflow,
)
from treeflow.core.setup_copy import pattern_problem
from treeflow.core.spec_expressions import ExpressionReader
from treeflow.core.spec_fix_loop import WrittenLoop, check_fix_loops, fixer_ids, read_on_failure
from treeflow.core.spec_keys import (
    APPROVE_KEYS,
    CACHE_KEYS,
    DEFAULTS_KEYS,
    POOL_KEYS,
    RESOURCE_KEYS,
    RETRY_KEYS,
    SETUP_KEYS,
    WORKFLOW_KEYS,
    names,
)
from treeflow.core.spec_matrix import read_matrix, written_keys
from treeflow.core.spec_reader import SpecError, SpecReader
from treeflow.quoting import quoted

# libyaml's loader parses ten times faster than the pure-Python one and keeps node positions.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STEP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Far above any real workflow, and small enough that parsing one stays quick and light.
MAX_WORKFLOW_BYTES = 1024 * 1024

_TOP_KEYS = names(WORKFLOW_KEYS)
_DEFAULT_KEYS = names(DEFAULTS_KEYS)
_RETRY_KEYS = names(RETRY_KEYS)
_SETUP_KEYS = names(SETUP_KEYS)
_POOL_KEYS = names(POOL_KEYS)
_APPROVE_KEYS = names(APPROVE_KEYS)
_CACHE_KEYS = names(CACHE_KEYS)
_RESOURCE_KEYS = names(RESOURCE_KEYS)
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{prefix}b": 1000**power for power, prefix in enumerate("kmgt", 1)},
    **{f"{prefix}ib": 1024**power for power, prefix in enumerate("kmgt", 1)},
}


class WorkflowError(Exception):
    """A workflow file that cannot be run; ``errors`` holds every problem found, in file order."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.line, e.column))
        super().__init__("\n".join(str(e) for e in self.errors))


def load_workflow(path: Path) -> Workflow:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_WORKFLOW_BYTES + 1)
    except OSError as exc:
        raise WorkflowError([SpecError(path, 1, 1, f"cannot read workflow file: {exc}")]) from exc
    if len(data) > MAX_WORKFLOW_BYTES:
        raise WorkflowError([_too_large(path)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        valid = data[: exc.start].decode("utf-8")
        line, column = _line_column(valid, len(valid))
        message = f"not UTF-8 text: {exc.reason} (byte 0x{data[exc.start]:02x})"
        raise WorkflowError([SpecError(path, line, column, message)]) from exc
    return parse_workflow(text, path)


def parse_workflow(text: str, path: Path) -> Workflow:
    return _Parser(path, text).parse(text)


class _Parser(SpecReader):
    def __init__(self, path: Path, text: str) -> None:
        super().__init__(path)
        self.expressions = ExpressionReader(path, text)
        # The combinations of each step with a `matrix:`, and the keys its matrix names, by step id.
        self.matrices: dict[str, list[dict[str, str]]] = {}
        self.matrix_keys: dict[str, tuple[str, ...]] = {}
        # Each step's `on_failure:` as written, by step id.
        self.fix_loops: dict[str, WrittenLoop] = {}

    def parse(self, text: str) -> Workflow:
        if len(text) > MAX_WORKFLOW_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_WORKFLOW_BYTES:
            raise WorkflowError([_too_large(self.path)])
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
        self.errors.extend(self.expressions.errors)
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
        pool = self.pool(fields.get("pool"))
        executor = self.optional(fields, "executor", lambda n: self.executor(n, "executor"))
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
            pool=pool,
            executor=executor,
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
        for value, item in self.string_list(fields["copy"], "setup.copy") if "copy" in fields else []:
            problem = pattern_problem(value)
            if problem is None:
                copy.append(value)
            else:
                self.error(item, f"setup.copy: {quoted(value)!r} {problem}")
        run = self.optional(fields, "run", lambda n: self.command(n, "setup.run"))
        when_changed = self.patterns(fields, "when_changed", "setup.when_changed")
        if when_changed and run is None:
            self.error(fields["when_changed"], "setup.when_changed needs a setup.run to decide about")
        return SetupSpec(copy=tuple(copy), run=run, when_changed=when_changed)

    def pool(self, node: yaml.Node | None) -> PoolSettings:
        if node is None:
            return PoolSettings()
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return PoolSettings(enabled=bool(self.boolean(node, "pool")))
        fields = self.mapping(node, "pool (false, or a mapping)", _POOL_KEYS)
        if fields is None:
            return PoolSettings()
        size = self.optional(fields, "size", lambda n: self.integer(n, "pool.size", 0))
        idle = self.optional(fields, "idle", lambda n: self.duration(n, "pool.idle"))
        return PoolSettings(
            enabled=size != 0,
            size=size or None,
            idle_s=PoolSettings.idle_s if idle is None else idle,
            keep=self.patterns(fields, "keep", "pool.keep"),
        )

    def patterns(self, fields: dict[str, yaml.Node], key: str, what: str) -> tuple[str, ...]:
        """Paths or globs relative to the repository root, as `setup.copy` takes them."""
        chosen = []
        for value, item in self.string_list(fields[key], what) if key in fields else []:
            problem = pattern_problem(value)
            if problem is None:
                chosen.append(value)
            else:
                self.error(item, f"{what}: {quoted(value)!r} {problem}")
        return tuple(chosen)

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
                    f"bad step id {quoted(repr(step_id))}: use 1 to 64 letters, digits, '-' or '_'",
                )
            elif step_id.startswith("-"):
                # Ids become branch names and command arguments, where a leading '-' reads as an option.
                self.error(
                    key_nodes[step_id], f"bad step id {quoted(repr(step_id))}: it cannot start with '-'"
                )
            step, needs = self.step(step_id, step_node, defaults, key_nodes[step_id].start_mark.line + 1)
            need_nodes[step_id] = needs
            if step is not None:
                steps[step_id] = step
        self.check_case_collisions(entries, key_nodes)
        self.check_needs(entries, need_nodes, key_nodes)
        check_fix_loops(self, steps, self.fix_loops, need_nodes, self.matrix_keys, entries)
        self.expressions.check_references(
            {step_id: tuple(name for name, _ in names) for step_id, names in need_nodes.items()},
            entries,
            self.matrix_keys,
            fixer_ids(steps),
        )
        return expand(steps, self.matrices)

    def check_case_collisions(self, entries: dict[str, yaml.Node], key_nodes: dict[str, yaml.Node]) -> None:
        """Ids are branch names, and branches equal but for case collide on case-insensitive file systems."""
        first_by_folded: dict[str, str] = {}
        for step_id in entries:
            first = first_by_folded.setdefault(step_id.casefold(), step_id)
            if first != step_id:
                self.error(
                    key_nodes[step_id],
                    f"step id `{quoted(step_id)}` differs from `{quoted(first)}` only in case; "
                    "their branches would collide where file names ignore case",
                )

    def step(
        self, step_id: str, node: yaml.Node, defaults: Step, line: int
    ) -> tuple[Step | None, list[tuple[str, yaml.Node]]]:
        what = f"step `{quoted(step_id)}`"
        fields = self.mapping(node, what, (*kinds.KINDS, *kinds.COMMON_STEP_KEYS))
        if fields is None:
            return None, []
        kind, spec = self.kind(node, fields, what)
        needs = self.string_list(fields["needs"], f"{what}: needs") if "needs" in fields else []
        timeout = self.optional(fields, "timeout", lambda n: self.duration(n, f"{what}: timeout"))
        retry = self.optional(fields, "retry", lambda n: self.retry(n, f"{what}: retry", defaults.retry))
        env = self.optional(fields, "env", lambda n: self.env(n, f"{what}: env")) or {}
        worktree = self.optional(fields, "worktree", lambda n: self.boolean(n, f"{what}: worktree"))
        condition = self.optional(fields, "if", lambda n: self.expressions.condition(step_id, n, what))
        if "matrix" in fields:
            self.matrix_keys[step_id] = written_keys(fields["matrix"])
            made = read_matrix(self, step_id, fields["matrix"], what)
            if made is not None:
                self.matrices[step_id] = made
        gate = self.optional(fields, "approve", lambda n: self.gate(n, f"{what}: approve"))
        cache = self.cache(fields.get("cache"), what)
        if cache is not None and not (defaults.worktree if worktree is None else worktree):
            self.error(fields["cache"], f"{what}: cache needs a worktree of its own, not `worktree: false`")
        executor = self.optional(fields, "executor", lambda n: self.executor(n, f"{what}: executor"))
        resources = self.optional(fields, "resources", lambda n: self.resources(n, f"{what}: resources"))
        written_loop = self.optional(fields, "on_failure", lambda n: read_on_failure(self, n, what))
        if written_loop is not None:
            self.fix_loops[step_id] = written_loop
        for key in (*(key for key in fields if key in kinds.KINDS), "env", "approve"):
            if key in fields:
                self.expressions.templates(step_id, fields[key], f"{what}: {key}")
        step = Step(
            id=step_id,
            kind=kind,
            spec=spec,
            needs=tuple(dict.fromkeys(name for name, _ in needs)),
            timeout_s=defaults.timeout_s if timeout is None else timeout,
            retry=retry or defaults.retry,
            worktree=defaults.worktree if worktree is None else worktree,
            env=env,
            line=line,
            condition=condition,
            gate=gate,
            cache=cache,
            executor=executor,
            resources=resources or Resources(),
            on_failure=None if written_loop is None else written_loop.loop,
        )
        return step, needs

    def gate(self, node: yaml.Node, what: str) -> Gate | None:
        """`approve: "Deploy?"` or `approve: {message: "Deploy?", timeout: 1h}`."""
        if isinstance(node, yaml.ScalarNode):
            message = self.command(node, f"{what} (its message)")
            return None if message is None else Gate(message)
        fields = self.mapping(node, f"{what} (a message, or a mapping)", _APPROVE_KEYS)
        if fields is None:
            return None
        if "message" not in fields:
            self.error(node, f"{what} needs `message:`, the question a person answers")
            return None
        message = self.command(fields["message"], f"{what}.message")
        timeout = self.optional(fields, "timeout", lambda n: self.duration(n, f"{what}.timeout"))
        return None if message is None else Gate(message, timeout)

    def cache(self, node: yaml.Node | None, what: str) -> CacheSpec | None:
        """`cache: true` (the whole tree), `false`, or `{inputs: [...]}`."""
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
            return CacheSpec() if self.boolean(node, f"{what}: cache") else None
        fields = self.mapping(node, f"{what}: cache (true, false, or a mapping)", _CACHE_KEYS)
        if fields is None:
            return None
        if "inputs" not in fields:
            self.error(node, f"{what}: cache needs `inputs` (or write `cache: true` for the whole tree)")
            return None
        return CacheSpec(inputs=self.patterns(fields, "inputs", f"{what}: cache.inputs"))

    def executor(self, node: yaml.Node, what: str) -> str | None:
        value = self.string(node, what)
        if value is not None and value not in EXECUTORS:
            self.error(node, f"{what} must be `local` or `dask`, not {quoted(repr(value))}")
            return None
        return value

    def resources(self, node: yaml.Node, what: str) -> Resources | None:
        fields = self.mapping(node, what, _RESOURCE_KEYS)
        if fields is None:
            return None
        cpu = self.optional(fields, "cpu", lambda n: self.integer(n, f"{what}.cpu", 1))
        gpu = self.optional(fields, "gpu", lambda n: self.integer(n, f"{what}.gpu", 1))
        memory = self.optional(fields, "memory", lambda n: self.size(n, f"{what}.memory"))
        return Resources(cpu=cpu, gpu=gpu, memory=memory)

    def size(self, node: yaml.Node, what: str) -> int | None:
        """A number of bytes: a whole number, or a number with a unit (``512MiB``, ``8GiB``, ``2GB``)."""
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            return self.integer(node, what, 1)
        text = self.scalar(node, what, ("tag:yaml.org,2002:str",), "a size such as 512MiB or 8GiB")
        if text is None:
            return None
        match = _SIZE.fullmatch(text)
        if match is None:
            self.error(node, f"{what}: bad size {quoted(repr(text))} (write 512MiB, 8GiB, 2GB or bytes)")
            return None
        amount = int(float(match[1]) * _SIZE_UNITS[(match[2] or "").lower()])
        if amount < 1:
            self.error(node, f"{what} must be at least one byte")
            return None
        return amount

    def kind(self, node: yaml.Node, fields: dict[str, yaml.Node], what: str) -> tuple[str, object]:
        """The step's kind key and the kind's reading of its block; each kind block is read, so that
        its errors are reported even when the step has more than one."""
        present = [key for key in fields if key in kinds.KINDS]
        specs = [kinds.kind_for(key).parse(fields[key], self, what) for key in present]
        if not present:
            choices = [f"`{key}:` ({kind.summary})" for key, kind in kinds.KINDS.items()]
            listed = " or ".join([", ".join(choices[:-1]), choices[-1]] if len(choices) > 1 else choices)
            self.error(node, f"{what} needs {listed}")
            return "", None
        if len(present) > 1:
            keys = [f"`{key}:`" for key in present]
            listed = ("both " if len(keys) == 2 else "") + ", ".join(keys[:-1]) + " and " + keys[-1]
            self.error(fields[present[1]], f"{what} has {listed}; give it one of them")
        return present[0], specs[0]

    def check_needs(
        self,
        entries: dict[str, yaml.Node],
        need_nodes: dict[str, list[tuple[str, yaml.Node]]],
        key_nodes: dict[str, yaml.Node],
    ) -> None:
        for step_id, needs in need_nodes.items():
            for name, name_node in needs:
                if name == step_id:
                    self.error(name_node, f"step `{quoted(step_id)}` needs itself")
                elif name not in entries:
                    self.error(name_node, _unknown_step(name, step_id, list(entries)))
        graph = {
            step_id: [name for name, _ in needs if name in entries and name != step_id]
            for step_id, needs in need_nodes.items()
        }
        for cycle in find_cycles(graph):
            first, second = cycle[0], cycle[1]
            at = next((n for name, n in need_nodes[first] if name == second), key_nodes[first])
            self.error(at, "dependency cycle: " + quoted(" -> ".join(cycle)))


def _too_large(path: Path) -> SpecError:
    limit = f"{MAX_WORKFLOW_BYTES // (1024 * 1024)} MiB"
    return SpecError(path, 1, 1, f"the file is larger than {limit}, too large to be a workflow")


def _line_column(text: str, position: int) -> tuple[int, int]:
    before = text[:position].removeprefix("\ufeff")  # a byte-order mark is not a column
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _unknown_step(name: str, step_id: str, known: list[str]) -> str:
    message = f"step `{quoted(step_id)}` needs unknown step `{quoted(name)}`"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"{message}; did you mean `{quoted(close[0])}`?" if close else message


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
