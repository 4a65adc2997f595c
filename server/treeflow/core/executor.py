"""Where a step's attempts run: the place each step gets, and the processes started there.

The runner and the step kinds reach processes and places only through an `Executor`, so that a run
on other machines is another executor, with the scheduler and the kinds unchanged. `LocalExecutor`
runs everything on this machine: places come from a `Workspace` (git worktrees or the checkout
itself), and each command runs as a process tree in its own process group, ended as a group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import anyio

from treeflow.core.model import RunResult, Step
from treeflow.core.process import OutputLog, end_marked_processes, process_start_ticks, run_shell
from treeflow.core.watch import FileWatcher, process_watcher
from treeflow.core.workspace import StepPlace, Warn, Workspace

STEP_MARKS = ("TREEFLOW_RUN_ID", "TREEFLOW_STEP")
"""The environment variables whose values, together, tell the processes of one step of one run."""

OnProcessStart = Callable[[int, int | None], None]
"""Called with a started process group's id and its leader's start time (see `process_start_ticks`)."""

OnProcessEnd = Callable[[int, int | None], None]
"""Called with the id of a process group once no member of it is left, and its leader's exit status
(negative: the signal that killed it; None if unknown), also when the command was stopped."""


class Executor(Protocol):
    async def open(self, run: RunResult, warn: Warn) -> str | None:
        """Prepare the run as it starts and return its base commit, if it has one. Raise
        `RunRefusal` to refuse the run; any other error ends it failed before any step starts."""
        ...

    def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
        """A place for one step, cleaned up (its work saved) on exit whatever the outcome."""
        ...

    async def close(self, run: RunResult) -> str | None:
        """Finish the run as it ended (gather its work) and return the branch that holds its result,
        if any; called once, even when the run was cancelled."""
        ...

    async def run_command(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: OutputLog,
        on_line: Callable[[str], None],
        on_start: OnProcessStart,
        on_end: OnProcessEnd,
        kill_grace_s: float,
        on_error_line: Callable[[str], None] | None = None,
    ) -> int:
        """Run ``command`` in ``cwd`` as a process tree and return its exit status (negative: the
        signal that killed it). Cancelling the call ends the whole tree: SIGTERM, then SIGKILL after
        ``kill_grace_s``; processes that left it but carry the step's `STEP_MARKS` in ``env`` too.
        Output goes to ``log`` and, a line at a time, to ``on_line``; with ``on_error_line``,
        stderr lines go to it instead.

        Raises OSError when the command cannot be started.
        """
        ...

    def file_watcher(self) -> FileWatcher:
        """What notices changes to files in the places of this executor's steps."""
        ...


class AttemptLost(Exception):
    """The machine an attempt ran on went away in the middle of it (a Dask worker that died, say):
    its processes and whatever it had not sent back are gone. The runner runs the step again as a
    new attempt, which does not count against its `retry`; the message says what was lost."""


async def run_local_command(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: OutputLog,
    on_line: Callable[[str], None],
    on_start: OnProcessStart,
    on_end: OnProcessEnd,
    kill_grace_s: float,
    on_error_line: Callable[[str], None] | None = None,
) -> int:
    """`Executor.run_command` on this machine: a process tree in its own group, and on cancellation
    every process that carries the step's `STEP_MARKS` too."""

    def started(group: int) -> None:
        on_start(group, process_start_ticks(group))

    try:
        return await run_shell(
            command,
            cwd=cwd,
            env=env,
            log_file=log,
            on_line=on_line,
            on_error_line=on_error_line,
            on_start=started,
            on_end=on_end,
            kill_grace_s=kill_grace_s,
        )
    except anyio.get_cancelled_exc_class():
        # The command's group is gone by now; what its processes started in sessions of their
        # own still carries the step's marks in its environment.
        marks = {name: env[name] for name in STEP_MARKS if name in env}
        if len(marks) == len(STEP_MARKS):
            with anyio.CancelScope(shield=True):
                await end_marked_processes(marks, kill_grace_s)
        raise


class LocalExecutor:
    """Steps run on this machine, in the places ``workspace`` gives them."""

    def __init__(self, workspace: Workspace, watcher: FileWatcher | None = None) -> None:
        self.workspace = workspace
        self._watcher = watcher

    async def open(self, run: RunResult, warn: Warn) -> str | None:
        return await self.workspace.open(run, warn)

    def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
        return self.workspace.step_place(run_id, step)

    async def close(self, run: RunResult) -> str | None:
        return await self.workspace.close(run)

    async def run_command(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: OutputLog,
        on_line: Callable[[str], None],
        on_start: OnProcessStart,
        on_end: OnProcessEnd,
        kill_grace_s: float,
        on_error_line: Callable[[str], None] | None = None,
    ) -> int:
        return await run_local_command(
            command,
            cwd=cwd,
            env=env,
            log=log,
            on_line=on_line,
            on_start=on_start,
            on_end=on_end,
            kill_grace_s=kill_grace_s,
            on_error_line=on_error_line,
        )

    def file_watcher(self) -> FileWatcher:
        return self._watcher or process_watcher()
