"""The run journal: every run, step, attempt, process group and worktree, in SQLite.

Only what recovery and history need is written, and as few rows as that allows: a run's row lists
its steps, so a step that has not started needs no row of its own; a step gets one in `steps` while
it holds a place (worktree, branch, start commit) or process groups that a crash would leave
behind; and the outcomes of the steps that ended within one batch of writes share one row of
`step_outcomes`, a JSON list, which a reader lays over `steps`. A thousand one-second steps thus
cost tens of rows, not thousands.

It lives at `<git common dir>/treeflow/journal.db`, in WAL mode, so the CLI and the language server
can write it at once. As an event sink it never blocks the event loop: each event becomes a few
rows that a writer thread commits in batches. What it records lets a later treeflow process find a
run whose process died, kill what that run left running, save its worktrees, and resume it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from treeflow.core.events import (
    Event,
    ProcessStarted,
    RunFinished,
    RunStarted,
    StepFinished,
    StepPlaced,
    StepRetrying,
    StepStarted,
)
from treeflow.core.git import Repository
from treeflow.core.model import RunResult, RunStatus, StepResult, StepStatus
from treeflow.core.process import process_start_ticks

log = logging.getLogger(__name__)

_SCHEMA = """
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
"""

Statement = tuple[str, tuple[Any, ...]]
_BATCH_WAIT_S = 0.05
_BUSY_TIMEOUT_S = 30.0


_prepared: set[Path] = set()


def journal_path(repo: Repository) -> Path:
    return repo.state_dir / "journal.db"


class JournalUnavailable(Exception):
    """The journal file cannot be opened: no permission, a folder in its place, not a database."""


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
            connection.executescript(_SCHEMA)
            _prepared.add(path)
    except (OSError, sqlite3.Error) as exc:
        if connection is not None:
            connection.close()
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


class Journal:
    """The journal of one repository, as an event sink with a writer thread."""

    def __init__(self, repo: Repository) -> None:
        self.path = journal_path(repo)
        self._queue: queue.SimpleQueue[_Change | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="treeflow-journal", daemon=True)
        self._ready = threading.Event()
        self._closing = threading.Event()
        # Where each step of a run stands in the workflow, for the rows of steps as they end.
        self._positions: dict[str, dict[str, int]] = {}
        # Steps with process rows already committed: only those need them marked ended.
        self._steps_with_processes: set[_StepKey] = set()
        self._failure: JournalUnavailable | None = None
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def emit(self, event: Event) -> None:
        if isinstance(event, (ProcessStarted, StepPlaced, StepRetrying)):
            self._queue.put(event)
        elif isinstance(event, StepStarted):
            # A first attempt is told by the step's own row; a retry's start needs one of its own.
            if event.attempt > 1:
                self._queue.put(event)
        elif type(event) in _SNAPSHOT_EVENTS:
            # Runs and step results go on changing: their rows are taken now, on the event loop.
            self._queue.put(self._snapshot(event))

    def close(self) -> None:
        """Write what is queued and stop the writer (blocking: call it from a worker thread)."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join()

    def _write_loop(self) -> None:
        try:
            with connect(self.path) as connection:
                self._ready.set()
                self._write_batches(connection)
        except JournalUnavailable as exc:
            self._failure = exc
            self._ready.set()

    def _write_batches(self, connection: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            # Waiting a moment lets a burst of events (a thousand short steps) gather into one
            # transaction, and keeps this thread from contending with the event loop for the GIL
            # after every event.
            self._closing.wait(_BATCH_WAIT_S)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            writes = self._coalesce([change for change in batch if change is not None])
            if writes:
                self._execute(connection, writes)

    def _execute(self, connection: sqlite3.Connection, writes: list[_Write]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            for sql, rows in writes:
                if sql is _BEGIN_AGAIN:
                    for run_id, steps in rows:
                        _begin_again(connection, run_id, steps)
                else:
                    _write_rows(connection, sql, rows)
            connection.execute("COMMIT")
        except Exception as exc:
            # Whatever one batch meets, the thread must go on: the batches after it would be lost.
            log.error("could not write the run journal %s: %s", self.path, exc)
            if connection.in_transaction:
                connection.execute("ROLLBACK")

    def _snapshot(self, event: Event) -> _Change:
        if isinstance(event, RunStarted):
            run = event.run
            # Steps a resumed run takes over from its earlier attempt are already final.
            carried = [
                _step_row(run.run_id, step_id, position, step)
                for position, (step_id, step) in enumerate(run.steps.items())
                if step.status is not StepStatus.PENDING
            ]
            return _RunBegins(_run_row(run, RunStatus.RUNNING), list(run.steps), carried)
        if isinstance(event, StepFinished):
            result = event.result
            return _StepEnds(
                (event.run_id, event.step_id),
                _step_row(event.run_id, event.step_id, None, result),
                (event.run_id, event.step_id, result.attempts, result.error or result.status.value),
            )
        assert isinstance(event, RunFinished)
        return _RunEnds(_run_row(event.run, event.run.status))

    def _coalesce(self, changes: list[_Change]) -> list[_Write]:
        """The writes for a batch of changes, with what a later change in the batch makes moot left out.

        A short step often starts, runs and ends within one batch: then its place and its process
        groups need no rows of their own (the step's final row gets the place; ended processes need
        no killing after a crash), and the step costs one row.
        """
        runs_begun: list[tuple[Any, ...]] = []
        carried: list[tuple[str, list[tuple[Any, ...]]]] = []
        placed: dict[_StepKey, tuple[Any, ...]] = {}
        processes: dict[_StepKey, list[tuple[Any, ...]]] = {}
        ended: dict[_StepKey, _StepEnds] = {}
        attempts: list[tuple[Any, ...]] = []
        retries: list[tuple[Any, ...]] = []
        runs_ended: list[tuple[Any, ...]] = []
        for change in changes:
            if isinstance(change, ProcessStarted):
                key = (change.run_id, change.step_id)
                processes.setdefault(key, []).append((change.group, change.start_ticks))
            elif isinstance(change, StepPlaced):
                worktree = str(change.worktree) if change.worktree else None
                placed[(change.run_id, change.step_id)] = (
                    worktree,
                    change.branch,
                    change.start_commit,
                    time.time(),
                )
            elif isinstance(change, _StepEnds):
                ended[change.key] = change
            elif isinstance(change, StepRetrying):
                attempts.append((change.run_id, change.step_id, change.next_attempt - 1, change.reason))
            elif isinstance(change, StepStarted):
                retries.append((change.run_id, change.step_id, change.attempt, time.time()))
            elif isinstance(change, _RunBegins):
                run_id = change.run[0]
                runs_begun.append(change.run)
                carried.append((run_id, change.carried))
                self._positions[run_id] = {step_id: position for position, step_id in enumerate(change.steps)}
            else:
                runs_ended.append(change.run)
        writes: list[_Write] = []
        if runs_begun:
            writes.append((_UPSERT_RUN, runs_begun))
            writes.append((_BEGIN_AGAIN, carried))
        outcomes: dict[str, list[tuple[Any, ...]]] = {}
        still_placed = [
            (*key, self._position(key), *place) for key, place in placed.items() if key not in ended
        ]
        if still_placed:
            writes.append((_PLACE_STEP, still_placed))
        running = [
            (*key, *group) for key, groups in processes.items() if key not in ended for group in groups
        ]
        if running:
            writes.append((_INSERT_PROCESS, running))
            self._steps_with_processes.update(key for key in processes if key not in ended)
        if ended:
            for key, step in ended.items():
                worktree, branch, start_commit, _ = placed.get(key, (None, None, None, None))
                run_id, step_id, _position, *outcome = step.step
                outcomes.setdefault(run_id, []).append(
                    (step_id, self._position(key), *outcome, worktree, branch, start_commit)
                )
            # A step's only attempt is told by its own row; attempts get rows when there were several.
            attempts.extend(step.attempt for step in ended.values() if step.attempt[2] > 1)
            # A finished step's process groups have all ended: the runner waits for that.
            with_rows = [key for key in ended if key in self._steps_with_processes]
            if with_rows:
                writes.append((_END_PROCESSES, with_rows))
                self._steps_with_processes.difference_update(with_rows)
        if outcomes:
            writes.append(
                (_INSERT_OUTCOMES, [(run_id, json.dumps(rows)) for run_id, rows in outcomes.items()])
            )
        # Before the attempts' outcomes: a retry that ends in this batch keeps its outcome.
        if retries:
            writes.append((_START_ATTEMPT, retries))
        if attempts:
            writes.append((_INSERT_ATTEMPT, attempts))
        if runs_ended:
            writes.append((_UPSERT_RUN, runs_ended))
            for run in runs_ended:
                self._positions.pop(run[0], None)
        return writes

    def _position(self, key: _StepKey) -> int:
        run_id, step_id = key
        return self._positions.get(run_id, {}).get(step_id, 0)


_StepKey = tuple[str, str]
_Write = tuple[str, list[Any]]


class _RunBegins(NamedTuple):
    run: tuple[Any, ...]
    steps: list[str]
    carried: list[tuple[Any, ...]]


class _StepEnds(NamedTuple):
    key: _StepKey
    step: tuple[Any, ...]
    attempt: tuple[Any, ...]


class _RunEnds(NamedTuple):
    run: tuple[Any, ...]


# What the writer is handed: events that never change, as they are, and rows taken from the rest.
_Change = StepPlaced | ProcessStarted | StepRetrying | StepStarted | _RunBegins | _StepEnds | _RunEnds
_SNAPSHOT_EVENTS = frozenset({RunStarted, StepFinished, RunFinished})

_UPSERT_RUN = (
    "INSERT INTO runs (run_id, workflow, workflow_path, status, base_commit, result_branch, selected,"
    " warnings, started_at, ended_at, duration_s, owner_pid, owner_start)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, base_commit = excluded.base_commit,"
    " result_branch = excluded.result_branch, warnings = excluded.warnings, ended_at = excluded.ended_at,"
    " duration_s = excluded.duration_s, owner_pid = excluded.owner_pid, owner_start = excluded.owner_start,"
    " workflow_path = excluded.workflow_path"
)
_UPSERT_STEP = (
    "INSERT INTO steps (run_id, step_id, position, status, attempts, exit_code, started_at, ended_at,"
    " duration_s, branch, commit_id, log, error, summary, worktree, work_branch, start_commit)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,"
    " exit_code = excluded.exit_code, started_at = coalesce(excluded.started_at, steps.started_at),"
    " ended_at = excluded.ended_at, duration_s = excluded.duration_s, branch = excluded.branch,"
    " commit_id = excluded.commit_id, log = excluded.log, error = excluded.error, summary = excluded.summary,"
    " worktree = coalesce(excluded.worktree, steps.worktree),"
    " work_branch = coalesce(excluded.work_branch, steps.work_branch),"
    " start_commit = coalesce(excluded.start_commit, steps.start_commit)"
)
_FORGET_STEPS = "DELETE FROM steps WHERE run_id = ?"
_FORGET_OUTCOMES = "DELETE FROM step_outcomes WHERE run_id = ?"
# Not SQL: the writes that begin a run, or begin it again on resume (see `_begin_again`).
_BEGIN_AGAIN = "begin again"
_INSERT_OUTCOMES = "INSERT INTO step_outcomes (run_id, steps) VALUES (?, ?)"
# What each entry of a `step_outcomes` list holds, in order: the columns of `steps` but the run's id.
_OUTCOME_FIELDS = (
    "step_id",
    "position",
    "status",
    "attempts",
    "exit_code",
    "started_at",
    "ended_at",
    "duration_s",
    "branch",
    "commit_id",
    "log",
    "error",
    "summary",
    "worktree",
    "work_branch",
    "start_commit",
)
_PLACE_STEP = (
    "INSERT INTO steps (run_id, step_id, position, worktree, work_branch, start_commit, started_at, status)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 'running')"
    " ON CONFLICT (run_id, step_id) DO UPDATE SET status = 'running', worktree = excluded.worktree,"
    " work_branch = excluded.work_branch, start_commit = excluded.start_commit, started_at = excluded.started_at"
)
_INSERT_PROCESS = "INSERT OR REPLACE INTO processes (run_id, step_id, pgid, start_ticks) VALUES (?, ?, ?, ?)"
_END_PROCESSES = "UPDATE processes SET ended = 1 WHERE (run_id, step_id) IN (VALUES (?, ?))"
_INSERT_ATTEMPT = "INSERT OR REPLACE INTO attempts (run_id, step_id, attempt, outcome) VALUES (?, ?, ?, ?)"
_START_ATTEMPT = "INSERT OR REPLACE INTO attempts (run_id, step_id, attempt, started_at) VALUES (?, ?, ?, ?)"


# Rows go to SQLite several to a statement. Each statement releases the GIL while SQLite runs it and
# takes it back afterwards, and each time it does the event loop may have to wait for the writer.
# A few fixed sizes keep the prepared statements cached, and 32 rows of the widest table stay under
# the 999 parameters older SQLite versions allow.
_ROWS_PER_STATEMENT = (32, 4, 1)


def _begin_again(connection: sqlite3.Connection, run_id: str, carried: list[tuple[Any, ...]]) -> None:
    """Forget what an earlier attempt of a run wrote of its steps, all but the steps carried over.

    A resumed run starts its other steps again, so their earlier rows must not show. The steps it
    carries over keep their outcome and where they ran: a later resume starts their dependents from
    their start commit when they committed nothing.
    """
    earlier: RunRecord | None = None
    if carried:
        try:
            earlier = _read_run(connection, run_id)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("run %s: its earlier steps cannot be read from the journal: %s", run_id, exc)
    connection.execute(_FORGET_STEPS, (run_id,))
    connection.execute(_FORGET_OUTCOMES, (run_id,))
    # The retries of a step that runs again belong to its earlier attempt.
    kept = {step_id for _run_id, step_id, *_outcome in carried}
    retried = connection.execute("SELECT DISTINCT step_id FROM attempts WHERE run_id = ?", (run_id,))
    connection.executemany(
        "DELETE FROM attempts WHERE run_id = ? AND step_id = ?",
        [(run_id, step_id) for (step_id,) in retried.fetchall() if step_id not in kept],
    )
    if not carried:
        return
    entries = []
    for _run_id, step_id, *outcome in carried:
        known = earlier.steps.get(step_id) if earlier else None
        place = (
            (str(known.worktree) if known.worktree else None, known.work_branch, known.start_commit)
            if known
            else (None, None, None)
        )
        entries.append((step_id, *outcome, *place))
    connection.execute(_INSERT_OUTCOMES, (run_id, json.dumps(entries)))


def _write_rows(connection: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
    if "VALUES (" not in sql:
        connection.executemany(sql, rows)
        return
    start = 0
    for size in _ROWS_PER_STATEMENT:
        while len(rows) - start >= size:
            chunk = rows[start : start + size]
            connection.execute(_with_rows(sql, size), [value for row in chunk for value in row])
            start += size


@functools.cache
def _with_rows(sql: str, count: int) -> str:
    """``sql``, whose VALUES clause holds one row, with room for ``count`` rows."""
    head, _, rest = sql.partition("VALUES (")
    row, _, tail = rest.partition(")")
    return f"{head}VALUES {', '.join([f'({row})'] * count)}{tail}"


def _run_row(run: RunResult, status: RunStatus) -> tuple[Any, ...]:
    owner = os.getpid()
    return (
        run.run_id,
        run.workflow,
        str(run.workflow_path),
        status.value,
        run.base_commit,
        run.result_branch,
        json.dumps(list(run.steps)),
        json.dumps(run.warnings),
        run.started_at,
        run.ended_at,
        run.duration_s,
        owner,
        process_start_ticks(owner),
    )


def _step_row(run_id: str, step_id: str, position: int | None, step: StepResult) -> tuple[Any, ...]:
    return (
        run_id,
        step_id,
        position,
        step.status.value,
        step.attempts,
        step.exit_code,
        step.started_at,
        step.ended_at,
        step.duration_s,
        step.branch,
        step.commit,
        str(step.log) if step.log else None,
        step.error,
        step.summary,
    )


@dataclass(frozen=True)
class StepRecord:
    """What the journal knows of a step beyond its result: where it ran and what it started from."""

    result: StepResult
    start_commit: str | None
    work_branch: str | None
    worktree: Path | None


@dataclass(frozen=True)
class RunRecord:
    run: RunResult
    owner_pid: int | None
    owner_start: int | None
    steps: dict[str, StepRecord]

    def owner_alive(self) -> bool:
        if self.owner_pid is None:
            return False
        if self.owner_pid == os.getpid() and self.owner_start == process_start_ticks(os.getpid()):
            return True
        return process_start_ticks(self.owner_pid) == self.owner_start is not None


def read_runs(path: Path, limit: int | None = None, status: str | None = None) -> list[RunRecord]:
    """Runs, newest first (blocking: call it from a worker thread in async code)."""
    if not path.exists():
        return []
    where = "WHERE status = ?" if status else ""
    parameters: tuple[Any, ...] = (status,) if status else ()
    query = f"SELECT * FROM runs {where} ORDER BY started_at DESC, run_id DESC"
    if limit is not None:
        query += f" LIMIT {int(limit)}"
    with connect(path) as connection, _snapshot_of(connection):
        return [_run_record(connection, row) for row in connection.execute(query, parameters).fetchall()]


def read_run(path: Path, run_id: str) -> RunRecord | None:
    if not path.exists():
        return None
    with connect(path) as connection, _snapshot_of(connection):
        return _read_run(connection, run_id)


@contextmanager
def _snapshot_of(connection: sqlite3.Connection) -> Iterator[None]:
    """Reads of one moment: a run's rows are read by several queries while writers go on committing."""
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _read_run(connection: sqlite3.Connection, run_id: str) -> RunRecord | None:
    row = connection.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else _run_record(connection, row)


def _run_record(connection: sqlite3.Connection, row: sqlite3.Row) -> RunRecord:
    run = RunResult(
        run_id=row["run_id"],
        workflow=row["workflow"],
        workflow_path=Path(row["workflow_path"]),
        status=RunStatus(row["status"]),
        base_commit=row["base_commit"],
        result_branch=row["result_branch"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        duration_s=row["duration_s"],
        warnings=json.loads(row["warnings"]),
    )
    rows: dict[str, Mapping[str, Any]] = {
        step["step_id"]: step
        for step in connection.execute(
            "SELECT * FROM steps WHERE run_id = ? ORDER BY position", (run.run_id,)
        ).fetchall()
    }
    # An outcome is final, so it wins over the step's row, which tells where it was running.
    outcomes: dict[str, Mapping[str, Any]] = {}
    for (batch,) in connection.execute(
        "SELECT steps FROM step_outcomes WHERE run_id = ? ORDER BY batch", (run.run_id,)
    ):
        for entry in json.loads(batch):
            outcomes[entry[0]] = dict(zip(_OUTCOME_FIELDS, entry, strict=True))
    # A running step's row was written when it started; since then, each attempt that failed and
    # each retry that started has a row of its own.
    retried: dict[str, int] = dict(
        connection.execute(
            "SELECT step_id, max(attempt) FROM attempts WHERE run_id = ? GROUP BY step_id", (run.run_id,)
        ).fetchall()
    )
    steps: dict[str, StepRecord] = {}
    # The run's row lists its steps in order; one that never started has no row of its own.
    for step_id in [*json.loads(row["selected"]), *rows, *outcomes]:
        if step_id not in steps:
            steps[step_id] = _step_record(outcomes.get(step_id), rows.get(step_id))
            result = run.steps[step_id] = steps[step_id].result
            if result.status is StepStatus.RUNNING:
                result.attempts = max(result.attempts, retried.get(step_id, 1))
    return RunRecord(run=run, owner_pid=row["owner_pid"], owner_start=row["owner_start"], steps=steps)


def _step_record(outcome: Mapping[str, Any] | None, row: Mapping[str, Any] | None) -> StepRecord:
    step = outcome or row
    if step is None:
        return StepRecord(result=StepResult(), start_commit=None, work_branch=None, worktree=None)
    result = StepResult(
        status=StepStatus(step["status"]),
        attempts=step["attempts"],
        exit_code=step["exit_code"],
        started_at=step["started_at"],
        ended_at=step["ended_at"],
        duration_s=step["duration_s"],
        branch=step["branch"],
        commit=step["commit_id"],
        log=Path(step["log"]) if step["log"] else None,
        error=step["error"],
        summary=step["summary"],
    )
    start_commit, work_branch, worktree = (
        step[name] or (row[name] if row else None) for name in ("start_commit", "work_branch", "worktree")
    )
    return StepRecord(
        result=result,
        start_commit=start_commit,
        work_branch=work_branch,
        worktree=Path(worktree) if worktree else None,
    )


def live_process_groups(path: Path, run_id: str) -> list[tuple[str, int, int | None]]:
    """(step, group, start ticks) of the process groups the run started and did not see end."""
    with connect(path) as connection:
        rows = connection.execute(
            "SELECT step_id, pgid, start_ticks FROM processes WHERE run_id = ? AND ended = 0", (run_id,)
        ).fetchall()
    return [(row[0], int(row[1]), row[2]) for row in rows]


def execute(path: Path, statements: list[Statement]) -> None:
    """Apply ``statements`` in one transaction (blocking)."""
    with connect(path) as connection:
        connection.execute("BEGIN IMMEDIATE")
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")


def mark_step(run_id: str, step_id: str, position: int, result: StepResult) -> Statement:
    return (_UPSERT_STEP, (*_step_row(run_id, step_id, position, result), None, None, None))


def record_run(run: RunResult) -> Statement:
    """The run's row as it stands, for a run the journal never heard of."""
    return (_UPSERT_RUN, _run_row(run, run.status))


def mark_run(run_id: str, status: RunStatus) -> Statement:
    return (
        "UPDATE runs SET status = ?, ended_at = coalesce(ended_at, ?) WHERE run_id = ?",
        (status.value, time.time(), run_id),
    )


def processes_ended(run_id: str) -> Statement:
    return ("UPDATE processes SET ended = 1 WHERE run_id = ?", (run_id,))


def forget_runs_before(path: Path, cutoff: float) -> list[str]:
    """Delete the rows of runs that ended before ``cutoff``; return their ids."""
    with connect(path) as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT run_id FROM runs WHERE status != 'running' AND coalesce(ended_at, started_at) < ?",
                (cutoff,),
            ).fetchall()
        ]
        connection.execute("BEGIN IMMEDIATE")
        for run_id in ids:
            for table in ("runs", "steps", "step_outcomes", "attempts", "processes"):
                connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        connection.execute("COMMIT")
    return ids
