"""Agent CLI steps through `treeflow run`, `show` and `resume`, and the journal that keeps their totals."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.agents.test_agent_clis import FAKE_CLIS
from treeflow.core import journal

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow(
    repo: Path, *args: str, scenario: str = "success", **env: str
) -> subprocess.CompletedProcess[str]:
    variables = {
        **os.environ,
        "PATH": f"{FAKE_CLIS}:{os.environ['PATH']}",
        "FAKE_AGENT_SCENARIO": scenario,
        **env,
    }
    return subprocess.run(
        [*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60, env=variables
    )


WORKFLOW = """\
steps:
  fix: {agent: {use: claude, prompt: Make the failing test pass}}
  alt: {agent: {use: codex, prompt: Make the failing test pass, model: gpt-5-codex}}
"""


def test_run_json_and_show_carry_the_agents_totals(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(WORKFLOW)
    done = treeflow(repo, "run", "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    claude = result["steps"]["fix"]["agent"]
    assert claude["cli"] == "claude" and claude["session_id"]
    assert (claude["turns"], claude["input_tokens"], claude["output_tokens"], claude["cost_usd"]) == (
        5,
        43568,
        218,
        0.0412,
    )
    assert result["steps"]["alt"]["agent"]["output_tokens"] == 612

    shown = treeflow(repo, "show", "last", "--json")
    assert json.loads(shown.stdout)["steps"]["fix"]["agent"] == {
        **claude,
        "action": None,
        "last_message": None,
    }
    table = treeflow(repo, "show", "last")
    assert (
        f"agent of fix: claude session {claude['session_id']}, 5 turns, 43.6k tokens in, 218 out, $0.0412"
        in (table.stdout)
    )


def test_run_prints_what_the_agent_does(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(WORKFLOW)
    done = treeflow(repo, "run")
    assert "[fix] | → Bash: pytest -q tests/test_api.py" in done.stdout
    assert "[alt] | → edited update src/api.py" in done.stdout
    assert "[fix] succeeded in" in done.stdout and "5 turns, 43.6k tokens in, 218 out, $0.0412" in done.stdout


@pytest.mark.slow
def test_resume_continues_the_failed_agents_session(repo: Path, tmp_path: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  fix: {agent: {use: claude, prompt: Make the test pass}}\n")
    argv_file = tmp_path / "argv.jsonl"
    first = treeflow(repo, "run", "--json", scenario="fail-until-resumed", FAKE_AGENT_ARGV=str(argv_file))
    assert first.returncode == 1
    failed = json.loads(first.stdout)
    session = failed["steps"]["fix"]["agent"]["session_id"]
    assert session

    again = treeflow(
        repo, "resume", "last", "--json", scenario="fail-until-resumed", FAKE_AGENT_ARGV=str(argv_file)
    )
    assert again.returncode == 0, again.stderr
    _, resumed = [json.loads(line) for line in argv_file.read_text().splitlines()]
    assert resumed[resumed.index("--resume") + 1] == session
    assert resumed[-1].startswith(
        "treeflow is continuing this task. The last attempt failed: Claude Code failed:"
    )
    assert json.loads(again.stdout)["steps"]["fix"]["agent"]["session_id"] == session


def test_a_journal_from_before_agent_sessions_is_read_and_gains_the_table(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  a: {run: 'true'}\n")
    assert treeflow(repo, "run").returncode == 0
    path = repo / ".git" / "treeflow" / "journal.db"
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE agent_sessions")
    # A new process opens the journal as an older treeflow left it.
    shown = treeflow(repo, "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["steps"]["a"]["agent"] is None
    (repo / "treeflow.yml").write_text(WORKFLOW)
    assert treeflow(repo, "run").returncode == 0
    records = journal.read_runs(path)
    assert records[0].run.steps["fix"].agent is not None


EXAMPLE = Path(__file__).parents[2] / "examples" / "agents"


def test_the_examples_fake_clis_are_the_tested_ones() -> None:
    shipped = EXAMPLE / "fake-clis"
    for path in shipped.rglob("*"):
        if path.is_file():
            assert path.read_bytes() == (FAKE_CLIS / path.relative_to(shipped)).read_bytes(), path


@pytest.mark.slow
def test_the_example_runs_claude_and_codex_without_accounts(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(EXAMPLE, demo)
    git_init = ["git", "init", "--quiet"], ["git", "add", "-A"], ["git", "commit", "--quiet", "-m", "demo"]
    for argv in git_init:
        subprocess.run(argv, cwd=demo, check=True)
    done = subprocess.run(
        [*TREEFLOW, "run", "clis.yml", "--json"], cwd=demo, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert {steps[name]["agent"]["cli"] for name in ("fix", "alt")} == {"claude", "codex"}
