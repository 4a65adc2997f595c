"""`treeflow run` with a Cursor Cloud Agent step: exit codes, messages, and the API key kept secret."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents.fake_cursor_cloud import VALID_KEY, FakeCursorCloud, serving
from tests.conftest import git

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]
WRONG_KEY = "key_wrong_5f1e2d3c4b5a69788796a5b4"

WORKFLOW = """\
steps:
  cloud: {agent: {use: cursor-cloud, prompt: "Write CLOUD.md"}}
"""


@pytest.fixture
def cloud(repo: Path, tmp_path: Path) -> Iterator[FakeCursorCloud]:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "--quiet", "origin", "main")
    (repo / "treeflow.yml").write_text(WORKFLOW)
    with serving(FakeCursorCloud()) as fake:
        yield fake


def treeflow(repo: Path, fake: FakeCursorCloud, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CURSOR_API_KEY": key,
        "TREEFLOW_CURSOR_API_URL": fake.url,
        "TREEFLOW_CLOUD_POLL_SCALE": "0.01",
    }
    return subprocess.run([*TREEFLOW, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=60)


def files_holding(folder: Path, secret: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()]


@pytest.mark.parametrize(("key", "exit_code"), [(WRONG_KEY, 1), (VALID_KEY, 0)])
def test_the_key_is_never_printed_logged_or_journaled(
    repo: Path, cloud: FakeCursorCloud, key: str, exit_code: int
) -> None:
    done = treeflow(repo, cloud, key, "run")
    assert done.returncode == exit_code, done.stdout + done.stderr
    if key == WRONG_KEY:
        assert (
            "could not launch the Cloud Agent: Cursor refused the API key in CURSOR_API_KEY "
            "(HTTP 401: Unauthorized: Invalid API key)"
        ) in done.stdout
        assert cloud.agents == {}
    else:
        assert "[cloud] succeeded" in done.stdout
    shown = treeflow(repo, cloud, key, "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    for text in (done.stdout, done.stderr, shown.stdout, shown.stderr):
        assert key not in text
    assert files_holding(repo / ".git", key) == []
