"""The server process's life: a vanishing client, a client that stops reading, and layering."""

from __future__ import annotations

import ast
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import git
from tests.helpers import pid_alive, read_pids, wait_for_files, worktrees_left
from tests.lsp.conftest import write_workflow

SERVER = [sys.executable, "-m", "treeflow.cli", "serve", "--log-file", "/dev/null"]
CORE = Path(__file__).parents[2] / "server" / "treeflow" / "core"


def send(stream: IO[bytes], message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


@contextmanager
def started(
    workspace: Path, capabilities: dict[str, Any] | None = None, stderr: int = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process, initialized; killed at the end if it is still running."""
    with subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr) as server:
        try:
            assert server.stdin is not None
            initialize = {"capabilities": capabilities or {}, "rootUri": workspace.as_uri()}
            send(server.stdin, {"id": 1, "method": "initialize", "params": initialize})
            send(server.stdin, {"method": "initialized", "params": {}})
            yield server
        finally:
            if server.poll() is None:
                server.kill()


def run_command(server: subprocess.Popen[bytes], workflow: Path) -> None:
    assert server.stdin is not None
    send(
        server.stdin,
        {
            "id": 2,
            "method": "workspace/executeCommand",
            "params": {"command": "treeflow.run", "arguments": [{"workflow": str(workflow)}]},
        },
    )


def read_some_messages(stream: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Messages as they arrive, until the stream ends."""
    while True:
        length = 0
        while (header := stream.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        if not header:
            return
        yield json.loads(stream.read(length))


def read_messages(stream: IO[bytes]) -> list[dict[str, Any]]:
    return list(read_some_messages(stream))


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["stdin closed", "SIGTERM", "SIGHUP"])
def test_the_server_exits_and_cleans_up_when_the_client_vanishes(workspace: Path, stop: str) -> None:
    pids = workspace.parent / "pids"
    pids.mkdir()
    workflow = write_workflow(
        workspace,
        f"""\
        steps:
          tree: {{run: "echo saved > work.txt; sh -c 'sleep 60 & echo $! > {pids}/grandchild; wait'"}}
          sleeper: {{run: "echo $$ > {pids}/sleeper; exec sleep 60"}}
        """,
    )
    with started(workspace) as server:
        run_command(server, workflow)
        wait_for_files([pids / "grandchild", pids / "sleeper"])
        assert server.stdin is not None
        closed_at = time.monotonic()
        if stop == "stdin closed":
            server.stdin.close()
        else:
            server.send_signal(signal.Signals[stop])
        code = server.wait(timeout=10)
        assert time.monotonic() - closed_at < 5
        assert code == (0 if stop == "stdin closed" else 128 + signal.Signals[stop])
    assert [name for name, pid in read_pids(pids).items() if pid_alive(pid)] == []
    assert worktrees_left(workspace) == []
    branch = next(
        b for b in git(workspace, "branch", "--format=%(refname:short)").split() if b.endswith("/tree")
    )
    assert git(workspace, "show", f"{branch}:work.txt") == "saved"


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0, 0.05, 0.2])
def test_the_server_exits_quietly_when_the_client_vanishes_during_start_up(
    workspace: Path, delay_s: float
) -> None:
    # `initialized` recovers crashed runs, which starts git; the client leaves in the middle of it.
    with started(workspace, stderr=subprocess.PIPE) as server:
        assert server.stdin is not None and server.stderr is not None
        time.sleep(delay_s)
        server.stdin.close()
        assert server.wait(timeout=10) == 0
        assert "Traceback" not in server.stderr.read().decode()


@pytest.mark.slow
def test_a_run_waiting_for_its_progress_token_stops_when_the_client_vanishes(workspace: Path) -> None:
    # The client asked for work-done progress, then left without accepting the server's token.
    workflow = write_workflow(workspace, "steps:\n  s: {run: 'sleep 60'}\n")
    with started(workspace, capabilities={"window": {"workDoneProgress": True}}) as server:
        run_command(server, workflow)
        assert server.stdout is not None and server.stdin is not None
        for message in read_some_messages(server.stdout):
            if message.get("method") == "window/workDoneProgress/create":
                break
        closed_at = time.monotonic()
        server.stdin.close()
        server.wait(timeout=10)
        assert time.monotonic() - closed_at < 5
    runs = subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "runs", "--json"],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [run["status"] for run in json.loads(runs.stdout)] == ["cancelled"]


def test_shutdown_and_exit_end_the_server_with_status_0(workspace: Path) -> None:
    with started(workspace) as server:
        assert server.stdin is not None
        send(server.stdin, {"id": 3, "method": "shutdown"})
        send(server.stdin, {"method": "exit"})
        assert server.wait(timeout=10) == 0


@pytest.mark.slow
def test_shutdown_with_refused_requests_in_flight_exits_0_without_tracebacks(workspace: Path) -> None:
    with started(workspace, stderr=subprocess.PIPE) as server:
        assert server.stdin is not None and server.stdout is not None and server.stderr is not None
        for number, (command, argument) in enumerate(
            [("treeflow.getRun", {"runId": "no"}), ("treeflow.run", {})]
        ):
            params = {"command": command, "arguments": [argument]}
            send(server.stdin, {"id": 10 + number, "method": "workspace/executeCommand", "params": params})
        send(server.stdin, {"id": 3, "method": "shutdown"})
        send(server.stdin, {"method": "exit"})
        answers = {m["id"]: m for m in read_messages(server.stdout) if "id" in m and "method" not in m}
        assert server.wait(timeout=10) == 0
        stderr = server.stderr.read().decode()
    assert "no run 'no'" in answers[10]["error"]["message"]
    assert "needs `workflow`" in answers[11]["error"]["message"]
    assert "error" not in answers[3]
    assert "Traceback" not in stderr and "needs `workflow`" in stderr


def journal_statuses(repo: Path) -> list[str]:
    path = repo / ".git" / "treeflow" / "journal.db"
    if not path.exists():
        return []
    try:
        with closing(sqlite3.connect(path)) as connection:
            return [status for (status,) in connection.execute("SELECT status FROM runs")]
    except sqlite3.OperationalError:  # the server is still creating it
        return []


@pytest.mark.slow
def test_a_client_that_stops_reading_does_not_stall_runs(workspace: Path) -> None:
    # Each step prints about 1 MiB, more than the pipe to the client holds; the client reads
    # nothing until the run has ended, then finds the final state among what was sent.
    done = workspace.parent / "done"
    steps = "\n".join(
        f"  s{i}: {{run: 'head -c 1000000 /dev/zero | tr \"\\\\0\" x | fold -w 100; echo ok > {done}-{i}'}}"
        for i in range(4)
    )
    workflow = write_workflow(workspace, f"defaults: {{worktree: false}}\nsteps:\n{steps}\n")
    with started(workspace) as server:
        run_command(server, workflow)
        wait_for_files([Path(f"{done}-{i}") for i in range(4)], timeout_s=60)
        # Shutting down before the run has ended would cancel it.
        deadline = time.monotonic() + 60
        while journal_statuses(workspace) != ["succeeded"]:
            assert time.monotonic() < deadline, journal_statuses(workspace)
            time.sleep(0.05)
        assert server.stdin is not None
        send(server.stdin, {"id": 3, "method": "shutdown"})
        send(server.stdin, {"method": "exit"})
        assert server.stdout is not None
        messages = read_messages(server.stdout)
        assert server.wait(timeout=10) == 0
    finals = [
        m["params"]["run"]
        for m in messages
        if m.get("method") == "treeflow/runUpdated" and m["params"]["run"]["status"] != "running"
    ]
    assert [run["status"] for run in finals] == ["succeeded"]


def test_the_engine_does_not_import_the_language_server_library() -> None:
    for source in CORE.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root not in ("pygls", "lsprotocol"), f"{source.name} imports {name}"
                assert not name.startswith("treeflow.lsp"), f"{source.name} imports {name}"
