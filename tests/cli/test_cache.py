"""Cached steps through the real CLI: hits and what they restore, misses on each part of the key,
a replay that conflicts, `--no-cache`, a failure never kept, and `treeflow clean` expiring entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

pytestmark = pytest.mark.slow

WORKFLOW = """\
name: cached
steps:
  build:
    run: |
      echo "$STEP_NAME" >> "$TRACE"
      cat src/main.txt > built.txt
      echo "compiled $(cat src/main.txt)"
      echo "version=7" >> "$TREEFLOW_OUTPUT"
    env: {STEP_NAME: build}
    cache: {inputs: ["src/**"]}
  test:
    needs: [build]
    run: |
      echo test >> "$TRACE"
      echo "saw ${{ needs.build.outputs.version }}" > tested.txt
    cache: {inputs: [tests]}
"""


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "src").mkdir()
    (repo / "src" / "main.txt").write_text("one\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "case.txt").write_text("case\n")
    (repo / "notes.txt").write_text("notes\n")
    (repo / "treeflow.yml").write_text(WORKFLOW)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    return repo


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACE": str(repo.parent / "trace")}
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=120, env=env)


def run_json(repo: Path, *args: str) -> dict[str, Any]:
    done = treeflow(repo, "run", "--json", *args)
    assert done.stdout, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def ran(repo: Path) -> list[str]:
    """The steps that ran since the last call, in order."""
    trace = repo.parent / "trace"
    lines = trace.read_text().split() if trace.exists() else []
    trace.unlink(missing_ok=True)
    return lines


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {step_id: step["status"] for step_id, step in result["steps"].items()}


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def test_a_hit_replays_the_work_and_restores_log_and_outputs(project: Path) -> None:
    first = run_json(project)
    assert statuses(first) == {"build": "succeeded", "test": "succeeded"}
    assert ran(project) == ["build", "test"]

    (project / "notes.txt").write_text("notes changed, not an input\n")
    commit_all(project, "notes")
    second = run_json(project)

    assert ran(project) == []
    assert statuses(second) == {"build": "cached", "test": "cached"}
    build = second["steps"]["build"]
    assert build["cached_from"] == f"{first['run_id']}/build"
    assert build["outputs"] == {"version": "7"}
    log = Path(build["log"]).read_text()
    assert f"cached: the work of {first['run_id']}/build, replayed" in log
    assert "compiled one" in log
    # The work is replayed onto this run's start: the notes changed since are kept beside it.
    result = second["result_branch"]
    assert git(project, "show", f"{result}:built.txt") == "one"
    assert git(project, "show", f"{result}:tested.txt") == "saw 7"
    assert git(project, "show", f"{result}:notes.txt") == "notes changed, not an input"
    assert git(project, "rev-parse", f"{build['branch']}^") == second["base_commit"]

    shown = json.loads(treeflow(project, "show", second["run_id"], "--json").stdout)
    assert shown["steps"]["test"]["status"] == "cached"
    assert shown["steps"]["test"]["cached_from"] == f"{first['run_id']}/test"
    table = treeflow(project, "show", second["run_id"]).stdout
    assert f"cached from {first['run_id']}/build" in table


def test_with_nothing_changed_the_steps_take_the_same_commits(project: Path) -> None:
    first = run_json(project)
    second = run_json(project)

    assert statuses(second) == {"build": "cached", "test": "cached"}
    for step_id in ("build", "test"):
        assert second["steps"][step_id]["commit"] == first["steps"][step_id]["commit"]
        assert second["steps"][step_id]["branch"] == f"treeflow/{second['run_id']}/{step_id}"
    assert git(project, "rev-parse", f"treeflow/{second['run_id']}/test") == first["steps"]["test"]["commit"]


def test_a_changed_input_reruns_the_step_and_its_key_reaches_the_steps_after_it(project: Path) -> None:
    run_json(project)
    ran(project)
    (project / "src" / "main.txt").write_text("two\n")
    commit_all(project, "main")

    result = run_json(project)

    # `test` has inputs of its own that did not change; the key of the step it needs did.
    assert ran(project) == ["build", "test"]
    assert statuses(result) == {"build": "succeeded", "test": "succeeded"}
    assert git(project, "show", f"{result['result_branch']}:built.txt") == "two"


def test_uncommitted_changes_to_an_input_count(project: Path) -> None:
    run_json(project)
    ran(project)
    (project / "src" / "main.txt").write_text("edited, not committed\n")

    assert statuses(run_json(project))["build"] == "succeeded"
    assert ran(project) == ["build", "test"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("env: {STEP_NAME: build}", "env: {STEP_NAME: build, LEVEL: '2'}"),
        ("cat src/main.txt >", "cat src/*.txt >"),
    ],
    ids=["env", "command"],
)
def test_a_changed_env_or_command_misses(project: Path, old: str, new: str) -> None:
    run_json(project)
    ran(project)
    (project / "treeflow.yml").write_text(WORKFLOW.replace(old, new))
    commit_all(project, "workflow")

    assert statuses(run_json(project))["build"] == "succeeded"
    assert ran(project) == ["build", "test"]


def test_work_that_does_not_apply_cleanly_runs_the_step_and_says_so(repo: Path) -> None:
    (repo / "out.txt").write_text("before\n")
    (repo / "src.txt").write_text("input\n")
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            """\
            steps:
              gen:
                run: echo gen >> "$TRACE"; echo generated > out.txt
                cache: {inputs: [src.txt]}
            """
        )
    )
    commit_all(repo, "project")
    first = run_json(repo)
    assert ran(repo) == ["gen"]
    # Not an input, but the cached work changed it too: the replay conflicts.
    (repo / "out.txt").write_text("changed by hand\n")
    commit_all(repo, "out")

    second = run_json(repo)

    assert ran(repo) == ["gen"]
    assert statuses(second) == {"gen": "succeeded"}
    log = Path(second["steps"]["gen"]["log"]).read_text()
    assert f"the cached work of {first['run_id']}/gen conflicts here (in out.txt); the step runs" in log
    assert git(repo, "show", f"{second['result_branch']}:out.txt") == "generated"


def test_no_cache_runs_every_step_and_keeps_what_it_made(project: Path) -> None:
    run_json(project)
    ran(project)

    fresh = run_json(project, "--no-cache")
    assert statuses(fresh) == {"build": "succeeded", "test": "succeeded"}
    assert ran(project) == ["build", "test"]

    again = run_json(project)
    assert ran(project) == []
    assert again["steps"]["build"]["cached_from"] == f"{fresh['run_id']}/build"


def test_a_failed_step_is_never_cached(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        'steps:\n  flaky:\n    run: echo flaky >> "$TRACE"; test -f "$TRACE.pass"\n    cache: true\n'
    )
    commit_all(repo, "project")
    assert statuses(run_json(repo)) == {"flaky": "failed"}
    (repo.parent / "trace.pass").write_text("")

    assert statuses(run_json(repo)) == {"flaky": "succeeded"}
    assert ran(repo) == ["flaky", "flaky"]
    assert statuses(run_json(repo)) == {"flaky": "cached"}


def test_resume_takes_no_cache_too(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(
        textwrap.dedent(
            """\
            steps:
              a: {run: echo a >> "$TRACE", cache: true}
              b: {needs: [a], run: 'echo b >> "$TRACE"; test -f "$TRACE.pass"'}
            """
        )
    )
    commit_all(repo, "project")
    failed = run_json(repo)
    assert statuses(failed) == {"a": "succeeded", "b": "failed"}
    (repo.parent / "trace.pass").write_text("")
    ran(repo)

    done = treeflow(repo, "resume", failed["run_id"], "--no-cache", "--json")

    assert json.loads(done.stdout)["status"] == "succeeded", done.stderr
    assert ran(repo) == ["b"]  # a had succeeded: a resume never runs it again, cache or not


def test_clean_expires_entries_by_age_and_count(project: Path) -> None:
    first = run_json(project)
    ran(project)
    refs = git(project, "for-each-ref", "--format=%(refname)", "refs/treeflow/cache/").split()
    assert len(refs) == 2

    kept = treeflow(project, "clean", "--keep-cache", "1")
    assert kept.returncode == 0, kept.stderr
    assert "expired cached result" in kept.stdout and "more than 1 entries" in kept.stdout
    assert len(git(project, "for-each-ref", "--format=%(refname)", "refs/treeflow/cache/").split()) == 1

    dry = treeflow(project, "clean", "--keep-days", "0", "--dry-run")
    assert "would expire cached result" in dry.stdout
    assert len(git(project, "for-each-ref", "--format=%(refname)", "refs/treeflow/cache/").split()) == 1
    treeflow(project, "clean", "--keep-days", "0")
    assert git(project, "for-each-ref", "refs/treeflow/cache/") == ""

    again = run_json(project)
    assert statuses(again) == {"build": "succeeded", "test": "succeeded"}
    assert ran(project) == ["build", "test"]
    assert again["run_id"] != first["run_id"]
