"""The scheduler with real processes: parallelism, needs, fail-fast, timeouts, retries, cancellation."""

from __future__ import annotations

import errno
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import Recorder, has_text, make_run, pid_alive, read_pids, run_workflow
from treeflow.core.events import OutputStream, RunFinished, RunStarted, StepFinished, StepOutput
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import GitError, Repository
from treeflow.core.model import RunResult, RunStatus, Step, StepStatus
from treeflow.core.runner import Run
from treeflow.core.workspace import CheckoutWorkspace, StepPlace

pytestmark = pytest.mark.anyio

# Each step registers itself in a folder while it runs and records how many it saw there, so the
# peak concurrency is observed by the steps themselves rather than inferred from timings.
COUNTING_STEP = (
    "touch running/$TREEFLOW_STEP; ls running | wc -l > seen/$TREEFLOW_STEP; "
    "sleep 0.3; rm running/$TREEFLOW_STEP"
)


@pytest.mark.slow
async def test_max_parallel_is_the_observed_peak(repo: Path) -> None:
    (repo / "running").mkdir()
    (repo / "seen").mkdir()
    steps = "\n".join(f"  s{i}: {{run: '{COUNTING_STEP}'}}" for i in range(10))
    result = await run_workflow(repo, f"max_parallel: 3\nsteps:\n{steps}\n")
    assert result.status is RunStatus.SUCCEEDED
    seen = [int(path.read_text()) for path in (repo / "seen").iterdir()]
    assert len(seen) == 10
    assert max(seen) == 3


@pytest.mark.slow
async def test_max_parallel_option_overrides_the_file(repo: Path) -> None:
    (repo / "running").mkdir()
    (repo / "seen").mkdir()
    steps = "\n".join(f"  s{i}: {{run: '{COUNTING_STEP}'}}" for i in range(6))
    result = await run_workflow(repo, f"max_parallel: 6\nsteps:\n{steps}\n", max_parallel=2)
    assert result.status is RunStatus.SUCCEEDED
    assert max(int(path.read_text()) for path in (repo / "seen").iterdir()) == 2


MARK = "date +%s%N > marks/$TREEFLOW_STEP.start; {body}; date +%s%N > marks/$TREEFLOW_STEP.end"


async def test_a_step_never_starts_before_its_needs_ended(repo: Path) -> None:
    (repo / "marks").mkdir()
    workflow = f"""\
        max_parallel: 4
        steps:
          a: {{run: "{MARK.format(body="sleep 0.2")}"}}
          b: {{run: "{MARK.format(body="sleep 0.1")}"}}
          c: {{run: "{MARK.format(body="true")}", needs: [a, b]}}
          d: {{run: "{MARK.format(body="true")}", needs: [c]}}
          e: {{run: "{MARK.format(body="true")}", needs: [a]}}
        """
    result = await run_workflow(repo, workflow)
    assert result.status is RunStatus.SUCCEEDED

    def mark(step: str, which: str) -> int:
        return int((repo / "marks" / f"{step}.{which}").read_text())

    for step, needs in {"c": "ab", "d": "c", "e": "a"}.items():
        for need in needs:
            assert mark(step, "start") >= mark(need, "end"), f"{step} started before {need} ended"


@pytest.mark.slow
async def test_a_step_starts_when_its_own_needs_are_done_not_in_waves(repo: Path) -> None:
    # `quick_next` needs only `quick`; it must not wait for the unrelated slow step of the same "level".
    (repo / "marks").mkdir()
    workflow = f"""\
        steps:
          quick: {{run: "{MARK.format(body="true")}"}}
          slow: {{run: "{MARK.format(body="sleep 3")}"}}
          quick_next: {{run: "{MARK.format(body="true")}", needs: [quick]}}
        """
    result = await run_workflow(repo, workflow, max_parallel=3)
    assert result.status is RunStatus.SUCCEEDED
    quick_next_end = int((repo / "marks" / "quick_next.end").read_text())
    slow_end = int((repo / "marks" / "slow.end").read_text())
    assert quick_next_end < slow_end


async def test_fail_fast_cancels_running_trees_and_skips_the_rest(repo: Path) -> None:
    (repo / "pids").mkdir()
    workflow = """\
        fail_fast: true
        steps:
          sleeper: {run: "echo $$ > pids/sleeper; exec sleep 60"}
          tree: {run: "sh -c 'sleep 60 & echo $! > pids/grandchild; wait' & echo $! > pids/tree; wait"}
          failing: {run: "while [ ! -s pids/grandchild ] || [ ! -s pids/sleeper ] || [ ! -s pids/tree ]; do sleep 0.02; done; exit 3"}
          after: {run: "true", needs: [failing]}
          later: {run: "true", needs: [sleeper]}
        """
    result = await run_workflow(repo, workflow, max_parallel=4)
    steps = result.steps
    assert result.status is RunStatus.FAILED
    assert steps["failing"].status is StepStatus.FAILED
    assert steps["failing"].exit_code == 3
    assert steps["sleeper"].status is StepStatus.CANCELLED
    assert steps["tree"].status is StepStatus.CANCELLED
    assert steps["after"].status is StepStatus.SKIPPED
    assert steps["later"].status is StepStatus.SKIPPED
    assert "failing" in (steps["sleeper"].error or "")
    pids = read_pids(repo / "pids")
    assert set(pids) == {"sleeper", "tree", "grandchild"}
    survivors = [name for name, pid in pids.items() if pid_alive(pid)]
    assert survivors == []


async def test_without_fail_fast_only_dependents_of_a_failure_are_skipped(repo: Path) -> None:
    workflow = """\
        fail_fast: false
        steps:
          broken: {run: "exit 1"}
          needs_broken: {run: "true", needs: [broken]}
          transitively: {run: "true", needs: [needs_broken]}
          independent: {run: "sleep 0.2"}
          after_independent: {run: "true", needs: [independent]}
          join: {run: "true", needs: [independent, broken]}
        """
    result = await run_workflow(repo, workflow)
    status = {step_id: step.status for step_id, step in result.steps.items()}
    assert status == {
        "broken": StepStatus.FAILED,
        "needs_broken": StepStatus.SKIPPED,
        "transitively": StepStatus.SKIPPED,
        "independent": StepStatus.SUCCEEDED,
        "after_independent": StepStatus.SUCCEEDED,
        "join": StepStatus.SKIPPED,
    }
    assert result.status is RunStatus.FAILED
    assert "broken" in (result.steps["needs_broken"].error or "")
    assert "needs_broken" in (result.steps["transitively"].error or "")


async def test_timeout_kills_the_whole_tree(repo: Path) -> None:
    (repo / "pids").mkdir()
    workflow = """\
        steps:
          slow:
            run: "sh -c 'sleep 60 & echo $! > pids/grandchild; wait' & echo $! > pids/child; wait"
            timeout: 500ms
        """
    result = await run_workflow(repo, workflow)
    slow = result.steps["slow"]
    assert slow.status is StepStatus.TIMED_OUT
    assert "timed out" in (slow.error or "")
    pids = read_pids(repo / "pids")
    assert set(pids) == {"child", "grandchild"}
    assert [name for name, pid in pids.items() if pid_alive(pid)] == []


async def test_retry_counts_attempts_until_success(repo: Path) -> None:
    recorder = Recorder()
    workflow = """\
        steps:
          flaky:
            run: 'echo "try $TREEFLOW_ATTEMPT"; test "$TREEFLOW_ATTEMPT" -ge 3'
            retry: {attempts: 5, backoff: 10ms, jitter: 0}
        """
    result = await run_workflow(repo, workflow, recorder)
    flaky = result.steps["flaky"]
    assert flaky.status is StepStatus.SUCCEEDED
    assert flaky.attempts == 3
    assert [event.next_attempt for event in recorder.retries("flaky")] == [2, 3]
    assert [event.attempt for event in recorder.started("flaky")] == [1, 2, 3]
    assert flaky.log is not None
    log_text = flaky.log.read_text()
    assert "try 1" in log_text and "try 3" in log_text


async def test_retry_gives_up_after_the_last_attempt(repo: Path) -> None:
    workflow = """\
        steps:
          broken: {run: "exit 7", retry: {attempts: 2, backoff: 10ms}}
        """
    result = await run_workflow(repo, workflow)
    broken = result.steps["broken"]
    assert broken.status is StepStatus.FAILED
    assert broken.attempts == 2
    assert broken.exit_code == 7


async def test_timeouts_are_retried_too(repo: Path) -> None:
    workflow = """\
        steps:
          hangs: {run: "sleep 30", timeout: 200ms, retry: {attempts: 2, backoff: 10ms}}
        """
    result = await run_workflow(repo, workflow)
    assert result.steps["hangs"].status is StepStatus.TIMED_OUT
    assert result.steps["hangs"].attempts == 2


async def test_output_is_streamed_to_events_and_the_log(repo: Path) -> None:
    recorder = Recorder()
    workflow = """\
        steps:
          talk: {run: "echo out-1; echo err-1 >&2; printf 'no newline'"}
        """
    result = await run_workflow(repo, workflow, recorder)
    lines = [(event.stream, event.line) for event in recorder.events if isinstance(event, StepOutput)]
    # stdout and stderr come through pipes of their own: each keeps its order, lines of the two
    # written within the same instant may swap places.
    assert [line for stream, line in lines if stream is OutputStream.STDOUT] == ["out-1", "no newline"]
    assert [line for stream, line in lines if stream is OutputStream.STDERR] == ["err-1"]
    log = result.steps["talk"].log
    assert log is not None and sorted(log.read_text().splitlines()) == ["err-1", "no newline", "out-1"]
    assert log.is_relative_to(repo / ".git" / "treeflow" / "logs")


async def test_steps_see_their_treeflow_variables_and_unique_ports(repo: Path) -> None:
    (repo / "env").mkdir()
    record = 'echo "$TREEFLOW_RUN_ID $TREEFLOW_STEP $TREEFLOW_WORKTREE $TREEFLOW_PORT $GREETING" > env/$TREEFLOW_STEP'
    # Every step waits until all six run, so the ports are those of six steps running at once.
    together = "touch env/up.$TREEFLOW_STEP; while [ $(ls env | grep -c ^up) -lt 6 ]; do sleep 0.01; done"
    steps = "\n".join(f"  s{i}: {{run: '{together}; {record}'}}" for i in range(6))
    result = await run_workflow(repo, f"env: {{GREETING: hi}}\nsteps:\n{steps}\n", max_parallel=6)
    assert result.status is RunStatus.SUCCEEDED
    seen = [(repo / "env" / f"s{i}").read_text().split() for i in range(6)]
    assert {fields[0] for fields in seen} == {result.run_id}
    assert [fields[1] for fields in seen] == [f"s{i}" for i in range(6)]
    assert {Path(fields[2]) for fields in seen} == {repo}
    assert len({fields[3] for fields in seen}) == 6
    assert {fields[4] for fields in seen} == {"hi"}


async def test_selected_steps_run_with_what_they_need_only(repo: Path) -> None:
    workflow = """\
        steps:
          a: {run: "true"}
          b: {run: "true", needs: [a]}
          c: {run: "true"}
        """
    result = await run_workflow(repo, workflow, select=("b",))
    assert list(result.steps) == ["a", "b"]
    assert result.status is RunStatus.SUCCEEDED


async def test_cancel_stops_running_steps_and_skips_pending_ones(repo: Path) -> None:
    (repo / "pids").mkdir()
    workflow = """\
        steps:
          tree: {run: "sh -c 'sleep 60 & echo $! > pids/grandchild; wait' & echo $! > pids/child; wait"}
          next: {run: "true", needs: [tree]}
        """
    run = await make_run(repo, workflow)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(20):
            while not has_text(repo / "pids" / "grandchild"):
                await anyio.sleep(0.02)
        run.cancel()
    assert run.snapshot().status is RunStatus.CANCELLED
    assert run.snapshot().steps["tree"].status is StepStatus.CANCELLED
    assert run.snapshot().steps["next"].status is StepStatus.SKIPPED
    assert [pid for pid in read_pids(repo / "pids").values() if pid_alive(pid)] == []


async def test_outer_cancellation_propagates_and_still_kills_the_tree(repo: Path) -> None:
    (repo / "pids").mkdir()
    workflow = """\
        steps:
          tree: {run: "sh -c 'sleep 60 & echo $! > pids/grandchild; wait' & wait"}
        """
    run = await make_run(repo, workflow)
    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(run.execute)
            while not has_text(repo / "pids" / "grandchild"):
                await anyio.sleep(0.02)
            scope.cancel()
    assert scope.cancelled_caught
    assert run.snapshot().steps["tree"].status is StepStatus.CANCELLED
    assert [pid for pid in read_pids(repo / "pids").values() if pid_alive(pid)] == []


async def test_a_command_that_cannot_start_fails_its_step(repo: Path) -> None:
    result = await run_workflow(repo, "steps:\n  missing: {run: 'no-such-command-xyz'}\n")
    missing = result.steps["missing"]
    assert missing.status is StepStatus.FAILED
    assert missing.exit_code == 127


async def test_events_keep_the_run_as_it_stood_when_they_were_sent(repo: Path) -> None:
    recorder = Recorder()
    workflow = "steps:\n  first: {run: 'true'}\n  second: {run: 'exit 3', needs: [first]}\n"
    result = await run_workflow(repo, workflow, recorder)
    [started] = [event for event in recorder.events if isinstance(event, RunStarted)]
    finished = {event.step_id: event.result for event in recorder.events if isinstance(event, StepFinished)}
    [ended] = [event for event in recorder.events if isinstance(event, RunFinished)]
    assert started.run.status is RunStatus.RUNNING
    assert started.run.ended_at is None
    assert {step.status for step in started.run.steps.values()} == {StepStatus.PENDING}
    assert finished["second"].status is StepStatus.FAILED
    assert finished["second"].exit_code == 3
    assert dict(ended.run.steps) == finished
    assert ended.run == result
    assert result.status is RunStatus.FAILED
    with pytest.raises(TypeError):
        started.run.steps["first"] = finished["first"]  # type: ignore[index]


def with_step_env(run: Run, step_id: str, env: dict[str, str]) -> None:
    """Give a step an environment `validate` would refuse, as a workflow that slipped past it would."""
    step = run.workflow.steps[step_id]
    steps = {**run.workflow.steps, step_id: replace(step, env={**step.env, **env})}
    run.workflow = replace(run.workflow, steps=steps)


async def test_an_error_inside_a_step_ends_that_step_and_the_run_with_the_reason(repo: Path) -> None:
    recorder = Recorder()
    workflow = """\
        steps:
          sleeper: {run: "touch started; sleep 60"}
          sleeping: {run: "while [ ! -e started ]; do sleep 0.01; done"}
          broken: {run: "true", needs: [sleeping]}
          after: {run: "true", needs: [broken]}
        """
    run = await make_run(repo, workflow, recorder)
    with_step_env(run, "broken", {"BAD": "a\0b"})
    with anyio.fail_after(30):
        result = await run.execute()
    steps = result.steps
    assert result.status is RunStatus.FAILED
    assert steps["broken"].status is StepStatus.FAILED
    assert "null byte" in (steps["broken"].error or "")
    assert steps["sleeper"].status is StepStatus.CANCELLED
    assert steps["after"].status is StepStatus.SKIPPED
    assert sorted(recorder.finished()) == ["after", "broken", "sleeper", "sleeping"]
    ended = [event.run.status for event in recorder.events if isinstance(event, RunFinished)]
    assert ended == [RunStatus.FAILED]


class FailingExecutor(LocalExecutor):
    """The executor of a checkout whose places, or whose gathering at the end, fail as git can."""

    def __init__(self, repo: Repository, *, fail_saving: str = "", fail_closing: bool = False) -> None:
        super().__init__(CheckoutWorkspace(repo))
        self._fail_saving = fail_saving
        self._fail_closing = fail_closing

    @asynccontextmanager
    async def _place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
        async with self.workspace.step_place(run_id, step) as place:
            yield place
        if step.id == self._fail_saving:
            raise GitError(("commit",), 128, "fatal: cannot save the work")

    def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
        return self._place(run_id, step)

    async def close(self, run: RunResult) -> str | None:
        if self._fail_closing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return await super().close(run)


async def test_a_git_failure_saving_a_step_fails_it_and_fail_fast_goes_on(repo: Path) -> None:
    run = await make_run(repo, "steps:\n  saved: {run: 'true'}\n  sleeper: {run: 'sleep 60'}\n")
    run = Run(run.workflow, run.repo, Recorder(), executor=FailingExecutor(run.repo, fail_saving="saved"))
    with anyio.fail_after(30):
        result = await run.execute()
    assert result.status is RunStatus.FAILED
    assert result.steps["saved"].status is StepStatus.FAILED
    assert "cannot save the work" in (result.steps["saved"].error or "")
    assert result.steps["sleeper"].status is StepStatus.CANCELLED


async def test_a_run_whose_work_cannot_be_gathered_fails_saying_why(repo: Path) -> None:
    run = await make_run(repo, "steps:\n  fine: {run: 'true'}\n")
    run = Run(run.workflow, run.repo, Recorder(), executor=FailingExecutor(run.repo, fail_closing=True))
    result = await run.execute()
    assert result.steps["fine"].status is StepStatus.SUCCEEDED
    assert result.status is RunStatus.FAILED
    assert any("could not be gathered" in warning and "No space" in warning for warning in result.warnings)


async def test_a_full_disk_under_the_logs_loses_output_not_the_run(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    run = await make_run(repo, "steps:\n  talk: {run: 'seq 1 20000'}\n  quiet: {run: 'true'}\n", recorder)
    run.log_dir.mkdir(parents=True)
    # /dev/full refuses every write with ENOSPC, as a full disk does.
    (run.log_dir / "talk.log").symlink_to("/dev/full")
    with anyio.fail_after(30):
        result = await run.execute()
    assert result.status is RunStatus.SUCCEEDED
    lines = [e for e in recorder.events if isinstance(e, StepOutput) and e.step_id == "talk"]
    assert len(lines) == 20000
    [warning] = [w for w in result.warnings if w.startswith("talk:")]
    assert "No space left on device" in warning
    assert result.steps["quiet"].log is None
    # Nothing went to the event loop's handler of exceptions in callbacks.
    assert [record for record in caplog.records if record.name == "asyncio"] == []


async def test_a_step_stopped_while_its_place_is_made_is_skipped(repo: Path) -> None:
    class SlowPlaces(LocalExecutor):
        @asynccontextmanager
        async def _place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
            if step.id == "waiting":
                await anyio.sleep_forever()
            async with self.workspace.step_place(run_id, step) as place:
                yield place

        def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
            return self._place(run_id, step)

    run = await make_run(repo, "steps:\n  waiting: {run: 'true'}\n  broken: {run: 'sleep 0.2; exit 1'}\n")
    run = Run(run.workflow, run.repo, Recorder(), executor=SlowPlaces(CheckoutWorkspace(run.repo)))
    with anyio.fail_after(30):
        result = await run.execute()
    waiting = result.steps["waiting"]
    assert waiting.status is StepStatus.SKIPPED
    assert waiting.attempts == 0
    assert waiting.error == "not started: `broken` failed (fail_fast)"
    assert waiting.started_at is None and waiting.log is None


async def test_steps_killed_by_a_signal_have_its_negative_number_as_exit_code(repo: Path) -> None:
    workflow = """\
        steps:
          slow: {run: "sleep 60", timeout: 300ms}
          sleeper: {run: "sleep 60"}
        """
    result = await run_workflow(repo, workflow)
    assert result.steps["slow"].status is StepStatus.TIMED_OUT
    assert result.steps["slow"].exit_code == -signal.SIGTERM
    assert result.steps["sleeper"].status is StepStatus.CANCELLED
    assert result.steps["sleeper"].exit_code == -signal.SIGTERM


@pytest.mark.parametrize("stop", ["fail-fast", "cancel"])
async def test_processes_that_left_the_step_group_are_ended_when_it_is_stopped(repo: Path, stop: str) -> None:
    (repo / "pids").mkdir()
    # `setsid` makes the sleep the leader of a session of its own, out of the step's process group.
    escape = "setsid sh -c 'echo $$ > pids/tmp; mv pids/tmp pids/escaper; exec sleep 60' & sleep 60"
    failing = (
        "while [ ! -s pids/escaper ]; do sleep 0.02; done; exit 1" if stop == "fail-fast" else "sleep 60"
    )
    workflow = f"""\
        steps:
          escaper: {{run: "{escape}"}}
          other: {{run: "{failing}"}}
        """
    run = await make_run(repo, workflow)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(20):
            while not has_text(repo / "pids" / "escaper"):
                await anyio.sleep(0.02)
        if stop == "cancel":
            run.cancel()
    escaped = read_pids(repo / "pids")["escaper"]
    assert run.snapshot().steps["escaper"].status is StepStatus.CANCELLED
    assert not pid_alive(escaped)


def leave_a_conflicted_merge(repo: Path) -> None:
    """``git merge`` in ``repo`` that stops on a conflict in README.md."""
    git(repo, "checkout", "-q", "-b", "other")
    (repo / "README.md").write_text("theirs\n")
    git(repo, "commit", "-qam", "theirs")
    git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("ours\n")
    git(repo, "commit", "-qam", "ours")
    merge = subprocess.run(["git", "merge", "other"], cwd=repo, capture_output=True, text=True)
    assert merge.returncode != 0 and "CONFLICT" in merge.stdout


async def test_a_run_started_mid_merge_warns_that_it_snapshots_the_conflict(repo: Path) -> None:
    leave_a_conflicted_merge(repo)
    workflow = "steps:\n  look: {run: 'grep -c \"<<<<<<<\" README.md'}\n"
    result = await run_workflow(repo, workflow, worktrees=True)
    assert result.steps["look"].status is StepStatus.SUCCEEDED
    [warning] = [w for w in result.warnings if "merge" in w]
    assert "MERGE_HEAD" in warning and "README.md" in warning and "conflict markers" in warning
