"""Shared fixtures: real git repositories in temporary folders."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "treeflow tests",
    "GIT_AUTHOR_EMAIL": "tests@treeflow.invalid",
    "GIT_COMMITTER_NAME": "treeflow tests",
    "GIT_COMMITTER_EMAIL": "tests@treeflow.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True, scope="session")
def _git_identity() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in GIT_IDENTITY}
    os.environ.update(GIT_IDENTITY)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def _sigint_heard() -> Iterator[None]:
    """A shell's background job starts with SIGINT ignored, and treeflow started from it keeps it
    ignored: the tests that send Ctrl-C start treeflow with it heard, wherever the suite runs."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.fixture(autouse=True)
def worktree_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Step worktrees of each test go to its own folder, never to the user's cache."""
    root = tmp_path / "worktrees"
    monkeypatch.setenv("TREEFLOW_WORKTREE_ROOT", str(root))
    return root


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path) -> Path:
    """A git repository at ``root`` with one commit, holding README.md."""
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "README.md")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def tests_importable_by_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test file run as a script (a `treeflow` with a step kind of its own registered) imports
    `tests` like any test module: from the repository root."""
    root = Path(__file__).resolve().parents[1]
    paths = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
