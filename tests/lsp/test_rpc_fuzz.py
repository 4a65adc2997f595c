"""JSON-RPC fuzzing of a real `treeflow serve`: every well-framed request gets an answer with its
id, garbage between frames costs no well-framed message after it, and the server stays up.

The client here writes raw bytes, which a real LSP client would refuse to send. A frame whose
`Content-Length` is too long takes in what follows, as the base protocol says; so the garbage
drawn here is everything else: bytes outside any frame, header parts without a usable length,
lengths too short, bodies that are not JSON, not objects, not JSON-RPC 2.0, with bad ids, params
or methods.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.lsp.conftest import write_workflow

ANSWER_WITHIN_S = 10
LONGEST_LOG_LINE = 600
INVALID_REQUEST = -32600
PARSE_ERROR = -32700


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: object) -> bytes:
    return json.dumps(message).encode()


@dataclass
class RawServer:
    """`treeflow serve` over pipes, its answers gathered by a reader thread."""

    process: subprocess.Popen[bytes]
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    ids: Iterator[int] = field(default_factory=itertools.count)
    stderr: bytearray = field(default_factory=bytearray)

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def next_id(self) -> int | str:
        number = next(self.ids)
        return number if number % 2 else f"id-{number}"

    def request(self, method: str, params: object = None) -> dict[str, Any]:
        msg_id = self.next_id()
        self.send(frame(encode({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})))
        return self.answer(msg_id)

    def answer(self, msg_id: object) -> dict[str, Any]:
        key = json.dumps(msg_id)
        deadline = time.monotonic() + ANSWER_WITHIN_S
        with self.changed:
            while key not in self.answers:
                left = deadline - time.monotonic()
                assert left > 0, f"no answer to request {key}; the server exited with {self.process.poll()}"
                self.changed.wait(left)
            return self.answers[key]

    def read_stderr(self, stderr: BinaryIO) -> None:
        # Read as it comes: a full pipe would block the server's next log line.
        while chunk := stderr.read1():  # type: ignore[attr-defined]
            self.stderr.extend(chunk)

    def read(self, stdout: BinaryIO) -> None:
        while True:
            length = None
            while (line := stdout.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not line or length is None:
                return
            message = json.loads(stdout.read(length))
            if "method" not in message:
                with self.changed:
                    self.answers[json.dumps(message.get("id"))] = message
                    self.changed.notify_all()


@contextmanager
def served(workspace: Path, log_file: Path) -> Iterator[RawServer]:
    """An initialized server with ``workspace`` as its folder; it must exit by itself at the end."""
    process = subprocess.Popen(
        [sys.executable, "-m", "treeflow.cli", "serve", "--log-file", str(log_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    server = RawServer(process)
    readers = [
        threading.Thread(target=server.read, args=(process.stdout,), daemon=True),
        threading.Thread(target=server.read_stderr, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    with process:
        try:
            folders = [{"uri": workspace.as_uri(), "name": "workspace"}]
            initialized = server.request("initialize", {"capabilities": {}, "workspaceFolders": folders})
            assert "result" in initialized
            server.send(frame(encode({"jsonrpc": "2.0", "method": "initialized", "params": {}})))
            yield server
            server.request("shutdown")
            server.send(frame(encode({"jsonrpc": "2.0", "method": "exit"})))
            assert process.wait(timeout=ANSWER_WITHIN_S) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            for reader in readers:
                reader.join(timeout=ANSWER_WITHIN_S)


def short_lines_without_traceback(text: str) -> None:
    assert "Traceback" not in text
    longest = max(text.splitlines(), key=len, default="")
    assert len(longest) <= LONGEST_LOG_LINE, longest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
methods = st.sampled_from(
    [
        "workspace/executeCommand",
        "textDocument/codeLens",
        "textDocument/didOpen",
        "textDocument/didChange",
        "textDocument/didClose",
        "workspace/didChangeWorkspaceFolders",
        "$/cancelRequest",
        "$/setTrace",
        "window/workDoneProgress/cancel",
        "shutdown",
        "initialized",
    ]
) | st.text(max_size=30).filter(lambda name: name != "exit")
commands = st.sampled_from(
    ["treeflow.run", "treeflow.cancel", "treeflow.resume", "treeflow.getRun", "treeflow.listRuns", "nope"]
)
params = (
    json_values
    | st.fixed_dictionaries({"command": commands, "arguments": st.lists(json_values, max_size=2)})
    | st.fixed_dictionaries({"textDocument": st.fixed_dictionaries({"uri": st.text(max_size=40)})})
)
# Bytes that hold no header a reader could take for the start of a frame.
garbage = st.binary(min_size=1, max_size=200).filter(lambda data: b"content-length" not in data.lower())


@dataclass(frozen=True)
class Piece:
    """Bytes to send, and the id of the request among them that must be answered, if any."""

    data: bytes
    answered_id: object = None


@st.composite
def pieces(draw: st.DrawFn, server: RawServer) -> Piece:
    kind = draw(st.integers(min_value=0, max_value=9))
    if kind <= 2:  # a well-formed request, of any method, with any params
        msg_id = server.next_id()
        message = {"jsonrpc": "2.0", "id": msg_id, "method": draw(methods), "params": draw(params)}
        return Piece(frame(encode(message)), msg_id)
    if kind == 3:  # a request of a JSON-RPC version that is not 2.0, or of none
        msg_id = server.next_id()
        message = {"id": msg_id, "method": draw(methods), "params": draw(params)}
        version = draw(st.none() | json_values.filter(lambda value: value != "2.0"))
        if version is not None:
            message["jsonrpc"] = version
        return Piece(frame(encode(message)), msg_id)
    if kind == 4:  # a notification
        message = {"jsonrpc": "2.0", "method": draw(methods), "params": draw(params)}
        return Piece(frame(encode(message)))
    if kind == 5:  # a well-framed body that is no message: not JSON, not an object, a bad id
        body = draw(
            st.binary(max_size=100)
            | json_values.filter(lambda value: not isinstance(value, dict)).map(encode)
            | json_values.map(lambda value: encode({"jsonrpc": "2.0", "id": [value], "method": "x"}))
            | st.just(b"[" * 100_000)
        )
        return Piece(frame(body))
    if kind == 6:  # bytes between frames
        return Piece(draw(garbage))
    if kind == 7:  # a header part without a usable Content-Length, then its body
        header = draw(
            st.sampled_from(
                [
                    b"Content-Type: application/vscode-jsonrpc\r\n",
                    b"Content-Length: abc\r\n",
                    b"Content-Length: -4\r\n",
                    b"Content-Length: 12x\r\n",
                    b"Content-Length: 1234567890123456789012\r\n",
                    b"Content-Length:\r\n",
                    b"",
                ]
            )
        )
        return Piece(header + b"\r\n" + encode({"jsonrpc": "2.0", "id": "lost", "method": "shutdown"}))
    # A Content-Length too short: the rest of the body runs into what follows.
    body = encode({"jsonrpc": "2.0", "method": draw(methods), "params": draw(params)})
    cut = draw(st.integers(min_value=0, max_value=len(body) - 1))
    return Piece(b"Content-Length: %d\r\n\r\n" % cut + body)


def test_the_server_answers_every_well_framed_request_and_stays_up(workspace: Path, tmp_path: Path) -> None:
    write_workflow(workspace, "steps:\n  a: {run: 'true'}\n")
    log_file = tmp_path / "server.log"
    with served(workspace, log_file) as server:

        @settings(
            max_examples=int(os.environ.get("TREEFLOW_FUZZ_EXAMPLES", "60")),
            deadline=None,
            derandomize="TREEFLOW_FUZZ_EXAMPLES" not in os.environ,
            database=None,
            # Each failing example costs a wait for an answer that never comes: report it unshrunk.
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.data())
        def any_frames(data: st.DataObject) -> None:
            sent = data.draw(st.lists(pieces(server), min_size=1, max_size=6))
            server.send(b"".join(piece.data for piece in sent))
            for piece in sent:
                if piece.answered_id is not None:
                    assert server.answer(piece.answered_id)["id"] == piece.answered_id
            # Whatever came before, a good request right after is read and answered.
            assert "error" in server.request("treeflow/no-such-method")

        any_frames()
    short_lines_without_traceback(server.stderr.decode())
    short_lines_without_traceback(log_file.read_text())


def test_garbage_between_frames_costs_no_message_after_it(workspace: Path, tmp_path: Path) -> None:
    with served(workspace, tmp_path / "server.log") as server:
        body = encode({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        server.send(b"\x00\xffnoise" + b"Content-Length: 3\r\n\r\n" + body + b"Content-Type: x\r\n\r\n{}")
        assert "error" in server.request("treeflow/no-such-method")


def test_bodies_that_are_no_request_get_the_json_rpc_errors(workspace: Path, tmp_path: Path) -> None:
    with served(workspace, tmp_path / "server.log") as server:
        server.send(frame(b"{not json"))
        assert server.answer(None)["error"]["code"] == PARSE_ERROR
        del server.answers["null"]
        server.send(frame(b"[1, 2]"))
        assert server.answer(None)["error"]["code"] == INVALID_REQUEST
        server.send(frame(encode({"jsonrpc": "1.0", "id": 7, "method": "shutdown"})))
        assert server.answer(7)["error"]["code"] == INVALID_REQUEST


def test_a_refused_request_logs_one_short_line(workspace: Path, tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    huge = "SECRET" * 200_000
    with served(workspace, log_file) as server:
        answer = server.request("textDocument/codeLens", {"textDocument": 5, "huge": huge})
        assert answer["error"]["code"] == -32602
        answer = server.request("workspace/executeCommand", {"command": "treeflow.run", "arguments": [huge]})
        assert answer["error"]["code"] == -32602
        answer = server.request(huge)
        assert answer["error"]["code"] == -32601
    short_lines_without_traceback(server.stderr.decode())
    logged = log_file.read_text()
    short_lines_without_traceback(logged)
    assert logged.count("request refused") == 3
    assert "SECRETSECRET" in logged  # the input, quoted: cut short, but there
