"""opencode (`opencode`): `opencode run --format json`.

Its stream (packages/opencode/src/cli/cmd/run.ts): each event is `{type, timestamp, sessionID, …}`:
`step_start`; `text` with a `part` whose `text` is a finished piece of the answer; `tool_use` with
a `part` (`tool`, `state`: `status` completed or error, `input`, `output`, `error`); `step_finish`
with a `part` holding the step's `tokens` (`input`, `output`, `reasoning`, `cache`) and `cost`;
`error` with an `error` (`name`, `data.message`). It ends when the session is idle, exit code 1
after an error. A permission it would ask for is refused, unless `--auto` approves it.
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
    result_block,
    text_of,
)
from treeflow.core.agents.cli_agent import CliAgent


class Opencode(CliAgent):
    use = "opencode"
    title = "opencode"
    program = "opencode"
    install = "npm install -g opencode-ai"

    def arguments(self, request: CliRequest) -> list[str]:
        arguments = ["run", "--format", "json"]
        if request.permissions is Permissions.FULL:
            arguments.append("--auto")
        if request.model:
            arguments += ["--model", request.model]
        if request.resume_session:
            arguments += ["--session", request.resume_session]
        return [*arguments, *request.args, request.prompt]

    def reader(self) -> StreamReader:
        return OpencodeReader()


class OpencodeReader(StreamReader):
    def transcript(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        self.read(event, tally)
        kind = event.get("type")
        part = event.get("part") or {}
        if kind == "text" and text_of(part.get("text")):
            return [part["text"].strip()]  # the agent writes Markdown itself
        if kind == "tool_use":
            # One event per call, once it has ended: the call and what it returned together.
            state = part.get("state") or {}
            failed = state.get("status") == "error"
            output = state.get("error") if failed else state.get("output")
            return [
                call_block(describe_call(str(part.get("tool")), state.get("input"))),
                result_block(output if isinstance(output, str) else "", failed),
            ]
        if kind == "error" and tally.error is not None:
            return [error_block(tally.error)]
        return []

    def read(self, event: Mapping[str, Any], tally: AgentTally) -> list[str]:
        tally.session_id = text_of(event.get("sessionID")) or tally.session_id
        kind = event.get("type")
        part = event.get("part") or {}
        if kind == "text" and text_of(part.get("text")):
            tally.message = part["text"]
            tally.action = None
            return [first_line(part["text"], 200)]
        if kind == "tool_use":
            state = part.get("state") or {}
            tally.action = describe_call(str(part.get("tool")), state.get("input"))
            if state.get("status") == "error":
                return [f"→ {tally.action} failed: {first_line(str(state.get('error')), 200)}"]
            return [f"→ {tally.action}"]
        if kind == "step_finish":
            tally.count_turn()
            tokens = part.get("tokens") or {}
            cache = tokens.get("cache") or {}
            read = (number_of(tokens.get("input")) or 0) + (number_of(cache.get("read")) or 0)
            tally.input_tokens = (tally.input_tokens or 0) + read
            tally.output_tokens = (tally.output_tokens or 0) + (number_of(tokens.get("output")) or 0)
            cost = part.get("cost")
            if isinstance(cost, int | float) and not isinstance(cost, bool):
                tally.cost_usd = (tally.cost_usd or 0.0) + float(cost)
        elif kind == "error":
            error = event.get("error") or {}
            data = error.get("data") or {}
            tally.error = text_of(data.get("message")) or text_of(error.get("name")) or "error"
            return [f"error: {first_line(tally.error, 200)}"]
        return []

    def finish(self, tally: AgentTally, exit_code: int) -> FinalResult | None:
        # The stream has no closing event of its own: the exit code and any error tell the end.
        if tally.error is not None:
            return FinalResult(ok=False, text=tally.error)
        if exit_code == 0:
            return FinalResult(ok=True, text=tally.message)
        return None
