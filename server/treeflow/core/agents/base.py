"""What every `agent: {use: …}` step shares: its spec, the adapter seam, and what a CLI's stream tells.

An adapter is one entry of the table in `treeflow.core.agents`, keyed by its `use:` value. A local
CLI's adapter (`CliAgent`) only knows its command line and how to read its event stream; running
it, the heartbeat, live progress and the final state are `session.run_cli_agent`'s. An agent that
is not a local process (a cloud agent) is an adapter with its own `run`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import anyio

from treeflow.core.attempt import Attempt
from treeflow.core.outcome import StepOutcome

DEFAULT_CLI_HEARTBEAT_S = 600.0
"""An agent CLI is silent while a tool it called runs (a test suite, a build): the default allows
ten minutes of that."""


class Permissions(StrEnum):
    """What the agent may do without asking, since nobody is there to answer."""

    EDIT = "edit"  # change files in its worktree; commands only as far as the CLI allows unasked
    FULL = "full"  # anything, commands included, without asking


@dataclass(frozen=True)
class UseAgentSpec:
    """`agent: {use: NAME, prompt, model?, args?, env?, permissions?, program?, heartbeat?}`."""

    use: str
    prompt: str
    model: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    permissions: Permissions = Permissions.EDIT
    program: str | None = None  # the executable, when not the CLI's usual name on PATH
    heartbeat_s: float = DEFAULT_CLI_HEARTBEAT_S


class AgentAdapter(Protocol):
    """One `use:` value: how a step of that agent runs."""

    use: str
    title: str  # "Claude Code"

    async def run(self, spec: UseAgentSpec, attempt: Attempt) -> StepOutcome: ...


@dataclass(frozen=True)
class CliRequest:
    """What one invocation of an agent CLI asks of it."""

    prompt: str
    model: str | None
    args: tuple[str, ...]
    permissions: Permissions
    resume_session: str | None = None


@dataclass(frozen=True)
class FinalResult:
    """How the agent said its work ended: ``ok``, and its closing words or why it failed."""

    ok: bool
    text: str | None


@dataclass(slots=True)
class AgentTally:
    """What an agent's stream has said so far, changed in place as events are read."""

    session_id: str | None = None
    turns: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    action: str | None = None  # what it is doing now: a tool call, a file edited, a command run
    message: str | None = None  # the last thing it said
    error: str | None = None  # the last error it reported that did not end it by itself
    final: FinalResult | None = None

    def count_turn(self) -> None:
        self.turns = (self.turns or 0) + 1


class StreamReader:
    """Reads one invocation's events (JSON objects, one per line) into an `AgentTally`.

    ``read`` returns the lines worth showing a person for the event (a tool call, what the agent
    said); ``finish`` gives the final state once the process has exited.
    """

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        raise NotImplementedError

    def finish(self, tally: AgentTally, exit_code: int) -> FinalResult | None:
        return tally.final

    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        """The event as Markdown blocks for a person reading the whole session afterwards; reads
        it into ``tally`` as ``read`` does. By default the lines ``read`` shows, one per block."""
        return [markdown_line(line) for line in self.read(event, tally)]

    def transcript_end(self) -> list[str]:
        """Markdown blocks still held back when the stream ends (an answer that came in pieces)."""
        return []


def markdown_line(text: str) -> str:
    """``text`` as one Markdown paragraph that shows its characters as they are."""
    escaped = "".join("\\" + char if char in _MARKDOWN_SPECIAL else char for char in text)
    return escaped.replace("\n", "  \n")


_MARKDOWN_SPECIAL = frozenset("\\`*_[]<>#+-|~")


def fenced(text: str, language: str = "") -> str:
    """``text`` in a fenced code block whose fence no line of it can close."""
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def call_block(call: str) -> str:
    """A tool call (as `describe_call` puts it) as a Markdown block of its own."""
    return f"**→ {markdown_line(call)}**"


def result_block(output: str, failed: bool = False, note: str | None = None) -> str:
    """What a tool call returned, fenced; ``note`` (``exit 1``) goes beside the heading."""
    heading = "Result"
    details = [note] if note else []
    if failed:
        details.append("error")
    if details:
        heading += f" ({', '.join(details)})"
    return f"{heading}:\n\n" + fenced(output) if output.strip() else f"{heading}: _nothing_"


def error_block(message: object, label: str = "Error") -> str:
    """An error the agent's CLI reported, as a paragraph of its own."""
    text = message if isinstance(message, str) and message.strip() else "no message"
    return f"**{label}:** {markdown_line(text.strip())}"


def prompt_block(text: str) -> str:
    """The prompt the agent was given, quoted."""
    lines = text.strip().splitlines() or [""]
    return "**Prompt:**\n\n" + "\n".join(f"> {markdown_line(line)}".rstrip() for line in lines)


def text_of(value: object) -> str | None:
    """``value`` if it is a string with something in it."""
    return value if isinstance(value, str) and value.strip() else None


def number_of(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def first_line(text: str, limit: int = 120) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def describe_call(tool: str, arguments: Mapping[str, Any] | None) -> str:
    """``Bash: pytest -q``, ``Edit: src/app.py``: a tool call as one short line, its most telling
    argument (a command, a path, a pattern, a URL) after its name."""
    if arguments:
        for key in _TELLING_ARGUMENTS:
            value = arguments.get(key)
            if isinstance(value, str) and value.strip():
                return f"{tool}: {first_line(value)}"
    return tool


_TELLING_ARGUMENTS = (
    "command",
    "cmd",
    "file_path",
    "filePath",
    "path",
    "absolute_path",
    "notebook_path",
    "pattern",
    "query",
    "url",
    "description",
)


async def wait_for_silence(last_heard: Callable[[], float], limit_s: float) -> None:
    """Return once nothing was heard for ``limit_s`` (``last_heard``: a `time.monotonic` time)."""
    while True:
        remaining = last_heard() + limit_s - time.monotonic()
        if remaining <= 0:
            return
        await anyio.sleep(remaining)
