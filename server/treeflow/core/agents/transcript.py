"""An agent step's log as Markdown a person can read: what the agent said, the tools it called and
what they returned, and its totals, instead of the CLI's raw JSON stream.

The log holds, for each invocation of the CLI, a `--- treeflow: <command> ---` line and then what
the CLI wrote. Each invocation is read afresh with the adapter's own `StreamReader`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from treeflow.core.agents.base import AgentTally, StreamReader, fenced, markdown_line
from treeflow.core.agents.cli_agent import CliAgent

_HEADER_START = "--- treeflow: "
_HEADER_END = " ---"


def render_transcript(cli: CliAgent, step_id: str, log: str) -> str:
    """The Markdown transcript of ``log``, the log of step ``step_id`` whose agent is ``cli``."""
    parts = [f"# {markdown_line(step_id)}: {cli.title}"]
    invocations = list(_invocations(log))
    for number, (command, lines) in enumerate(invocations, 1):
        if len(invocations) > 1:
            parts.append(f"## Invocation {number}")
        if command:
            parts.append(fenced(command, "sh"))
        parts.extend(_session(cli.reader(), lines))
    if not invocations:
        parts.append("_The agent has written nothing yet._")
    return "\n\n".join(parts) + "\n"


def _invocations(log: str) -> Iterator[tuple[str | None, list[str]]]:
    command: str | None = None
    lines: list[str] = []
    for line in log.splitlines():
        if line.startswith(_HEADER_START) and line.endswith(_HEADER_END):
            if command is not None or lines:
                yield command, lines
            command, lines = line[len(_HEADER_START) : -len(_HEADER_END)], []
        else:
            lines.append(line)
    if command is not None or any(line.strip() for line in lines):
        yield command, lines


def _session(reader: StreamReader, lines: list[str]) -> list[str]:
    tally = AgentTally()
    parts: list[str] = []
    said: list[str] = []  # the CLI's own lines that are not events, shown together
    skipped = 0

    def flush_said() -> None:
        if said:
            parts.append(fenced("\n".join(said)))
            said.clear()

    for line in lines:
        text = line.strip()
        if not text:
            continue
        event = _json_object(text) if text.startswith("{") else None
        if event is None and not text.startswith("{"):
            said.append(line)
            continue
        flush_said()
        try:
            parts.extend(reader.transcript(event or {}, tally) if event is not None else ())
        except (AttributeError, KeyError, TypeError, ValueError, IndexError):
            event = None
        if event is None:
            skipped += 1
    flush_said()
    parts.extend(reader.transcript_end())
    if skipped:
        parts.append(f"_{skipped} line(s) that were not complete events were skipped._")
    parts.append(_totals(tally))
    return parts


def _totals(tally: AgentTally) -> str:
    facts = []
    if tally.turns is not None:
        facts.append(f"{tally.turns} turn" + ("" if tally.turns == 1 else "s"))
    if tally.input_tokens is not None or tally.output_tokens is not None:
        facts.append(f"{tally.input_tokens or 0:,} tokens in, {tally.output_tokens or 0:,} out")
    if tally.cost_usd is not None:
        facts.append(f"${tally.cost_usd:.4f}")
    if tally.session_id:
        facts.append(f"session `{tally.session_id}`")
    lines = ["---", "**Totals:** " + (" · ".join(facts) if facts else "none reported")]
    if tally.final is not None:
        lines.append("**Result:** " + ("succeeded" if tally.final.ok else "failed"))
        if tally.final.text:
            lines.append(tally.final.text.strip())
    else:
        lines.append("**Result:** none reported (yet)")
    return "\n\n".join(lines)


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
