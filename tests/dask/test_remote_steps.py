"""Steps on a real Dask cluster (worker processes on 127.0.0.1), through `treeflow run` as users
call it: the same branches and trees as a local run, live output, fail-fast that leaves nothing
running on the workers, and a worker killed mid-step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git
from tests.dask.conftest import Cluster
from tests.helpers import has_text, pid_alive, wait_for_files, wait_until

pytestmark = [pytest.mark.dask, pytest.mark.slow]

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]

JOINS = """
env: {GREETING: hello}
setup: {copy: [.env]}
steps:
  one: {run: 'echo "$GREETING from one"; echo one > one.txt; mkdir -p out && echo 1 > out/a; cat .env > copied.txt'}
  two: {run: 'echo two > two.txt; printf "SECRET=%s\\n" "${SECRET:-unset}" > seen.txt; echo word=two >> "$TREEFLOW_OUTPUT"'}
  three: {run: 'echo three > three.txt', needs: [one]}
  join: {run: 'cat one.txt two.txt three.txt > all.txt; rm two.txt; echo "${{ needs.two.outputs.word }}" > word.txt', needs: [two, three]}
"""


def write_workflow(repo: Path, text: str) -> None:
    (repo / "treeflow.yml").write_text(textwrap.dedent(text))
    git(repo, "add", "treeflow.yml")
    git(repo, "commit", "--quiet", "-m", "workflow")


def treeflow(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=repo, capture_output=True, text=True, timeout=120, env=env)


def run_result(repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = treeflow(repo, "run", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    result: dict[str, object] = json.loads(done.stdout)
    return result


def trees(repo: Path, result: dict[str, object]) -> dict[str, str]:
    """The tree of each step's branch and of the result branch."""
    steps = result["steps"]
    assert isinstance(steps, dict)
    found = {step_id: git(repo, "rev-parse", f"{step['branch']}^{{tree}}") for step_id, step in steps.items()}
    found["result"] = git(repo, "rev-parse", f"{result['result_branch']}^{{tree}}")
    return found


def check_same_work_as_local(repo: Path, cluster: Cluster) -> None:
    (repo / ".gitignore").write_text(".env\n")
    (repo / ".env").write_text("TOKEN=copied, never committed\n")
    git(repo, "add", ".gitignore")
    write_workflow(repo, JOINS)
    local = run_result(repo, env={name: value for name, value in os.environ.items() if name != "SECRET"})
    # A variable of this process that the workflow does not name stays here.
    with_secret = {**os.environ, "SECRET": "not for workers"}
    remote = run_result(repo, "--executor", "dask", "--dask-scheduler", cluster.address, env=with_secret)
    assert trees(repo, remote) == trees(repo, local)
    seen = git(repo, "show", f"{remote['steps']['two']['branch']}:seen.txt")  # type: ignore[index]
    assert seen == "SECRET=unset"
    result = remote["result_branch"]
    assert git(repo, "show", f"{result}:copied.txt") == "TOKEN=copied, never committed"
    assert git(repo, "show", f"{result}:word.txt") == "two"
    assert ".env" not in git(repo, "ls-tree", "-r", "--name-only", str(result)).split()
    logs = Path(remote["steps"]["one"]["log"])  # type: ignore[index]
    assert "hello from one" in logs.read_text()
    assert "on Dask worker tcp://127.0.0.1:" in logs.read_text()


def test_a_workflow_with_joins_gives_the_same_branches_and_trees_as_locally(
    repo: Path, local_cluster: Cluster
) -> None:
    check_same_work_as_local(repo, local_cluster)


def test_workers_started_from_the_command_line_give_the_same_work(
    repo: Path, command_line_cluster: Cluster
) -> None:
    check_same_work_as_local(repo, command_line_cluster)


def test_output_arrives_while_the_remote_step_runs(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    write_workflow(
        repo,
        f"""
        steps:
          talk: {{run: 'echo ready; while [ ! -e {go_on} ]; do sleep 0.05; done; echo finished'}}
        """,
    )
    with subprocess.Popen(
        [*TREEFLOW, "run", "--executor", "dask", "--dask-scheduler", local_cluster.address],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.strip() == "[talk] | ready":
                break
        assert seen[-1].strip() == "[talk] | ready", seen
        assert process.poll() is None  # the step still waits: the line came while it ran
        go_on.write_text("go")
        rest = process.stdout.read()
        assert "[talk] | finished" in rest
        assert process.wait(timeout=60) == 0


def test_fail_fast_leaves_no_process_of_the_step_on_the_worker(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    write_workflow(
        repo,
        f"""
        steps:
          slow:
            run: |
              setsid sleep 300 &
              echo $! > {pids}/escaped
              sleep 300 &
              echo $! > {pids}/child
              wait
          broken: {{run: 'while [ ! -s {pids}/child ]; do sleep 0.05; done; exit 3'}}
        """,
    )
    done = treeflow(repo, "run", "--json", "--executor", "dask", "--dask-scheduler", local_cluster.address)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["steps"]["broken"]["status"] == "failed"
    assert result["steps"]["slow"]["status"] == "cancelled"
    wait_for_files([pids / "escaped", pids / "child"])
    for name in ("escaped", "child"):
        pid = int((pids / name).read_text())
        wait_until(lambda pid=pid: not pid_alive(pid), f"the end of the {name} sleep ({pid})", timeout_s=30)


def test_a_worker_killed_mid_step_reruns_the_step_elsewhere(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    worker_pid = tmp_path / "worker-pid"
    shell_pid = tmp_path / "shell-pid"
    write_workflow(
        repo,
        f"""
        steps:
          survivor:
            run: |
              if [ "$TREEFLOW_ATTEMPT" = 1 ]; then
                echo first try
                echo $$ > {shell_pid}
                echo $PPID > {worker_pid}
                sleep 300
              fi
              echo second try > done.txt
        """,
    )
    with subprocess.Popen(
        [*TREEFLOW, "run", "--json", "--executor", "dask", "--dask-scheduler", local_cluster.address],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        wait_until(lambda: has_text(worker_pid), "the step on its first worker", timeout_s=60)
        os.kill(int(worker_pid.read_text()), signal.SIGKILL)
        out, err = process.communicate(timeout=90)
    assert process.returncode == 0, err + out
    step = json.loads(out)["steps"]["survivor"]
    assert step["attempts"] == 2
    assert git(repo, "show", f"{step['branch']}:done.txt") == "second try"
    log = Path(step["log"]).read_text()
    assert "attempt 1 lost" in log and "went away" in log
    workers = [line.split()[5] for line in log.splitlines() if "on Dask worker" in line]
    assert len(workers) == 2 and workers[0] != workers[1], log
    # What the dead worker had started does not outlive it.
    wait_until(lambda: not pid_alive(int(shell_pid.read_text())), "the end of the first try", timeout_s=30)


def test_resources_are_dask_worker_resources(repo: Path, local_cluster: Cluster) -> None:
    write_workflow(
        repo,
        """
        fail_fast: false
        steps:
          fits: {run: 'echo fits', resources: {cpu: 2}}
          too-big: {run: 'echo never', resources: {cpu: 4, memory: 1GiB}, timeout: 3s}
        """,
    )
    done = treeflow(repo, "run", "--json", "--executor", "dask", "--dask-scheduler", local_cluster.address)
    assert done.returncode == 1, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps["fits"]["status"] == "succeeded"
    assert steps["too-big"]["status"] == "timed_out"
    waited = Path(steps["too-big"]["log"]).read_text()
    assert "no Dask worker offers cpu=4,memory=1073741824 now" in waited
    assert "never" not in waited


def test_a_cancelled_remote_step_keeps_the_exit_status_it_was_stopped_with_as_a_local_one_does(
    repo: Path, local_cluster: Cluster, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    write_workflow(
        repo,
        f"""
        steps:
          slow: {{run: 'touch {started}.$TREEFLOW_RUN_ID; sleep 300'}}
          broken: {{run: 'while [ ! -e {started}.$TREEFLOW_RUN_ID ]; do sleep 0.05; done; exit 3'}}
        """,
    )
    codes = {}
    for where, args in (
        ("local", ()),
        ("remote", ("--executor", "dask", "--dask-scheduler", local_cluster.address)),
    ):
        done = treeflow(repo, "run", "--json", *args)
        assert done.returncode == 1, done.stderr
        slow = json.loads(done.stdout)["steps"]["slow"]
        assert slow["status"] == "cancelled"
        codes[where] = slow["exit_code"]
    assert codes == {"local": -signal.SIGTERM, "remote": -signal.SIGTERM}


def pack_bytes(cache: Path) -> int:
    return sum(pack.stat().st_size for pack in cache.glob("*/repo.git/objects/pack/*.pack"))


def test_a_new_base_travels_as_only_what_the_worker_lacks(repo: Path, local_cluster: Cluster) -> None:
    # Random bytes, so that no compression makes a second full copy look small.
    (repo / "large.bin").write_bytes(os.urandom(2_000_000))
    git(repo, "add", "large.bin")
    write_workflow(repo, "steps:\n  one: {run: 'echo one > one.txt'}\n")
    dask = ("--executor", "dask", "--dask-scheduler", local_cluster.address)
    run_result(repo, *dask)
    (repo / "small.txt").write_text("a new base\n")
    git(repo, "add", "small.txt")
    git(repo, "commit", "--quiet", "-m", "a new base")
    before = pack_bytes(local_cluster.cache)

    result = run_result(repo, *dask)

    assert git(repo, "show", f"{result['result_branch']}:small.txt") == "a new base"
    assert pack_bytes(local_cluster.cache) - before < 200_000


@pytest.mark.anyio
async def test_work_that_cannot_be_taken_in_here_stays_on_its_worker_and_the_step_says_where(
    repo: Path, local_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from treeflow.core.events import NullSink
    from treeflow.core.git import open_repository
    from treeflow.core.model import StepStatus
    from treeflow.core.remote import dask_executor
    from treeflow.core.remote.choice import ExecutorChoice
    from treeflow.core.service import start_run
    from treeflow.core.spec import load_workflow

    async def no_room(*args: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(dask_executor, "take_work", no_room)
    write_workflow(repo, "steps:\n  a: {run: 'echo made > made.txt'}\n")
    started = start_run(
        await open_repository(repo),
        load_workflow(repo / "treeflow.yml"),
        NullSink(),
        executor=ExecutorChoice("dask", local_cluster.address),
    )
    try:
        result = await started.execute()
    finally:
        await started.close()

    step = result.steps["a"]
    assert step.status is StepStatus.FAILED
    assert step.error is not None and "no space left on device" in step.error
    assert "its work stays on Dask worker tcp://127.0.0.1:" in step.error
    kept = [
        (cache, ref)
        for cache in local_cluster.cache.glob("*/repo.git")
        for ref in git(cache, "for-each-ref", "--format=%(refname)", "refs/treeflow/sessions/").splitlines()
        if ref.split("/")[-1] in step.error
    ]
    assert len(kept) == 1, kept
    [(cache, session_ref)] = kept
    assert git(cache, "show", f"{session_ref}:made.txt") == "made"
