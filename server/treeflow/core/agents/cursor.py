"""Cursor CLI (`cursor-agent`): `cursor-agent -p --output-format stream-json --force`.

Its stream (cursor.com/docs/cli/reference/output-format): a `system` event (subtype `init`) with
`session_id` and `model`; `user` and `assistant` events (`message.content`: text blocks, one event
per complete message); `tool_call` events, subtype `started` then `completed`, whose `tool_call`
holds one entry such as `readToolCall`, `writeToolCall`, `editToolCall`, `shellToolCall` or
`function` with its `args` (and, when completed, its `result`); and a final `result` event
(`subtype` `success`, `is_error`, `result`, `session_id`, `duration_ms`). On failure it writes its
message to stderr and exits non-zero without a `result`. It reports neither tokens nor cost.
Without `--force` its edits are only proposed, never made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treeflow.core.agents.base import (
    AgentTally,
    CliRequest,
    FinalResult,
    StreamReader,
    call_block,
    describe_call,
    first_line,
    prompt_block,
    result_block,
    text_of,
)
from treeflow.core.agents.cli_agent import CliAgent

_TOOL_NAMES = {
    "readToolCall": "Read",
    "writeToolCall": "Write",
    "editToolCall": "Edit",
    "deleteToolCall": "Delete",
    "shellToolCall": "Shell",
    "grepToolCall": "Grep",
    "globToolCall": "Glob",
    "lsToolCall": "List",
}


class Cursor(CliAgent):
    use = "cursor"
    title = "Cursor CLI"
    program = "cursor-agent"
    install = "curl https://cursor.com/install -fsS | bash"

    def arguments(self, request: CliRequest) -> list[str]:
        # Both permission levels need --force: without it the CLI only proposes its edits.
        arguments = ["-p", "--output-format", "stream-json", "--force"]
        if request.model:
            arguments += ["--model", request.model]
        if request.resume_session:
            arguments += ["--resume", request.resume_session]
        return [*arguments, *request.args, request.prompt]

    def reader(self) -> StreamReader:
        return CursorReader()


class CursorReader(StreamReader):
    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        self.read(event, tally)
        kind = event.get("type")
        if kind in ("assistant", "user"):
            content = event["message"].get("content") or []
            texts = [
                block["text"].strip()
                for block in content
                if block.get("type") == "text" and text_of(block.get("text"))
            ]
            if kind == "user":
                return [prompt_block("\n".join(texts))] if texts else []
            return texts  # the agent writes Markdown itself
        if kind == "tool_call":
            blocks = []
            for key, call in (event.get("tool_call") or {}).items():
                if event.get("subtype") == "started":
                    blocks.append(call_block(describe_call(*_named_call(key, call))))
                elif event.get("subtype") == "completed":
                    blocks.append(_result(call.get("result")))
            return blocks
        return []

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        tally.session_id = text_of(event.get("session_id")) or tally.session_id
        kind = event.get("type")
        if kind == "assistant":
            texts = [
                block["text"]
                for block in (event["message"].get("content") or [])
                if block.get("type") == "text" and text_of(block.get("text"))
            ]
            if texts:
                tally.count_turn()
                tally.message = "\n".join(texts)
                tally.action = None
                return [first_line(tally.message, 200)]
        elif kind == "tool_call" and event.get("subtype") == "started":
            for key, call in (event.get("tool_call") or {}).items():
                tally.action = describe_call(*_named_call(key, call))
                return [f"→ {tally.action}"]
        elif kind == "result":
            failed = bool(event.get("is_error")) or event.get("subtype") != "success"
            tally.final = FinalResult(ok=not failed, text=text_of(event.get("result")))
            tally.action = None
        return []


def _named_call(key: str, call: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None]:
    """The tool's name and its arguments, from one entry of an event's `tool_call`."""
    if key == "function":
        return str(call.get("name")), None
    return _TOOL_NAMES.get(key, key.removesuffix("ToolCall")), call.get("args")


def _result(result: object) -> str:
    """A completed call's `result`: `{success: {…}}`, or another single key saying it did not succeed.
    What it holds differs by tool: a read's `content` is shown as it is, other fields one per line."""
    if not isinstance(result, Mapping) or not result:
        return result_block("")
    outcome, details = next(iter(result.items()))
    failed = outcome != "success"
    if isinstance(details, Mapping):
        content = details.get("content")
        if isinstance(content, str):
            return result_block(content, failed)
        fields = [
            f"{name}: {value}" for name, value in details.items() if isinstance(value, str | int | float)
        ]
        return result_block("\n".join(fields), failed, None if outcome == "success" else outcome)
    return result_block(str(details) if details is not None else "", failed, outcome if failed else None)
