"""Cursor Cloud Agent steps against a fake Cloud Agents API on 127.0.0.1 and a local bare remote.

The fake (tests/agents/fake_cursor_cloud.py) pushes the agent's commit to the remote as the real
service pushes to GitHub; ``TREEFLOW_CLOUD_POLL_SCALE=0.01`` makes the poller's 1 s a 10 ms.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.agents.fake_cursor_cloud import VALID_KEY, FakeCursorCloud, Script, serving
from tests.conftest import git
from tests.helpers import make_run, run_workflow, wait_until_async
from treeflow.core.cloud.remote_branches import repository_for_api
from treeflow.core.model import StepStatus
from treeflow.core.spec import WorkflowError, parse_workflow

pytestmark = pytest.mark.anyio

WORKFLOW = """\
    steps:
      cloud:
        agent: {use: cursor-cloud, prompt: "Write CLOUD.md", model: claude-4-sonnet, repository: origin}
      after: {run: "test -f CLOUD.md", needs: [cloud]}
    """


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "--quiet", "origin", "main")
    return bare


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCursorCloud]:
    with serving(FakeCursorCloud()) as fake:
        monkeypatch.setenv("CURSOR_API_KEY", VALID_KEY)
        monkeypatch.setenv("TREEFLOW_CURSOR_API_URL", fake.url)
        monkeypatch.setenv("TREEFLOW_CLOUD_POLL_SCALE", "0.01")
        yield fake


def remote_branches(bare: Path) -> list[str]:
    return git(bare, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()


def step_log(repo: Path, run_id: str, step: str) -> str:
    return (repo / ".git" / "treeflow" / "logs" / run_id / f"{step}.log").read_text()


async def test_the_agents_commits_become_the_steps_work(
    repo: Path, remote: Path, cloud: FakeCursorCloud
) -> None:
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    cloud_step = run.steps["cloud"]
    assert cloud_step.status is StepStatus.SUCCEEDED, cloud_step.error
    assert run.steps["after"].status is StepStatus.SUCCEEDED, run.steps["after"].error
    assert cloud_step.summary == "Added CLOUD.md"
    assert cloud_step.branch == f"treeflow/{run.run_id}/cloud"
    assert git(repo, "show", f"{cloud_step.branch}:CLOUD.md") == "Write CLOUD.md"
    assert run.result_branch is not None
    assert git(repo, "show", f"{run.result_branch}:CLOUD.md") == "Write CLOUD.md"
    (agent,) = cloud.agents.values()
    assert agent.ref == f"treeflow/{run.run_id}/cloud-base"
    assert agent.repository == str(remote)
    assert agent.model == "claude-4-sonnet"
    assert agent.prompt == "Write CLOUD.md"
    # Both of treeflow's branches on the remote served and are gone; the user's are untouched.
    assert remote_branches(remote) == ["main"]
    assert cloud.stops() == []


@pytest.mark.parametrize(
    ("end", "summary", "error"),
    [
        ("ERROR", "Tests kept failing", "the Cloud Agent ended ERROR: Tests kept failing"),
        ("EXPIRED", None, "the Cloud Agent ended EXPIRED: no reason given"),
    ],
)
async def test_an_agent_that_ends_badly_fails_the_step_with_the_apis_reason(
    repo: Path, remote: Path, cloud: FakeCursorCloud, end: str, summary: str | None, error: str
) -> None:
    cloud.script = Script(end=end, summary=summary)
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    assert run.steps["cloud"].status is StepStatus.FAILED
    assert run.steps["cloud"].error == error
    assert run.steps["after"].status is StepStatus.SKIPPED
    assert f"treeflow/{run.run_id}/cloud-base" not in remote_branches(remote)
    if end == "ERROR":
        # What it pushed before failing is kept on the step's branch, as a failed local step's work is.
        assert git(repo, "show", f"treeflow/{run.run_id}/cloud:CLOUD.md") == "Write CLOUD.md"


@pytest.mark.parametrize(
    ("faults", "said"),
    [
        (["500", "500", "503"], "server error (HTTP 500"),
        (["drop"], "no answer from"),
        (["429:20"], "rate limited (HTTP 429"),
    ],
)
async def test_polls_without_an_answer_are_retried(
    repo: Path, remote: Path, cloud: FakeCursorCloud, faults: list[str], said: str
) -> None:
    cloud.status_faults = list(faults)
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    assert run.steps["cloud"].status is StepStatus.SUCCEEDED, run.steps["cloud"].error
    assert said in step_log(repo, run.run_id, "cloud")
    polls = cloud.requests("GET")
    assert [seen.answered for seen in polls[: len(faults)]] == [
        0 if f == "drop" else int(f[:3]) for f in faults
    ]
    if faults == ["429:20"]:
        # Retry-After: 20 s, times the test scale: no poll for 0.2 s.
        assert polls[1].at - polls[0].at >= 0.2


async def test_a_launch_the_api_did_not_take_is_tried_again(
    repo: Path, remote: Path, cloud: FakeCursorCloud
) -> None:
    cloud.launch_faults = ["429:1", "503"]
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    assert run.steps["cloud"].status is StepStatus.SUCCEEDED, run.steps["cloud"].error
    assert [seen.answered for seen in cloud.requests("POST")][:3] == [429, 503, 200]
    assert len(cloud.agents) == 1


async def test_a_launch_that_may_have_happened_is_not_repeated(
    repo: Path, remote: Path, cloud: FakeCursorCloud
) -> None:
    cloud.launch_faults = ["500"]
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    assert run.steps["cloud"].status is StepStatus.FAILED
    assert run.steps["cloud"].error == (
        "could not launch the Cloud Agent: server error (HTTP 500: Internal Server Error)"
    )
    assert len(cloud.requests("POST")) == 1
    assert remote_branches(remote) == ["main"]


@pytest.mark.parametrize("stop", ["cancel", pytest.param("timeout", marks=pytest.mark.slow), "fail-fast"])
async def test_a_stopped_step_stops_the_remote_agent(
    repo: Path, remote: Path, cloud: FakeCursorCloud, stop: str
) -> None:
    cloud.script = Script(running_s=600)
    text = textwrap.dedent(WORKFLOW)
    if stop == "timeout":
        text = text.replace("repository: origin}", "repository: origin}\n    timeout: 1s")
    if stop == "fail-fast":
        text += "  broken: {run: 'sleep 0.5; exit 3'}\n"
    run = await make_run(repo, text, worktrees=True)
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        await wait_until_async(lambda: cloud.requests("GET"), "a poll of the running agent")
        if stop == "cancel":
            run.cancel()
    result = run.snapshot()
    expected = {
        "cancel": StepStatus.CANCELLED,
        "timeout": StepStatus.TIMED_OUT,
        "fail-fast": StepStatus.CANCELLED,
    }
    assert result.steps["cloud"].status is expected[stop]
    (agent,) = cloud.agents.values()
    assert [seen.path for seen in cloud.stops()] == [f"/v0/agents/{agent.id}/stop"]
    assert agent.stopped
    assert remote_branches(remote) == ["main"]


async def test_without_a_key_the_step_fails_saying_what_is_missing(
    repo: Path, remote: Path, cloud: FakeCursorCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CURSOR_API_KEY")
    run = await run_workflow(repo, WORKFLOW, worktrees=True)
    assert run.steps["cloud"].status is StepStatus.FAILED
    assert run.steps["cloud"].error is not None
    assert run.steps["cloud"].error.startswith("CURSOR_API_KEY is not set")
    assert cloud.seen == []


async def test_an_unknown_remote_fails_the_step_naming_it(repo: Path, cloud: FakeCursorCloud) -> None:
    run = await run_workflow(repo, WORKFLOW.replace("origin", "upstream"), worktrees=True)
    assert run.steps["cloud"].status is StepStatus.FAILED
    assert "the repository has no remote `upstream`" in (run.steps["cloud"].error or "")
    assert cloud.seen == []


def test_the_block_is_checked_like_any_step(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        steps:
          a: {agent: {use: cursor-cloud, model: 3}}
          b: {agent: {use: cursor-cloud, prompt: hi, heartbeat: 2m}}
          c: {agent: {use: cursor-cloud, prompt: hi}}
        """
    )
    path = tmp_path / "treeflow.yml"
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(text, path)
    messages = [str(error) for error in raised.value.errors]
    assert any("step `a`: agent with `use: cursor-cloud` needs a `prompt:`" in m for m in messages), messages
    assert any(":3:" in m and "heartbeat" in m for m in messages), messages
    assert not any(":4:" in m for m in messages), messages


async def test_a_step_without_a_worktree_of_its_own_is_refused(
    repo: Path, remote: Path, cloud: FakeCursorCloud
) -> None:
    text = textwrap.dedent(WORKFLOW).replace(
        "repository: origin}", "repository: origin}\n    worktree: false"
    )
    run = await run_workflow(repo, text, worktrees=True)
    assert run.steps["cloud"].error == (
        "a Cursor Cloud Agent step needs a worktree of its own; remove `worktree: false`"
    )
    assert cloud.seen == []


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("git@github.com:acme/app.git", "https://github.com/acme/app"),
        ("ssh://git@github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://github.com/acme/app.git", "https://github.com/acme/app"),
        ("https://github.com/acme/app", "https://github.com/acme/app"),
        ("/srv/git/app.git", "/srv/git/app.git"),
    ],
)
def test_the_api_gets_a_github_remote_by_its_https_address(url: str, named: str) -> None:
    assert repository_for_api(url) == named
