"""Helpers for engine tests: run a workflow written inline, record its events, inspect processes."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import anyio

from treeflow.core.events import Event, StepFinished, StepRetrying, StepStarted
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import open_repository
from treeflow.core.git_workspace import GitWorkspace
from treeflow.core.model import RunResult
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import parse_workflow
from treeflow.core.workspace import CheckoutWorkspace


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Event]:
        return [event for event in self.events if isinstance(event, kind)]

    def started(self, step_id: str) -> list[StepStarted]:
        return [e for e in self.events if isinstance(e, StepStarted) and e.step_id == step_id]

    def retries(self, step_id: str) -> list[StepRetrying]:
        return [e for e in self.events if isinstance(e, StepRetrying) and e.step_id == step_id]

    def finished(self) -> list[str]:
        return [e.step_id for e in self.events if isinstance(e, StepFinished)]


async def make_run(
    repo: Path,
    yaml_text: str,
    recorder: Recorder | None = None,
    *,
    worktrees: bool = False,
    workflow_path: Path | None = None,
    **options: object,
) -> Run:
    """A run of ``yaml_text``; with ``worktrees`` each step gets its own git worktree, as in the CLI.

    ``options`` are `RunOptions`, and ``watcher``, the file watcher of the run's executor.
    """
    path = workflow_path or repo / "treeflow.yml"
    path.write_text(textwrap.dedent(yaml_text))
    workflow = parse_workflow(path.read_text(), path)
    repository = await open_repository(repo)
    workspace = GitWorkspace(repository, workflow) if worktrees else CheckoutWorkspace(repository)
    watcher = options.pop("watcher", None)
    return Run(
        workflow,
        repository,
        recorder or Recorder(),
        RunOptions(**options),
        LocalExecutor(workspace, watcher),  # type: ignore[arg-type]
    )


async def run_workflow(
    repo: Path,
    yaml_text: str,
    recorder: Recorder | None = None,
    *,
    worktrees: bool = False,
    workflow_path: Path | None = None,
    **options: object,
) -> RunResult:
    run = await make_run(
        repo, yaml_text, recorder, worktrees=worktrees, workflow_path=workflow_path, **options
    )
    return await run.execute()


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[0]
    return state not in ("Z", "X")


def processes_inside(folder: Path, run_id: str | None = None) -> list[str]:
    """Live processes working in ``folder`` (their current directory is in it) or, with ``run_id``,
    carrying that run's id in their environment: each as ``pid command-line``."""
    wanted = f"TREEFLOW_RUN_ID={run_id}".encode() if run_id else None
    root = folder.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not pid_alive(int(entry.name)):
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        if cwd.is_relative_to(root) or (wanted is not None and wanted in environ):
            found.append(f"{entry.name} {command}")
    return found


def read_pids(folder: Path) -> dict[str, int]:
    return {entry.name: int(entry.read_text().split()[0]) for entry in folder.iterdir()}


def has_text(path: Path) -> bool:
    """Whether ``path`` exists and its writer has written it: a file is created empty first."""
    return path.exists() and bool(path.read_text().strip())


def wait_for_files(paths: list[Path], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(has_text(path) for path in paths):
        if time.monotonic() > deadline:
            missing = [str(path) for path in paths if not path.exists()]
            raise AssertionError(f"files never appeared: {missing}")
        time.sleep(0.02)


T = TypeVar("T")

POLL_INTERVAL_S = 0.02


def wait_until(condition: Callable[[], T], what: str, timeout_s: float = 20.0) -> T:
    """The first truthy value of ``condition()``; fails the test, naming ``what``, after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}; last seen: {value!r}")
        time.sleep(POLL_INTERVAL_S)
    return value


async def wait_until_async(condition: Callable[[], T], what: str, timeout_s: float = 20.0) -> T:
    """``wait_until`` for async tests: the loop goes on running while the condition is checked."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}; last seen: {value!r}")
        await anyio.sleep(POLL_INTERVAL_S)
    return value


def worktrees_left(repo: Path) -> list[str]:
    """The worktrees of ``repo`` besides its checkout, but for the pool's idle ones: a pooled
    worktree counts as left behind unless it is detached, locked, idle and clean."""
    listing = _git_out(repo, "worktree", "list", "--porcelain")
    left = []
    for block in listing.strip().split("\n\n"):
        lines = block.splitlines()
        path = Path(lines[0].removeprefix("worktree "))
        if path == repo:
            continue
        if (
            path.parent.name == "pool"
            and "detached" in lines
            and any(line.startswith("locked") for line in lines)
        ):
            claim = repo / ".git" / "treeflow" / "pool" / f"{path.name}.lock"
            note = json.loads(claim.read_text()) if claim.exists() else {}
            if note.get("state") == "idle" and not _git_out(path, "status", "--porcelain", "-uall"):
                continue
        left.append(str(path))
    return left


def _git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
