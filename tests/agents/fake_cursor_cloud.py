"""A fake of Cursor's Cloud Agents API (v0) on 127.0.0.1, for the tests and bench/poll.py.

It implements the endpoints treeflow calls, with the shapes Cursor documents:

- `POST /v0/agents` with `{prompt: {text}, source: {repository, ref}, model?, target?: {branchName,
  autoCreatePr}}` answers the new agent, `status: CREATING`
  (https://docs.cursor.com/background-agent/api/launch-an-agent);
- `GET /v0/agents/{id}` answers `{id, name, status, source, target: {branchName, url, prUrl?,
  autoCreatePr}, summary?, createdAt}`, status one of CREATING, RUNNING, FINISHED, ERROR, EXPIRED
  (https://docs.cursor.com/background-agent/api/agent-status);
- `POST /v0/agents/{id}/stop` answers `{id}` (the v0 reference, https://cursor.com/docs/cloud-agent/api/v0).

Requests authenticate with the key as the user name of HTTP Basic authentication, or as a Bearer
token; a wrong key gets 401 with `{error, message}`, the error shape of https://cursor.com/docs/api.

Each agent lives by the `Script` the server had when it was launched: so long CREATING, so long RUNNING, then its end. When an
agent is first seen to have ended it pushes a commit to its target branch in `source.repository`,
which in tests is the path of a local bare repository, as the real agent pushes to GitHub. Faults
queued in `status_faults` / `launch_faults` answer the next requests instead: `"429:<seconds>"`
(with Retry-After), `"500"`, `"503"`, or `"drop"` (the connection closed without an answer).
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

VALID_KEY = "key_fake_0123456789abcdef"


@dataclass
class Script:
    """How the agents of a server behave."""

    creating_s: float = 0.0
    running_s: float = 0.05
    end: str = "FINISHED"
    summary: str | None = "Added CLOUD.md"
    push: bool = True  # whether the agent pushes a commit when it ends
    file_name: str = "CLOUD.md"


@dataclass
class Agent:
    id: str
    prompt: str
    repository: str
    ref: str
    branch: str
    model: str | None
    launched_at: float
    script: Script
    stopped: bool = False
    pushed: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    at: float
    answered: int  # the status code, 0 for a dropped connection


@dataclass
class FakeCursorCloud:
    script: Script = field(default_factory=Script)
    clock: Callable[[], float] = time.monotonic
    key: str = VALID_KEY
    status_faults: list[str] = field(default_factory=list)
    launch_faults: list[str] = field(default_factory=list)
    agents: dict[str, Agent] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status_of(self, agent: Agent) -> str:
        if agent.stopped:
            return "EXPIRED"
        age = self.clock() - agent.launched_at
        if age < agent.script.creating_s:
            return "CREATING"
        if age < agent.script.creating_s + agent.script.running_s:
            return "RUNNING"
        return agent.script.end

    def requests(self, method: str, prefix: str = "/v0/agents") -> list[Seen]:
        return [seen for seen in self.seen if seen.method == method and seen.path.startswith(prefix)]

    def stops(self) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.endswith("/stop")]

    def answer(
        self, method: str, path: str, authorization: str, body: bytes
    ) -> tuple[int, dict[str, str], object]:
        """Status, extra headers and JSON body for one request; status 0 drops the connection."""
        if not self._authorized(authorization):
            return 401, {}, {"error": "Unauthorized", "message": "Invalid API key"}
        parts = path.rstrip("/").split("/")
        with self._lock:
            if method == "POST" and path == "/v0/agents":
                fault = self._fault(self.launch_faults)
                return fault or (200, {}, self._launch(json.loads(body or b"{}")))
            if len(parts) == 4 and parts[:3] == ["", "v0", "agents"] and method == "GET":
                fault = self._fault(self.status_faults)
                if fault is not None:
                    return fault
                agent = self.agents.get(parts[3])
                if agent is None:
                    return 404, {}, {"error": "Not Found", "message": "Agent not found"}
                return 200, {}, self._describe(agent)
            if len(parts) == 5 and parts[4] == "stop" and method == "POST":
                agent = self.agents.get(parts[3])
                if agent is None:
                    return 404, {}, {"error": "Not Found", "message": "Agent not found"}
                agent.stopped = True
                return 200, {}, {"id": agent.id}
        return 404, {}, {"error": "Not Found", "message": "Resource not found"}

    def _authorized(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        if scheme == "Bearer":
            return credentials == self.key
        if scheme == "Basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError:
                return False
            return decoded == f"{self.key}:"
        return False

    @staticmethod
    def _fault(queue: list[str]) -> tuple[int, dict[str, str], object] | None:
        if not queue:
            return None
        fault = queue.pop(0)
        if fault == "drop":
            return 0, {}, None
        code, _, retry_after = fault.partition(":")
        headers = {"Retry-After": retry_after} if retry_after else {}
        return (
            int(code),
            headers,
            {"error": "Too Many Requests" if code == "429" else "Internal Server Error"},
        )

    def _launch(self, body: dict[str, object]) -> object:
        prompt = body.get("prompt") or {}
        source = body.get("source") or {}
        target = body.get("target") or {}
        assert isinstance(prompt, dict) and isinstance(source, dict) and isinstance(target, dict)
        agent_id = f"bc_fake{next(self._ids)}"
        agent = Agent(
            id=agent_id,
            prompt=str(prompt.get("text", "")),
            repository=str(source["repository"]),
            ref=str(source.get("ref", "main")),
            branch=str(target.get("branchName") or f"cursor/agent-{agent_id}"),
            model=body.get("model") if isinstance(body.get("model"), str) else None,  # type: ignore[arg-type]
            launched_at=self.clock(),
            script=self.script,
        )
        self.agents[agent_id] = agent
        described = self._describe(agent)
        assert isinstance(described, dict)
        return {**described, "status": "CREATING"}

    def _describe(self, agent: Agent) -> object:
        status = self.status_of(agent)
        if status in ("FINISHED", "ERROR") and agent.script.push and not agent.pushed:
            push_commit(agent, agent.script.file_name)
            agent.pushed = True
        described: dict[str, object] = {
            "id": agent.id,
            "name": "Fake agent",
            "status": status,
            "source": {"repository": agent.repository, "ref": agent.ref},
            "target": {
                "branchName": agent.branch,
                "url": f"https://cursor.com/agents?id={agent.id}",
                "autoCreatePr": False,
            },
            "createdAt": "2026-01-01T00:00:00Z",
        }
        if status not in ("CREATING", "RUNNING") and agent.script.summary is not None:
            described["summary"] = agent.script.summary
        return described


def push_commit(agent: Agent, file_name: str) -> None:
    """Do what a Cloud Agent does with its work: commit it on its branch and push it."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        run_git(Path(scratch), "clone", "--quiet", "--branch", agent.ref, agent.repository, str(work))
        (work / file_name).write_text(f"{agent.prompt}\n")
        run_git(work, "add", file_name)
        run_git(work, "commit", "--quiet", "-m", f"Cloud agent {agent.id}")
        run_git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{agent.branch}")


def run_git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code, headers, answer = fake.answer(method, self.path, self.headers.get("Authorization", ""), body)
        fake.seen.append(Seen(method, self.path, fake.clock(), code))
        if code == 0:
            self.close_connection = True
            return
        data = json.dumps(answer).encode()
        self.send_response(code)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many followers poll at the same instant
    fake: FakeCursorCloud


@contextmanager
def serving(fake: FakeCursorCloud) -> Iterator[FakeCursorCloud]:
    """``fake`` answering on a free port of 127.0.0.1 (its ``url``) until the block ends."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
