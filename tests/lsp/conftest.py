"""A real LSP client (pytest-lsp) talking to `treeflow serve` over stdio."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from tests.conftest import make_repo


class TreeflowClient(LanguageClient):
    runs_updated: list[dict[str, Any]]
    logs: list[dict[str, Any]]


def make_client() -> LanguageClient:
    client = make_test_lsp_client()
    client.runs_updated = []  # type: ignore[attr-defined]
    client.logs = []  # type: ignore[attr-defined]

    @client.feature("treeflow/runUpdated")
    def run_updated(ls: LanguageClient, params: Any) -> None:
        ls.runs_updated.append(to_dict(params)["run"])  # type: ignore[attr-defined]

    @client.feature("treeflow/log")
    def log(ls: LanguageClient, params: Any) -> None:
        ls.logs.append(to_dict(params))  # type: ignore[attr-defined]

    return client


def to_dict(value: Any) -> Any:
    """pygls hands unknown notifications over as namespace objects; tests compare plain data."""
    if hasattr(value, "_asdict"):
        return {key: to_dict(item) for key, item in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [to_dict(item) for item in value]
    if isinstance(value, dict):
        return {key: to_dict(item) for key, item in value.items()}
    return value


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "workspace")


def write_workflow(root: Path, text: str, name: str = "treeflow.yml") -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "treeflow.cli", "serve", "--log-file", os.devnull],
        client_factory=make_client,
    ),
)
async def client(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[LanguageClient]:
    async with session(lsp_client, workspace):
        yield lsp_client


@asynccontextmanager
async def session(lsp_client: LanguageClient, workspace: Path) -> AsyncIterator[None]:
    """An initialized session of ``lsp_client`` with ``workspace`` as its one folder, shut down after."""
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="workspace")],
        )
    )
    yield
    await lsp_client.shutdown_session()
