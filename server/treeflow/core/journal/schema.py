"""The journal's file: where it lives, its tables, and a connection to it.

It lives at `<git common dir>/treeflow/journal.db`, in WAL mode, so the CLI and the language server
can write it at once. The schema only ever gains tables (`CREATE TABLE IF NOT EXISTS`), so a journal
written by an older treeflow is brought up to date by opening it; one written by a newer treeflow in
a format this one does not know is refused (`compatibility`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from treeflow.core.git import Repository
from treeflow.core.journal.compatibility import check_format, claim_journal
from treeflow.core.journal.errors import JournalUnavailable
from treeflow.core.journal.rounds import TABLE as ROUNDS_TABLE
from treeflow.core.journal.workers import TABLE as WORKERS_TABLE

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    workflow_path TEXT NOT NULL,
    status TEXT NOT NULL,
    base_commit TEXT,
    result_branch TEXT,
    selected TEXT NOT NULL DEFAULT '[]',
    warnings TEXT NOT NULL DEFAULT '[]',
    started_at REAL,
    ended_at REAL,
    duration_s REAL,
    owner_pid INTEGER,
    owner_start INTEGER
);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    started_at REAL,
    ended_at REAL,
    duration_s REAL,
    branch TEXT,
    commit_id TEXT,
    start_commit TEXT,
    work_branch TEXT,
    worktree TEXT,
    log TEXT,
    error TEXT,
    summary TEXT,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_outcomes (
    batch INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    steps TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS step_outcomes_by_run ON step_outcomes (run_id);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at REAL,
    outcome TEXT,
    PRIMARY KEY (run_id, step_id, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS processes (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    pgid INTEGER NOT NULL,
    start_ticks INTEGER,
    ended INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, step_id, pgid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS step_outputs (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    outputs TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS discarded_runs (
    run_id TEXT PRIMARY KEY,
    discarded_at REAL NOT NULL,
    branches TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS treeflow_versions (
    version TEXT PRIMARY KEY,
    format INTEGER NOT NULL,
    last_opened REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agent_sessions (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    cli TEXT NOT NULL,
    session_id TEXT,
    turns INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS approvals (
    request INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    message TEXT NOT NULL,
    requested_at REAL NOT NULL,
    expires_at REAL,
    decision TEXT,
    decided_by TEXT,
    via TEXT,
    decided_at REAL,
    note TEXT,
    settled_at REAL
);
CREATE INDEX IF NOT EXISTS approvals_by_step ON approvals (run_id, step_id);
CREATE TABLE IF NOT EXISTS step_cache (
    cache_key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    start_commit TEXT NOT NULL,
    result_commit TEXT NOT NULL,
    log_blob TEXT,
    outputs TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    used_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS step_cache_by_use ON step_cache (used_at);
CREATE TABLE IF NOT EXISTS cached_steps (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    cached_from TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id)
) WITHOUT ROWID;
"""
    + ROUNDS_TABLE
    + WORKERS_TABLE
)

# Every table that holds rows of a run, keyed by its `run_id` column.
RUN_TABLES = (
    "runs",
    "steps",
    "step_outcomes",
    "attempts",
    "processes",
    "step_outputs",
    "discarded_runs",
    "agent_sessions",
    "approvals",
    "cached_steps",
    "step_rounds",
    "step_workers",
)

_BUSY_TIMEOUT_S = 30.0

_prepared: set[Path] = set()


def journal_path(repo: Repository) -> Path:
    return repo.state_dir / "journal.db"


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection with the journal's schema; several processes may hold one at once."""
    connection: sqlite3.Connection | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prepared = path in _prepared and path.exists()
        connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA synchronous=NORMAL")
        if not prepared:
            # WAL mode is stored in the file, and the schema too: once per process is enough.
            _use_wal(connection)
            check_format(connection, path)
            connection.executescript(SCHEMA)
            claim_journal(connection, path)
            _prepared.add(path)
        else:
            # A newer treeflow (the CLI beside the editor's server, say) may have moved it on since.
            check_format(connection, path)
    except (OSError, sqlite3.Error, JournalUnavailable) as exc:
        if connection is not None:
            connection.close()
        if isinstance(exc, JournalUnavailable):
            raise
        raise JournalUnavailable(f"cannot open the run journal {path}: {exc}") from exc
    try:
        yield connection
    finally:
        connection.close()


def _use_wal(connection: sqlite3.Connection) -> None:
    """Switch the journal to WAL mode, waiting out another process that is doing the same.

    The switch needs the file to itself, and when another connection is switching it or opening it,
    SQLite may answer "database is locked" at once instead of calling the busy handler: of two
    treeflow processes that open a new journal together, one would fail.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    pause = 0.002
    try:
        while True:
            left = deadline - time.monotonic()
            connection.execute(f"PRAGMA busy_timeout = {max(1, int(left * 1000))}")
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or left < pause:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
