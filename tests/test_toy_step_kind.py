"""A step kind defined and registered entirely here, `wait: DURATION`, run through the engine, the
command line and the language server: adding a kind needs its module and its registration, nothing else.

Run as a script, this file is the `treeflow` command with the kind registered, which is how the
command-line and language-server tests start it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import pytest_lsp
import yaml
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

import treeflow.cli
from tests.conftest import make_repo
from tests.helpers import Recorder, make_run
from tests.lsp.conftest import make_client, session
from treeflow.core.attempt import Attempt
from treeflow.core.events import Event, StepStarted
from treeflow.core.kinds import register, unregister
from treeflow.core.kinds.base import StepKind
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec import WorkflowError, parse_workflow
from treeflow.core.spec_keys import Duration
from treeflow.core.spec_reader import SpecReader
from treeflow.core.workflow_schema import json_schema
from treeflow.lsp.completion import completion_items
from treeflow.lsp.outline import read_outline

pytestmark = pytest.mark.usefixtures("tests_importable_by_scripts")

THIS_FILE = Path(__file__).resolve()


@dataclass(frozen=True)
class WaitSpec:
    seconds: float


class WaitKind:
    """`wait: 1s`: the step waits that long, then succeeds."""

    key = "wait"
    summary = "a pause"
    doc = "Waits that long, then succeeds."
    shape = Duration("1s")

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> WaitSpec | None:
        seconds = reader.duration(block, f"{what}: wait")
        return None if seconds is None else WaitSpec(seconds)

    async def run(self, spec: WaitSpec, attempt: Attempt) -> StepOutcome:
        attempt.progress(0.0, f"waiting {spec.seconds:g}s")
        await anyio.sleep(spec.seconds)
        attempt.progress(1.0, "done waiting")
        return StepOutcome(StepStatus.SUCCEEDED, facts={"waited_s": spec.seconds})


WAIT: StepKind[WaitSpec] = WaitKind()

WORKFLOW = """\
name: toy
steps:
  pause: {wait: 1s}
  after: {run: "echo after the pause", needs: [pause]}
"""
QUICK_WORKFLOW = WORKFLOW.replace("wait: 1s", "wait: 250ms")

BAD_WORKFLOW = """\
steps:
  pause:
    wait: banana
"""


@pytest.fixture
def wait_kind() -> Iterator[StepKind[WaitSpec]]:
    register(WAIT)
    yield WAIT
    unregister(WAIT.key)


def write(directory: Path, text: str) -> Path:
    path = directory / "treeflow.yml"
    path.write_text(textwrap.dedent(text))
    return path


# Through the engine


def test_without_the_kind_wait_is_an_unknown_key(tmp_path: Path) -> None:
    path = write(tmp_path, WORKFLOW)
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(path.read_text(), path)
    messages = [str(error) for error in raised.value.errors]
    assert any(message.startswith(f"{path}:3:11: unknown key `wait` in step `pause`") for message in messages)


def test_with_the_kind_a_step_that_has_none_is_told_every_kind(
    tmp_path: Path, wait_kind: StepKind[WaitSpec]
) -> None:
    path = write(tmp_path, "steps:\n  a: {timeout: 5s}\n")
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(path.read_text(), path)
    (error,) = raised.value.errors
    assert (error.line, error.column) == (2, 6)
    assert error.message == (
        "step `a` needs `run:` (a shell command), `agent:` (a coding-agent job) or `wait:` (a pause)"
    )


def test_a_bad_wait_is_reported_where_it_is(tmp_path: Path, wait_kind: StepKind[WaitSpec]) -> None:
    path = write(tmp_path, BAD_WORKFLOW)
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(path.read_text(), path)
    (error,) = raised.value.errors
    assert (error.line, error.column) == (3, 11)
    assert error.message.startswith("step `pause`: wait: bad duration 'banana'")


def test_the_schema_and_completion_know_the_kind(wait_kind: StepKind[WaitSpec]) -> None:
    step = json_schema()["definitions"]["step"]
    assert step["properties"]["wait"]["description"] == "Waits that long, then succeeds."
    assert {"required": ["wait"]} in step["oneOf"]
    offered = completion_items(read_outline("steps:\n  a:\n    \n"), (2, 4))
    assert "wait" in [item.label for item in offered]


@pytest.mark.anyio
async def test_the_engine_runs_a_wait_step(repo: Path, wait_kind: StepKind[WaitSpec]) -> None:
    recorder = Recorder()
    started = time.monotonic()
    run = await make_run(repo, QUICK_WORKFLOW, recorder)
    assert run.workflow.steps["pause"].kind == "wait"
    assert run.workflow.steps["pause"].spec == WaitSpec(0.25)
    result = await run.execute()
    assert result.status is RunStatus.SUCCEEDED, result.steps
    assert time.monotonic() - started >= 0.25
    assert result.steps["pause"].message == "done waiting"
    assert recorder.finished() == ["pause", "after"]


class _StartedGate:
    """An event sink that opens once the given step has started."""

    def __init__(self, step_id: str) -> None:
        self.step_id = step_id
        self.started = anyio.Event()

    def emit(self, event: Event) -> None:
        if isinstance(event, StepStarted) and event.step_id == self.step_id:
            self.started.set()


@pytest.mark.anyio
async def test_a_wait_step_ends_when_the_run_is_cancelled(repo: Path, wait_kind: StepKind[WaitSpec]) -> None:
    gate = _StartedGate("pause")
    run = await make_run(repo, "steps:\n  pause: {wait: 1h}\n", gate)  # type: ignore[arg-type]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(run.execute)
            await gate.started.wait()
            run.cancel()
    assert run.snapshot().status is RunStatus.CANCELLED
    assert run.snapshot().steps["pause"].status is StepStatus.CANCELLED


@pytest.mark.anyio
async def test_a_wait_step_times_out_like_any_step(repo: Path, wait_kind: StepKind[WaitSpec]) -> None:
    with anyio.fail_after(10):
        result = await (await make_run(repo, "steps:\n  pause: {wait: 1h, timeout: 100ms}\n")).execute()
    assert result.steps["pause"].status is StepStatus.TIMED_OUT
    assert result.steps["pause"].error == "timed out after 0.1s"


# Through the command line, as a real process


def treeflow_with_wait(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This file as the `treeflow` command, the kind registered."""
    return subprocess.run(
        [sys.executable, str(THIS_FILE), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_validate_accepts_wait_with_the_kind_and_rejects_it_without(tmp_path: Path) -> None:
    write(tmp_path, WORKFLOW)
    accepted = treeflow_with_wait(tmp_path, "validate", "treeflow.yml")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.strip() == "treeflow.yml: ok (2 steps)"

    plain = subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "validate", "treeflow.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode == 2
    unknown = "treeflow.yml:3:11: unknown key `wait` in step `pause`"
    assert any(line.startswith(unknown) for line in plain.stderr.splitlines()), plain.stderr


def test_validate_reports_a_bad_wait_at_its_place(tmp_path: Path) -> None:
    write(tmp_path, BAD_WORKFLOW)
    done = treeflow_with_wait(tmp_path, "validate", "treeflow.yml")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("treeflow.yml:3:11: step `pause`: wait: bad duration 'banana'"), done.stderr
    assert lines[-1] == "1 error in the workflow"


@pytest.mark.slow
def test_the_command_line_runs_a_wait_step(repo: Path) -> None:
    write(repo, WORKFLOW)
    done = treeflow_with_wait(repo, "run", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["steps"]["pause"]["status"] == "succeeded"
    assert result["steps"]["pause"]["duration_s"] >= 1.0
    assert result["steps"]["after"]["status"] == "succeeded"


# Through the language server, over stdio with a real client


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "workspace")


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, str(THIS_FILE), "serve", "--log-file", os.devnull],
        client_factory=make_client,
    ),
)
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    async with session(lsp_client, workspace):
        yield lsp_client


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_language_server_runs_a_wait_step(client: LanguageClient, workspace: Path) -> None:
    path = write(workspace, WORKFLOW)
    started = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command="treeflow.run", arguments=[{"workflow": path.as_uri()}])
    )
    assert started is not None
    run_id = started["runId"]
    final: dict[str, Any] | None = None
    with anyio.fail_after(60):
        while final is None:
            updates = client.runs_updated  # type: ignore[attr-defined]
            final = next(
                (
                    run
                    for run in updates
                    if run["run_id"] == run_id and run["status"] in ("succeeded", "failed", "cancelled")
                ),
                None,
            )
            await anyio.sleep(0.02)
    assert final is not None
    assert final["status"] == "succeeded", final
    assert final["done"] == final["total"] == 2


if __name__ == "__main__":
    register(WAIT)
    sys.exit(treeflow.cli.main(sys.argv[1:]))
