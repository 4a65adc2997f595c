"""The messages between `treeflow serve` and its clients, as typed classes, and their JSON form.

editor-client/src/protocol.ts mirrors these classes interface for interface (the run object is
`Run` there); tests/lsp/test_protocol_drift.py fails when the two differ. Command arguments,
results and notification parameters have camelCase keys, as LSP's own messages do; the run object
keeps the snake_case keys of the CLI's `--json` result, which it extends.

Arguments come from any client, so they are checked strictly (a string where a list belongs is
an error, not a list of characters) and every refusal names the command and the field.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from treeflow.core.apply import ApplyMode, ApplyOutcome, ConflictPolicy
from treeflow.core.events import OutputStream
from treeflow.core.gates import Channel, Decision
from treeflow.core.model import ChangeStatus, RunResult, RunStatus, StepStatus

__all__ = [
    "AgentState",
    "AgentTranscript",
    "ApplyArgs",
    "ApplyMode",
    "ApplyOutcome",
    "ApplyResult",
    "ApprovalState",
    "ApproveArgs",
    "ApproveResult",
    "ArgumentError",
    "CancelResult",
    "ChangeStatus",
    "Channel",
    "ConflictPolicy",
    "Decision",
    "DiffArgs",
    "DiffResult",
    "DiscardArgs",
    "DiscardBranch",
    "DiscardResult",
    "FileChange",
    "FileConflict",
    "FileContent",
    "InitWorkflowArgs",
    "InitWorkflowResult",
    "InitializationOptions",
    "LogParams",
    "OutputStream",
    "ReadFileArgs",
    "ResumeArgs",
    "RoundState",
    "RunArgs",
    "RunIdArgs",
    "RunPayload",
    "RunStarted",
    "RunStatus",
    "RunUpdatedParams",
    "StepArgs",
    "StepState",
    "StepStatus",
    "UndoArgs",
    "UndoResult",
    "WorkflowInfo",
    "done_steps",
    "parse_argument",
    "read_initialization_options",
    "run_payload",
    "to_json",
    "wire_names",
]

RUN_UPDATED = "treeflow/runUpdated"
LOG = "treeflow/log"

T = TypeVar("T")


def _doc(text: str) -> dict[str, str]:
    """Field metadata: what the field holds, in the words of the error a client gets without it."""
    return {"doc": text}


# Command arguments and results


@attrs.frozen
class RunArgs:
    """`treeflow.run`."""

    workflow: str = attrs.field(metadata=_doc("the URI or path of a workflow file"))
    steps: list[str] = attrs.field(factory=list, metadata=_doc("a list of step ids"))


@attrs.frozen
class RunIdArgs:
    """`treeflow.cancel` and `treeflow.getRun`."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))


@attrs.frozen
class ResumeArgs:
    """`treeflow.resume`: ``rebase`` starts the steps that run again from the checkout as it is now
    instead of the run's base."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    rebase: bool = attrs.field(default=False, metadata=_doc("true or false"))


@attrs.frozen
class StepArgs:
    """`treeflow.agentTranscript`."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    step_id: str = attrs.field(metadata=_doc("the id of a step of that run"))


@attrs.frozen
class ApproveArgs:
    """`treeflow.approve`: decide the approval gate ``stepId`` of run ``runId`` waits at;
    ``approve`` false rejects it, ``message`` says why."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    step_id: str = attrs.field(metadata=_doc("the id of a step waiting for approval"))
    approve: bool = attrs.field(metadata=_doc("true to approve, false to reject"))
    message: str | None = attrs.field(default=None, metadata=_doc("a string"))


@attrs.frozen
class AgentTranscript:
    """An agent step's log as Markdown: what the agent said, its tool calls and their results, its totals."""

    markdown: str


@attrs.frozen
class RunStarted:
    run_id: str


@attrs.frozen
class CancelResult:
    """False when the run had already ended."""

    cancelled: bool


@attrs.frozen
class InitWorkflowArgs:
    """`treeflow.initWorkflow`: a starter treeflow.yml in ``folder``, a workspace folder (the
    first one when absent)."""

    folder: str | None = attrs.field(default=None, metadata=_doc("the URI or path of a workspace folder"))


@attrs.frozen
class InitWorkflowResult:
    """``created`` is false when the folder had a workflow already: ``uri`` is that file, unchanged.
    ``sources`` names what the starter's steps were read from; empty when nothing was found."""

    uri: str
    created: bool
    steps: list[str]
    sources: list[str]


@attrs.frozen
class WorkflowInfo:
    uri: str
    name: str
    steps: list[str]
    errors: list[str]
    # What each step needs, by the ids written in the file; empty for a workflow with errors.
    needs: dict[str, list[str]] = attrs.field(factory=dict)


# The run object


@attrs.frozen
class AgentState:
    """What an agent CLI's stream said of a step's agent: its session, turns, tokens, cost (null
    where the CLI reports none), while it runs what it is doing, and the last thing it said."""

    cli: str
    session_id: str | None
    turns: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    action: str | None
    last_message: str | None


@attrs.frozen
class RoundState:
    """One round of a step's fix loop (`on_failure:`): the step's run, and its fixer's when that
    run failed with rounds left; the round's work is on ``branch``."""

    round: int
    of: int
    status: StepStatus
    exit_code: int | None
    error: str | None
    fixer: str | None
    fix_status: StepStatus | None
    fix_error: str | None
    branch: str | None
    commit: str | None
    started_at: str | None
    ended_at: str | None


@attrs.frozen
class ApprovalState:
    """A step's approval gate: the question, when it was asked and until when, and once decided,
    the decision (approved, rejected, timed_out, withdrawn), who made it, where, when and why."""

    message: str
    requested_at: str | None
    expires_at: str | None
    decision: Decision | None
    decided_by: str | None
    via: Channel | None
    decided_at: str | None
    note: str | None


@attrs.frozen
class ApproveResult:
    """The decision as recorded; ``resumed`` when no process was waiting at the gate, so that the
    server resumed the run to act on it."""

    approval: ApprovalState
    resumed: bool


@attrs.frozen
class StepState:
    status: StepStatus
    attempts: int
    exit_code: int | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    branch: str | None
    commit: str | None
    log: str | None
    error: str | None
    progress: float | None
    message: str | None
    summary: str | None
    agent: AgentState | None
    outputs: dict[str, str] = attrs.field(factory=dict)
    approval: ApprovalState | None = None
    cached_from: str | None = None
    rounds: list[RoundState] = attrs.field(factory=list)


@attrs.frozen
class RunPayload:
    """A run as the CLI's `--json` result has it, plus counts, why it could not start, and whether
    it is being cancelled (asked to stop, and stopping its steps: still `running` until they end)."""

    run_id: str
    workflow: str
    workflow_path: str
    status: RunStatus
    base_commit: str | None
    result_branch: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float | None
    steps: dict[str, StepState]
    warnings: list[str]
    done: int
    total: int
    error: str | None
    cancelling: bool = False


# What a client says of itself in `initialize`


@attrs.frozen
class InitializationOptions:
    """`initializationOptions`. ``shows_run_progress``: the client shows each run's progress itself,
    from `treeflow/runUpdated`, so the server sends no work-done progress for runs."""

    shows_run_progress: bool = False


def read_initialization_options(raw: object) -> tuple[InitializationOptions, list[str]]:
    """The options a client sent, and what in them was not understood. Any client may send
    anything here (other servers' options included), so unknown keys are left alone and a value of
    the wrong type falls back to the default, said in the second item."""
    if raw is None:
        return InitializationOptions(), []
    if not isinstance(raw, dict):
        return InitializationOptions(), [
            f"initializationOptions: an object expected, not {type(raw).__name__}"
        ]
    shows = raw.get("showsRunProgress", False)
    if not isinstance(shows, bool):
        return InitializationOptions(), ["initializationOptions.showsRunProgress: true or false expected"]
    return InitializationOptions(shows_run_progress=shows), []


# Notifications


@attrs.frozen
class RunUpdatedParams:
    """`treeflow/runUpdated`."""

    run: RunPayload


@attrs.frozen
class LogParams:
    """`treeflow/log`: whole lines of one step's output, all from one stream."""

    run_id: str
    step_id: str
    text: str
    stream: OutputStream = OutputStream.STDOUT


# Reviewing and applying a run's work: the same semantics as `treeflow diff`, `apply`, `discard`


@attrs.frozen
class DiffArgs:
    """`treeflow.diff`: what the run's result changed since the run's base; with ``steps``, what
    the work of those steps, merged, changed."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    steps: list[str] = attrs.field(factory=list, metadata=_doc("a list of step ids"))


@attrs.frozen
class FileChange:
    path: str
    old_path: str | None
    status: ChangeStatus
    additions: int
    deletions: int
    binary: bool


@attrs.frozen
class DiffResult:
    """``commit`` against ``base``, both full commit ids; paths are relative to ``root``, the
    repository's folder."""

    run_id: str
    steps: list[str]
    root: str
    base: str
    commit: str
    additions: int
    deletions: int
    files: list[FileChange]


@attrs.frozen
class ApplyArgs:
    """`treeflow.apply`."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    steps: list[str] = attrs.field(factory=list, metadata=_doc("a list of step ids"))
    mode: ApplyMode = attrs.field(
        default=ApplyMode.WORKING_TREE, metadata=_doc("working-tree, squash or merge")
    )
    conflicts: ConflictPolicy = attrs.field(default=ConflictPolicy.REFUSE, metadata=_doc("refuse or markers"))


@attrs.frozen
class FileConflict:
    """A file the work conflicts in, and the steps of the run that changed it."""

    path: str
    steps: list[str]


@attrs.frozen
class ApplyResult:
    """``files`` were written or removed; ``conflicts`` refused the apply (outcome `conflicts`:
    nothing changed) or got conflict markers; ``backup`` holds the checkout as it was."""

    outcome: ApplyOutcome
    mode: ApplyMode
    work: str
    files: list[str]
    conflicts: list[FileConflict]
    conflicts_with: str
    backup: str | None
    commit: str | None


@attrs.frozen
class UndoArgs:
    """`treeflow.undoApply`: the newest apply in the workspace's repositories; with ``runId``, the
    newest in that run's repository, which must be an apply of that run."""

    run_id: str | None = attrs.field(default=None, metadata=_doc("the id of a run"))


@attrs.frozen
class UndoResult:
    backup: str
    work: str
    files: list[str]
    head: str | None


@attrs.frozen
class DiscardArgs:
    """`treeflow.discard`: without ``confirmed``, only the plan; with it (branch name to the tip
    the plan showed), deletes those branches, each only if still at that tip."""

    run_id: str = attrs.field(metadata=_doc("the id of a run"))
    confirmed: dict[str, str] | None = attrs.field(
        default=None, metadata=_doc("an object of branch names to commit ids")
    )


@attrs.frozen
class DiscardBranch:
    """``uniqueCommits``: `<short id> <subject>` of each commit found nowhere outside the run."""

    name: str
    tip: str
    unique_commits: list[str]
    checked_out: bool


@attrs.frozen
class DiscardResult:
    run_id: str
    branches: list[DiscardBranch]
    discarded: bool
    deleted: list[str]
    kept: list[str]


@attrs.frozen
class ReadFileArgs:
    """`treeflow.readFile`: ``path``, a file of a workspace repository, as it is at ``rev``."""

    rev: str = attrs.field(metadata=_doc("a commit id"))
    path: str = attrs.field(metadata=_doc("the path of a file in a repository of the workspace"))


@attrs.frozen
class FileContent:
    """``text`` is null when the revision has no such file, or holds a binary or too large one."""

    exists: bool
    binary: bool
    size: int
    text: str | None


# The CLI's result object, which the run object extends, has snake_case keys.
_SNAKE_CASE: frozenset[type] = frozenset({AgentState, ApprovalState, RoundState, StepState, RunPayload})


def run_payload(run: RunResult, error: str | None = None, *, cancelling: bool = False) -> RunPayload:
    """The run object of ``run``; ``error`` says why it could not start, ``cancelling`` that a
    cancel is stopping it (said only while it is still running).

    Built from the CLI's result object, so that the two cannot differ: a key added there and not
    here is a TypeError at once.
    """
    data = run.to_json()
    steps = {
        step_id: StepState(
            **{
                **step,
                "status": StepStatus(step["status"]),
                "agent": None if step["agent"] is None else AgentState(**step["agent"]),
                "rounds": [_round_state(fix_round) for fix_round in step["rounds"]],
                "approval": approval_state(step["approval"]),
            }
        )
        for step_id, step in data.pop("steps").items()
    }
    data["status"] = RunStatus(data["status"])
    return RunPayload(
        **data,
        steps=steps,
        done=done_steps(run),
        total=len(steps),
        error=error,
        cancelling=cancelling and run.status is RunStatus.RUNNING,
    )


def done_steps(run: RunResult) -> int:
    """The steps that have ended by themselves: a step the run stopped (`cancelled`) is not done."""
    return sum(
        1 for step in run.steps.values() if step.status.is_final and step.status is not StepStatus.CANCELLED
    )


def _round_state(fix_round: dict[str, Any]) -> RoundState:
    fix_status = fix_round["fix_status"]
    return RoundState(
        **{
            **fix_round,
            "status": StepStatus(fix_round["status"]),
            "fix_status": None if fix_status is None else StepStatus(fix_status),
        }
    )


def approval_state(data: dict[str, Any] | None) -> ApprovalState | None:
    """The approval object of an approval's JSON form (`Approval.to_json`)."""
    if data is None:
        return None
    return ApprovalState(
        **{
            **data,
            "decision": None if data["decision"] is None else Decision(data["decision"]),
            "via": None if data["via"] is None else Channel(data["via"]),
        }
    )


def to_json(message: object) -> Any:
    """The JSON form of a protocol message (or a list of them), as it goes on the wire."""
    return _CONVERTER.unstructure(message)


class ArgumentError(ValueError):
    """A command's argument is missing or malformed; the message says what the client must send."""


def parse_argument(command: str, cls: type[T], arguments: Sequence[object]) -> T:
    """The single object argument of ``command`` as a ``cls``."""
    if len(arguments) != 1 or not isinstance(arguments[0], dict):
        raise ArgumentError(f"{command} takes one argument, an object {_shape(cls)}")
    # null counts as absent, so an optional field may be sent as null.
    given = {key: value for key, value in arguments[0].items() if value is not None}
    for field in _fields(cls):
        name = _wire_name(cls, field.name)
        if field.default is attrs.NOTHING and given.get(name) in (None, ""):
            doc = field.metadata.get("doc")
            raise ArgumentError(f"{command} needs `{name}`" + (f": {doc}" if doc else ""))
    try:
        return _CONVERTER.structure(given, cls)
    except ClassValidationError as exc:
        raise ArgumentError(f"{command}: {_what_is_wrong(cls, exc)}") from exc


def wire_names(cls: type) -> list[str]:
    """The JSON keys of a protocol class, in order."""
    return [_wire_name(cls, field.name) for field in _fields(cls)]


def _fields(cls: type) -> tuple[attrs.Attribute[Any], ...]:
    return typing.cast("tuple[attrs.Attribute[Any], ...]", attrs.fields(cls))


def _wire_name(cls: type, name: str) -> str:
    if cls in _SNAKE_CASE:
        return name
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _shape(cls: type) -> str:
    """``{workflow, steps?}``: the keys of an argument, optional ones marked."""
    keys = [
        _wire_name(cls, field.name) + ("" if field.default is attrs.NOTHING else "?")
        for field in _fields(cls)
    ]
    return "{" + ", ".join(keys) + "}"


def _what_is_wrong(cls: type, error: ClassValidationError) -> str:
    fields = {field.name: field for field in _fields(cls)}
    annotations = typing.get_type_hints(cls)
    for cause in error.exceptions:
        for note in getattr(cause, "__notes__", ()):
            field = fields.get(getattr(note, "name", ""))
            if field is not None:
                what = str(field.metadata.get("doc") or _describe(annotations[field.name]))
                return f"`{_wire_name(cls, field.name)}` must be {what}"
    return str(error)


def _describe(annotation: object) -> str:
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return f"a list of {_describe(item)}s"
    return _TYPE_WORDS.get(annotation, str(annotation))


_TYPE_WORDS: dict[object, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _exactly(kind: type, *also: type) -> Callable[[object, type], object]:
    """A structure hook that takes values of ``kind`` as they are and refuses anything else
    (cattrs would otherwise call ``str(5)`` or ``bool("no")``)."""

    def structure(value: object, _: type) -> object:
        # bool is a subclass of int, but `true` is no count.
        if isinstance(value, (kind, *also)) and isinstance(value, bool) == (kind is bool):
            return value
        raise TypeError(f"expected {_describe(kind)}, got {type(value).__name__}")

    return structure


def _enum_value(value: object, kind: type[StrEnum]) -> StrEnum:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return kind(value)


def _is_list(annotation: object) -> bool:
    return typing.get_origin(annotation) is list


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _exactly(str))
    converter.register_structure_hook(bool, _exactly(bool))
    converter.register_structure_hook(int, _exactly(int))
    converter.register_structure_hook(float, _exactly(float, int))
    # Registered for StrEnum, which comes before str in an enum's MRO: the str hook would take
    # any string as, say, an ApplyMode.
    converter.register_structure_hook(StrEnum, _enum_value)

    def structure_list(value: object, annotation: type) -> list[object]:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(annotation)
        return [converter.structure(element, item) for element in value]

    converter.register_structure_hook_func(_is_list, structure_list)

    def renamed(cls: type) -> dict[str, Any]:
        return {field.name: override(rename=_wire_name(cls, field.name)) for field in _fields(cls)}

    converter.register_structure_hook_factory(
        attrs.has, lambda cls: make_dict_structure_fn(cls, converter, **renamed(cls))
    )
    converter.register_unstructure_hook_factory(
        attrs.has, lambda cls: make_dict_unstructure_fn(cls, converter, **renamed(cls))
    )
    return converter


_CONVERTER = _make_converter()
