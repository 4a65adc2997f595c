"""Property-based tests of the agent protocol: whatever `.treeflow/status.json` holds, reading it
gives a status, nothing, or a `StatusProblem`; whatever `treeflow agent report` is given, it writes a
status that reads back as given (texts cut to the protocol's limit) or refuses with a usage error."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import fuzz_settings
from treeflow.cli.parser import parse_command_line
from treeflow.core.agent import AgentStatus, StatusProblem, Task, read_status, report
from treeflow.core.agent_protocol import MAX_STATUS_TEXT, STATES
from treeflow.quoting import quoted

NONCE = "0123456789abcdef"

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
status_bodies = st.fixed_dictionaries(
    {},
    optional={
        "protocol": st.one_of(st.just(1), json_values),
        "nonce": st.one_of(st.just(NONCE), json_values),
        "state": st.one_of(st.sampled_from(STATES), json_values),
        "progress": st.one_of(st.floats(), st.integers(), json_values),
        "message": st.one_of(st.text(), json_values),
        "summary": st.one_of(st.text(), json_values),
        "error": st.one_of(st.text(), json_values),
        "updated_at": st.one_of(st.text(max_size=30), json_values),
    },
)


def is_fraction(text: str) -> bool:
    try:
        return 0 <= float(text) <= 1
    except ValueError:
        return False


def read(folder: Path) -> AgentStatus | StatusProblem | None:
    try:
        return read_status(folder / "status.json", NONCE)
    except StatusProblem as problem:
        return problem


def assert_valid(outcome: AgentStatus | StatusProblem | None) -> None:
    if isinstance(outcome, StatusProblem):
        assert str(outcome) and len(str(outcome)) < 2000
        return
    if outcome is None:
        return
    assert outcome.state in STATES
    assert outcome.progress is None or 0 <= outcome.progress <= 1
    for text in (outcome.message, outcome.summary, outcome.error, outcome.updated_at):
        if text is not None:
            assert len(text) <= MAX_STATUS_TEXT + 1
            # Each text can be written as UTF-8 to a log, the journal or a terminal.
            text.encode("utf-8")


@fuzz_settings(examples=500)
@given(st.binary(max_size=400))
def test_any_bytes_in_the_status_file_are_a_status_nothing_or_a_problem(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    folder = tmp_path_factory.mktemp("status")
    (folder / "status.json").write_bytes(data)
    assert_valid(read(folder))


@fuzz_settings(examples=500)
@given(status_bodies)
def test_any_json_object_in_the_status_file_is_a_status_nothing_or_a_problem(
    tmp_path_factory: pytest.TempPathFactory, body: dict[str, Any]
) -> None:
    folder = tmp_path_factory.mktemp("status")
    (folder / "status.json").write_text(json.dumps(body), encoding="utf-8")
    assert_valid(read(folder))


@fuzz_settings(examples=300)
@given(
    state=st.sampled_from(STATES),
    progress=st.one_of(st.none(), st.text(max_size=12), st.floats().map(repr)),
    texts=st.lists(st.one_of(st.none(), st.text()), min_size=3, max_size=3),
    long_text=st.sampled_from([None, "x" * (MAX_STATUS_TEXT + 10), "\ud800lone surrogate", "caf\udce9"]),
)
def test_agent_report_writes_what_reads_back_or_refuses_its_arguments(
    tmp_path_factory: pytest.TempPathFactory,
    state: str,
    progress: str | None,
    texts: list[str | None],
    long_text: str | None,
) -> None:
    message, summary, error = texts
    if long_text is not None:
        message = long_text
    argv = ["agent", "report", "--state", state]
    for option, value in (
        ("--progress", progress),
        ("--message", message),
        ("--summary", summary),
        ("--error", error),
    ):
        if value is not None:
            argv += [option, value]
    if progress is not None and not is_fraction(progress):
        with pytest.raises(SystemExit) as refused:
            parse_command_line(argv)
        assert refused.value.code == 2
        return
    args = parse_command_line(argv)
    folder = tmp_path_factory.mktemp("task")
    status = AgentStatus(
        state=args.state, progress=args.progress, message=args.message, summary=args.summary, error=args.error
    )
    report(Task(folder=folder, nonce=NONCE), status)
    read_back = read(folder)
    assert isinstance(read_back, AgentStatus), read_back
    assert_valid(read_back)
    assert read_back.state == state
    if args.progress is None:
        assert read_back.progress is None
    else:
        assert math.isclose(read_back.progress or 0.0, args.progress, abs_tol=0.0)
    for given_text, read_text in (
        (message, read_back.message),
        (summary, read_back.summary),
        (error, read_back.error),
    ):
        if given_text is None:
            assert read_text is None
        elif all(not 0xD800 <= ord(character) <= 0xDFFF for character in given_text):
            assert read_text == quoted(given_text, MAX_STATUS_TEXT)


def test_agent_report_texts_may_start_with_a_dash() -> None:
    # Found by the search above: argparse took such a message for an option and refused it.
    args = parse_command_line(
        [
            "agent",
            "report",
            "--state",
            "failed",
            "--message",
            "-:",
            "--summary",
            "--force was needed",
            "--error",
            "-",
        ]
    )
    assert (args.message, args.summary, args.error) == ("-:", "--force was needed", "-")
