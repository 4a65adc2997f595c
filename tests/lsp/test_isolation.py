"""Whatever goes wrong inside one run ends that run, and only that run."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
import yaml
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, default_converter, register_lsp_features

import treeflow.cli
from tests.helpers import wait_until_async
from tests.lsp.conftest import make_client, session, to_dict, write_workflow
from tests.lsp.test_server import command, final_update
from treeflow.core.attempt import Attempt
from treeflow.core.kinds import register
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_reader import SpecReader

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("tests_importable_by_scripts")]

THIS_FILE = Path(__file__).resolve()


@dataclass(frozen=True)
class BreaksSpec:
    message: str


class BreaksKind:
    """`breaks: MESSAGE`: a step whose kind raises, as a bug in a kind would, wherever it comes from."""

    key = "breaks"
    summary = "a step that breaks"

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> BreaksSpec | None:
        message = reader.string(block, f"{what}: breaks")
        return None if message is None else BreaksSpec(message)

    async def run(self, spec: BreaksSpec, attempt: Attempt) -> StepOutcome:
        raise RuntimeError(spec.message)


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, str(THIS_FILE), "serve", "--log-file", os.devnull],
        client_factory=make_client,
    ),
)
async def breaking_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    async with session(lsp_client, workspace):
        yield lsp_client


@pytest.mark.slow
async def test_a_run_that_breaks_fails_alone_and_the_others_finish(
    breaking_client: LanguageClient, workspace: Path
) -> None:
    client = breaking_client
    gate = workspace.parent / "gate"
    waiting = workspace.parent / "waiting"
    long = write_workflow(
        workspace,
        f"""\
        name: long
        steps:
          wait: {{run: "touch {waiting}; while [ ! -e {gate} ]; do sleep 0.05; done"}}
        """,
    )
    broken = write_workflow(
        workspace, "name: broken\nsteps:\n  a: {breaks: kaput}\n", name=".treeflow/broken.yml"
    )
    long_id = (await command(client, "treeflow.run", {"workflow": long.as_uri()}))["runId"]
    await wait_until_async(waiting.exists, "the long run to start its step", timeout_s=30)

    broken_id = (await command(client, "treeflow.run", {"workflow": broken.as_uri()}))["runId"]
    failed = await final_update(client, broken_id)
    assert failed["status"] == "failed"
    # The engine ends the step the error happened in, and with it the run, saying why.
    assert failed["steps"]["a"]["status"] == "failed"
    assert "RuntimeError: kaput" in failed["steps"]["a"]["error"]

    gate.touch()
    finished = await final_update(client, long_id)
    assert finished["status"] == "succeeded"
    listed = {run["run_id"]: run["status"] for run in await command(client, "treeflow.listRuns")}
    assert listed == {long_id: "succeeded", broken_id: "failed"}


class ProgressRefused(JsonRpcInternalError):
    pass


class RefusingClient(LanguageClient):
    """A client that answers every request for a progress token with an error."""

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pytest-lsp fails the test on any error a client handler raises; this one is the point.
        if not isinstance(error, ProgressRefused):
            super().report_server_error(error, source)


def make_refusing_client() -> LanguageClient:
    def refuse_progress(ls: LanguageClient, params: types.WorkDoneProgressCreateParams) -> None:
        raise ProgressRefused("no progress here")

    client = RefusingClient(converter_factory=default_converter)
    register_lsp_features(
        client, {**DEFAULT_CLIENT_FEATURES, types.WINDOW_WORK_DONE_PROGRESS_CREATE: refuse_progress}
    )
    client.runs_updated = []  # type: ignore[attr-defined]

    @client.feature("treeflow/runUpdated")
    def run_updated(ls: LanguageClient, params: Any) -> None:
        ls.runs_updated.append(to_dict(params)["run"])  # type: ignore[attr-defined]

    return client


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
        client_factory=make_refusing_client,
    ),
)
async def refusing_client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    async with session(lsp_client, workspace):
        yield lsp_client


async def test_a_client_that_refuses_a_progress_token_still_gets_the_run(
    refusing_client: LanguageClient, workspace: Path
) -> None:
    path = write_workflow(workspace, "steps:\n  a: {run: 'echo a > a.txt'}\n")
    run_id = (await command(refusing_client, "treeflow.run", {"workflow": path.as_uri()}))["runId"]
    run = await final_update(refusing_client, run_id)
    assert run["status"] == "succeeded"
    assert [run["run_id"] for run in await command(refusing_client, "treeflow.listRuns")] == [run_id]


if __name__ == "__main__":
    register(BreaksKind())
    sys.exit(treeflow.cli.main(sys.argv[1:]))
