"""The protocol classes' JSON form and how they read a client's arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from treeflow.core.model import RunResult, RunStatus, StepResult, StepStatus
from treeflow.lsp import protocol


def test_the_run_object_is_the_cli_result_plus_counts_and_error_key_for_key() -> None:
    run = RunResult(
        run_id="20260101-000000-abcd",
        workflow="checks",
        workflow_path=Path("/repo/treeflow.yml"),
        status=RunStatus.INTERRUPTED,
        started_at=1.5,
        duration_s=2.34567,
        steps={
            "lint": StepResult(status=StepStatus.SUCCEEDED, attempts=1, exit_code=0, log=Path("/l.log")),
            "unit": StepResult(status=StepStatus.INTERRUPTED, progress=1, message="half"),
        },
    )
    sent = protocol.to_json(protocol.RunUpdatedParams(run=protocol.run_payload(run, "no commits")))
    assert list(sent) == ["run"]
    expected = {**run.to_json(), "done": 2, "total": 2, "error": "no commits", "cancelling": False}
    assert sent["run"] == expected
    assert list(sent["run"]) == list(expected)
    assert list(sent["run"]["steps"]["unit"]) == list(expected["steps"]["unit"])


def test_notifications_and_results_have_camel_case_keys() -> None:
    assert protocol.to_json(protocol.LogParams(run_id="r", step_id="s", text="x\n")) == {
        "runId": "r",
        "stepId": "s",
        "text": "x\n",
        "stream": "stdout",
    }
    assert protocol.to_json([protocol.RunStarted(run_id="r")]) == [{"runId": "r"}]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "treeflow.run takes one argument, an object {workflow, steps?}"),
        ([{"workflow": "a"}, {}], "treeflow.run takes one argument"),
        ([{"steps": ["a"]}], "treeflow.run needs `workflow`: the URI or path of a workflow file"),
        ([{"workflow": ""}], "treeflow.run needs `workflow`"),
        ([{"workflow": 5}], "treeflow.run: `workflow` must be the URI or path of a workflow file"),
        ([{"workflow": "a", "steps": "lint"}], "treeflow.run: `steps` must be a list of step ids"),
        ([{"workflow": "a", "steps": ["lint", 3]}], "treeflow.run: `steps` must be a list of step ids"),
    ],
)
def test_a_malformed_argument_is_refused_with_what_to_send(arguments: list[object], message: str) -> None:
    with pytest.raises(protocol.ArgumentError) as refused:
        protocol.parse_argument("treeflow.run", protocol.RunArgs, arguments)
    assert str(refused.value).startswith(message)


def test_arguments_take_their_optional_fields_as_absent_or_null_and_ignore_unknown_keys() -> None:
    parse = protocol.parse_argument
    assert parse("treeflow.run", protocol.RunArgs, [{"workflow": "w"}]) == protocol.RunArgs("w", [])
    assert parse("treeflow.run", protocol.RunArgs, [{"workflow": "w", "steps": None}]).steps == []
    assert parse("treeflow.run", protocol.RunArgs, [{"workflow": "w", "steps": ["a"], "x": 1}]).steps == ["a"]
    assert parse("treeflow.getRun", protocol.RunIdArgs, [{"runId": "r"}]) == protocol.RunIdArgs("r")
