"""Workflow files open in the editor: diagnostics and code lenses, from the same parser as the CLI.

A change to a file brings both a check (diagnostics) and a request for its code lenses: they share
one parse of each text.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lsprotocol import types

from treeflow.core.matrix import matrix_steps
from treeflow.core.model import Workflow
from treeflow.core.spec import WorkflowError, parse_workflow
from treeflow.core.spec_fix_loop import fixer_ids
from treeflow.core.spec_reader import SpecError

RUN_COMMAND = "treeflow.run"


def diagnostics(text: str, path: Path) -> list[types.Diagnostic]:
    """What `treeflow validate` would say about ``text``, at the same lines and columns."""
    parsed = _parsed(text, path)
    if isinstance(parsed, Workflow):
        return []
    lines = text.splitlines()
    return [
        types.Diagnostic(
            range=_range_at(lines, error.line - 1, error.column - 1),
            message=error.message,
            severity=types.DiagnosticSeverity.Error,
            source="treeflow",
        )
        for error in parsed
    ]


@functools.lru_cache(maxsize=4)
def _parsed(text: str, path: Path) -> Workflow | tuple[SpecError, ...]:
    """The workflow in ``text``, or the problems that keep it from being one."""
    try:
        return parse_workflow(text, path)
    except WorkflowError as exc:
        return tuple(exc.errors)


def _range_at(lines: list[str], line: int, column: int) -> types.Range:
    # The error points at a character; underline the word that starts there.
    text = lines[line] if 0 <= line < len(lines) else ""
    end = column
    while end < len(text) and not text[end].isspace() and text[end] not in ",:{}[]":
        end += 1
    end = max(end, min(column + 1, len(text)))
    return types.Range(types.Position(line, column), types.Position(line, end))


def code_lenses(text: str, path: Path, uri: str) -> list[types.CodeLens]:
    """ "Run workflow" on the first line and "Run step <id>" on each step; none for a broken file."""
    workflow = _parsed(text, path)
    if not isinstance(workflow, Workflow):
        return []
    whole = types.Range(types.Position(0, 0), types.Position(0, 0))
    lenses = [
        types.CodeLens(
            range=whole,
            command=types.Command(title="▶ Run workflow", command=RUN_COMMAND, arguments=[{"workflow": uri}]),
        )
    ]
    combinations = matrix_steps(workflow.steps)
    # A fixer runs only inside the fix loops of the steps it fixes.
    fixers = fixer_ids(workflow.steps)
    for step in workflow.steps.values():
        if step.id in fixers:
            continue
        # A matrix step has one lens, which runs every combination of it.
        step_id = step.id if step.matrix is None else step.matrix.of
        if step.matrix is not None and combinations[step_id][0] != step.id:
            continue
        count = len(combinations.get(step_id, ()))
        title = f"▶ Run step {step_id}" + (f" ({count} combinations)" if count > 1 else "")
        at = types.Range(types.Position(step.line - 1, 0), types.Position(step.line - 1, 0))
        lenses.append(
            types.CodeLens(
                range=at,
                command=types.Command(
                    title=title,
                    command=RUN_COMMAND,
                    arguments=[{"workflow": uri, "steps": [step_id]}],
                ),
            )
        )
    return lenses
