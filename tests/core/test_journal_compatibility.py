"""A journal's format: kept, raised from an older one, and a newer one refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import treeflow
from tests.journal_versions import other_treeflow
from treeflow.core import journal
from treeflow.core.journal import JOURNAL_FORMAT, JournalTooNew


def test_a_new_journal_carries_the_format_and_this_version(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with journal.connect(path):
        pass
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == JOURNAL_FORMAT
        rows = connection.execute("SELECT version, format FROM treeflow_versions").fetchall()
    assert rows == [(treeflow.__version__, JOURNAL_FORMAT)]


def test_a_process_that_opened_the_journal_first_sees_a_newer_format_at_its_next_open(repo: Path) -> None:
    path = repo / ".git" / "treeflow" / "journal.db"
    with journal.connect(path):
        pass
    newer = other_treeflow(repo, "3.0.0", JOURNAL_FORMAT + 1, "runs")
    assert newer.returncode == 0, newer.stderr
    with pytest.raises(JournalTooNew) as refused:
        journal.read_runs(path, 10)
    assert refused.value.writer == "3.0.0"
    assert refused.value.found_format == JOURNAL_FORMAT + 1
    # Every front end already handles a journal it cannot open; the refusal is one of those.
    assert isinstance(refused.value, journal.JournalUnavailable)
    assert str(path) in str(refused.value)


def test_a_newer_format_without_a_record_of_its_writer_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {JOURNAL_FORMAT + 5}")
    with pytest.raises(JournalTooNew, match="written by a newer treeflow"):
        journal.read_runs(path, 10)
    with sqlite3.connect(path) as connection:
        # Refused before anything was written into it.
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
