"""What `needs`, `env` and `matrix` mean in a step's expressions: the checks the workflow parser
makes of each reference, and the values a running step's condition and templates see.

References a step may make:

    needs.<step>.status            how a step it needs ended: succeeded, failed, skipped, …
    needs.<step>.outputs.<name>    an output that step wrote (the empty text if it wrote none)
    env.<NAME>                     a variable of the step's environment (empty if unset)
    matrix.<key>                   a value of the step's matrix (only in a step with `matrix:`)
    failure.<field>                the failure a fixer is fixing (only in a fixer step; see
                                   `treeflow.core.fix_loop.FAILURE_FIELDS`)

A condition without a status function is taken as `success() && (condition)`, as GitHub Actions
does, so a step whose needs failed is skipped unless its `if:` says otherwise.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from treeflow.core.expressions import (
    Condition,
    ExpressionError,
    Reference,
    Value,
    calls_status_function,
    evaluate,
    truthy,
)
from treeflow.core.model import StepResult, StepStatus
from treeflow.core.step_outputs import OUTPUT_NAME, OUTPUT_NAME_RULE
from treeflow.core.templates import render
from treeflow.quoting import quoted

CONTEXTS = ("needs", "env", "matrix", "failure")
FAILURE_FIELDS = ("step", "exit_code", "error", "log_tail", "round")
"""What a fixer reads of the failure it fixes: the id of the step that failed, its exit code (empty
when it had none), why it failed, the last lines of its output in that round, and the round's number."""
_FAILED = (StepStatus.FAILED, StepStatus.TIMED_OUT)


def reference_problem(
    reference: Reference,
    *,
    step_id: str,
    needs: Collection[str],
    steps: Collection[str],
    matrix: Collection[str] | None = None,
    fixer: bool = False,
) -> str | None:
    """What is wrong with ``reference`` in step ``step_id`` of a workflow of ``steps``, or None.
    ``matrix`` is the step's matrix keys, None for a step without a matrix; ``fixer``, whether the
    step runs as another's fixer (`on_failure.run_step`), which alone may read `failure.*`."""
    path = reference.path
    head = path[0]
    if head == "needs":
        return _needs_problem(path, step_id, needs, steps)
    if head == "env":
        return None if len(path) == 2 else "write `env.<NAME>` to read a variable"
    if head == "matrix":
        if matrix is None:
            return f"`{quoted(reference.text)}`: step `{quoted(step_id)}` has no `matrix:`"
        if len(path) != 2:
            return "write `matrix.<key>` to read a value of the step's matrix"
        if path[1] not in matrix:
            message = f"unknown matrix key `{quoted(path[1])}` (keys: {', '.join(matrix) or 'none'})"
            close = difflib.get_close_matches(path[1], list(matrix), n=1, cutoff=0.6)
            return f"{message}; did you mean `{quoted(close[0])}`?" if close else message
        return None
    if head == "failure":
        if not fixer:
            return (
                f"`{quoted(reference.text)}`: only a fixer (a step named by an `on_failure.run_step`) "
                "reads `failure.*`"
            )
        if len(path) != 2 or path[1] not in FAILURE_FIELDS:
            fields = ", ".join(f"`failure.{name}`" for name in FAILURE_FIELDS)
            return f"`{quoted(reference.text)}`: a fixer reads {fields}"
        return None
    contexts = ", ".join(f"`{name}`" for name in CONTEXTS)
    return f"unknown name `{quoted(head)}`: an expression reads {contexts}, or calls a status function"


def _needs_problem(
    path: tuple[str, ...], step_id: str, needs: Collection[str], steps: Collection[str]
) -> str | None:
    if len(path) < 2:
        return "write `needs.<step>.status` or `needs.<step>.outputs.<name>`"
    need = path[1]
    if need not in steps:
        message = f"unknown step `{quoted(need)}` in `needs.{quoted(need)}`"
        close = difflib.get_close_matches(need, list(steps), n=1, cutoff=0.6)
        return f"{message}; did you mean `{quoted(close[0])}`?" if close else message
    if need not in needs:
        return (
            f"`needs.{quoted(need)}`: step `{quoted(step_id)}` does not need `{quoted(need)}`; "
            "add it to its `needs:`"
        )
    rest = path[2:]
    if rest == ("status",):
        return None
    if len(rest) == 2 and rest[0] == "outputs":
        if OUTPUT_NAME.fullmatch(rest[1]):
            return None
        return f"bad output name {quoted(repr(rest[1]))}: use {OUTPUT_NAME_RULE}"
    return f"write `needs.{quoted(need)}.status` or `needs.{quoted(need)}.outputs.<name>`"


@dataclass
class StepContext:
    """The values a step's expressions see as it is about to start.

    ``needs`` holds the results of the steps it needs, ``before`` the statuses of every step it
    needs directly or not, and ``stopping`` whether fail-fast is stopping the run.
    """

    step_id: str
    needs: Mapping[str, StepResult]
    before: Mapping[str, StepStatus]
    env: Mapping[str, str]
    stopping: bool = False
    matrix: Mapping[str, str] | None = None
    # The failure a fixer is fixing, by `FAILURE_FIELDS` name; None for any other step.
    failure: Mapping[str, str] | None = None
    # References to outputs their step did not write, in the order they were read.
    missing: list[str] = field(default_factory=list)

    def status(self, function: str) -> bool:
        if function == "always":
            return True
        if function == "cancelled":
            return self.stopping
        if function == "failure":
            return any(status in _FAILED for status in self.before.values())
        if function == "success":
            return not self.stopping and all(status.is_success for status in self.before.values())
        raise ExpressionError(f"unknown function `{quoted(function)}`", 0)

    def lookup(self, reference: Reference) -> Value:
        problem = reference_problem(
            reference,
            step_id=self.step_id,
            needs=self.needs,
            steps=self.needs,
            matrix=None if self.matrix is None else list(self.matrix),
            fixer=self.failure is not None,
        )
        if problem is not None:
            raise ExpressionError(problem, reference.offset)
        path = reference.path
        if path[0] == "failure":
            assert self.failure is not None
            return self.failure.get(path[1], "")
        if path[0] == "env":
            return self.env.get(path[1], "")
        if path[0] == "matrix":
            assert self.matrix is not None
            return self.matrix[path[1]]
        result = self.needs[path[1]]
        if path[2] == "status":
            # Where a success came from does not change what a condition means.
            return StepStatus.SUCCEEDED.value if result.status.is_success else result.status.value
        value = result.outputs.get(path[3])
        if value is None:
            self.missing.append(reference.text)
            return ""
        return value

    def holds(self, condition: Condition | None) -> bool:
        """Whether a step with ``condition`` (None: no `if:`) runs. Raises ExpressionError."""
        if condition is None:
            return self.status("success")
        expression = condition.expression
        if not calls_status_function(expression) and not self.status("success"):
            return False
        return truthy(evaluate(expression, self))

    def render(self, text: str) -> str:
        """``text`` with its templates replaced by their values. Raises ExpressionError."""
        return render(text, lambda expression: evaluate(expression, self))

    def render_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {name: self.render(value) for name, value in env.items()}

    def render_spec(self, spec: object) -> object:
        """A step kind's spec with the templates in its texts replaced: each text field of a frozen
        dataclass, of a tuple or mapping in one, and of a dataclass inside it."""
        return _rendered(spec, self.render)


def _rendered(value: Any, render_text: Any) -> Any:
    if isinstance(value, str):
        return render_text(value)
    if isinstance(value, tuple):
        return tuple(_rendered(item, render_text) for item in value)
    if isinstance(value, Mapping):
        return {key: _rendered(item, render_text) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            spec_field.name: _rendered(getattr(value, spec_field.name), render_text)
            for spec_field in dataclasses.fields(value)
            if spec_field.init
        }
        return dataclasses.replace(value, **changes)
    return value
