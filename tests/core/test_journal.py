"""The journal's rows keep the layout that journals already on disk were written in."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from treeflow.core import journal
from treeflow.core.events import (
    ProcessEnded,
    ProcessStarted,
    RunFinished,
    RunStarted,
    StepFinished,
    StepOutput,
    StepPlaced,
    StepRetrying,
    StepStarted,
)
from treeflow.core.git import open_repository
from treeflow.core.journal import rows
from treeflow.core.model import RunResult, RunStatus, StepResult, StepStatus

# How journals already written lay out their rows: the SQL and the order of an entry of a
# `step_outcomes` list, written out by hand so that a change to the row classes cannot move them.
WRITTEN_RUN = (
    "INSERT INTO runs (run_id, workflow, workflow_path, status, base_commit, result_branch, selected,"
    " warnings, started_at, ended_at, duration_s, owner_pid, owner_start)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
WRITTEN_PLACE = (
    "INSERT INTO steps (run_id, step_id, position, worktree, work_branch, start_commit, started_at, status)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, 'running')"
)
WRITTEN_PROCESS = "INSERT OR REPLACE INTO processes (run_id, step_id, pgid, start_ticks) VALUES (?, ?, ?, ?)"
WRITTEN_ATTEMPT_START = (
    "INSERT OR REPLACE INTO attempts (run_id, step_id, attempt, started_at) VALUES (?, ?, ?, ?)"
)
WRITTEN_ATTEMPT_OUTCOME = (
    "INSERT OR REPLACE INTO attempts (run_id, step_id, attempt, outcome) VALUES (?, ?, ?, ?)"
)
WRITTEN_OUTCOMES = "INSERT INTO step_outcomes (run_id, steps) VALUES (?, ?)"
OUTCOME_ENTRY = (
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


def table_columns(path: Path, table: str) -> list[str]:
    with journal.connect(path) as connection:
        return [row["name"] for row in connection.execute(f"PRAGMA table_info({table})")]


def test_each_row_class_names_the_columns_of_its_table(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    assert list(rows.RUN_COLUMNS) == table_columns(path, "runs")
    assert sorted(rows.STEP_COLUMNS) == sorted(table_columns(path, "steps"))
    assert set(rows.PLACE_ROW_COLUMNS) < set(table_columns(path, "steps"))
    assert [*rows.PROCESS_COLUMNS, "ended"] == table_columns(path, "processes")
    assert list(rows.ATTEMPT_COLUMNS) == table_columns(path, "attempts")
    assert rows.OUTCOME_ENTRY_COLUMNS == OUTCOME_ENTRY


def test_a_journal_written_in_the_positional_layout_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    now = time.time()
    run_id = "20260101-000000-old"
    entry = {
        "step_id": "built",
        "position": 0,
        "status": "succeeded",
        "attempts": 1,
        "exit_code": 0,
        "started_at": now - 3,
        "ended_at": now - 2,
        "duration_s": 1.0,
        "branch": f"treeflow/{run_id}/built",
        "commit_id": "c0ffee",
        "log": "/logs/built.log",
        "error": None,
        "summary": "made it",
        "worktree": "/worktrees/built",
        "work_branch": f"treeflow/{run_id}/built",
        "start_commit": "base",
    }
    # Placed in an earlier batch: its place is in its step row, not in its outcome.
    placed_before = {
        **{name: None for name in OUTCOME_ENTRY},
        "step_id": "checked",
        "position": 1,
        "status": "failed",
        "attempts": 2,
        "exit_code": 3,
        "error": "exit code 3",
    }
    with journal.connect(path) as connection:
        connection.execute(
            WRITTEN_RUN,
            (
                run_id,
                "old",
                "/repo/treeflow.yml",
                "running",
                "base",
                None,
                json.dumps(["built", "checked", "running", "later"]),
                json.dumps(["a warning"]),
                now - 5,
                None,
                None,
                999999999,
                1,
            ),
        )
        connection.execute(
            WRITTEN_PLACE, (run_id, "checked", 1, "/worktrees/checked", "wb-checked", "base", now)
        )
        connection.execute(
            WRITTEN_PLACE, (run_id, "running", 2, "/worktrees/running", "wb-running", "sc", now)
        )
        connection.execute(WRITTEN_PROCESS, (run_id, "running", 4242, 77))
        connection.execute(WRITTEN_ATTEMPT_START, (run_id, "running", 2, now))
        connection.execute(WRITTEN_ATTEMPT_OUTCOME, (run_id, "running", 1, "exit code 1"))
        outcomes = [[e[name] for name in OUTCOME_ENTRY] for e in (entry, placed_before)]
        connection.execute(WRITTEN_OUTCOMES, (run_id, json.dumps(outcomes)))

    [record] = journal.read_runs(path)
    run = record.run
    assert (run.run_id, run.workflow, run.workflow_path, run.status) == (
        run_id,
        "old",
        Path("/repo/treeflow.yml"),
        RunStatus.RUNNING,
    )
    assert (run.base_commit, run.started_at, run.warnings) == ("base", now - 5, ("a warning",))
    assert (record.owner_pid, record.owner_start) == (999999999, 1)
    assert list(run.steps) == ["built", "checked", "running", "later"]
    assert run.steps["built"] == StepResult(
        status=StepStatus.SUCCEEDED,
        attempts=1,
        exit_code=0,
        started_at=now - 3,
        ended_at=now - 2,
        duration_s=1.0,
        branch=f"treeflow/{run_id}/built",
        commit="c0ffee",
        log=Path("/logs/built.log"),
        summary="made it",
    )
    built = record.steps["built"]
    assert (built.worktree, built.work_branch, built.start_commit) == (
        Path("/worktrees/built"),
        f"treeflow/{run_id}/built",
        "base",
    )
    checked = record.steps["checked"]
    assert (checked.result.status, checked.result.attempts, checked.result.error) == (
        StepStatus.FAILED,
        2,
        "exit code 3",
    )
    assert (checked.worktree, checked.work_branch) == (Path("/worktrees/checked"), "wb-checked")
    running = record.steps["running"]
    assert (running.result.status, running.result.attempts) == (StepStatus.RUNNING, 2)
    assert (running.worktree, running.work_branch, running.start_commit) == (
        Path("/worktrees/running"),
        "wb-running",
        "sc",
    )
    assert run.steps["later"] == StepResult()
    assert journal.live_process_groups(path, run_id) == [("running", 4242, 77)]
    assert journal.read_run(path, run_id) == record


def test_an_outcome_entry_of_another_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with journal.connect(path) as connection:
        connection.execute(WRITTEN_RUN, ("r", "w", "/w.yml", "failed", *[None] * 2, "[]", "[]", *[None] * 5))
        connection.execute(WRITTEN_OUTCOMES, ("r", json.dumps([["s", 0, "failed"]])))
    with pytest.raises(ValueError, match="a step of 3 values, not 16"):
        journal.read_runs(path)


@pytest.mark.anyio
async def test_the_writer_writes_the_positional_layout(repo: Path) -> None:
    repository = await open_repository(repo)
    sink = journal.Journal(repository)
    run = RunResult(
        run_id="20260101-000000-new",
        workflow="new",
        workflow_path=repo / "treeflow.yml",
        started_at=time.time(),
        steps={"quick": StepResult(), "flaky": StepResult(), "slow": StepResult()},
    )
    run_id = run.run_id
    sink.emit(RunStarted(run))
    quick = StepResult(status=StepStatus.SUCCEEDED, attempts=1, exit_code=0, log=repo / "q.log")
    for event in (
        StepStarted(run_id, "quick", 1, repo / "q.log"),
        StepPlaced(run_id, "quick", repo / "wt-q", repo / "wt-q", "wb-q", "base"),
        ProcessStarted(run_id, "quick", 111, 11),
        StepOutput(run_id, "quick", "hello"),
        ProcessEnded(run_id, "quick", 111),
        StepFinished(run_id, "quick", quick),
        StepStarted(run_id, "slow", 1, repo / "s.log"),
        StepPlaced(run_id, "slow", repo / "wt-s", repo / "wt-s", "wb-s", "base"),
        ProcessStarted(run_id, "slow", 222, 22),
        StepStarted(run_id, "flaky", 1, repo / "f.log"),
        StepRetrying(run_id, "flaky", 2, 0.0, "exit code 1"),
        StepStarted(run_id, "flaky", 2, repo / "f.log"),
    ):
        sink.emit(event)
    await anyio.to_thread.run_sync(sink.close)

    with sqlite3.connect(sink.path) as connection:
        [(steps,)] = connection.execute("SELECT steps FROM step_outcomes WHERE run_id = ?", (run_id,))
        [entry] = [dict(zip(OUTCOME_ENTRY, entry, strict=True)) for entry in json.loads(steps)]
        slow = connection.execute(
            "SELECT position, status, worktree, work_branch, start_commit FROM steps WHERE step_id = 'slow'"
        ).fetchall()
        processes = connection.execute("SELECT step_id, pgid, start_ticks, ended FROM processes").fetchall()
        attempts = connection.execute(
            "SELECT attempt, started_at IS NOT NULL, outcome FROM attempts ORDER BY attempt"
        ).fetchall()
        [run_row] = connection.execute("SELECT * FROM runs").fetchall()
    assert entry == {
        "step_id": "quick",
        "position": 0,
        "status": "succeeded",
        "attempts": 1,
        "exit_code": 0,
        "started_at": None,
        "ended_at": None,
        "duration_s": None,
        "branch": None,
        "commit_id": None,
        "log": str(repo / "q.log"),
        "error": None,
        "summary": None,
        "worktree": str(repo / "wt-q"),
        "work_branch": "wb-q",
        "start_commit": "base",
    }
    assert slow == [(2, "running", str(repo / "wt-s"), "wb-s", "base")]
    assert processes == [("slow", 222, 22, 0)]
    assert attempts == [(1, 0, "exit code 1"), (2, 1, None)]
    assert run_row[:4] == (run_id, "new", str(repo / "treeflow.yml"), "running")
    assert json.loads(run_row[6]) == ["quick", "flaky", "slow"]

    sink = journal.Journal(repository)
    ended = StepResult(status=StepStatus.FAILED, attempts=2, exit_code=1, error="exit code 1")
    sink.emit(StepFinished(run_id, "flaky", ended))
    steps = {"quick": quick, "flaky": ended, "slow": StepResult(status=StepStatus.CANCELLED)}
    sink.emit(RunFinished(replace(run, status=RunStatus.FAILED, steps=steps)))
    await anyio.to_thread.run_sync(sink.close)
    [record] = journal.read_runs(sink.path)
    assert record.run.status is RunStatus.FAILED
    assert record.run.steps["quick"].status is StepStatus.SUCCEEDED
    assert record.steps["quick"].work_branch == "wb-q"
    assert record.run.steps["flaky"].attempts == 2
    assert record.run.steps["slow"].status is StepStatus.RUNNING
    assert record.steps["slow"].worktree == repo / "wt-s"
