"""Agent completion: how soon treeflow notices a final status.json, and what idle agents cost.

Latency. A stand-in agent, a separate process, replaces `.treeflow/status.json` with a final state
after a seeded random delay and stamps CLOCK_MONOTONIC (shared by all processes) right after
`os.replace`; the engine runs in this process with a sink that stamps `StepFinished`. The figure is
the difference. An agent preempted between the replace and reading the clock stamps late, so a
trial can come out a fraction of a millisecond low, even below zero. Variants:

- events (inotify, the default watcher), agent started outside treeflow: one workflow run per trial,
  sequentially, so trials do not disturb each other;
- events, agent as the step's `agent.command`, which exits right after its report: the step also
  waits for that exit, so status read and `StepFinished` are shown apart;
- polling (`TREEFLOW_WATCH=poll`, the default PollPolicy): trials run concurrently as independent
  steps of one run, since a sleeping poller's latency does not depend on the CPU. `idle` trials
  report after the interval has had time to grow to its cap (the steady state of a quiet agent);
  `busy` trials report while it is still growing;
- a fixed 1 s polling loop in this process (stat every second, read on change): the baseline that
  adaptive polling and file events replace; it runs alongside the polling trials.

Idle cost. N agents (default 16) each write one `running` status and then stay quiet (heartbeat
1h). Once the polling interval has reached its cap, wake-ups are counted over a window: the
watcher's own counter, event-loop iterations (the whole process: everything that woke it) and
voluntary context switches of all its threads. The baseline is N in-process loops stat-ing a
file every 100 ms, out of step as independent agents would be, measured the same way; a second
row starts them all in step, to show what one shared tick costs the process. A window with
nothing running shows this script's own share of the counts.

Steps run in a plain folder each (a minimal Workspace below) rather than a git worktree: setting
up worktrees would only slow the trials down and has no bearing on how a status file is noticed.

    .venv/bin/python bench/detect.py [--trials 30] [--poll-trials 30] [--agents 16] [--window 5]

Exits 0 when every goal is met, 1 when one is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio

from _common import init_repo, percentile, print_header
from treeflow.core.agent import AgentSpec, AgentStatus, read_status, report, write_task
from treeflow.core.events import AgentWaiting, Event, StepFinished, StepProgress
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import Repository, open_repository
from treeflow.core.model import RunResult, RunStatus, Step, StepStatus
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import parse_workflow
from treeflow.core.watch import FileWatcher, PollPolicy, process_watcher
from treeflow.core.workspace import StepPlace, Warn

GOAL_EVENTS_P50_S = 0.025
GOAL_EVENTS_P95_S = 0.060
GOAL_EVENTS_IDLE_PER_S = 1.0
GOAL_POLL_P95_OVER_CAP = 1.10
GOAL_POLL_IDLE_FACTOR = 5.0
BASELINE_LATENCY_INTERVAL_S = 1.0
BASELINE_IDLE_INTERVAL_S = 0.1
RUN_TIMEOUT_S = 120.0
FINAL = "final"
RUNNING = "running"

# The stand-in agent. It runs as its own small script so that its start-up stays cheap (it is
# also launched once per trial as an `agent.command`) and it imports nothing from treeflow: what
# it writes is exactly what the protocol says, not what treeflow's own helpers happen to write.
AGENT_SCRIPT = '''\
"""serve: read JSON requests from stdin, one a line, and answer each from its own thread;
once DELAY: report `succeeded` for the task in TREEFLOW_TASK_FILE after DELAY seconds, then exit."""
import json
import os
import sys
import threading
import time


def replace_status(task_file, state, message, due):
    with open(task_file, encoding="utf-8") as handle:
        task = json.load(handle)
    status_file = task["status_file"]
    body = {"protocol": 1, "nonce": task["nonce"], "state": state, "message": message}
    temporary = f"{status_file}.{os.getpid()}.{threading.get_ident()}.tmp"
    time.sleep(max(0.0, due - time.monotonic()))
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(body) + "\\n")
    os.replace(temporary, status_file)
    replaced_at = time.monotonic()
    stamp_file = os.path.join(os.path.dirname(os.path.dirname(status_file)), f"replaced-{state}")
    with open(stamp_file + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(repr(replaced_at))
    os.replace(stamp_file + ".tmp", stamp_file)


def serve():
    threads = []
    for line in sys.stdin:
        request = json.loads(line)
        due = time.monotonic() + request["delay"]
        thread = threading.Thread(
            target=replace_status, args=(request["task"], request["state"], request["message"], due)
        )
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


if sys.argv[1] == "serve":
    serve()
else:
    due = time.monotonic() + float(sys.argv[2])
    replace_status(os.environ["TREEFLOW_TASK_FILE"], "succeeded", "final", due)
'''


class CountingLoop(asyncio.SelectorEventLoop):
    """Counts its iterations: each one follows a wake-up of the process's main thread."""

    iterations = 0

    def _run_once(self) -> None:
        self.iterations += 1
        super()._run_once()  # type: ignore[misc]


def loop_iterations() -> int:
    return cast(CountingLoop, asyncio.get_running_loop()).iterations


def run_counted(function: Callable[..., Any], *args: Any) -> Any:
    return anyio.run(function, *args, backend_options={"loop_factory": CountingLoop})


def context_switches() -> int:
    """Voluntary context switches of every thread of this process: a thread that blocks and is woken
    again counts one, whatever woke it."""
    total = 0
    for status in Path("/proc/self/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


class FolderWorkspace:
    """Each step runs in a folder of its own, so every agent has its own `.treeflow` folder."""

    def __init__(self, root: Path) -> None:
        self._root = root

    async def open(self, run: RunResult, warn: Warn) -> str | None:
        return None

    @asynccontextmanager
    async def step_place(self, run_id: str, step: Step) -> AsyncIterator[StepPlace]:
        folder = self._root / run_id / step.id
        folder.mkdir(parents=True)
        yield StepPlace(cwd=folder)

    async def close(self, run: RunResult) -> str | None:
        return None


class Agents:
    """The stand-in agent started outside treeflow: one process that answers every request."""

    def __init__(self, script: Path) -> None:
        self._process = subprocess.Popen(
            [sys.executable, str(script), "serve"], stdin=subprocess.PIPE, text=True
        )

    def request(self, task_file: Path, state: str, message: str, delay_s: float) -> None:
        assert self._process.stdin is not None
        line = {"task": str(task_file), "state": state, "message": message, "delay": delay_s}
        self._process.stdin.write(json.dumps(line) + "\n")
        self._process.stdin.flush()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


async def stamp(worktree: Path, state: str) -> float:
    """When the agent replaced the status file. It stamps right after the replace, so treeflow may
    well have finished the step before the stamp is there."""
    path = worktree / f"replaced-{state}"
    with anyio.fail_after(10):
        # Written by another process: there is no in-process event to wait for.
        while not path.exists():  # noqa: ASYNC110
            await anyio.sleep(0.005)
    return float(path.read_text())


@dataclass
class Probe:
    """The event sink: stamps the events that matter and hands waiting agents their requests."""

    on_waiting: Callable[[str, Path], None] | None = None
    expect_running: int = 0
    finished: dict[str, float] = field(default_factory=dict)
    progress: dict[tuple[str, str | None], float] = field(default_factory=dict)
    worktrees: dict[str, Path] = field(default_factory=dict)
    all_running: anyio.Event = field(default_factory=anyio.Event)

    def emit(self, event: Event) -> None:
        # Stamped first, so that what the sink does afterwards is not counted against treeflow.
        now = time.monotonic()
        if isinstance(event, StepFinished):
            self.finished[event.step_id] = now
        elif isinstance(event, StepProgress):
            self.progress.setdefault((event.step_id, event.message), now)
            running = sum(1 for _, message in self.progress if message == RUNNING)
            if self.expect_running and running >= self.expect_running:
                self.all_running.set()
        elif isinstance(event, AgentWaiting):
            self.worktrees[event.step_id] = event.worktree
            if self.on_waiting is not None:
                self.on_waiting(event.step_id, event.task_file)


def workflow_text(commands: dict[str, str | None], timeout_s: float) -> str:
    lines = ["version: 1", "name: detect-bench", f"max_parallel: {max(1, len(commands))}", "steps:"]
    for name, command in commands.items():
        lines += [
            f"  {name}:",
            f"    timeout: {timeout_s:g}s",
            "    agent:",
            "      prompt: report a final state",
            "      heartbeat: 1h",
        ]
        if command is not None:
            lines.append(f"      command: {json.dumps(command)}")
    return "\n".join(lines) + "\n"


def make_run(repo: Repository, root: Path, commands: dict[str, str | None], probe: Probe) -> Run:
    workflow = parse_workflow(workflow_text(commands, RUN_TIMEOUT_S), root / "detect.yml")
    return Run(
        workflow,
        repo,
        probe,
        RunOptions(kill_grace_s=5.0),
        LocalExecutor(FolderWorkspace(root / "places")),
    )


def check(result: RunResult, what: str) -> None:
    if result.status is not RunStatus.SUCCEEDED:
        failures = {
            name: f"{step.status.value}: {step.error}"
            for name, step in result.steps.items()
            if step.status is not StepStatus.SUCCEEDED
        }
        raise RuntimeError(f"{what}: run {result.status.value}: {failures}")


def watcher_for(mode: str) -> FileWatcher:
    """Select the watcher the way a user does, through the environment, and check that it took."""
    if mode == "poll":
        os.environ["TREEFLOW_WATCH"] = "poll"
    else:
        os.environ.pop("TREEFLOW_WATCH", None)
    watcher = process_watcher()
    if watcher.mode != mode:
        raise RuntimeError(f"asked for the {mode} watcher, got {watcher.mode}")
    return watcher


@dataclass
class Context:
    repo: Repository
    root: Path
    agents: Agents
    script: Path


@dataclass
class Latencies:
    finished: list[float] = field(default_factory=list)
    detected: list[float] = field(default_factory=list)  # to the StepProgress of the final status
    wakeups_per_trial: float = 0.0


async def sequential_trials(context: Context, delays: Sequence[float], launched: bool) -> Latencies:
    """One run per trial. With ``launched`` the agent is the step's `agent.command`; otherwise it is
    the outside agent process, asked to report once treeflow waits for it."""
    repo = await open_repository(context.repo.root)
    watcher = watcher_for("events")
    latencies = Latencies()
    wakeups_before = watcher.wakeups
    for delay in delays:
        command = None
        if launched:
            command = shlex.join([sys.executable, str(context.script), "once", f"{delay:.3f}"])

        def on_waiting(step_id: str, task_file: Path, delay: float = delay) -> None:
            context.agents.request(task_file, "succeeded", FINAL, delay)

        probe = Probe(on_waiting=None if launched else on_waiting)
        run = make_run(repo, context.root, {"t": command}, probe)
        with anyio.fail_after(RUN_TIMEOUT_S):
            result = await run.execute()
        check(result, "events trial")
        replaced_at = await stamp(context.root / "places" / result.run_id / "t", "succeeded")
        latencies.finished.append(probe.finished["t"] - replaced_at)
        latencies.detected.append(probe.progress[("t", FINAL)] - replaced_at)
    latencies.wakeups_per_trial = (watcher.wakeups - wakeups_before) / max(1, len(delays))
    return latencies


async def fixed_poll_trial(context: Context, name: str, delay: float) -> float:
    """The baseline: stat every second, read the status when the file changed."""
    folder = context.root / "baseline" / name
    task = write_task(folder, "baseline", name, AgentSpec(prompt="report a final state"))
    context.agents.request(task.task_file, "succeeded", FINAL, delay)

    def signature() -> tuple[int, int, int] | None:
        try:
            info = task.status_file.stat()
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    seen = signature()
    while True:
        await anyio.sleep(BASELINE_LATENCY_INTERVAL_S)
        current = signature()
        if current == seen:
            continue
        seen = current
        status = read_status(task.status_file, task.nonce)
        if status is not None and status.state == "succeeded":
            detected_at = time.monotonic()
            return detected_at - await stamp(folder, "succeeded")


@dataclass
class PollLatencies:
    idle: list[float]
    busy: list[float]
    fixed: list[float]


async def poll_trials(
    context: Context, idle_delays: Sequence[float], busy_delays: Sequence[float]
) -> PollLatencies:
    repo = await open_repository(context.repo.root)
    watcher_for("poll")
    delays = {f"idle{index:02d}": delay for index, delay in enumerate(idle_delays)}
    delays |= {f"busy{index:02d}": delay for index, delay in enumerate(busy_delays)}

    def on_waiting(step_id: str, task_file: Path) -> None:
        context.agents.request(task_file, "succeeded", FINAL, delays[step_id])

    probe = Probe(on_waiting=on_waiting)
    run = make_run(repo, context.root, dict.fromkeys(delays), probe)
    fixed: list[float] = []

    async def baseline(name: str, delay: float) -> None:
        fixed.append(await fixed_poll_trial(context, name, delay))

    with anyio.fail_after(RUN_TIMEOUT_S):
        async with anyio.create_task_group() as group:
            for index, delay in enumerate(idle_delays):
                group.start_soon(baseline, f"fixed{index:02d}", delay)
            result = await run.execute()
    check(result, "polling trials")

    latency = {
        name: probe.finished[name] - await stamp(probe.worktrees[name], "succeeded") for name in delays
    }
    return PollLatencies(
        idle=[value for name, value in latency.items() if name.startswith("idle")],
        busy=[value for name, value in latency.items() if name.startswith("busy")],
        fixed=fixed,
    )


@dataclass(frozen=True)
class Counters:
    at: float
    watcher: int
    iterations: int
    switches: int


def counters(watcher_wakeups: int) -> Counters:
    return Counters(time.monotonic(), watcher_wakeups, loop_iterations(), context_switches())


@dataclass(frozen=True)
class Rates:
    watcher: float
    iterations: float
    switches: float
    watcher_with_ramp: float | None = None

    @staticmethod
    def between(first: Counters, last: Counters) -> Rates:
        seconds = last.at - first.at
        return Rates(
            (last.watcher - first.watcher) / seconds,
            (last.iterations - first.iterations) / seconds,
            (last.switches - first.switches) / seconds,
        )


async def idle_agents(context: Context, mode: str, agents: int, settle_s: float, window_s: float) -> Rates:
    repo = await open_repository(context.repo.root)
    watcher = watcher_for(mode)
    tasks: dict[str, Path] = {}

    def on_waiting(step_id: str, task_file: Path) -> None:
        tasks[step_id] = task_file
        context.agents.request(task_file, "running", RUNNING, 0.0)

    probe = Probe(on_waiting=on_waiting, expect_running=agents)
    run = make_run(repo, context.root, {f"idle{index:02d}": None for index in range(agents)}, probe)
    outcome: list[RunResult] = []

    async def execute() -> None:
        outcome.append(await run.execute())

    with anyio.fail_after(RUN_TIMEOUT_S):
        async with anyio.create_task_group() as group:
            group.start_soon(execute)
            await probe.all_running.wait()
            ramp_start = counters(watcher.wakeups)
            await anyio.sleep(settle_s)
            first = counters(watcher.wakeups)
            await anyio.sleep(window_s)
            last = counters(watcher.wakeups)
            for task_file in tasks.values():
                context.agents.request(task_file, "succeeded", FINAL, 0.0)
    check(outcome[0], f"idle agents ({mode})")
    rates = Rates.between(first, last)
    with_ramp = Rates.between(ramp_start, last).watcher
    return Rates(rates.watcher, rates.iterations, rates.switches, with_ramp)


async def idle_fixed_poll(context: Context, agents: int, window_s: float, in_step: bool, seed: int) -> Rates:
    """The baseline: ``agents`` loops stat-ing a status file every 100 ms.

    Agents start at different times, so independent pollers tick out of step: each loop starts at
    a random point of the interval. With ``in_step`` they all start together instead and the event
    loop serves their timers in the same wake-ups, which shows what a shared tick would cost."""
    checks = 0
    rng = random.Random(seed)
    paths: list[Path] = []
    for index in range(agents):
        name = f"a{index:02d}"
        task = write_task(context.root / "idle-baseline" / name, "baseline", name, AgentSpec("x"))
        report(task, AgentStatus(state="running"))
        paths.append(task.status_file)

    async def poll(path: Path, offset_s: float) -> None:
        nonlocal checks
        await anyio.sleep(offset_s)
        while True:
            await anyio.sleep(BASELINE_IDLE_INTERVAL_S)
            checks += 1
            # Synchronous, like treeflow's poller: a stat is cheaper than a hop to a thread.
            os.stat(path)

    async with anyio.create_task_group() as group:
        for path in paths:
            group.start_soon(poll, path, 0.0 if in_step else rng.uniform(0.0, BASELINE_IDLE_INTERVAL_S))
        # Lets the loops fall into their rhythm before counting, as the other modes get to settle.
        await anyio.sleep(min(1.0, window_s))
        first = counters(checks)
        await anyio.sleep(window_s)
        last = counters(checks)
        group.cancel_scope.cancel()
    return Rates.between(first, last)


async def idle_nothing(window_s: float) -> Rates:
    """This script alone, waiting out a window: its own share of the counts above."""
    first = counters(0)
    await anyio.sleep(window_s)
    return Rates.between(first, counters(0))


def ramp_s(policy: PollPolicy) -> float:
    """How long a quiet file is polled before the interval reaches its cap (jitter ignored)."""
    total, interval = 0.0, policy.start_s
    while interval < policy.cap_s:
        total += interval
        interval = policy.next_interval(interval)
    return total


def latency_row(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"   {label:46} {'0':>3}"
    ms = [value * 1e3 for value in values]
    cells = [min(ms), percentile(ms, 0.5), percentile(ms, 0.95), max(ms), sum(ms) / len(ms)]
    return f"   {label:46} {len(ms):3d} " + " ".join(f"{cell:8.1f}" for cell in cells)


def idle_row(label: str, rates: Rates, watcher: bool = True) -> str:
    ramp = "" if rates.watcher_with_ramp is None else f"{rates.watcher_with_ramp:12.1f}"
    checks = f"{rates.watcher:12.1f}" if watcher else f"{'-':>12}"
    return f"   {label:36} {checks} {rates.iterations:12.1f} {rates.switches:12.1f} {ramp}".rstrip()


def verdict(passed: bool, text: str) -> bool:
    print(f"{'PASS' if passed else 'FAIL'}: {text}")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=30, help="sequential events trials per variant (30)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured events trials first (2)")
    parser.add_argument(
        "--poll-trials",
        type=int,
        default=30,
        help="concurrent polling trials per kind, and fixed 1 s trials (30)",
    )
    parser.add_argument("--agents", type=int, default=16, help="idle agents (16)")
    parser.add_argument("--window", type=float, default=5.0, help="idle counting window in seconds (5)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the report delays (1)")
    args = parser.parse_args(argv)
    if min(args.trials, args.poll_trials, args.agents) < 1 or args.warmup < 0 or args.window <= 0:
        parser.error("--trials, --poll-trials and --agents must be at least 1, --window above 0")

    policy = PollPolicy()
    ramp = ramp_s(policy)
    # Quiet long enough for the interval to reach its cap, then a few seconds more so that the
    # report lands anywhere in a capped interval.
    idle_range = (ramp + 0.5, ramp + 5.5)
    busy_range = (0.2, 1.0)
    settle = ramp + 0.5
    rng = random.Random(args.seed)
    events_delays = [rng.uniform(*busy_range) for _ in range(args.warmup + args.trials)]
    launched_delays = [rng.uniform(*busy_range) for _ in range(args.warmup + args.trials)]
    idle_delays = [rng.uniform(*idle_range) for _ in range(args.poll_trials)]
    busy_delays = [rng.uniform(*busy_range) for _ in range(args.poll_trials)]

    print_header(
        "treeflow agent completion detection benchmark",
        [
            f"latency  : {args.trials} sequential events trials per variant (+{args.warmup} warm-up), "
            f"{args.poll_trials} concurrent polling trials per kind, report delay "
            f"{busy_range[0]:g}-{busy_range[1]:g} s (idle: {idle_range[0]:.1f}-{idle_range[1]:.1f} s), "
            f"seed {args.seed}",
            f"polling  : start {policy.start_s * 1e3:g} ms, x{policy.factor:g}, cap {policy.cap_s:g} s, "
            f"jitter {policy.jitter:.0%}; cap reached after {ramp:.2f} s of quiet",
            f"idle     : {args.agents} agents, counted over {args.window:g} s after {settle:.2f} s of quiet",
        ],
    )

    saved_mode = os.environ.get("TREEFLOW_WATCH")
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-") as tmp:
        root = Path(tmp)
        repo_dir = root / "repo"
        repo_dir.mkdir()
        init_repo(repo_dir)
        script = root / "agent.py"
        script.write_text(AGENT_SCRIPT)
        agents = Agents(script)
        try:
            repo = anyio.run(open_repository, repo_dir)
            context = Context(repo, root, agents, script)
            external = run_counted(sequential_trials, context, events_delays, False)
            launched = run_counted(sequential_trials, context, launched_delays, True)
            idle_events = run_counted(idle_agents, context, "events", args.agents, settle, args.window)
            polled = run_counted(poll_trials, context, idle_delays, busy_delays)
            idle_poll = run_counted(idle_agents, context, "poll", args.agents, settle, args.window)
            idle_fixed = run_counted(idle_fixed_poll, context, args.agents, args.window, False, args.seed)
            idle_in_step = run_counted(idle_fixed_poll, context, args.agents, args.window, True, args.seed)
            idle_self = run_counted(idle_nothing, args.window)
        finally:
            agents.close()
            if saved_mode is None:
                os.environ.pop("TREEFLOW_WATCH", None)
            else:
                os.environ["TREEFLOW_WATCH"] = saved_mode

    skip = args.warmup
    events_finished = external.finished[skip:]
    print("-- latency: status.json replaced -> step finished (ms)")
    print(f"   {'':46} {'n':>3} {'min':>8} {'p50':>8} {'p95':>8} {'max':>8} {'mean':>8}")
    print(latency_row("events, agent outside treeflow", events_finished))
    print(latency_row("events, agent.command: to status read", launched.detected[skip:]))
    print(latency_row("events, agent.command: to StepFinished", launched.finished[skip:]))
    print(latency_row(f"polling, idle agent (report after {idle_range[0]:.1f}+ s)", polled.idle))
    print(latency_row("polling, busy agent (report within 1 s)", polled.busy))
    print(latency_row(f"baseline: fixed {BASELINE_LATENCY_INTERVAL_S:g} s polling", polled.fixed))
    per_trial = external.wakeups_per_trial
    print(f"   inotify wake-ups per events trial (one status write, one watch): {per_trial:.1f}")
    print()

    fixed_computed = args.agents / BASELINE_IDLE_INTERVAL_S
    print(f"-- idle: {args.agents} quiet agents, per second of a {args.window:g} s window")
    print(f"   {'':36} {'watcher':>12} {'loop iters':>12} {'ctx switch':>12} {'watcher incl':>12}")
    print(f"   {'':36} {'wake-ups':>12} {'(process)':>12} {'(threads)':>12} {'ramp-up':>12}")
    print(idle_row("nothing running (this script)", idle_self, watcher=False))
    print(idle_row("events (inotify)", idle_events))
    print(idle_row("polling (adaptive)", idle_poll))
    interval_ms = f"{BASELINE_IDLE_INTERVAL_S * 1e3:g} ms"
    print(idle_row(f"baseline: fixed {interval_ms} polling", idle_fixed))
    print(idle_row(f"fixed {interval_ms}, all in step", idle_in_step))
    print(f"   fixed {BASELINE_IDLE_INTERVAL_S * 1e3:g} ms polling, computed: {fixed_computed:.0f} checks/s")
    print()

    p50, p95 = percentile(events_finished, 0.5), percentile(events_finished, 0.95)
    poll_p95 = percentile(polled.idle, 0.95)
    fixed_rate = idle_fixed.watcher
    fewer = fixed_rate / max(idle_poll.watcher, 1e-9)
    results = [
        verdict(
            p50 < GOAL_EVENTS_P50_S and p95 < GOAL_EVENTS_P95_S,
            f"events latency p50 {p50 * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms "
            f"(goal < {GOAL_EVENTS_P50_S * 1e3:g} / {GOAL_EVENTS_P95_S * 1e3:g} ms)",
        ),
        verdict(
            max(idle_events.watcher, idle_events.iterations) < GOAL_EVENTS_IDLE_PER_S,
            f"events idle: {idle_events.watcher:.2f} watcher wake-ups/s, "
            f"{idle_events.iterations:.2f} event-loop iterations/s for the process "
            f"(goal < {GOAL_EVENTS_IDLE_PER_S:g}/s)",
        ),
        verdict(
            poll_p95 <= policy.cap_s * GOAL_POLL_P95_OVER_CAP,
            f"polling latency p95 {poll_p95 * 1e3:.0f} ms for idle agents "
            f"(goal <= {policy.cap_s * GOAL_POLL_P95_OVER_CAP * 1e3:.0f} ms, cap +10%)",
        ),
        verdict(
            idle_poll.watcher * GOAL_POLL_IDLE_FACTOR <= fixed_rate,
            f"polling idle: {idle_poll.watcher:.1f} wake-ups/s vs {fixed_rate:.1f}/s for fixed "
            f"{BASELINE_IDLE_INTERVAL_S * 1e3:g} ms polling, {fewer:.1f}x "
            f"fewer (goal >= {GOAL_POLL_IDLE_FACTOR:g}x)",
        ),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
