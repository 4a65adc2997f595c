"""Which worker ran each step: in the result object, `treeflow show` and the plain output's line
for a step's end; a step that ran here names none."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.dask.conftest import Cluster
from tests.dask.test_remote_steps import TREEFLOW, treeflow, write_workflow

pytestmark = [pytest.mark.dask, pytest.mark.slow]

WORKER = re.compile(r"tcp://127\.0\.0\.1:\d+")


def test_the_cli_names_the_worker_that_ran_each_remote_step(repo: Path, local_cluster: Cluster) -> None:
    write_workflow(
        repo,
        """
        steps:
          remote: {run: 'echo far > far.txt'}
          here: {run: 'echo near > near.txt', executor: local}
        """,
    )
    done = subprocess.run(
        [*TREEFLOW, "run", "--executor", "dask", "--dask-scheduler", local_cluster.address],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    [ended] = [line for line in done.stdout.splitlines() if line.startswith("[remote] succeeded")]
    worker = WORKER.search(ended)
    assert worker is not None and f" on worker {worker.group()}" in ended, ended
    [here] = [line for line in done.stdout.splitlines() if line.startswith("[here] succeeded")]
    assert "worker" not in here

    shown = treeflow(repo, "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    steps = json.loads(shown.stdout)["steps"]
    assert steps["remote"]["worker"] == worker.group()
    assert steps["here"]["worker"] is None

    table = treeflow(repo, "show", "last")
    assert f"remote ran on worker {worker.group()}" in table.stdout.splitlines(), table.stdout
    assert "here ran on" not in table.stdout
