"""Matrix steps through the CLI, as real processes: `validate`, `run --step`, `show`, and `resume`
of a run in which one combination failed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

pytestmark = pytest.mark.slow


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def run_json(repo: Path, *args: str) -> dict[str, Any]:
    done = treeflow(repo, *args, "--json")
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def write(repo: Path, text: str) -> None:
    (repo / "treeflow.yml").write_text(textwrap.dedent(text))


def test_validate_counts_combinations_and_names_matrix_problems_at_file_line_col(repo: Path) -> None:
    write(
        repo,
        """\
        steps:
          test: {run: pytest, matrix: {python: ["3.11", "3.12"], shard: [1, 2]}}
          join: {run: "true", needs: test}
        """,
    )
    done = treeflow(repo, "validate", "treeflow.yml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "treeflow.yml: ok (2 steps, 5 with matrix combinations)"
    write(
        repo,
        """\
        steps:
          test:
            matrix: {python: ["3.11"], shard: []}
            run: pytest -k ${{ matrix.shrad }}
        """,
    )
    done = treeflow(repo, "validate", "treeflow.yml")
    assert done.returncode == 2
    assert done.stderr.splitlines()[:2] == [
        "treeflow.yml:3:39: step `test`: matrix.shard is an empty list: give it at least one value",
        "treeflow.yml:4:24: step `test`: run: unknown matrix key `shrad` (keys: python, shard); "
        "did you mean `shard`?",
    ]


def test_resume_runs_again_only_the_combination_that_failed_and_then_the_join(repo: Path) -> None:
    # Outside the repository, so that neither the run's base nor a step's work holds them.
    fixed = repo.parent / "fixed"
    tally = repo.parent / "tally"
    write(
        repo,
        f"""\
        fail_fast: false
        steps:
          test:
            matrix: {{shard: [1, 2, 3]}}
            run: |
              echo "${{{{ matrix.shard }}}}" >> {tally}
              if [ ${{{{ matrix.shard }}}} = 2 ]; then test -e {fixed}; fi
              echo "shard ${{{{ matrix.shard }}}}" > "shard-${{{{ matrix.shard }}}}.txt"
          join: {{needs: [test], run: "cat shard-*.txt > joined.txt"}}
        """,
    )
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "--quiet", "-m", "workflow")
    first = run_json(repo, "run")
    assert first["status"] == "failed"
    statuses = {step_id: step["status"] for step_id, step in first["steps"].items()}
    assert statuses == {
        "test[shard=1]": "succeeded",
        "test[shard=2]": "failed",
        "test[shard=3]": "succeeded",
        "join": "skipped",
    }
    assert first["steps"]["join"]["error"] == "needs `test[shard=2]`, which failed"

    fixed.touch()
    resumed = run_json(repo, "resume", first["run_id"])
    assert resumed["status"] == "succeeded", resumed
    assert sorted(tally.read_text().split()) == ["1", "2", "2", "3"]
    join_branch = resumed["steps"]["join"]["branch"]
    assert join_branch == f"treeflow/{first['run_id']}/join"
    assert git(repo, "show", f"{join_branch}:joined.txt") == "shard 1\nshard 2\nshard 3"
    assert resumed["steps"]["test[shard=2]"]["branch"] == f"treeflow/{first['run_id']}/test.shard-2"
    assert "test[shard=2]" in treeflow(repo, "show", first["run_id"]).stdout

    # One combination alone, named by its branch-safe form, runs with nothing else.
    again = run_json(repo, "run", "--step", "test.shard-3")
    assert list(again["steps"]) == ["test[shard=3]"]
    assert again["status"] == "succeeded"
