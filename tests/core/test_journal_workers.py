"""The journal's record of where a step's commands ran when that was another machine: written as
commands are sent and taken, read back as each step's worker, and what recovery looks up."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import anyio
import pytest

from treeflow.core import journal
from treeflow.core.events import RunStarted, StepFinished, StepOnWorker, StepStarted
from treeflow.core.git import open_repository
from treeflow.core.journal import JOURNAL_FORMAT
from treeflow.core.model import RemotePlace, RunResult, StepResult, StepStatus

SCHEDULER = "tcp://127.0.0.1:8786"


def sent(run_id: str, step_id: str, attempt: int, session: str, worker: str | None = None) -> StepOnWorker:
    return StepOnWorker(run_id, step_id, attempt, RemotePlace(SCHEDULER, session, worker))


@pytest.mark.anyio
async def test_each_step_that_ran_on_a_worker_reads_back_with_it(repo: Path) -> None:
    repository = await open_repository(repo)
    run = RunResult(
        run_id="20260101-000000-wkr",
        workflow="remote",
        workflow_path=repo / "treeflow.yml",
        started_at=time.time(),
        steps={"build": StepResult(), "test": StepResult(), "lint": StepResult()},
    )
    run_id = run.run_id
    sink = journal.Journal(repository)
    sink.emit(RunStarted(run))
    for event in (
        StepStarted(run_id, "build", 1, repo / "b.log"),
        sent(run_id, "build", 1, "s-build"),
        sent(run_id, "build", 1, "s-build", "tcp://10.0.0.1:4001"),
        # A second command of the same session, sent in the same batch: not taken yet.
        sent(run_id, "build", 1, "s-build"),
        StepStarted(run_id, "test", 1, repo / "t.log"),
        sent(run_id, "test", 1, "s-test", "tcp://10.0.0.2:4002"),
        StepStarted(run_id, "lint", 1, repo / "l.log"),
        StepFinished(run_id, "lint", StepResult(status=StepStatus.SUCCEEDED, attempts=1, exit_code=0)),
    ):
        sink.emit(event)
    await anyio.to_thread.run_sync(sink.close)

    # A later batch: the test step's attempt 2 went elsewhere; build's next command is not taken yet.
    sink = journal.Journal(repository)
    sink.emit(sent(run_id, "test", 2, "s-test"))
    sink.emit(sent(run_id, "test", 2, "s-test", "tcp://10.0.0.3:4003"))
    sink.emit(sent(run_id, "build", 1, "s-build"))
    await anyio.to_thread.run_sync(sink.close)

    [record] = journal.read_runs(sink.path)
    assert record.run.steps["build"].worker == "tcp://10.0.0.1:4001"
    assert record.run.steps["test"].worker == "tcp://10.0.0.3:4003"
    assert record.run.steps["lint"].worker is None
    assert record.run.to_json()["steps"]["test"]["worker"] == "tcp://10.0.0.3:4003"
    assert journal.remote_places(sink.path, run_id) == {
        "build": RemotePlace(SCHEDULER, "s-build", "tcp://10.0.0.1:4001"),
        "test": RemotePlace(SCHEDULER, "s-test", "tcp://10.0.0.3:4003"),
    }

    # A new session under the same attempt number (a fix loop's next round) forgets the old worker.
    sink = journal.Journal(repository)
    sink.emit(sent(run_id, "build", 1, "s-build-round-2"))
    await anyio.to_thread.run_sync(sink.close)
    assert journal.remote_places(sink.path, run_id)["build"] == RemotePlace(SCHEDULER, "s-build-round-2")


def test_a_journal_of_the_format_before_is_raised_and_gains_the_table(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with journal.connect(path) as connection:
        connection.execute("DROP TABLE step_workers")
        connection.execute(f"PRAGMA user_version = {JOURNAL_FORMAT - 1}")
    # A new process opens it (each process prepares a journal once).
    journal.schema._prepared.clear()
    assert journal.read_runs(path) == []
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == JOURNAL_FORMAT
        assert connection.execute("SELECT count(*) FROM step_workers").fetchone()[0] == 0
