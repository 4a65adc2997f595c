"""`DaskExecutor`: the steps of a run on the workers of a Dask cluster, the others on this machine.

A remote step keeps its local place: its worktree and branch are made here as for any step, so
needs, the result branch, the journal and apply never learn where it ran. Each command the step
runs becomes one Dask task. The task gets the worktree's commit (the run's base goes to every
worker once, scattered; what a step starts from beyond it travels with the task as a small bundle),
runs the command in a worktree of the worker's cache repository with the variables the workflow
names, publishes its output on the run's event topic as it comes, and returns its exit status and
the commits it made as a bundle, which move the local worktree and branch forward. Later commands
of the same step go to the same worker, whose worktree still holds what the earlier ones left.

Stopping a command (cancel, fail-fast, timeout) asks the worker to end its process tree, then
waits for the task's answer so that its work is saved like a local step's. A worker that leaves
the cluster while it runs a command (the scheduler says so on its `all` topic) loses the attempt:
its task is cancelled, what it left on that machine is ended, and `AttemptLost` tells the runner
to run the step again elsewhere.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from treeflow.core.executor import (
    STEP_MARKS,
    AttemptLost,
    LocalExecutor,
    OnProcessEnd,
    OnProcessStart,
    OnRemote,
)
from treeflow.core.git import Repository, git, run_git
from treeflow.core.model import RemotePlace, RunResult, Step, Workflow
from treeflow.core.process import OutputLog
from treeflow.core.remote import worker_side
from treeflow.core.remote.bundles import (
    bundle_commit,
    bundle_commits,
    files_to_ship,
    repository_key,
    take_work,
)
from treeflow.core.remote.choice import ExecutorChoice, SchedulerUnreachable
from treeflow.core.remote.cluster import Cluster, Task, TaskLost
from treeflow.core.remote.messages import OUTPUT, STARTED, RemoteCommand, RemoteResult, ShippedFile
from treeflow.core.remote.worker_cache import session_ref
from treeflow.core.watch import FileWatcher
from treeflow.core.workspace import StepPlace, Warn

log = logging.getLogger(__name__)

OUTPUT_VARIABLE = "TREEFLOW_OUTPUT"

_CONNECT_TIMEOUT_S = 10.0
# How long, after a task's answer, the output it announced may take to arrive.
_OUTPUT_GRACE_S = 5.0
# How long a stopped command's worker may take, beyond the kill grace, to answer with its work.
_STOP_ANSWER_S = 15.0
_MAX_LINE = 64 * 1024
_IDENT = re.compile(r"(?P<name>.*?) <(?P<email>[^>]*)>")


class _Follower:
    """What arrives for one command: its output, in order, to the step's log and live display;
    where it runs; whether its worker went away."""

    def __init__(
        self, log_file: OutputLog, on_line: Callable[[str], None], on_worker: Callable[[str], None]
    ) -> None:
        self._log = log_file
        self._on_line = on_line
        self._on_worker = on_worker
        self._pending_line = b""
        self._early: dict[int, bytes] = {}
        self.received = 0
        self.received_bytes = 0
        self.worker: str | None = None
        self.arrived = anyio.Event()
        self.started = anyio.Event()
        self.lost: str | None = None
        self.lost_event = anyio.Event()

    def take(self, message: Mapping[str, Any]) -> None:
        kind = message.get("kind")
        if kind == STARTED:
            worker = str(message.get("worker"))
            if self.worker is not None and worker != self.worker:
                # Dask started it again elsewhere: the worker it ran on is gone.
                self.lose(f"Dask started it again on {worker}")
                return
            self._log.write(f"--- treeflow: on Dask worker {worker} ({message.get('host')}) ---\n".encode())
            self.ran_on(worker)
            self.started.set()
        elif kind == OUTPUT:
            self._early[int(message["seq"])] = bytes(message["data"])
            while self.received in self._early:
                self._write(self._early.pop(self.received))
                self.received += 1
            self.arrived.set()
            self.arrived = anyio.Event()

    def ran_on(self, worker: str) -> None:
        """The worker that runs the command is known (from its own message, or from its answer)."""
        if self.worker != worker:
            self.worker = worker
            self._on_worker(worker)

    def _write(self, data: bytes) -> None:
        self._log.write(data)
        self.received_bytes += len(data)
        self._pending_line += data
        *lines, self._pending_line = self._pending_line.split(b"\n")
        for line in lines:
            self._on_line(line.decode("utf-8", errors="replace"))
        if len(self._pending_line) > _MAX_LINE:
            self._on_line(self._pending_line.decode("utf-8", errors="replace"))
            self._pending_line = b""

    async def wait_for(self, pieces: int) -> int:
        """Wait (a while at most) until ``pieces`` pieces have arrived; return how many are missing."""
        with anyio.move_on_after(_OUTPUT_GRACE_S):
            while self.received < pieces:
                await self.arrived.wait()
        return max(0, pieces - self.received)

    def finish(self) -> None:
        if self._pending_line:
            self._on_line(self._pending_line.decode("utf-8", errors="replace"))
            self._pending_line = b""
        self._log.flush()

    def lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            self.lost_event.set()


@dataclass
class _Session:
    """A remote step's place: its local worktree, and the worker that holds its remote one."""

    step: Step
    place: StepPlace
    files: tuple[ShippedFile, ...] | None = None
    worker: str | None = None
    calls: set[str] = field(default_factory=set)
    name: str = field(default_factory=lambda: uuid.uuid4().hex)
    # A command went to a worker and its work has not arrived here: the worker must keep it.
    unfetched: bool = False


class DaskExecutor:
    """Steps that `ExecutorChoice.remote` picks run on the Dask cluster at ``choice.scheduler``;
    everything else, the run's places included, is ``local``'s."""

    def __init__(
        self, local: LocalExecutor, repo: Repository, workflow: Workflow, choice: ExecutorChoice
    ) -> None:
        self._local = local
        self._repo = repo
        self._workflow = workflow
        self._choice = choice
        self._client: Cluster | None = None
        self._topic = ""
        self._base: str | None = None
        self._base_bundles: dict[tuple[str, ...], bytes] = {}
        self._base_held: dict[str, Task] = {}
        self._base_lock = anyio.Lock()
        self._identity: dict[str, str] = {}
        self._repo_key = repository_key(repo)
        self._sessions: dict[Path, _Session] = {}
        self._followers: dict[str, _Follower] = {}

    async def open(self, run: RunResult, warn: Warn) -> str | None:
        address = self._choice.scheduler or ""
        try:
            with anyio.fail_after(_CONNECT_TIMEOUT_S + 5):
                self._client = await Cluster.connect(address, _CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        self._topic = f"treeflow-{run.run_id}"
        self._client.subscribe(self._topic, self._on_message)
        self._client.subscribe("all", self._on_cluster_event)
        self._base = await self._local.open(run, warn)
        self._identity = await _commit_identity(self._repo)
        return self._base

    async def close(self, run: RunResult) -> str | None:
        try:
            return await self._local.close(run)
        finally:
            with anyio.CancelScope(shield=True):
                await self._disconnect()

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.unsubscribe(self._topic)
            client.unsubscribe("all")
            for held in self._base_held.values():
                await client.cancel(held)
            with anyio.move_on_after(10):
                await client.close()
        except Exception:
            log.debug("closing the Dask client failed", exc_info=True)

    @asynccontextmanager
    async def _remote_place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
        async with self._local.step_place(run_id, step) as place:
            session = _Session(step, place)
            self._sessions[place.cwd] = session
            try:
                yield place
            finally:
                del self._sessions[place.cwd]
                with anyio.CancelScope(shield=True):
                    await self._release(session)

    def step_place(self, run_id: str, step: Step) -> AbstractAsyncContextManager[StepPlace]:
        if self._choice.remote(step):
            return self._remote_place(run_id, step)
        return self._local.step_place(run_id, step)

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
        on_remote: OnRemote | None = None,
    ) -> int:
        session = self._sessions.get(cwd)
        if session is None:
            return await self._local.run_command(
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
        # A remote command's output comes back as its log's bytes, stderr and stdout as they
        # interleaved there, so every line of it reaches `on_line`.
        return await self._run_remote(session, command, env, log, on_line, on_end, kill_grace_s, on_remote)

    def file_watcher(self) -> FileWatcher:
        return self._local.file_watcher()

    # Remote commands

    async def _run_remote(
        self,
        session: _Session,
        command: str,
        env: Mapping[str, str],
        log_file: OutputLog,
        on_line: Callable[[str], None],
        on_end: OnProcessEnd,
        kill_grace_s: float,
        on_remote: OnRemote | None,
    ) -> int:
        client = self._connected()
        place = session.place
        start = await git(place.cwd, "rev-parse", "HEAD")
        delta = await self._delta(place, start)
        if session.files is None:
            session.files = await files_to_ship(place.cwd)
        call = f"treeflow-{session.name}-{uuid.uuid4().hex[:8]}"
        request = base_request = RemoteCommand(
            repo_key=self._repo_key,
            session=session.name,
            call=call,
            topic=self._topic,
            command=command,
            start=start,
            base=self._base,
            env=self._shipped_env(session.step, env),
            local_cwd=str(place.cwd),
            kill_grace_s=kill_grace_s,
            commit_message=f"treeflow: {session.step.id}",
            identity=self._identity,
            files=session.files,
            outputs_variable=OUTPUT_VARIABLE if OUTPUT_VARIABLE in env else None,
        )
        remote = RemotePlace(self._choice.scheduler or "", session.name)
        tell = on_remote or _nobody
        # Told before the task goes, so that a coordinator that dies from here on leaves a record of
        # where to look for the work.
        tell(remote)
        follower = self._followers[call] = _Follower(
            log_file, on_line, lambda worker: tell(replace(remote, worker=worker))
        )
        session.calls.add(call)
        session.unfetched = True
        try:
            bundles: list[object] = delta
            known = await client.workers()
            worker = session.worker if session.worker in known else None
            self._note_missing_resources(session.step, known.values(), log_file)
            while True:
                future = client.submit(
                    worker_side.run_remote_command,
                    request,
                    *bundles,
                    key=request.call,
                    resources=session.step.resources.as_dask(),
                    worker=worker,
                )
                try:
                    result = await self._answer(future, follower)
                except anyio.get_cancelled_exc_class():
                    with anyio.CancelScope(shield=True):
                        await self._stop(session, future, follower, kill_grace_s, env, on_end)
                    raise
                if result is None or not result.needs_base or request.carries_base:
                    break
                # Once per worker and run: the commits the run starts from.
                worker = result.worker
                bundles = [await self._base_on(worker, result.known_bases), *delta]
                request = replace(base_request, call=f"{call}-b", carries_base=True)
                self._followers[request.call] = follower
                session.calls.add(request.call)
            if result is None:
                with anyio.CancelScope(shield=True):
                    await self._abandon(future, follower, kill_grace_s, env)
                raise AttemptLost(self._loss_report(follower, command))
            session.worker = result.worker
            follower.ran_on(result.worker)
            missing = await follower.wait_for(result.chunks)
            if missing:
                log_file.write(f"--- treeflow: {missing} pieces of output did not arrive ---\n".encode())
            await self._take(session, result, env)
            _tell_end(result, on_end)
            return result.exit_code
        finally:
            follower.finish()
            for each in (call, f"{call}-b"):
                session.calls.discard(each)
                self._followers.pop(each, None)

    async def _answer(self, future: Task, follower: _Follower) -> RemoteResult | None:
        """The task's answer, or None once its worker has gone away."""
        answer: list[RemoteResult] = []
        async with anyio.create_task_group() as group:

            async def wait_answer() -> None:
                try:
                    answer.append(await future.answer())
                except anyio.get_cancelled_exc_class():
                    raise
                except TaskLost as exc:
                    follower.lose(f"Dask dropped it: {exc}")
                except Exception as exc:
                    raise OSError(f"the Dask worker could not run it: {exc}") from exc
                group.cancel_scope.cancel()

            async def wait_lost() -> None:
                await follower.lost_event.wait()
                group.cancel_scope.cancel()

            group.start_soon(wait_answer)
            group.start_soon(wait_lost)
        return answer[0] if answer else None

    async def _stop(
        self,
        session: _Session,
        future: Task,
        follower: _Follower,
        grace_s: float,
        env: Mapping[str, str],
        on_end: OnProcessEnd,
    ) -> None:
        """End the command's process tree on its worker, then take the work it saved and tell the
        status it was stopped with, as a local command's end is told."""
        client = self._connected()
        try:
            running = await client.run_on_workers(worker_side.stop_command, future.key)
            if not any(running.values()) and not follower.started.is_set():
                # Still waiting for a worker (for resources, say): every worker now refuses it,
                # and there is no work to fetch.
                await client.cancel(future)
                session.unfetched = False
                return
            with anyio.move_on_after(grace_s + _STOP_ANSWER_S):
                result = await self._answer(future, follower)
                if result is not None:
                    await follower.wait_for(result.chunks)
                    await self._take(session, result, env)
                    _tell_end(result, on_end)
                    return
            await self._abandon(future, follower, grace_s, env)
        except Exception:
            log.debug("stopping remote command %s failed", future.key, exc_info=True)

    async def _abandon(
        self, future: Task, follower: _Follower, grace_s: float, env: Mapping[str, str]
    ) -> None:
        """Cancel the task wherever it is, and end what carries the attempt's marks on every worker."""
        client = self._connected()
        await client.cancel(future)
        await client.run_on_workers(worker_side.stop_command, future.key)
        marks = {name: env[name] for name in (*STEP_MARKS, "TREEFLOW_ATTEMPT") if name in env}
        if len(marks) > len(STEP_MARKS):
            await client.run_on_workers(worker_side.end_step_processes, marks, grace_s)

    async def _take(self, session: _Session, result: RemoteResult, env: Mapping[str, str]) -> None:
        """Bring the command's work and outputs here; only then may its worker drop them."""
        try:
            if result.error is not None:
                raise OSError(result.error)
            if result.bundle is not None:
                await take_work(self._repo, session.place.cwd, result.start, result.commit, result.bundle)
        except OSError as exc:
            raise OSError(
                f"{exc}; its work stays on Dask worker {result.worker} under {session_ref(session.name)}"
            ) from exc
        session.unfetched = False
        if result.outputs is not None and OUTPUT_VARIABLE in env:
            await anyio.to_thread.run_sync(Path(env[OUTPUT_VARIABLE]).write_bytes, result.outputs)

    async def _release(self, session: _Session) -> None:
        client = self._client
        if client is None or session.worker is None:
            return
        if session.unfetched:
            log.warning(
                "step %s: its work stays on Dask worker %s under %s",
                session.step.id,
                session.worker,
                session_ref(session.name),
            )
            return
        try:
            with anyio.move_on_after(10):
                await client.run_on_workers(
                    worker_side.release_session, self._repo_key, session.name, worker=session.worker
                )
        except Exception:
            log.debug("releasing session %s on %s failed", session.name, session.worker, exc_info=True)

    def _loss_report(self, follower: _Follower, command: str) -> str:
        where = f"Dask worker {follower.worker}" if follower.worker else "its Dask worker"
        return (
            f"{where} went away while it ran `{command}` ({follower.lost}); the processes it ran there "
            f"were ended, and any output after the {follower.received_bytes} bytes above and any work "
            "not yet sent back are lost"
        )

    # Bundles, environment, events

    async def _delta(self, place: StepPlace, start: str) -> list[object]:
        """What a worker that has the run's base needs to have ``start`` too: nothing, or a bundle of
        the commits in between (small: the work of the steps it needs)."""
        if self._base is None:
            raise OSError("the run has no base commit to send to Dask workers")
        if start == self._base or place.work_branch is None:
            return []
        return [await bundle_commits(self._repo, place.cwd, f"refs/heads/{place.work_branch}", self._base)]

    async def _base_on(self, worker: str, known: tuple[str, ...]) -> Task:
        """The run's base, held on ``worker`` for its tasks to take: bundled without what the
        ``known`` bases on its machine already hold (once per run for each such set)."""
        client = self._connected()
        async with self._base_lock:
            held = self._base_held.get(worker)
            if held is None:
                bundle = self._base_bundles.get(known)
                if bundle is None:
                    assert self._base is not None
                    bundle = self._base_bundles[known] = await bundle_commit(
                        self._repo, self._base, self._topic, known
                    )
                held = self._base_held[worker] = await client.scatter(bundle, worker)
            return held

    def _shipped_env(self, step: Step, env: Mapping[str, str]) -> dict[str, str]:
        """Only what the workflow names and what treeflow set for the command (what differs from
        this process's own environment) travel; the rest stays here, and the worker's own
        environment completes it there."""
        named = {*self._workflow.env, *step.env}
        return {name: value for name, value in env.items() if name in named or os.environ.get(name) != value}

    def _note_missing_resources(
        self, step: Step, offers: Iterable[Mapping[str, float]], log_file: OutputLog
    ) -> None:
        wanted = step.resources.as_dask()
        if not wanted:
            return
        if any(all(offer.get(name, 0) >= amount for name, amount in wanted.items()) for offer in offers):
            return
        asked = ",".join(
            f"{name}={int(amount) if amount.is_integer() else amount}" for name, amount in wanted.items()
        )
        log_file.write(
            f"--- treeflow: no Dask worker offers {asked} now; the step waits for one "
            f"(start workers with --resources {asked} or more) ---\n".encode()
        )

    def _on_message(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if isinstance(message, dict):
            follower = self._followers.get(str(message.get("call")))
            if follower is not None:
                follower.take(message)

    def _on_cluster_event(self, event: tuple[float, Any]) -> None:
        message = event[1]
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        gone = str(message.get("worker"))
        processing = {str(key) for key in message.get("processing-tasks") or ()}
        why = "the scheduler removed it" + (" as expected" if message.get("expected") else "")
        for session in self._sessions.values():
            if session.worker == gone:
                session.worker = None
                for call in session.calls:
                    self._followers[call].lose(why)
        for call in processing:
            follower = self._followers.get(call)
            if follower is not None:
                follower.worker = follower.worker or gone
                follower.lose(why)

    def _connected(self) -> Cluster:
        if self._client is None:
            raise OSError("treeflow is not connected to the Dask scheduler")
        return self._client


def _nobody(remote: RemotePlace) -> None:
    return None


def _tell_end(result: RemoteResult, on_end: OnProcessEnd) -> None:
    """A command that started on its worker ended there: its group there, and its exit status."""
    if result.group is not None:
        on_end(result.group, result.exit_code)


async def _commit_identity(repo: Repository) -> dict[str, str]:
    """The author and committer this repository's commits get, so the work made on a worker is
    signed as it would be here (treeflow's own identity when git has none)."""
    identity: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        code, out, _ = await run_git(repo.root, "var", f"GIT_{role}_IDENT")
        match = _IDENT.match(out.strip()) if code == 0 else None
        name, email = (match["name"], match["email"]) if match else ("treeflow", "treeflow@localhost")
        identity[f"GIT_{role}_NAME"] = name
        identity[f"GIT_{role}_EMAIL"] = email
    return identity
