"""A step's `matrix:`: its combinations, and the ordinary steps it expands into before anything else
sees the workflow, so that the scheduler, the journal, the editor and apply deal in steps only.

Combinations follow GitHub Actions: every combination of the values of the matrix's keys, in the
order they are written; then each `exclude` entry removes the combinations it matches (all of its
keys, or only some); then each `include` entry extends every combination made from the keys whose
values it does not change (adding its other keys, which a later entry may change again), or, if it
extends none, is a combination of its own.

A combination's step id is the written id followed by its values, ``test[python=3.11,shard=1]``.
Branches, folders and files take the id's safe form, ``test.python-3.11.shard-1`` (`safe_name`).
Steps that need a matrix step need every combination of it; ``needs.test`` then stands for all of
them together (`combined_result`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from treeflow.core.model import Combination, Step, StepResult, StepStatus

MAX_COMBINATIONS = 256
"""More than this many combinations of one step is most likely a mistake, and a heavy one."""
MAX_SAFE_NAME = 160
"""Room left in a file name (255 bytes) for the suffixes treeflow puts after a step's safe name."""
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
KEY_RULE = "1 to 64 letters, digits, '-' or '_', starting with a letter or '_'"
RESERVED_KEYS = ("include", "exclude")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_DOTS = re.compile(r"\.{2,}")
# The order in which statuses decide a matrix step's status: the first any combination has.
_WORST_FIRST = (
    StepStatus.FAILED,
    StepStatus.TIMED_OUT,
    StepStatus.CANCELLED,
    StepStatus.INTERRUPTED,
    StepStatus.RUNNING,
    StepStatus.PENDING,
    StepStatus.SKIPPED,
)


@dataclass(frozen=True)
class Matrix:
    """A `matrix:` as written: each key with its values (as text, in file order), and the entries
    of its `include` and `exclude` lists."""

    axes: Mapping[str, tuple[str, ...]]
    include: tuple[Mapping[str, str], ...] = ()
    exclude: tuple[Mapping[str, str], ...] = ()

    def product_size(self) -> int:
        """How many combinations the keys' values make before `exclude` and `include`."""
        return math.prod(len(values) for values in self.axes.values()) if self.axes else 0


def combinations(matrix: Matrix) -> list[dict[str, str]]:
    """The combinations of ``matrix``, each its values by key, in order (see the module's docstring)."""
    keys = list(matrix.axes)
    # Without keys of its own, a matrix is its `include` entries (the product of nothing is not one
    # empty combination here).
    made = (
        [dict(zip(keys, values, strict=True)) for values in itertools.product(*matrix.axes.values())]
        if keys
        else []
    )
    kept = [values for values in made if not any(_matches(values, entry) for entry in matrix.exclude)]
    added: list[dict[str, str]] = []
    for entry in matrix.include:
        extended = False
        for values in kept:
            if all(values[key] == value for key, value in entry.items() if key in matrix.axes):
                values.update(entry)
                extended = True
        if not extended:
            added.append(dict(entry))
    return kept + added


def _matches(values: Mapping[str, str], entry: Mapping[str, str]) -> bool:
    return all(values.get(key) == value for key, value in entry.items())


def combination_id(step_id: str, values: Mapping[str, str]) -> str:
    return step_id + "[" + ",".join(f"{key}={value}" for key, value in values.items()) + "]"


def safe_name(step_id: str) -> str:
    """The form of a step id that branch, folder and file names use: a written id as it is, and a
    combination's id with `[` and `,` as `.`, `=` as `-`, the closing `]` left out, and any
    character but letters, digits, `.`, `-` and `_` as `_` (runs of dots as one, and no trailing
    `.` or `.lock`, which git refuses in a branch name). Applying it twice changes nothing."""
    if "[" not in step_id and not _UNSAFE.search(step_id):
        return step_id
    text = step_id.removesuffix("]").replace("[", ".").replace(",", ".").replace("=", "-")
    text = _DOTS.sub(".", _UNSAFE.sub("_", text)).rstrip(".")
    return text + "_" if text.endswith(".lock") else text


def written_id(step_id: str) -> str:
    """The id written in the file for a step id: the step itself, or the step a combination is of."""
    return step_id.partition("[")[0]


def expand(steps: Mapping[str, Step], made: Mapping[str, Sequence[Mapping[str, str]]]) -> dict[str, Step]:
    """``steps`` with each step in ``made`` replaced, in its place, by one step per combination of
    its matrix (``made[step_id]``), and every `needs` naming such a step naming all of them."""
    expanded_ids = {
        step_id: [combination_id(step_id, values) for values in made[step_id]]
        for step_id in steps
        if step_id in made
    }
    result: dict[str, Step] = {}
    for step_id, step in steps.items():
        needs = tuple(dict.fromkeys(one for need in step.needs for one in expanded_ids.get(need, [need])))
        if step_id not in made:
            result[step_id] = replace(step, needs=needs)
            continue
        keys = tuple(dict.fromkeys(key for values in made[step_id] for key in values))
        for combination, values in zip(expanded_ids[step_id], made[step_id], strict=True):
            every = {key: values.get(key, "") for key in keys}
            result[combination] = replace(
                step, id=combination, needs=needs, matrix=Combination(step_id, every)
            )
    return result


def matrix_steps(steps: Mapping[str, Step]) -> dict[str, list[str]]:
    """The ids of each matrix step's combinations, by the step's written id."""
    found: dict[str, list[str]] = {}
    for step_id, step in steps.items():
        if step.matrix is not None:
            found.setdefault(step.matrix.of, []).append(step_id)
    return found


def named_steps(step_ids: Collection[str], name: str) -> list[str]:
    """The steps of ``step_ids`` that ``name`` names: a step, every combination of a matrix step, or
    one combination by its id or its safe name; none when it names nothing."""
    if name in step_ids:
        return [name]
    combinations_of = [step_id for step_id in step_ids if "[" in step_id and written_id(step_id) == name]
    if combinations_of:
        return combinations_of
    return [step_id for step_id in step_ids if "[" in step_id and safe_name(step_id) == name][:1]


def written_ids(steps: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(written_id(step_id) for step_id in steps))


def combined_result(results: Sequence[StepResult]) -> StepResult:
    """What ``needs.<step>`` reads of a matrix step, from its combinations' results: the first of
    failed, timed_out, cancelled, interrupted, skipped that a combination has, else succeeded; and
    the outputs of every combination, a later one's value for a name over an earlier one's."""
    statuses = {result.status for result in results}
    status = next((each for each in _WORST_FIRST if each in statuses), StepStatus.SUCCEEDED)
    outputs: dict[str, str] = {}
    for result in results:
        outputs.update(result.outputs)
    return StepResult(status=status, outputs=outputs)


def needs_results(
    needs: Iterable[str], steps: Mapping[str, Step], results: Mapping[str, StepResult]
) -> dict[str, StepResult]:
    """The results a step's expressions read under ``needs.<id>``: a step's own, and for a matrix
    step, its combinations' combined (`combined_result`), by the id written in the file."""
    grouped: dict[str, list[StepResult]] = {}
    plain: dict[str, StepResult] = {}
    for need in needs:
        combination = steps[need].matrix
        if combination is None:
            plain[need] = results[need]
        else:
            grouped.setdefault(combination.of, []).append(results[need])
    return {**plain, **{step_id: combined_result(each) for step_id, each in grouped.items()}}
