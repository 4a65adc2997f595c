"""What the server makes of one message body before pygls structures it.

JSON-RPC 2.0 answers what it cannot take as a request with an error that carries the request's id,
or null when no id can be read: a body that is not JSON gets ParseError, a JSON value that is not a
well-formed request gets InvalidRequest. A notification or a response that is not well formed has
no one to answer, so it is dropped, with one line in the log. pygls would drop all of these, a
traceback in its log, and leave a client waiting for an answer that never comes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError

from treeflow.quoting import quoted

JSONRPC_VERSION = "2.0"

MessageId = int | str


@dataclass(frozen=True)
class Refusal:
    """A request answered with ``error`` and not handled."""

    id: MessageId | None
    error: JsonRpcException
    # What was received, cut short, for the one log line a refusal gets.
    received: str

    def response(self) -> dict[str, Any]:
        """The error response as it goes on the wire (pygls' own leaves out a null id)."""
        error = {"code": self.error.code, "message": self.error.message}
        return {"jsonrpc": JSONRPC_VERSION, "id": self.id, "error": error}


@dataclass(frozen=True)
class Dropped:
    """A notification or response that cannot be taken; ``reason`` says why, in one line."""

    reason: str


def read_envelope(body: bytes) -> dict[str, Any] | Refusal | Dropped:
    """The message in ``body`` if it is a JSON-RPC 2.0 request, notification or response."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past Python's stack
        received = quoted(body.decode("utf-8", "replace"))
        return Refusal(None, JsonRpcParseError("the message is not JSON"), received)
    if not isinstance(data, dict):
        error = JsonRpcInvalidRequest("a message must be a JSON object")
        return Refusal(None, error, shown(data))
    if _is_request(data):
        return _check_request(data)
    if data.get("jsonrpc") != JSONRPC_VERSION:
        return Dropped(f"not a JSON-RPC 2.0 message: {shown(data)}")
    if "id" in data:
        if not _is_id(data["id"]):
            return Dropped(f"response with an id that is neither a string nor an integer: {shown(data)}")
    elif not isinstance(data.get("method"), str):
        return Dropped(f"neither a request, a notification nor a response: {shown(data)}")
    return data


def _is_request(data: dict[str, Any]) -> bool:
    """Has an id and is not a response: JSON-RPC answers anything like that."""
    return "id" in data and ("method" in data or not ("result" in data or "error" in data))


def _check_request(data: dict[str, Any]) -> dict[str, Any] | Refusal:
    received = shown(data)
    if not _is_id(data["id"]):
        return Refusal(None, JsonRpcInvalidRequest("`id` must be a string or an integer"), received)
    msg_id: MessageId = data["id"]
    if data.get("jsonrpc") != JSONRPC_VERSION:
        return Refusal(msg_id, JsonRpcInvalidRequest('`jsonrpc` must be "2.0"'), received)
    if not isinstance(data.get("method"), str):
        return Refusal(msg_id, JsonRpcInvalidRequest("`method` must be a string"), received)
    return data


def _is_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def shown(data: object) -> str:
    """``data`` as JSON, cut short, for a log line."""
    try:
        return quoted(json.dumps(data, ensure_ascii=False))
    except (ValueError, RecursionError):  # an integer of thousands of digits, deep nesting
        return f"<a JSON {type(data).__name__} too large to show>"
