"""The CLI on a repository whose journal another treeflow version shares."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import treeflow
from tests.journal_versions import other_treeflow
from treeflow.core.journal import JOURNAL_FORMAT
from treeflow.core.journal.schema import SCHEMA

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=60)


def test_a_journal_a_newer_format_wrote_is_refused_naming_both_versions(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'true'}\n")
    assert treeflow_cli(repo, "run").returncode == 0
    newer = other_treeflow(repo, "9.1.0", JOURNAL_FORMAT + 1, "runs")
    assert newer.returncode == 0, newer.stderr

    for command in (["runs"], ["run"], ["show", "last"]):
        done = treeflow_cli(repo, *command)
        assert done.returncode == 2, done.stderr
        assert "journal.db was written by treeflow 9.1.0" in done.stderr
        assert f"journal format {JOURNAL_FORMAT + 1}" in done.stderr
        assert f"this is treeflow {treeflow.__version__}, which reads format {JOURNAL_FORMAT}" in done.stderr
        assert "Traceback" not in done.stderr
        assert done.stdout == ""


def test_an_older_release_of_the_same_format_shares_the_journal(repo: Path) -> None:
    (repo / "treeflow.yml").write_text("steps:\n  s: {run: 'true'}\n")
    older = other_treeflow(repo, "0.0.9", JOURNAL_FORMAT, "run")
    assert older.returncode == 0, older.stderr
    listed = treeflow_cli(repo, "runs", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"succeeded"' in listed.stdout
    # Named in the debug log, for when two installs behave differently.
    verbose = treeflow_cli(repo, "-v", "runs")
    assert "shared with treeflow 0.0.9" in verbose.stderr


def test_a_journal_from_before_formats_were_kept_is_brought_up_to_date(repo: Path) -> None:
    state = repo / ".git" / "treeflow"
    state.mkdir(parents=True)
    with sqlite3.connect(state / "journal.db") as connection:
        connection.executescript(SCHEMA)
        connection.execute("DROP TABLE treeflow_versions")
    done = treeflow_cli(repo, "runs")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(state / "journal.db") as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == JOURNAL_FORMAT
        versions = connection.execute("SELECT version, format FROM treeflow_versions").fetchall()
    assert versions == [(treeflow.__version__, JOURNAL_FORMAT)]
