"""A step's `on_failure:` read from its YAML node, and the checks of every fix loop once all the
steps of the file are known, each problem at file:line:col (see `treeflow.core.fix_loop`).

A step named by an `on_failure.run_step` is a *fixer*: it runs only inside the loops of the steps
it fixes, in their worktrees, so nothing may need it, it has no `matrix:`, `if:` or `on_failure:` of
its own, and whatever it needs must have ended before the step it fixes starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import yaml

from treeflow.core import graph
from treeflow.core.model import FixLoop, Step
from treeflow.core.spec_keys import MAX_ROUNDS, ON_FAILURE_KEYS, names
from treeflow.core.spec_reader import SpecReader
from treeflow.quoting import quoted

_KEYS = names(ON_FAILURE_KEYS)


@dataclass(frozen=True)
class WrittenLoop:
    """An `on_failure:` as read, with the nodes its later checks point at."""

    loop: FixLoop
    node: yaml.Node  # the `on_failure:` value
    fixer_node: yaml.Node  # its `run_step:` value


def read_on_failure(reader: SpecReader, node: yaml.Node, what: str) -> WrittenLoop | None:
    """The fix loop at ``node``; None, with its problems recorded in ``reader``, when it has any."""
    what = f"{what}: on_failure"
    fields = reader.mapping(node, what, _KEYS)
    if fields is None:
        return None
    if "run_step" not in fields:
        reader.error(node, f"{what} needs `run_step:`, the id of the step that fixes it")
        return None
    fixer = reader.string(fields["run_step"], f"{what}.run_step")
    then = reader.optional(fields, "then", lambda n: reader.string(n, f"{what}.then"))
    if then is not None and then != "retry":
        reader.error(
            fields["then"],
            f"{what}.then: unknown {quoted(repr(then))}; `retry` (run the step again on top of the fix) "
            "is the one choice",
        )
    rounds = reader.optional(fields, "max_rounds", lambda n: reader.integer(n, f"{what}.max_rounds", 2))
    if rounds is not None and rounds > MAX_ROUNDS:
        reader.error(fields["max_rounds"], f"{what}.max_rounds: at most {MAX_ROUNDS}, not {rounds}")
    if fixer is None:
        return None
    return WrittenLoop(FixLoop(fixer, rounds or FixLoop.max_rounds), node, fields["run_step"])


def check_fix_loops(
    reader: SpecReader,
    steps: Mapping[str, Step],
    loops: Mapping[str, WrittenLoop],
    need_nodes: Mapping[str, list[tuple[str, yaml.Node]]],
    matrix_steps: Collection[str],
    step_ids: Collection[str],
) -> None:
    """Record in ``reader`` what is wrong with the fix loops ``loops`` (by the step they are on)
    among ``steps`` (by written id, before a matrix expands them; ``step_ids`` also names the steps
    that could not be read, whose problems are reported already)."""
    fixed_by: dict[str, list[str]] = {}
    needs = {step_id: [n for n in step.needs if n in steps] for step_id, step in steps.items()}
    for step_id, written in loops.items():
        fixer = written.loop.fixer
        what = f"step `{quoted(step_id)}`: on_failure.run_step"
        if step_id in steps and steps[step_id].cache is not None:
            reader.error(
                written.node,
                f"step `{quoted(step_id)}`: on_failure and cache do not go together: the work of a fix "
                "loop depends on its fixer too, which no cache key holds",
            )
        if fixer == step_id:
            reader.error(written.fixer_node, f"{what}: a step cannot fix itself; name another step")
            continue
        if fixer in step_ids and fixer not in steps:
            continue
        if fixer not in steps:
            message = f"{what}: unknown step `{quoted(fixer)}`"
            close = difflib.get_close_matches(fixer, [s for s in steps if s != step_id], n=1, cutoff=0.6)
            if close:
                message += f"; did you mean `{quoted(close[0])}`?"
            reader.error(written.fixer_node, message)
            continue
        fixed_by.setdefault(fixer, []).append(step_id)
        problem = _fixer_problem(steps[fixer], fixer in matrix_steps)
        if problem is not None:
            reader.error(written.fixer_node, f"{what}: `{quoted(fixer)}` {problem}")
            continue
        earlier = graph.closure(needs.get(step_id, ()), needs)
        for need, need_node in need_nodes.get(fixer, []):
            if need not in steps or need == fixer:
                continue  # reported with the needs
            if step_id in graph.closure([need], needs):
                through = "it" if need == step_id else f"`{quoted(need)}`, which needs it"
                reader.error(
                    need_node,
                    f"fix loop cycle: `{quoted(fixer)}` fixes `{quoted(step_id)}` and needs {through}; "
                    f"a fixer runs inside the step it fixes, so it cannot wait for it",
                )
            elif need not in earlier:
                reader.error(
                    need_node,
                    f"fixer `{quoted(fixer)}` needs `{quoted(need)}`, which `{quoted(step_id)}` does not "
                    f"need: a fixer runs in the middle of `{quoted(step_id)}`, so what it needs must end "
                    f"before `{quoted(step_id)}` starts; add `{quoted(need)}` to the needs of "
                    f"`{quoted(step_id)}`",
                )
    for step_id, step_needs in need_nodes.items():
        for need, need_node in step_needs:
            if need in fixed_by and need != step_id:
                fixed = ", ".join(f"`{quoted(name)}`" for name in fixed_by[need])
                reader.error(
                    need_node,
                    f"step `{quoted(step_id)}` needs `{quoted(need)}`, which runs only as the fixer of "
                    f"{fixed} (their `on_failure`), never on its own",
                )


def _fixer_problem(fixer: Step, has_matrix: bool) -> str | None:
    if fixer.on_failure is not None:
        return "has an `on_failure:` of its own; a fixer cannot have one"
    if has_matrix:
        return "has a `matrix:`; a fixer runs once per round of the step it fixes, so it cannot have one"
    if fixer.gate is not None:
        return "has an `approve:` gate, which would never be asked: a fixer runs when the step it fixes fails"
    if fixer.condition is not None:
        return "has an `if:`, which would never be read: a fixer runs when the step it fixes fails"
    return None


def fixer_ids(steps: Mapping[str, Step]) -> frozenset[str]:
    """The steps that run only as fixers: those some step's `on_failure.run_step` names."""
    return frozenset(step.on_failure.fixer for step in steps.values() if step.on_failure is not None)
