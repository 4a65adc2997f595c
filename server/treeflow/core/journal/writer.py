"""The journal as an event sink: events become changes on the event loop, a thread writes them.

`emit` never blocks the event loop: it queues an event as it is (events and the results they carry
never change), or the rows a run's start or end becomes. A writer thread takes what gathered in
50 ms, coalesces it (see `coalesce`) and commits it in one transaction.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import sqlite3
import threading
from typing import assert_never

from treeflow.core.events import (
    AgentWaiting,
    ApprovalDecided,
    ApprovalRequested,
    Event,
    ProcessEnded,
    ProcessStarted,
    RunFinished,
    RunStarted,
    RunWarning,
    StepFinished,
    StepOnWorker,
    StepOutput,
    StepPlaced,
    StepProgress,
    StepRetrying,
    StepRound,
    StepStarted,
)
from treeflow.core.git import Repository
from treeflow.core.journal.approvals import forget_settled_approvals
from treeflow.core.journal.coalesce import (
    BeginAgain,
    Change,
    Coalescer,
    Rows,
    RunBegins,
    RunEnds,
    Write,
)
from treeflow.core.journal.errors import JournalUnavailable
from treeflow.core.journal.readers import RunRecord, read_run_from
from treeflow.core.journal.rows import (
    INSERT_OUTCOMES,
    NOWHERE,
    OutcomeEntry,
    Place,
    RunRow,
    StepState,
    Values,
)
from treeflow.core.journal.schema import connect, journal_path
from treeflow.core.model import RunResult, RunStatus, StepStatus

log = logging.getLogger(__name__)

_BATCH_WAIT_S = 0.05

# Rows go to SQLite several to a statement. Each statement releases the GIL while SQLite runs it and
# takes it back afterwards, and each time it does the event loop may have to wait for the writer.
# A few fixed sizes keep the prepared statements cached, and 32 rows of the widest table stay under
# the 999 parameters older SQLite versions allow.
_ROWS_PER_STATEMENT = (32, 4, 1)


class Journal:
    """The journal of one repository, as an event sink with a writer thread."""

    def __init__(self, repo: Repository) -> None:
        self.path = journal_path(repo)
        self._queue: queue.SimpleQueue[Change | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_loop, name="treeflow-journal", daemon=True)
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._coalescer = Coalescer()
        # The agent session each step was last seen in: a new one is written at once, so that a
        # resume after a crash can continue it; the rest of an agent's progress waits for its end.
        self._agent_sessions: dict[tuple[str, str], str | None] = {}
        self._failure: JournalUnavailable | None = None
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure

    def emit(self, event: Event) -> None:
        # The most frequent events first: each case is one more check on the event loop.
        match event:
            case StepOutput() | ProcessEnded():
                pass
            case ProcessStarted() | StepPlaced() | StepOnWorker():
                self._queue.put(event)
            case StepStarted():
                # A first attempt is told by the step's own row; a retry's start needs one of its own.
                if event.attempt > 1:
                    self._queue.put(event)
            case StepFinished() | StepRetrying() | StepRound():
                self._queue.put(event)
            case RunStarted():
                self._queue.put(_run_begins(event.run))
            case RunFinished():
                self._queue.put(RunEnds(RunRow.of(event.run, event.run.status)))
            case StepProgress():
                if event.agent is not None:
                    key = (event.run_id, event.step_id)
                    if self._agent_sessions.get(key) != event.agent.session_id:
                        self._agent_sessions[key] = event.agent.session_id
                        self._queue.put(event)
            case AgentWaiting() | RunWarning():
                pass
            case ApprovalRequested() | ApprovalDecided():
                pass  # the gatekeeper writes its rows itself, at once: other processes read them
            case _:
                assert_never(event)

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
            writes = self._coalescer.writes(change for change in batch if change is not None)
            if writes:
                self._execute(connection, writes)

    def _execute(self, connection: sqlite3.Connection, writes: list[Write]) -> None:
        try:
            connection.execute("BEGIN IMMEDIATE")
            for write in writes:
                match write:
                    case Rows():
                        _write_rows(connection, write.sql, write.values)
                    case BeginAgain():
                        _begin_again(connection, write.run_id, write.carried)
                        forget_settled_approvals(connection, write.run_id, write.carried, write.started_at)
                    case _:
                        assert_never(write)
            connection.execute("COMMIT")
        except Exception as exc:
            # Whatever one batch meets, the thread must go on: the batches after it would be lost.
            log.error("could not write the run journal %s: %s", self.path, exc)
            if connection.in_transaction:
                connection.execute("ROLLBACK")


def _run_begins(run: RunResult) -> RunBegins:
    # Steps a resumed run takes over from its earlier attempt are already final.
    carried = tuple(
        OutcomeEntry(step_id, position, StepState.of(step), NOWHERE)
        for position, (step_id, step) in enumerate(run.steps.items())
        if step.status is not StepStatus.PENDING
    )
    return RunBegins(RunRow.of(run, RunStatus.RUNNING), tuple(run.steps), carried)


def _begin_again(connection: sqlite3.Connection, run_id: str, carried: tuple[OutcomeEntry, ...]) -> None:
    """Forget what an earlier attempt of a run wrote of its steps, all but the steps carried over.

    A resumed run starts its other steps again, so their earlier rows must not show. The steps it
    carries over keep their outcome and where they ran: a later resume starts their dependents from
    their start commit when they committed nothing.
    """
    earlier: RunRecord | None = None
    if carried:
        try:
            earlier = read_run_from(connection, run_id)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("run %s: its earlier steps cannot be read from the journal: %s", run_id, exc)
    connection.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
    connection.execute("DELETE FROM step_outcomes WHERE run_id = ?", (run_id,))
    # The retries, agent session and outputs of a step that runs again belong to its earlier attempt.
    kept = {entry.step_id for entry in carried}
    for table in ("attempts", "agent_sessions", "step_outputs"):
        earlier_rows = connection.execute(f"SELECT DISTINCT step_id FROM {table} WHERE run_id = ?", (run_id,))
        connection.executemany(
            f"DELETE FROM {table} WHERE run_id = ? AND step_id = ?",
            [(run_id, step_id) for (step_id,) in earlier_rows.fetchall() if step_id not in kept],
        )
    if not carried:
        return
    entries = []
    for entry in carried:
        known = earlier.steps.get(entry.step_id) if earlier else None
        place = (
            Place(
                worktree=str(known.worktree) if known.worktree else None,
                work_branch=known.work_branch,
                start_commit=known.start_commit,
            )
            if known
            else NOWHERE
        )
        entries.append(entry._replace(place=place).to_json())
    connection.execute(INSERT_OUTCOMES, (run_id, json.dumps(entries)))


def _write_rows(connection: sqlite3.Connection, sql: str, rows: list[Values]) -> None:
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
