"""Property-based tests of the workflow parser and validator: whatever a workflow file holds, reading
it gives a workflow or a `WorkflowError` whose every message is located and of a readable length,
never another exception."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from treeflow.core import kinds
from treeflow.core.model import Workflow
from treeflow.core.spec import WorkflowError, load_workflow, parse_workflow

PATH = Path("treeflow.yml")
# A message may quote a little of the file (cut to 200 characters) around its own words.
LONGEST_MESSAGE = 1000

TOP_KEYS = ["version", "name", "max_parallel", "fail_fast", "base", "defaults", "setup", "env", "steps"]
STEP_KEYS = [*kinds.KINDS, *kinds.COMMON_STEP_KEYS]
INNER_KEYS = ["attempts", "backoff", "max_backoff", "jitter", "copy", "run", "prompt", "command", "heartbeat"]
TAGS = ["!!int", "!!float", "!!bool", "!!str", "!!null", "!!binary", "!!timestamp", "!!seq", "!!map"]


@dataclass(frozen=True)
class Tagged:
    """A scalar written with an explicit tag, which YAML takes whatever its text."""

    tag: str
    text: str


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tagged(dumper: yaml.SafeDumper, value: Tagged) -> yaml.Node:
    return dumper.represent_scalar(value.tag.replace("!!", "tag:yaml.org,2002:"), value.text)


_Dumper.add_representer(Tagged, _represent_tagged)

texts = st.text(max_size=30)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    texts,
    st.sampled_from(["10s", "1h30m", "250ms", "0s", "1e300", "99999999h", "-1", ".inf", "0x1f", "1:30"]),
    st.builds(Tagged, st.sampled_from(TAGS), st.one_of(texts, st.sampled_from(["", "0x", "0b_", "1e999"]))),
)


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    known_or_any = st.one_of(st.sampled_from(keys), texts)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(known_or_any, inner, max_size=4)
        ),
        max_leaves=12,
    )


step_ids = st.one_of(
    st.sampled_from(["a", "b", "build", "A", "-rf", "--", "x" * 65]), st.text(min_size=1, max_size=10)
)
steps = st.dictionaries(
    step_ids,
    st.one_of(
        st.dictionaries(st.sampled_from(STEP_KEYS), values(INNER_KEYS + STEP_KEYS), max_size=5),
        values(STEP_KEYS),
    ),
    max_size=5,
)
workflows = st.one_of(
    st.fixed_dictionaries(
        {"steps": steps}, optional={key: values(INNER_KEYS + TOP_KEYS) for key in TOP_KEYS if key != "steps"}
    ),
    values(TOP_KEYS),
)


def read(text: str) -> Workflow | WorkflowError:
    try:
        return parse_workflow(text, PATH)
    except WorkflowError as error:
        return error


def assert_well_reported(outcome: Workflow | WorkflowError) -> None:
    if isinstance(outcome, Workflow):
        assert outcome.steps
        return
    assert outcome.errors
    for error in outcome.errors:
        assert error.line >= 1, error
        assert error.column >= 1, error
        assert error.message.strip(), error
        assert len(error.message) <= LONGEST_MESSAGE, error.message[:2000]


@fuzz_settings(examples=300)
@given(workflows)
def test_any_structure_is_a_workflow_or_a_workflow_error(structure: Any) -> None:
    text = yaml.dump(structure, Dumper=_Dumper, allow_unicode=True)
    assert_well_reported(read(text))


@fuzz_settings(examples=1000)
@given(st.text(max_size=300))
def test_any_text_is_a_workflow_or_a_workflow_error(text: str) -> None:
    assert_well_reported(read(text))


@fuzz_settings(examples=1000)
@given(
    st.lists(
        st.sampled_from(
            [
                "steps:",
                " a:",
                "  run: x",
                "\t",
                "{",
                "[",
                "&x",
                "*x",
                "!!int",
                ": ",
                "\n",
                "- ",
                "'",
                '"',
                "#",
                "---",
                "? ",
                "<<: *x",
            ]
        ),
        max_size=25,
    )
)
def test_yaml_shaped_text_is_a_workflow_or_a_workflow_error(pieces: list[str]) -> None:
    assert_well_reported(read("".join(pieces)))


@fuzz_settings(examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file_are_a_workflow_or_a_workflow_error(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "treeflow.yml"
    path.write_bytes(data)
    try:
        outcome: Workflow | WorkflowError = load_workflow(path)
    except WorkflowError as error:
        outcome = error
    assert_well_reported(outcome)


# What the search above has found, kept as plain examples so that they stay tested whatever it draws.
FOUND = [
    "max_parallel: !!int abc\nsteps: {a: {run: x}}\n",
    "steps: {a: {run: x, retry: !!int ''}}\n",
    "steps: {a: {run: x, retry: {attempts: !!int 0b_}}}\n",
    "steps: {a: {run: x, retry: {jitter: !!float x}}}\n",
    "steps: {a: {run: x, timeout: !!float ''}}\n",
    f"steps: {{a: {{run: x, timeout: {'9' * 400}}}}}\n",
    f"steps: {{a: {{run: x, timeout: -{'9' * 400}}}}}\n",
    "steps: {a: {run: x, retry: {backoff: 1.0e+300}}}\n",
    "steps: {a: {run: x, env: {? [k] : v}}}\n",
    # Long user text is quoted cut short, wherever a message names it.
    f"{'k' * 5000}: 1\nsteps: {{a: {{run: x}}}}\n",
    f"steps: {{{'s' * 5000}: {{run: x, needs: [{'n' * 5000}], timeout: {'t' * 5000}}}}}\n",
    f"steps: {{a: {{run: x, env: {{{'=' * 5000}: v}}, retry: {{jitter: {'1' * 5000}}}}}}}\n",
    f"max_parallel: {'x' * 5000}\nsteps: {{a: {{run: x, needs: [a]}}, {'b' * 500}: {{run: x, needs: [{'c' * 500}]}}}}\n",
    f"steps: {{{'a' * 5000}: {{run: x}}, {'A' * 5000}: {{run: x}}}}\n",
    "steps:\n" + "".join(f"  s{i}: {{run: x, needs: [s{(i + 1) % 300}]}}\n" for i in range(300)),
]


def test_what_the_search_found_is_a_workflow_error() -> None:
    for text in FOUND:
        outcome = read(text)
        assert isinstance(outcome, WorkflowError), text
        assert_well_reported(outcome)
