"""The agent step, `agent: {prompt, command?, heartbeat?}`: a coding agent's job, followed through the
status-file protocol of `treeflow.core.agent`."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from treeflow.core.agent import DEFAULT_HEARTBEAT_S, AgentSpec, AgentStatus, AgentStep, Launch, write_task
from treeflow.core.attempt import Attempt
from treeflow.core.events import AgentWaiting
from treeflow.core.model import StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_keys import Duration, Fields, Key, Text, names
from treeflow.core.spec_reader import SpecReader
from treeflow.core.worktree_writes import UnsafeWrite

AGENT_KEYS = (
    Key(
        "prompt",
        "What the agent is asked to do; written to `.treeflow/PROMPT.md`.",
        Text("Fix the failing test", not_blank=True),
        required=True,
    ),
    Key(
        "command",
        "Starts the agent in the worktree, as a `run:` command does, with `TREEFLOW_TASK_FILE` set. "
        "Without it, treeflow waits for an agent started by someone else.",
        Text("my-agent --prompt-file .treeflow/PROMPT.md", not_blank=True, wording="a command"),
        "none: wait for an agent started elsewhere",
    ),
    Key(
        "heartbeat",
        "How long the agent may go without a new status before the step fails.",
        Duration("2m"),
        f"{DEFAULT_HEARTBEAT_S:g}s",
    ),
)
_KEYS = names(AGENT_KEYS)


class AgentKind:
    key = "agent"
    summary = "a coding-agent job"
    doc = (
        "A coding agent's job, followed through treeflow's status-file protocol: `prompt` (required), "
        "`command`, `heartbeat`."
    )
    shape = Fields(AGENT_KEYS)

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> AgentSpec | None:
        fields = reader.mapping(block, f"{what}: agent", _KEYS)
        if fields is None:
            return None
        if "prompt" not in fields:
            reader.error(block, f"{what}: agent needs a `prompt:`")
        prompt = reader.optional(fields, "prompt", lambda n: reader.command(n, f"{what}: agent.prompt"))
        command = reader.optional(fields, "command", lambda n: reader.command(n, f"{what}: agent.command"))
        heartbeat = reader.optional(
            fields, "heartbeat", lambda n: reader.duration(n, f"{what}: agent.heartbeat")
        )
        if prompt is None:
            return None
        return AgentSpec(prompt=prompt, command=command, heartbeat_s=heartbeat or DEFAULT_HEARTBEAT_S)

    async def run(self, spec: AgentSpec, attempt: Attempt) -> StepOutcome:
        try:
            task = write_task(attempt.cwd, attempt.run_id, attempt.step.id, spec)
        except UnsafeWrite as exc:
            return StepOutcome(StepStatus.FAILED, error=f"cannot write the agent's task: {exc}")
        except OSError as exc:
            return StepOutcome(StepStatus.FAILED, error=f"could not write the agent's task: {exc}")
        follower = AgentStep(
            agent=spec,
            task=task,
            watcher=attempt.executor.file_watcher(),
            on_status=_status_reporter(attempt),
            warn=attempt.warn,
        )
        launch: Launch | None = None
        if spec.command is None:
            attempt.emit(AgentWaiting(attempt.run_id, attempt.step.id, attempt.cwd, task.task_file))
        else:
            command = spec.command

            async def start_agent(on_line: Callable[[str], None]) -> int:
                task_env = {"TREEFLOW_TASK_FILE": str(task.task_file)}
                return await attempt.run_command(command, on_line=on_line, extra_env=task_env)

            launch = start_agent

        return await follower.run(launch=launch, kill_grace_s=attempt.kill_grace_s)


def _status_reporter(attempt: Attempt) -> Callable[[AgentStatus], None]:
    def on_status(status: AgentStatus) -> None:
        line = f"agent: {status.state}"
        if status.progress is not None:
            line += f" {status.progress:.0%}"
        if status.message:
            line += f" {status.message}"
        attempt.log.write(f"--- treeflow: {line} ---\n".encode())
        attempt.progress(status.progress, status.message, status.summary)

    return on_status
