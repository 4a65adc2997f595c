"""Gemini CLI (`gemini`): `gemini --output-format stream-json --prompt …`.

Its stream (packages/core/src/output/types.ts): `init` with `session_id` and `model`; `message`
events (`role`, `content`, `delta` for a piece of a longer answer); `tool_use` (`tool_name`,
`tool_id`, `parameters`); `tool_result` (`tool_id`, `status`, `output` or `error`); `error`
(`severity` warning or error, `message`: not the end by itself); and `result` with `status`
(`success` or `error`), an `error` and `stats` (`input_tokens`, `output_tokens`, …). Exit code 0 on
success, 1 on an error, 42 for bad input, 53 when the turn limit was reached. It reports no cost.
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
    number_of,
    prompt_block,
    result_block,
    text_of,
)
from treeflow.core.agents.cli_agent import CliAgent

_APPROVAL_MODES = {Permissions.EDIT: "auto_edit", Permissions.FULL: "yolo"}


class Gemini(CliAgent):
    use = "gemini"
    title = "Gemini CLI"
    program = "gemini"
    install = "npm install -g @google/gemini-cli"

    def arguments(self, request: CliRequest) -> list[str]:
        arguments = [
            "--output-format",
            "stream-json",
            "--approval-mode",
            _APPROVAL_MODES[request.permissions],
        ]
        if request.model:
            arguments += ["--model", request.model]
        if request.resume_session:
            arguments += ["--resume", request.resume_session]
        return [*arguments, *request.args, "--prompt", request.prompt]

    def reader(self) -> StreamReader:
        return GeminiReader()


class GeminiReader(StreamReader):
    def __init__(self) -> None:
        self._answer: list[str] = []
        self._answering = False
        self._held: list[str] = []  # the pieces of an answer the transcript has not shown yet

    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        self.read(event, tally)
        kind = event.get("type")
        if kind == "message":
            if event.get("role") == "assistant":
                # `delta` pieces make one answer; a message without it is whole by itself.
                shown = [] if event.get("delta") else self.transcript_end()
                self._held.append(str(event.get("content") or ""))
                return shown
            return [*self.transcript_end(), prompt_block(str(event.get("content") or ""))]
        blocks = self.transcript_end()
        if kind == "tool_use":
            blocks.append(call_block(describe_call(str(event.get("tool_name")), event.get("parameters"))))
        elif kind == "tool_result":
            error = event.get("error") or {}
            failed = event.get("status") == "error"
            output = str(error.get("message") or "") if failed else str(event.get("output") or "")
            blocks.append(result_block(output, failed))
        elif kind == "error":
            label = "Warning" if event.get("severity") == "warning" else "Error"
            blocks.append(error_block(event.get("message"), label))
        elif kind == "result" and event.get("status") == "error":
            blocks.append(error_block((event.get("error") or {}).get("message")))
        return blocks

    def transcript_end(self) -> list[str]:
        answer, self._held = "".join(self._held).strip(), []
        return [answer] if answer else []  # the agent writes Markdown itself

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        kind = event.get("type")
        if kind == "init":
            tally.session_id = text_of(event.get("session_id")) or tally.session_id
        elif kind == "message" and event.get("role") == "assistant":
            if not self._answering:
                # An answer after a tool call (or the first one) is the model's next turn.
                tally.count_turn()
                self._answering = True
                self._answer = []
            self._answer.append(str(event.get("content") or ""))
            tally.message = "".join(self._answer)
            tally.action = None
        elif kind == "tool_use":
            self._answering = False
            tally.action = describe_call(str(event.get("tool_name")), event.get("parameters"))
            return [f"→ {tally.action}"]
        elif kind == "tool_result" and event.get("status") == "error":
            error = event.get("error") or {}
            return [f"← {first_line(str(error.get('message') or 'tool failed'), 200)}"]
        elif kind == "error":
            tally.error = text_of(event.get("message")) or tally.error
            return [f"{event.get('severity') or 'error'}: {first_line(str(event.get('message')), 200)}"]
        elif kind == "result":
            stats = event.get("stats") or {}
            tally.input_tokens = number_of(stats.get("input_tokens")) or tally.input_tokens
            tally.output_tokens = number_of(stats.get("output_tokens")) or tally.output_tokens
            error = event.get("error") or {}
            ok = event.get("status") == "success"
            text = tally.message if ok else (text_of(error.get("message")) or tally.error)
            tally.final = FinalResult(ok=ok, text=text)
            tally.action = None
        if kind == "message" and self._answering and len(self._answer) == 1 and tally.message:
            return [first_line(tally.message, 200)]
        return []
