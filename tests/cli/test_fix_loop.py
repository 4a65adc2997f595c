"""Fix loops through the CLI, as real processes: the "fix until green" example from a fresh copy,
its matrix version with a report that runs whatever happened, `show` and `--json` of the rounds,
and `resume` of a run whose loop ran out of rounds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_recovery import killed_at_the_end
from tests.conftest import git
from tests.helpers import wait_for_files, wait_until
from treeflow.core import journal
from treeflow.core.model import StepStatus

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fix-until-green"

pytestmark = pytest.mark.slow


def treeflow(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TREEFLOW, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def run_json(repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = treeflow(repo, *args, "--json", env=env)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A fresh repository holding the example, as its README says to make one."""
    repo = tmp_path / "green"
    shutil.copytree(EXAMPLE, repo)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "start")
    return repo


def rounds_of(step: dict[str, Any]) -> list[tuple[int, int, str, str | None]]:
    return [(r["round"], r["of"], r["status"], r["fix_status"]) for r in step["rounds"]]


def test_the_fix_until_green_example_goes_green_in_round_three(example: Path) -> None:
    done = treeflow(example, "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[test] round 1 of 3 failed (exit 1); fixer `fix` runs on top of it" in done.stdout
    assert "[test] round 3 of 3: runs again on top of the fix" in done.stdout
    assert "[test] succeeded in " in done.stdout and " in round 3 of 3, log: " in done.stdout
    assert "[report] | tests succeeded" in done.stdout

    shown = treeflow(example, "show", "last")
    run_id = shown.stdout.split()[1]
    assert shown.stdout.splitlines()[4:7] == [
        f"test round 1 of 3 failed, fixer `fix` succeeded; its work: treeflow/{run_id}/test.round-1",
        f"test round 2 of 3 failed, fixer `fix` succeeded; its work: treeflow/{run_id}/test.round-2",
        "test round 3 of 3 succeeded; no work",
    ]
    result = run_json(example, "show", "last")
    test = result["steps"]["test"]
    assert rounds_of(test) == [
        (1, 3, "failed", "succeeded"),
        (2, 3, "failed", "succeeded"),
        (3, 3, "succeeded", None),
    ]
    assert test["branch"] == f"treeflow/{run_id}/test.round-2"
    assert list(result["steps"]) == ["test", "report"]
    # The fixes are the run's result.
    assert "return a * b" in git(example, "show", f"treeflow/runs/{run_id}:calc.py")


def test_shards_with_fix_loops_a_gate_approved_from_the_cli_and_a_report_that_always_runs(
    example: Path,
) -> None:
    run = subprocess.Popen(
        [*TREEFLOW, "run", "shards.yml"],
        cwd=example,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert run.stdout is not None
        seen = []
        for line in run.stdout:
            seen.append(line)
            if "waiting for approval" in line:
                break
        else:
            raise AssertionError(f"the run never waited at its gate: {''.join(seen)}")
        # Both shards went green through their fix loops before the gate asked.
        waiting = json.loads(treeflow(example, "show", "last", "--json").stdout)
        for shard in ("add", "multiply"):
            assert rounds_of(waiting["steps"][f"test[shard={shard}]"]) == [
                (1, 2, "failed", "succeeded"),
                (2, 2, "succeeded", None),
            ]
        approved = treeflow(example, "approve", "last", "release")
        assert approved.returncode == 0, approved.stderr
        rest, _ = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, "".join(seen) + rest
    green = json.loads(treeflow(example, "show", "last", "--json").stdout)
    assert green["status"] == "succeeded"
    assert green["steps"]["release"]["approval"]["decision"] == "approved"
    report = Path(green["steps"]["report"]["log"]).read_text().splitlines()
    assert report[0] == "shards succeeded, release succeeded"

    # A fixer that gives up ends its shard's loop; fail-fast stops the other shard, the release is
    # skipped without asking, and the report runs all the same.
    red = run_json(example, "run", "shards.yml", env={"FAKE_FIXER_GIVE_UP": "1"})
    assert red["status"] == "failed"
    statuses = {step_id: step["status"] for step_id, step in red["steps"].items()}
    assert (statuses["release"], statuses["report"]) == ("skipped", "succeeded")
    assert "failed" in statuses.values()
    failed = next(step for step in red["steps"].values() if step["status"] == "failed")
    assert failed["rounds"][0]["fix_status"] == "failed"
    assert "its fixer `fix` failed in round 1" in failed["error"]
    assert Path(red["steps"]["report"]["log"]).read_text().splitlines()[0] == "shards failed, release skipped"


def test_resume_goes_on_with_the_loop_from_its_last_round(repo: Path) -> None:
    # Outside the repository, so that no step's work holds it.
    able = repo.parent / "fixer-able"
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            f"""\
            steps:
              test:
                run: 'echo run >> runs.txt; test -f fixed'
                on_failure: {{run_step: fix, max_rounds: 2}}
              fix: {{run: 'echo fix >> runs.txt; if [ -f {able} ]; then touch fixed; fi'}}
            """
        )
    )
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "--quiet", "-m", "workflow")
    first = run_json(repo, "run")
    assert first["status"] == "failed"
    assert rounds_of(first["steps"]["test"]) == [(1, 2, "failed", "succeeded"), (2, 2, "failed", None)]

    able.touch()
    resumed = run_json(repo, "resume", first["run_id"])
    assert resumed["status"] == "succeeded", resumed
    # The earlier rounds stay; the loop goes on with rounds of its own after them.
    assert rounds_of(resumed["steps"]["test"]) == [
        (1, 2, "failed", "succeeded"),
        (2, 2, "failed", None),
        (3, 4, "failed", "succeeded"),
        (4, 4, "succeeded", None),
    ]
    # Round 3 started from round 2's work.
    last = resumed["steps"]["test"]["rounds"][2]["branch"]
    assert git(repo, "show", f"{last}:runs.txt").split() == ["run", "fix", "run", "run", "fix"]
    assert (
        json.loads(treeflow(repo, "show", first["run_id"], "--json").stdout)["steps"]["test"]["rounds"][3][
            "status"
        ]
        == "succeeded"
    )


def test_a_run_killed_while_its_fixer_works_resumes_with_the_next_round(repo: Path) -> None:
    fixing = repo.parent / "fixing"
    able = repo.parent / "fixer-able"
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            f"""\
            steps:
              test:
                run: 'echo run >> runs.txt; test -f fixed'
                on_failure: {{run_step: fix, max_rounds: 3}}
              fix:
                run: 'echo half >> runs.txt; if [ -f {able} ]; then touch fixed; else echo on > {fixing}; sleep 60; fi'
            """
        )
    )
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "--quiet", "-m", "workflow")
    journal_path = repo / ".git" / "treeflow" / "journal.db"

    def fixing_journaled() -> bool:
        runs = journal.read_runs(journal_path, limit=1)
        rounds = runs[0].run.steps["test"].rounds if runs else ()
        return bool(rounds) and rounds[0].fix_status is StepStatus.RUNNING

    with killed_at_the_end(repo, "run"):
        wait_for_files([fixing], timeout_s=60)
        # The journal writes in batches: the kill must come once it has the fixer at work.
        wait_until(fixing_journaled, "the journal to have round 1's fixer at work", timeout_s=30)
    able.touch()
    # Recovery saves the fixer's half-done work on round 1's branch; the loop goes on from there.
    resumed = run_json(repo, "resume", "last")
    assert resumed["status"] == "succeeded", resumed
    run_id = resumed["run_id"]
    assert rounds_of(resumed["steps"]["test"]) == [
        (1, 3, "failed", "interrupted"),
        (2, 4, "failed", "succeeded"),
        (3, 4, "succeeded", None),
    ]
    assert resumed["steps"]["test"]["rounds"][0]["branch"] == f"treeflow/{run_id}/test.round-1"
    assert git(repo, "show", f"treeflow/{run_id}/test.round-2:runs.txt").split() == [
        "run",
        "half",
        "run",
        "half",
    ]
