"""The agent step, `agent: {…}`: a coding agent's job, in one of three forms.

- `use: claude|codex|gemini|cursor|opencode` (any name in `treeflow.core.agents.ADAPTERS`): treeflow
  runs that agent's CLI headless and follows its event stream;
- `command:` (with `report: status`, the default): an agent that speaks the status-file protocol of
  `treeflow.core.agent`, launched by treeflow, or without `command` started elsewhere;
- `command:` with `report: exit`: any program, its exit code the final state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import yaml

from treeflow.core import agents
from treeflow.core.agent import DEFAULT_HEARTBEAT_S, AgentSpec, AgentStatus, AgentStep, Launch, write_task
from treeflow.core.agents.base import (
    DEFAULT_CLI_HEARTBEAT_S,
    Permissions,
    UseAgentSpec,
    wait_for_silence,
)
from treeflow.core.attempt import Attempt
from treeflow.core.cloud.cursor_cloud import USE as CLOUD_USE
from treeflow.core.cloud.cursor_cloud import (
    CursorCloudSpec,
    parse_cursor_cloud,
    run_cursor_cloud,
    selects_cursor_cloud,
)
from treeflow.core.events import AgentWaiting
from treeflow.core.kinds.agent_keys import AGENT_SHAPE, CLI_ONLY_KEYS, LOCAL_AGENT_KEYS
from treeflow.core.model import StepStatus
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_reader import SpecReader
from treeflow.core.worktree_writes import UnsafeWrite

_KEYS = LOCAL_AGENT_KEYS
_USE_KEYS = CLI_ONLY_KEYS
_REPORTS = ("status", "exit")


@dataclass(frozen=True)
class ExitAgentSpec:
    """`agent: {command, report: exit, prompt?, heartbeat?}`: a program whose exit code is its end."""

    command: str
    prompt: str | None = None
    heartbeat_s: float | None = None


Spec = AgentSpec | UseAgentSpec | ExitAgentSpec | CursorCloudSpec


class AgentKind:
    key = "agent"
    summary = "a coding-agent job"
    doc = (
        "A coding agent's job: an agent CLI named by `use:` (Claude Code, Codex, …), a Cursor Cloud "
        "Agent (`use: cursor-cloud`), any program whose exit code says how it ended (`command:` with "
        "`report: exit`), or an agent speaking treeflow's status-file protocol (`command:`)."
    )
    shape = AGENT_SHAPE

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> Spec | None:
        # Cursor Cloud Agents: an agent on Cursor's machines, with keys and a runner of its own.
        if selects_cursor_cloud(block):
            return parse_cursor_cloud(block, reader, what)
        fields = reader.mapping(block, f"{what}: agent", _KEYS)
        if fields is None:
            return None
        text: dict[str, str | None] = {
            key: reader.command(fields[key], f"{what}: agent.{key}") if key in fields else None
            for key in ("use", "prompt", "command", "report", "model", "program")
        }
        heartbeat = reader.optional(
            fields, "heartbeat", lambda n: reader.duration(n, f"{what}: agent.heartbeat")
        )
        if "use" in fields:
            return self._parse_use(block, fields, reader, what, text, heartbeat)
        for key in _USE_KEYS:
            if key in fields:
                reader.error(fields[key], f"{what}: agent.{key} is for an agent named by `use:`")
        report = text["report"] or "status"
        if report not in _REPORTS:
            reader.error(fields["report"], f"{what}: agent.report must be status or exit, not `{report}`")
            return None
        if report == "exit":
            if "command" not in fields:
                reader.error(block, f"{what}: agent with `report: exit` needs a `command:`")
            if text["command"] is None:
                return None
            return ExitAgentSpec(text["command"], text["prompt"], heartbeat)
        if "prompt" not in fields:
            reader.error(block, f"{what}: agent needs a `prompt:`")
        if text["prompt"] is None:
            return None
        return AgentSpec(
            prompt=text["prompt"], command=text["command"], heartbeat_s=heartbeat or DEFAULT_HEARTBEAT_S
        )

    def _parse_use(
        self,
        block: yaml.Node,
        fields: dict[str, yaml.Node],
        reader: SpecReader,
        what: str,
        text: dict[str, str | None],
        heartbeat: float | None,
    ) -> UseAgentSpec | None:
        use = text["use"]
        valid = True
        if use is not None and use not in agents.ADAPTERS:
            known = ", ".join([*agents.ADAPTERS, CLOUD_USE])
            reader.error(fields["use"], f"{what}: agent.use: no agent `{use}` (known: {known})")
            valid = False
        for key in ("command", "report"):
            if key in fields:
                reader.error(fields[key], f"{what}: agent.{key} cannot go with `use:`, which runs the agent")
                valid = False
        if "prompt" not in fields:
            reader.error(block, f"{what}: agent needs a `prompt:`")
        arguments = reader.optional(
            fields, "args", lambda n: [value for value, _ in reader.string_list(n, f"{what}: agent.args")]
        )
        env = reader.optional(fields, "env", lambda n: reader.env(n, f"{what}: agent.env"))
        permissions = Permissions.EDIT
        if "permissions" in fields:
            given = reader.command(fields["permissions"], f"{what}: agent.permissions")
            if given not in tuple(Permissions):
                if given is not None:
                    reader.error(fields["permissions"], f"{what}: agent.permissions must be edit or full")
                valid = False
            else:
                permissions = Permissions(given)
        prompt = text["prompt"]
        if not valid or use is None or prompt is None:
            return None
        return UseAgentSpec(
            use=use,
            prompt=prompt,
            model=text["model"],
            args=tuple(arguments or ()),
            env=env or {},
            permissions=permissions,
            program=text["program"],
            heartbeat_s=heartbeat or DEFAULT_CLI_HEARTBEAT_S,
        )

    async def run(self, spec: Spec, attempt: Attempt) -> StepOutcome:
        match spec:
            case UseAgentSpec():
                return await agents.adapter_for(spec.use).run(spec, attempt)
            case CursorCloudSpec():
                return await run_cursor_cloud(spec, attempt)
            case ExitAgentSpec():
                return await _run_to_exit(spec, attempt)
            case AgentSpec():
                return await _follow_status(spec, attempt)


async def _run_to_exit(spec: ExitAgentSpec, attempt: Attempt) -> StepOutcome:
    """The command's exit code is the outcome; with a heartbeat, no output for that long fails it."""
    extra_env = {"TREEFLOW_PROMPT": spec.prompt} if spec.prompt is not None else {}
    if spec.heartbeat_s is None:
        try:
            exit_code = await attempt.run_command(spec.command, extra_env=extra_env)
        except OSError as exc:
            return StepOutcome(StepStatus.FAILED, error=f"could not start the command: {exc}")
        return StepOutcome.of_exit(exit_code)
    heartbeat = spec.heartbeat_s
    last_output = time.monotonic()

    def on_line(line: str) -> None:
        nonlocal last_output
        last_output = time.monotonic()
        attempt.output(line)

    outcome: StepOutcome | None = None
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:

            async def watch_output() -> None:
                await wait_for_silence(lambda: last_output, heartbeat)
                scope.cancel()

            group.start_soon(watch_output)
            try:
                outcome = StepOutcome.of_exit(
                    await attempt.run_command(spec.command, on_line=on_line, extra_env=extra_env)
                )
            except OSError as exc:
                outcome = StepOutcome(StepStatus.FAILED, error=f"could not start the command: {exc}")
            group.cancel_scope.cancel()
    if outcome is None:
        return StepOutcome(
            StepStatus.FAILED, error=f"the agent stopped reporting: no output for {heartbeat:g}s"
        )
    return outcome


async def _follow_status(spec: AgentSpec, attempt: Attempt) -> StepOutcome:
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
