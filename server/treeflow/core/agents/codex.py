"""OpenAI Codex CLI (`codex`): `codex exec --json`.

Its stream (codex-rs/exec/src/exec_events.rs): `thread.started` with the `thread_id` (the session to
resume), `turn.started`, `item.started` / `item.updated` / `item.completed` with an `item` of a
`type` such as `agent_message`, `reasoning`, `command_execution` (`command`, `exit_code`),
`file_change` (`changes`: `path`, `kind`), `mcp_tool_call`, `web_search`, `todo_list` or `error`;
then `turn.completed` with `usage` (`input_tokens`, `cached_input_tokens`, `output_tokens`) or
`turn.failed` with an `error`; an `error` event is a stream error. It reports no cost.
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
    error_block,
    first_line,
    markdown_line,
    number_of,
    result_block,
    text_of,
)
from treeflow.core.agents.cli_agent import CliAgent

_SANDBOX = {Permissions.EDIT: ["--sandbox", "workspace-write"]}
_FULL = ["--dangerously-bypass-approvals-and-sandbox"]


class Codex(CliAgent):
    use = "codex"
    title = "Codex"
    program = "codex"
    install = "npm install -g @openai/codex"

    def arguments(self, request: CliRequest) -> list[str]:
        # `codex exec` never asks for approval; the sandbox decides what it may do.
        arguments = ["exec", "--json", *_SANDBOX.get(request.permissions, _FULL), "--skip-git-repo-check"]
        if request.model:
            arguments += ["--model", request.model]
        arguments += request.args
        if request.resume_session:
            arguments += ["resume", request.resume_session]
        return [*arguments, request.prompt]

    def reader(self) -> StreamReader:
        return CodexReader()


class CodexReader(StreamReader):
    def __init__(self) -> None:
        self._input = 0
        self._output = 0
        self._started: set[str] = set()  # items whose call the transcript has shown

    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        self.read(event, tally)
        kind = event.get("type")
        if kind in ("item.started", "item.completed"):
            item = event["item"]
            item_id = str(item.get("id"))
            blocks = []
            if item_id not in self._started and _call_of(item) is not None:
                self._started.add(item_id)
                blocks.append(call_block(str(_call_of(item))))
            if kind == "item.completed":
                blocks += _completed_item(item)
            return blocks
        if kind == "turn.failed":
            return [error_block((event.get("error") or {}).get("message"))]
        if kind == "error":
            return [error_block(event.get("message"))]
        return []

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        kind = event.get("type")
        if kind in ("thread.started", "thread.resumed"):
            tally.session_id = text_of(event.get("thread_id")) or tally.session_id
        elif kind == "turn.started":
            tally.count_turn()
        elif kind in ("item.started", "item.updated", "item.completed"):
            return _item(event["item"], kind == "item.completed", tally)
        elif kind == "turn.completed":
            usage = event.get("usage") or {}
            self._input += number_of(usage.get("input_tokens")) or 0
            self._output += number_of(usage.get("output_tokens")) or 0
            tally.input_tokens, tally.output_tokens = self._input, self._output
            tally.final = FinalResult(ok=True, text=tally.message)
            tally.action = None
        elif kind == "turn.failed":
            error = event.get("error") or {}
            tally.final = FinalResult(ok=False, text=text_of(error.get("message")) or tally.error)
        elif kind == "error":
            tally.error = text_of(event.get("message")) or tally.error
        return []


def _item(item: Mapping[str, Any], completed: bool, tally: AgentTally) -> list[str]:
    kind = item.get("type")
    if kind == "command_execution":
        command = str(item.get("command") or "")
        if not completed:
            tally.action = describe_call("command", {"command": command})
            return [f"→ {tally.action}"]
        tally.action = None
        exit_code = item.get("exit_code")
        return [f"← {first_line(command)} (exit {exit_code})"] if exit_code not in (0, None) else []
    if kind == "file_change" and completed:
        changes = item.get("changes") or []
        paths = ", ".join(f"{change.get('kind')} {change.get('path')}" for change in changes)
        tally.action = f"edited {paths}" if paths else "edited files"
        return [f"→ {tally.action}"]
    if kind == "mcp_tool_call" and not completed:
        tally.action = describe_call(f"{item.get('server')}.{item.get('tool')}", item.get("arguments"))
        return [f"→ {tally.action}"]
    if kind == "web_search" and not completed:
        tally.action = describe_call("web search", {"query": item.get("query")})
        return [f"→ {tally.action}"]
    if kind == "agent_message" and completed and text_of(item.get("text")):
        tally.action = None
        tally.message = item["text"]
        return [first_line(item["text"], 200)]
    if kind == "error" and text_of(item.get("message")):
        tally.error = item["message"]
        return [f"error: {first_line(item['message'], 200)}"]
    return []


def _call_of(item: Mapping[str, Any]) -> str | None:
    """The item as a tool call, for the items that are one."""
    kind = item.get("type")
    if kind == "command_execution":
        return describe_call("command", {"command": str(item.get("command") or "")})
    if kind == "mcp_tool_call":
        return describe_call(f"{item.get('server')}.{item.get('tool')}", item.get("arguments"))
    if kind == "web_search":
        return describe_call("web search", {"query": item.get("query")})
    if kind == "file_change":
        changes = item.get("changes") or []
        return "edit: " + (", ".join(f"{c.get('kind')} {c.get('path')}" for c in changes) or "files")
    return None


def _completed_item(item: Mapping[str, Any]) -> list[str]:
    """What a finished item adds to the transcript: what the agent said, or what a call returned."""
    kind = item.get("type")
    if kind == "agent_message" and text_of(item.get("text")):
        return [item["text"].strip()]  # the agent writes Markdown itself
    if kind == "reasoning" and text_of(item.get("text")):
        return ["\n".join(f"> {line}".rstrip() for line in item["text"].strip().splitlines())]
    if kind == "command_execution":
        exit_code = item.get("exit_code")
        failed = item.get("status") in ("failed", "declined") or exit_code not in (0, None)
        note = f"exit {exit_code}" if exit_code is not None else item.get("status")
        return [result_block(str(item.get("aggregated_output") or ""), failed, note)]
    if kind == "file_change":
        return [result_block("", failed=True)] if item.get("status") == "failed" else []
    if kind == "mcp_tool_call":
        error = item.get("error") or {}
        if text_of(error.get("message")):
            return [result_block(error["message"], failed=True)]
        result = item.get("result") or {}
        texts = [block.get("text") for block in result.get("content") or [] if isinstance(block, Mapping)]
        return [result_block("\n".join(text for text in texts if isinstance(text, str)))]
    if kind == "todo_list":
        entries = item.get("items") or []
        return [
            "\n".join(
                f"- [{'x' if e.get('completed') else ' '}] {markdown_line(str(e.get('text')))}"
                for e in entries
            )
        ]
    if kind == "error":
        return [error_block(item.get("message"))]
    return []
