"""`treeflow.agentTranscript`: an agent CLI step's log rendered by its adapter as Markdown."""

from __future__ import annotations

from pathlib import Path

import anyio

from treeflow.core.agents import ADAPTERS
from treeflow.core.agents.cli_agent import CliAgent
from treeflow.core.agents.transcript import render_transcript
from treeflow.lsp.protocol import AgentTranscript, RunPayload
from treeflow.quoting import quoted

LOG_LIMIT = 8 * 1024 * 1024
"""Bytes of a log read at most, from its end: a flood of events must not fill the editor's memory."""


class TranscriptError(ValueError):
    """The step has no transcript; the message says why."""


async def agent_transcript(run: RunPayload, step_id: str) -> AgentTranscript:
    step = run.steps.get(step_id)
    if step is None:
        raise TranscriptError(f"run {run.run_id} has no step {quoted(step_id)}")
    adapter = ADAPTERS.get(step.agent.cli) if step.agent is not None else None
    if not isinstance(adapter, CliAgent):
        raise TranscriptError(f"step {quoted(step_id)} of run {run.run_id} is not an agent CLI step")
    log = "" if step.log is None else await anyio.to_thread.run_sync(_read_tail, Path(step.log))
    return AgentTranscript(markdown=render_transcript(adapter, step_id, log))


def _read_tail(path: Path) -> str:
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            file.seek(max(0, size - LOG_LIMIT))
            data = file.read()
    except FileNotFoundError:
        return ""
    if size > LOG_LIMIT:
        # The first line is cut; so are the invocations before it.
        data = data.split(b"\n", 1)[-1]
    return data.decode("utf-8", errors="replace")
