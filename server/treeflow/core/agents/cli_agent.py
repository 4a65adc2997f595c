"""Running an agent CLI as a step: its command line, its event stream, its final state.

The CLI runs in the step's place through the attempt (so in its own process group, its output in
the step's log as it came). Each line of its output that is a JSON object is an event for the
adapter's `StreamReader`; anything else (what the CLI prints to stderr, a line cut short by a
crash) is shown as it is and kept for the error message, and a broken JSON line is skipped. What
the stream says reaches the run at most every `PROGRESS_INTERVAL_S`, however fast the CLI writes.
No output within the heartbeat stops the CLI and fails the step.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from treeflow.core.agents.base import (
    AgentTally,
    CliRequest,
    FinalResult,
    StreamReader,
    UseAgentSpec,
    first_line,
    wait_for_silence,
)
from treeflow.core.attempt import Attempt
from treeflow.core.model import AgentUsage, StepResult, StepStatus
from treeflow.core.outcome import StepOutcome, exit_description
from treeflow.quoting import quoted

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1
LAST_MESSAGE_LIMIT = 2000  # characters of the agent's last message sent with each progress update
_TAIL_LINES = 10
# Readers take what they know from events and skip the rest; an event shaped unlike its
# documentation raises one of these, and counts as a malformed line.
_SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, IndexError)


class CliAgent:
    """An agent CLI: its name in `use:`, its program, and how it is invoked and read.

    Subclasses set the class attributes and give `arguments` and `reader`.
    """

    use = ""
    title = ""
    program = ""
    install = ""  # the command that installs it
    resumable = True  # whether `arguments` can continue an earlier session

    def arguments(self, request: CliRequest) -> list[str]:
        """The arguments after the program: headless, machine-readable output, never asking."""
        raise NotImplementedError

    def reader(self) -> StreamReader:
        """A reader for one invocation's stream."""
        raise NotImplementedError

    async def run(self, spec: UseAgentSpec, attempt: Attempt) -> StepOutcome:
        return await run_cli_agent(self, spec, attempt)


async def run_cli_agent(cli: CliAgent, spec: UseAgentSpec, attempt: Attempt) -> StepOutcome:
    env = {**attempt.env, **spec.env}
    program = spec.program or cli.program
    executable = find_program(program, attempt.cwd, env)
    if executable is None:
        return StepOutcome(StepStatus.FAILED, error=not_installed(cli, program))
    session = session_to_resume(cli, attempt.earlier)
    prompt = spec.prompt if session is None else resume_prompt(spec.prompt, attempt.earlier)
    request = CliRequest(prompt, spec.model, spec.args, spec.permissions, session)
    argv = [executable, *cli.arguments(request)]
    attempt.log.write(f"--- treeflow: {shlex.join([program, *argv[1:]])} ---\n".encode())
    if session is not None:
        attempt.output(f"treeflow: resuming {cli.title} session {session}")
    follower = _Follower(cli, attempt)
    follower.tally.session_id = session
    exit_code: int | None = None
    silent = False
    async with anyio.create_task_group() as group:
        group.start_soon(follower.pump)
        with anyio.CancelScope() as command_scope:

            async def watch_heartbeat() -> None:
                nonlocal silent
                await wait_for_silence(lambda: follower.last_line, spec.heartbeat_s)
                silent = True
                command_scope.cancel()

            group.start_soon(watch_heartbeat)
            try:
                exit_code = await attempt.run_command(
                    shlex.join(argv), on_line=follower.on_line, extra_env=spec.env
                )
            except OSError as exc:
                group.cancel_scope.cancel()
                return StepOutcome(StepStatus.FAILED, error=f"could not start {program}: {exc}")
        group.cancel_scope.cancel()
    follower.send()
    if silent or exit_code is None:
        return StepOutcome(
            StepStatus.FAILED,
            error=f"the agent stopped reporting: no output from {program} for {spec.heartbeat_s:g}s",
        )
    return follower.outcome(exit_code)


def find_program(program: str, cwd: Path, env: Mapping[str, str]) -> str | None:
    """The executable ``program`` names: a path (relative to the step's folder), or a name on PATH."""
    if "/" in program:
        path = Path(program) if Path(program).is_absolute() else cwd / program
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH", os.defpath))


def not_installed(cli: CliAgent, program: str) -> str:
    if program != cli.program:
        return f"{cli.title}: `{quoted(program)}` is not an executable file (see `program:`)"
    return (
        f"{cli.title} is not installed: no `{program}` on PATH. Install it with `{cli.install}`, "
        f"or give its path as `program:`"
    )


def session_to_resume(cli: CliAgent, earlier: StepResult | None) -> str | None:
    """The session of the step's previous try with the same CLI, if the CLI can continue it."""
    if earlier is None or earlier.agent is None or not cli.resumable or earlier.agent.cli != cli.use:
        return None
    return earlier.agent.session_id


def resume_prompt(prompt: str, earlier: StepResult | None) -> str:
    """What the agent is told when it continues its session: how the last try ended, then the task."""
    assert earlier is not None
    ended = {
        StepStatus.FAILED: "failed",
        StepStatus.TIMED_OUT: "timed out",
        StepStatus.CANCELLED: "was cancelled",
        StepStatus.INTERRUPTED: "was interrupted (treeflow itself stopped)",
    }.get(earlier.status, f"ended {earlier.status.value}")
    reason = f": {earlier.error}" if earlier.error else ""
    if earlier.branch:
        files = (
            f"This working tree starts afresh; what that attempt changed is kept on the branch "
            f"{earlier.branch}.interrupted (git log and git diff show it)."
        )
    else:
        files = "The working tree is as that attempt left it."
    return (
        f"treeflow is continuing this task. The last attempt {ended}{reason}. {files} "
        f"Look at where things stand, then finish the task:\n\n{prompt}"
    )


class _Follower:
    """Reads the CLI's output line by line and keeps the run informed."""

    def __init__(self, cli: CliAgent, attempt: Attempt) -> None:
        self.cli = cli
        self.attempt = attempt
        self.tally = AgentTally()
        self.reader = cli.reader()
        self.last_line = time.monotonic()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.malformed = 0
        self._dirty = anyio.Event()
        self._sent: tuple[AgentUsage, str | None] | None = None

    def on_line(self, line: str) -> None:
        self.last_line = time.monotonic()
        text = line.strip()
        if not text:
            return
        event = _json_object(text) if text.startswith("{") else None
        if event is None:
            if text.startswith("{"):
                self._skip(text)
            else:
                # The CLI's own words (an expired login, a crash): shown, and kept for the error.
                self.tail.append(first_line(text, 400))
                self.attempt.output(text)
            return
        try:
            shown = self.reader.read(event, self.tally)
        except _SHAPE_ERRORS:
            self._skip(text)
            return
        for shown_line in shown:
            self.attempt.output(shown_line)
        self._dirty.set()

    def _skip(self, text: str) -> None:
        self.malformed += 1
        if self.malformed == 1:
            log.warning(
                "%s: step %s: skipped a line that is not a complete event: %s",
                self.cli.title,
                self.attempt.step.id,
                quoted(text, 200),
            )

    async def pump(self) -> None:
        """Send what changed, at most every PROGRESS_INTERVAL_S."""
        while True:
            await self._dirty.wait()
            self._dirty = anyio.Event()
            self.send()
            await anyio.sleep(PROGRESS_INTERVAL_S)

    def send(self) -> None:
        tally = self.tally
        usage = AgentUsage(
            cli=self.cli.use,
            session_id=tally.session_id,
            turns=tally.turns,
            input_tokens=tally.input_tokens,
            output_tokens=tally.output_tokens,
            cost_usd=tally.cost_usd,
            action=tally.action,
            last_message=_bounded(tally.message, LAST_MESSAGE_LIMIT),
        )
        message = tally.action or (first_line(tally.message) if tally.message else None)
        # The log on disk keeps up with what the run reports, so that the transcript can be read live.
        self.attempt.log.flush()
        if (usage, message) != self._sent:
            self._sent = (usage, message)
            self.attempt.agent_progress(usage, message)

    def outcome(self, exit_code: int) -> StepOutcome:
        final: FinalResult | None = self.reader.finish(self.tally, exit_code)
        title = self.cli.title
        if final is not None and final.text:
            self.attempt.note_progress(None, first_line(final.text), final.text)
        if final is not None and final.ok:
            if exit_code == 0:
                return StepOutcome(StepStatus.SUCCEEDED, 0)
            return StepOutcome(
                StepStatus.FAILED,
                exit_code,
                f"{title} reported success but exited with {exit_description(exit_code)}",
            )
        if final is not None:
            return StepOutcome(
                StepStatus.FAILED, exit_code, f"{title} failed: {final.text or 'no reason given'}"
            )
        said = [*self.tail] or ([self.tally.error] if self.tally.error else [])
        last = "\n".join(said) if said else "(nothing but its events)"
        skipped = f"; {self.malformed} malformed lines skipped" if self.malformed else ""
        return StepOutcome(
            StepStatus.FAILED,
            exit_code,
            f"{title} ended without a result ({exit_description(exit_code)}{skipped}); it said:\n{last}",
        )


def _bounded(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _json_object(text: str) -> Mapping[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
