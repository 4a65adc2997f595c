"""Claude Code (`claude`): `claude -p --output-format stream-json --verbose`.

Its stream: a `system` event (subtype `init`) with the `session_id`; `assistant` events whose
`message.content` holds text and `tool_use` blocks, with the message's `usage`; `user` events with
the tool results; and at the end one `result` event: `subtype` (`success`, `error_max_turns`,
`error_during_execution`), `is_error`, `result` (the closing text, or the error, such as an invalid
API key), `num_turns`, `total_cost_usd`, `usage` and `session_id`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treeflow.core.agents.base import (
    AgentTally,
    CliRequest,
    FinalResult,
    Permissions,
    StreamReader,
    call_block,
    describe_call,
    first_line,
    number_of,
    result_block,
    text_of,
)
from treeflow.core.agents.cli_agent import CliAgent

_PERMISSION_MODES = {Permissions.EDIT: "acceptEdits", Permissions.FULL: "bypassPermissions"}


class Claude(CliAgent):
    use = "claude"
    title = "Claude Code"
    program = "claude"
    install = "npm install -g @anthropic-ai/claude-code"

    def arguments(self, request: CliRequest) -> list[str]:
        arguments = ["-p", "--output-format", "stream-json", "--verbose"]
        arguments += ["--permission-mode", _PERMISSION_MODES[request.permissions]]
        if request.model:
            arguments += ["--model", request.model]
        if request.resume_session:
            arguments += ["--resume", request.resume_session]
        return [*arguments, *request.args, request.prompt]

    def reader(self) -> StreamReader:
        return ClaudeReader()


class ClaudeReader(StreamReader):
    def __init__(self) -> None:
        # A message comes as one event per content block, each with the message's usage so far.
        self._usage: dict[str, tuple[int, int]] = {}

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        tally.session_id = text_of(event.get("session_id")) or tally.session_id
        kind = event.get("type")
        if kind == "assistant":
            return self._assistant(event["message"], tally)
        if kind == "result":
            return self._result(event, tally)
        return []

    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        self.read(event, tally)
        kind = event.get("type")
        content = (event.get("message") or {}).get("content") if kind in ("assistant", "user") else None
        if not isinstance(content, list):
            return []
        blocks = []
        for block in content:
            if block.get("type") == "text" and text_of(block.get("text")):
                blocks.append(block["text"].strip())  # the agent writes Markdown itself
            elif block.get("type") == "tool_use":
                blocks.append(call_block(describe_call(str(block.get("name")), block.get("input"))))
            elif block.get("type") == "tool_result":
                blocks.append(result_block(_result_text(block.get("content")), bool(block.get("is_error"))))
        return blocks

    def _assistant(self, message: Mapping[str, Any], tally: AgentTally) -> list[str]:
        message_id = str(message.get("id") or len(self._usage))
        if message_id not in self._usage:
            tally.count_turn()
        usage = message.get("usage") or {}
        self._usage[message_id] = (_input_tokens(usage), number_of(usage.get("output_tokens")) or 0)
        tally.input_tokens = sum(tokens for tokens, _ in self._usage.values())
        tally.output_tokens = sum(tokens for _, tokens in self._usage.values())
        shown = []
        for block in message.get("content") or []:
            if block.get("type") == "tool_use":
                tally.action = describe_call(str(block.get("name")), block.get("input"))
                shown.append(f"→ {tally.action}")
            elif block.get("type") == "text" and text_of(block.get("text")):
                tally.action = None
                tally.message = block["text"]
                shown.append(first_line(block["text"], 200))
        return shown

    def _result(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        tally.turns = number_of(event.get("num_turns")) or tally.turns
        cost = event.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            tally.cost_usd = float(cost)
        usage = event.get("usage")
        if isinstance(usage, Mapping):
            tally.input_tokens = _input_tokens(usage)
            tally.output_tokens = number_of(usage.get("output_tokens")) or tally.output_tokens
        failed = bool(event.get("is_error")) or event.get("subtype") != "success"
        text = text_of(event.get("result"))
        if failed and text is None:
            text = str(event.get("subtype") or "error")
        tally.final = FinalResult(ok=not failed, text=text)
        tally.action = None
        return []


def _result_text(content: object) -> str:
    """A tool result's content: a string, or a list of blocks of which the text ones are shown."""
    if isinstance(content, list):
        texts = [block.get("text") for block in content if isinstance(block, Mapping)]
        return "\n".join(text for text in texts if isinstance(text, str))
    return content if isinstance(content, str) else ""


def _input_tokens(usage: Mapping[str, Any]) -> int:
    """Every token of input the model read: new, written to the cache, read from it."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(number_of(usage.get(key)) or 0 for key in keys)
