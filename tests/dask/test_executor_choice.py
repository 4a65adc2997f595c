"""Choosing the executor: the command line over the environment over the workflow, what a Dask run
needs, the TLS rule for schedulers elsewhere, and a clear word when `distributed` is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git
from treeflow.cli.exit_codes import EXIT_NOT_INSTALLED, EXIT_USAGE
from treeflow.core.model import Resources, Workflow
from treeflow.core.remote.choice import (
    ExecutorChoice,
    ExecutorRefused,
    check_scheduler_address,
    choose_executor,
)
from treeflow.core.spec import parse_workflow

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def workflow(text: str) -> Workflow:
    return parse_workflow(textwrap.dedent(text), Path("treeflow.yml"))


ONE_STEP = "steps:\n  a: {run: 'true'}\n"


def test_the_command_line_wins_over_the_environment_which_wins_over_the_workflow() -> None:
    flow = workflow("executor: dask\n" + ONE_STEP)
    address = {"TREEFLOW_DASK_SCHEDULER": "tcp://127.0.0.1:8786"}
    assert choose_executor(flow, environ=address).name == "dask"
    assert choose_executor(flow, environ={**address, "TREEFLOW_EXECUTOR": "local"}).name == "local"
    chosen = choose_executor(
        flow, given="dask", scheduler="tcp://localhost:9999", environ={"TREEFLOW_EXECUTOR": "local"}
    )
    assert chosen == ExecutorChoice("dask", "tcp://localhost:9999")


def test_a_step_can_stay_local_or_go_to_dask_on_its_own() -> None:
    flow = workflow(
        """
        steps:
          here: {run: 'true'}
          there: {run: 'true', executor: dask, resources: {cpu: 2, gpu: 1, memory: 8GiB}}
          checkout: {run: 'true', executor: dask, worktree: false}
        """
    )
    choice = choose_executor(flow, scheduler="tcp://127.0.0.1:8786", environ={})
    assert [step for step in flow.steps.values() if choice.remote(step)] == [flow.steps["there"]]
    assert flow.steps["there"].resources == Resources(cpu=2, gpu=1, memory=8 * 2**30)
    assert flow.steps["there"].resources.as_dask() == {"cpu": 2.0, "gpu": 1.0, "memory": float(8 * 2**30)}


def test_a_dask_run_needs_a_scheduler_address() -> None:
    with pytest.raises(ExecutorRefused, match="--dask-scheduler"):
        choose_executor(workflow(ONE_STEP), given="dask", environ={})


@pytest.mark.parametrize(
    "address", ["tcp://127.0.0.1:8786", "localhost:8786", "tcp://[::1]:8786", "tls://build.example:8786"]
)
def test_local_or_tls_schedulers_are_accepted(address: str) -> None:
    check_scheduler_address(address, insecure=False)


@pytest.mark.parametrize("address", ["tcp://10.1.2.3:8786", "build.example:8786", "ws://build.example:8786"])
def test_a_scheduler_elsewhere_needs_tls_or_insecure(address: str) -> None:
    with pytest.raises(ExecutorRefused, match="without TLS"):
        check_scheduler_address(address, insecure=False)
    check_scheduler_address(address, insecure=True)


def test_the_command_line_refuses_a_plain_tcp_scheduler_elsewhere(repo: Path) -> None:
    (repo / "treeflow.yml").write_text(ONE_STEP)
    done = subprocess.run(
        [*TREEFLOW, "run", "--executor", "dask", "--dask-scheduler", "tcp://10.1.2.3:8786"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EXIT_USAGE
    assert "without TLS" in done.stderr and "--insecure" in done.stderr
    assert git(repo, "branch", "--list", "treeflow/*") == ""


def test_a_tls_scheduler_without_certificates_is_refused_naming_the_settings(
    repo: Path, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    (repo / "treeflow.yml").write_text(ONE_STEP)
    # No Dask configuration at all: none in the environment, none under this HOME.
    env = {name: value for name, value in os.environ.items() if not name.startswith("DASK_")}
    done = subprocess.run(
        [*TREEFLOW, "run", "--executor", "dask", "--dask-scheduler", "tls://127.0.0.1:1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "HOME": str(tmp_path), "DASK_CONFIG": str(tmp_path / "dask")},
    )
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "cannot reach the Dask scheduler at tls://127.0.0.1:1" in done.stderr
    assert "DASK_DISTRIBUTED__COMM__TLS__CA_FILE" in done.stderr
    assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in done.stderr
    assert "Traceback" not in done.stderr and "never awaited" not in done.stderr


def test_without_distributed_the_dask_executor_says_how_to_install_it(repo: Path, tmp_path: Path) -> None:
    # A `distributed` that cannot be imported, ahead of the installed one on the path.
    shadow = tmp_path / "shadow" / "distributed"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ImportError('No module named distributed', name='distributed')\n"
    )
    (repo / "treeflow.yml").write_text("executor: dask\n" + ONE_STEP)
    done = subprocess.run(
        [*TREEFLOW, "run", "--dask-scheduler", "tcp://127.0.0.1:1"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(shadow.parent)},
    )
    assert done.returncode == EXIT_NOT_INSTALLED, done.stderr
    assert "pip install 'treeflow[dask]'" in done.stderr
