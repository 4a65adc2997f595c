"""kill -9 of the coordinator (`treeflow run`) while a remote step's work is on its worker and not
yet fetched: recovery fetches it onto the step's branch when the cluster is still up, and says
where it was when it is not."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.dask.conftest import Cluster, _end, started_cluster
from tests.dask.test_remote_steps import TREEFLOW, treeflow, write_workflow
from tests.helpers import wait_until

pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.fixture
def own_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Cluster, subprocess.Popen[bytes]]]:
    """A `LocalCluster` of one worker process that the test may stop."""
    with started_cluster(tmp_path_factory.mktemp("own-cluster"), 1) as started:
        yield started


def remote_row(repo: Path) -> tuple[str, str, str] | None:
    """(run id, session, worker) of the journal's record of the remote step, once a worker took it."""
    path = repo / ".git" / "treeflow" / "journal.db"
    if not path.exists():
        return None
    with sqlite3.connect(path) as connection:
        if not connection.execute("SELECT 1 FROM sqlite_master WHERE name = 'step_workers'").fetchone():
            return None  # the journal is being made
        row = connection.execute(
            "SELECT run_id, session, worker FROM step_workers WHERE step_id = 'remote' AND worker IS NOT NULL"
        ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def kept_commit(cache: Path, session: str) -> str | None:
    """The commit the worker keeps for ``session``, if it keeps one."""
    for cache_repo in cache.glob("*/repo.git"):
        found = subprocess.run(
            [
                "git",
                "--git-dir",
                str(cache_repo),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/treeflow/sessions/{session}",
            ],
            capture_output=True,
            text=True,
        )
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def kill_the_coordinator_mid_step(repo: Path, cluster: Cluster, go_on: Path) -> tuple[str, str, str]:
    """Run a workflow whose remote step writes files, then waits for ``go_on``; kill -9 `treeflow
    run` once a worker has taken the step. Return the run id, the step's session and its worker."""
    write_workflow(
        repo,
        f"""
        steps:
          remote: {{run: 'echo made > made.txt; mkdir -p sub; echo deep > sub/file; while [ ! -e {go_on} ]; do sleep 0.05; done'}}
        """,
    )
    with subprocess.Popen(
        [*TREEFLOW, "run", "--executor", "dask", "--dask-scheduler", cluster.address],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as coordinator:
        try:
            found = wait_until(lambda: remote_row(repo), "the journal's record of the worker", timeout_s=60)
        finally:
            os.kill(coordinator.pid, signal.SIGKILL)
            coordinator.wait(timeout=30)
    return found


def kill_the_coordinator_with_work_left_on_the_worker(
    repo: Path, cluster: Cluster, go_on: Path
) -> tuple[str, str, str, str]:
    """`kill_the_coordinator_mid_step`, then let the step end on its worker: its work is saved
    there, never fetched. Return the run id, session, worker and the commit the worker keeps."""
    run_id, session, worker = kill_the_coordinator_mid_step(repo, cluster, go_on)
    go_on.write_text("go")
    commit = wait_until(
        lambda: kept_commit(cluster.cache, session), "the work kept on the worker", timeout_s=60
    )
    return run_id, session, worker, commit


def test_recovery_fetches_the_work_a_remote_step_left_on_its_worker(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    run_id, session, worker, commit = kill_the_coordinator_with_work_left_on_the_worker(
        repo, local_cluster, tmp_path / "go-on"
    )
    assert git(repo, "rev-parse", f"treeflow/{run_id}/remote") != commit  # nothing fetched yet

    recovered = treeflow(repo, "runs")
    assert recovered.returncode == 0, recovered.stderr
    assert f"remote: fetched the work Dask worker {worker} kept for it ({commit[:12]})" in recovered.stderr

    step = json.loads(treeflow(repo, "show", run_id, "--json").stdout)["steps"]["remote"]
    assert step["status"] == "interrupted"
    assert step["worker"] == worker
    branch = step["branch"]
    assert git(repo, "rev-parse", branch) == commit
    assert git(repo, "ls-tree", "-r", "--name-only", branch).split() == [
        "README.md",
        "made.txt",
        "sub/file",
        "treeflow.yml",
    ]
    assert git(repo, "show", f"{branch}:sub/file") == "deep"
    assert (
        f"recovery fetched the work Dask worker {worker} kept"
        in Path(repo / ".git" / "treeflow" / "logs" / run_id / "remote.log").read_text()
    )
    # The worker drops what it kept once it has been fetched.
    assert kept_commit(local_cluster.cache, session) is None


def test_recovery_says_where_the_work_was_when_the_cluster_is_gone(
    repo: Path, own_cluster: tuple[Cluster, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    cluster, process = own_cluster
    run_id, session, worker, commit = kill_the_coordinator_with_work_left_on_the_worker(
        repo, cluster, tmp_path / "go-on"
    )
    _end([process])

    recovered = treeflow(repo, "runs")
    assert recovered.returncode == 0, recovered.stderr
    where = f"refs/treeflow/sessions/{session} of the worker's cache repository"
    said = f"remote: its work on Dask worker {worker} is lost for this step: the Dask scheduler {cluster.address} cannot be reached"
    assert said in recovered.stderr and where in recovered.stderr, recovered.stderr

    step = json.loads(treeflow(repo, "show", run_id, "--json").stdout)["steps"]["remote"]
    assert step["status"] == "interrupted"
    assert f"is lost for this step: the Dask scheduler {cluster.address} cannot be reached" in step["error"]
    log = (repo / ".git" / "treeflow" / "logs" / run_id / "remote.log").read_text()
    assert "recovery: its work on Dask worker" in log and where in log
    # The work is still where the message says, on the worker's machine.
    assert kept_commit(cluster.cache, session) == commit


def test_recovery_stops_a_remote_step_still_running_and_fetches_what_it_saved(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    run_id, session, worker = kill_the_coordinator_mid_step(repo, local_cluster, tmp_path / "never")

    recovered = treeflow(repo, "runs")
    assert recovered.returncode == 0, recovered.stderr
    assert f"remote: fetched the work Dask worker {worker} kept for it" in recovered.stderr

    step = json.loads(treeflow(repo, "show", run_id, "--json").stdout)["steps"]["remote"]
    assert step["status"] == "interrupted"
    assert git(repo, "show", f"{step['branch']}:made.txt") == "made"
    assert kept_commit(local_cluster.cache, session) is None
