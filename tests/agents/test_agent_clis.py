"""Agent CLIs as steps, through the engine: fake CLIs on PATH replay the streams the real ones
document (tests/agents/fake_clis/streams), including errors, crashes, slow, silent and flooding agents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import Recorder, run_workflow
from treeflow.core.agents import ADAPTERS
from treeflow.core.events import StepOutput, StepProgress
from treeflow.core.model import AgentUsage, StepStatus
from treeflow.core.spec import WorkflowError, parse_workflow

pytestmark = pytest.mark.anyio

FAKE_CLIS = Path(__file__).parent / "fake_clis"
SUCCESS_WORK = {
    "claude": "claude-fix.txt",
    "codex": "codex-fix.txt",
    "gemini": "REVIEW.md",
    "cursor": "cursor-fix.txt",
    "opencode": "opencode-fix.txt",
}


def workflow(use: str, scenario: str = "success", extra: str = "", **env: str) -> str:
    variables = {"PATH": f"{FAKE_CLIS}:{os.environ['PATH']}", "FAKE_AGENT_SCENARIO": scenario, **env}
    return (
        f"env: {json.dumps(variables)}\n"
        "steps:\n"
        f"  job: {{agent: {{use: {use}, prompt: Make the failing test pass{extra}}}}}\n"
    )


def test_every_adapter_has_a_fake_cli_and_streams() -> None:
    for use, adapter in ADAPTERS.items():
        program = getattr(adapter, "program", None)
        assert program is not None and (FAKE_CLIS / program).is_file(), use
        streams = FAKE_CLIS / "streams" / program
        assert {"success.jsonl", "error.jsonl"} <= {path.name for path in streams.iterdir()}, use


@pytest.mark.parametrize("use", list(SUCCESS_WORK))
async def test_an_agent_cli_step_succeeds_with_its_totals_and_its_work_committed(
    repo: Path, use: str
) -> None:
    recorder = Recorder()
    result = await run_workflow(repo, workflow(use), recorder, worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.agent is not None and step.agent.cli == use
    assert step.agent.session_id
    assert step.summary
    assert step.branch is not None
    assert SUCCESS_WORK[use] in git(repo, "ls-tree", "--name-only", step.branch)
    progress = [event for event in recorder.of(StepProgress) if isinstance(event, StepProgress)]
    assert progress and all(event.agent is not None for event in progress)
    assert any(isinstance(event, StepOutput) and "→" in event.line for event in recorder.events)


async def test_claude_totals_are_those_of_its_result_event(repo: Path) -> None:
    result = await run_workflow(repo, workflow("claude"), worktrees=True)
    agent = result.steps["job"].agent
    assert agent is not None
    assert (agent.turns, agent.input_tokens, agent.output_tokens, agent.cost_usd) == (5, 43568, 218, 0.0412)
    assert result.steps["job"].summary == "The test passes now: api.py returned the wrong value."


async def test_codex_totals_come_from_its_turns(repo: Path) -> None:
    result = await run_workflow(repo, workflow("codex"), worktrees=True)
    agent = result.steps["job"].agent
    assert agent == AgentUsage(
        cli="codex",
        session_id=agent.session_id if agent else None,
        turns=1,
        input_tokens=24567,
        output_tokens=612,
        cost_usd=None,
        last_message="Fixed src/api.py; the test passes.",
    )


@pytest.mark.parametrize(
    ("use", "said"),
    [
        ("claude", "Claude Code failed: error_max_turns"),
        ("codex", "Codex failed: stream disconnected before completion: response.failed event received"),
        ("gemini", "Gemini CLI failed: Quota exceeded"),
        ("cursor", "Authentication required. Please run 'cursor-agent login' first"),
        ("opencode", "opencode failed: Authentication failed: run opencode auth login"),
    ],
)
async def test_an_error_the_cli_reports_fails_the_step_with_its_words(
    repo: Path, use: str, said: str
) -> None:
    result = await run_workflow(repo, workflow(use, "error"), worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.FAILED
    assert step.exit_code == 1
    assert said in (step.error or "")


@pytest.mark.parametrize(
    ("use", "scenario", "said"),
    [
        ("claude", "login", "Invalid API key · Please run /login"),
        ("codex", "login", "your refresh token has expired. Please log out and sign in again."),
        ("gemini", "login", "exit status 41); it said:\nPlease set an Auth method in your"),
        ("cursor", "error", "Error: Authentication required. Please run 'cursor-agent login' first"),
        ("opencode", "error", "opencode failed: Authentication failed: run opencode auth login"),
    ],
)
async def test_an_expired_login_surfaces_the_clis_message(
    repo: Path, use: str, scenario: str, said: str
) -> None:
    result = await run_workflow(repo, workflow(use, scenario), worktrees=True)
    assert result.steps["job"].status is StepStatus.FAILED
    assert said in (result.steps["job"].error or "")


@pytest.mark.parametrize("use", list(SUCCESS_WORK))
async def test_a_crash_mid_stream_fails_the_step_and_keeps_what_the_stream_said(repo: Path, use: str) -> None:
    result = await run_workflow(repo, workflow(use, "crash"), worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.FAILED
    # Killed by SIGKILL, as the shell that started it tells: 128 + 9.
    assert "ended without a result (exit status 137; 1 malformed lines skipped)" in (step.error or "")
    assert step.agent is not None and step.agent.session_id


@pytest.mark.parametrize("use", list(SUCCESS_WORK))
async def test_a_malformed_line_is_skipped_and_the_run_goes_on(repo: Path, use: str) -> None:
    recorder = Recorder()
    result = await run_workflow(repo, workflow(use, "malformed"), recorder, worktrees=True)
    assert result.steps["job"].status is StepStatus.SUCCEEDED, result.steps["job"].error
    lines = [event.line for event in recorder.of(StepOutput) if isinstance(event, StepOutput)]
    assert "warning: retrying" in lines


@pytest.mark.slow
async def test_a_silent_agent_fails_at_its_heartbeat_and_is_stopped(repo: Path) -> None:
    result = await run_workflow(repo, workflow("claude", "silent", ", heartbeat: 1s"), worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.FAILED
    assert step.error == "the agent stopped reporting: no output from claude for 1s"
    assert step.duration_s is not None and step.duration_s < 10


@pytest.mark.slow
async def test_a_slow_agent_that_keeps_talking_outlives_its_heartbeat(repo: Path) -> None:
    result = await run_workflow(repo, workflow("codex", "slow", ", heartbeat: 1s"), worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.duration_s is not None and step.duration_s > 1.5


async def test_a_flood_of_events_reaches_the_run_as_a_few_updates(repo: Path) -> None:
    recorder = Recorder()
    text = workflow("claude", "flood", FAKE_AGENT_FLOOD="5000")
    result = await run_workflow(repo, text, recorder, worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    assert step.agent is not None and step.agent.turns == 5
    progress = [e for e in recorder.of(StepProgress) if isinstance(e, StepProgress)]
    assert len(progress) <= (step.duration_s or 0) / 0.1 + 5


async def test_a_cli_that_is_not_installed_fails_naming_it_and_how_to_install(repo: Path) -> None:
    text = "steps:\n  job: {agent: {use: codex, prompt: go}}\n"
    text = f"env: {{PATH: {json.dumps(str(repo / 'no-such-folder'))}}}\n" + text
    result = await run_workflow(repo, text, worktrees=True)
    error = result.steps["job"].error or ""
    assert result.steps["job"].status is StepStatus.FAILED
    assert "no `codex` on PATH" in error and "npm install -g @openai/codex" in error


async def test_program_names_the_executable_relative_to_the_step(repo: Path) -> None:
    (repo / "bin").mkdir()
    (repo / "bin" / "my-claude").symlink_to(FAKE_CLIS / "claude")
    git(repo, "add", "bin")
    git(repo, "commit", "--quiet", "-m", "bin")
    result = await run_workflow(repo, workflow("claude", extra=", program: bin/my-claude"), worktrees=True)
    assert result.steps["job"].status is StepStatus.SUCCEEDED, result.steps["job"].error


async def test_the_command_line_asks_for_machine_output_and_no_questions(repo: Path, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.jsonl"
    extra = ", model: opus, args: [--max-turns, '3'], permissions: full"
    await run_workflow(repo, workflow("claude", extra=extra, FAKE_AGENT_ARGV=str(argv_file)), worktrees=True)
    (argv,) = [json.loads(line) for line in argv_file.read_text().splitlines()]
    assert argv == [
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "bypassPermissions",
        "--model",
        "opus",
        "--max-turns",
        "3",
        "Make the failing test pass",
    ]


async def test_a_retry_continues_the_agents_session_saying_what_happened(repo: Path, tmp_path: Path) -> None:
    argv_file = tmp_path / "argv.jsonl"
    text = workflow("codex", "fail-until-resumed", FAKE_AGENT_ARGV=str(argv_file))
    retry = "retry: {attempts: 2, backoff: 10ms}"
    text = text.replace("Make the failing test pass}}", f"Make the failing test pass}}, {retry}}}")
    result = await run_workflow(repo, text, worktrees=True)
    step = result.steps["job"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    first, second = [json.loads(line) for line in argv_file.read_text().splitlines()]
    assert "resume" not in first
    session = second[second.index("resume") + 1]
    assert step.agent is not None and step.agent.session_id == session
    assert second[-1].startswith("treeflow is continuing this task. The last attempt failed: Codex failed:")
    assert second[-1].endswith("Make the failing test pass")


async def test_report_exit_takes_the_exit_code_as_the_final_state(repo: Path) -> None:
    text = """\
        steps:
          good: {agent: {command: "echo \\"$TREEFLOW_PROMPT\\" > said.txt", prompt: hello, report: exit}}
          bad: {agent: {command: "exit 4", report: exit}}
        """
    result = await run_workflow(repo, text, worktrees=True)
    assert result.steps["good"].status is StepStatus.SUCCEEDED
    assert result.steps["bad"].status is StepStatus.FAILED
    assert result.steps["bad"].exit_code == 4
    branch = result.steps["good"].branch
    assert branch is not None and git(repo, "show", f"{branch}:said.txt") == "hello"


async def test_report_exit_with_a_heartbeat_stops_a_silent_program(repo: Path) -> None:
    text = "steps:\n  quiet: {agent: {command: 'sleep 60', report: exit, heartbeat: 500ms}}\n"
    result = await run_workflow(repo, text, worktrees=True)
    assert result.steps["quiet"].status is StepStatus.FAILED
    assert result.steps["quiet"].error == "the agent stopped reporting: no output for 0.5s"


@pytest.mark.parametrize(
    ("agent", "message"),
    [
        (
            "{use: claud, prompt: x}",
            "no agent `claud` (known: claude, codex, gemini, cursor, opencode, cursor-cloud)",
        ),
        ("{use: claude, prompt: x, command: y}", "agent.command cannot go with `use:`"),
        ("{use: claude}", "agent needs a `prompt:`"),
        ("{use: claude, prompt: x, permissions: all}", "agent.permissions must be edit or full"),
        ("{prompt: x, model: opus}", "agent.model is for an agent named by `use:`"),
        ("{prompt: x, report: exit}", "agent with `report: exit` needs a `command:`"),
        ("{prompt: x, command: y, report: never}", "agent.report must be status or exit"),
    ],
)
def test_agent_blocks_are_checked(tmp_path: Path, agent: str, message: str) -> None:
    path = tmp_path / "treeflow.yml"
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(f"steps:\n  job: {{agent: {agent}}}\n", path)
    assert message in str(raised.value)
