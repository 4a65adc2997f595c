"""`treeflow init`: a starter workflow written from the repository, as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_validate import treeflow
from tests.conftest import git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "repo")
    (root / "Makefile").write_text(
        "lint:\n\t@echo linted\ntest:\n\t@echo tested > tested.txt\nbuild:\n\t@echo built\n"
    )
    git(root, "add", "Makefile")
    git(root, "commit", "-qm", "a Makefile")
    return root


def test_init_writes_a_starter_that_validates(repo: Path) -> None:
    done = treeflow(repo, "init")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {repo / 'treeflow.yml'} (3 steps); run it with: treeflow run"
    checked = treeflow(repo, "validate")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith("ok (3 steps)")


@pytest.mark.slow
def test_the_starter_runs(repo: Path) -> None:
    assert treeflow(repo, "init").returncode == 0
    ran = treeflow(repo, "run", "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert {step: state["status"] for step, state in result["steps"].items()} == {
        "lint": "succeeded",
        "test": "succeeded",
        "build": "succeeded",
    }
    assert git(repo, "show", f"{result['result_branch']}:tested.txt") == "tested"


def test_init_refuses_to_overwrite_with_exit_3(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps: {mine: {run: 'true'}}\n")
    done = treeflow(repo, "init")
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"treeflow: {repo / 'treeflow.yml'} already exists; "
        "`treeflow init --force` replaces it with a starter workflow"
    )
    assert (repo / "treeflow.yml").read_text() == "steps: {mine: {run: 'true'}}\n"


def test_init_force_replaces_the_workflow(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps: {mine: {run: 'true'}}\n")
    done = treeflow(repo, "init", "--force")
    assert done.returncode == 0, done.stderr
    assert "mine" not in (repo / "treeflow.yml").read_text()
    assert "make build" in (repo / "treeflow.yml").read_text()


def test_init_from_a_subfolder_writes_at_the_repository_root(repo: Path) -> None:
    (repo / "src").mkdir()
    done = treeflow(repo / "src", "init")
    assert done.returncode == 0, done.stderr
    assert (repo / "treeflow.yml").is_file()
    assert not (repo / "src" / "treeflow.yml").exists()


def test_init_cursor_writes_only_the_cursor_rule(repo: Path) -> None:
    done = treeflow(repo, "init", "--cursor")
    assert done.returncode == 0, done.stderr
    assert (repo / ".cursor" / "rules" / "treeflow.mdc").is_file()
    assert not (repo / "treeflow.yml").exists()
