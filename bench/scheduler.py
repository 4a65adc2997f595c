"""Scheduling overhead: treeflow against `make -j` and `doit -n` on the same graph of no-op steps.

In a throwaway git repository this generates a workflow of N steps that each run `true`
(max_parallel 8), a Makefile of N phony targets whose recipe is `@true` and a `dodo.py` of N doit
tasks whose action is the command `true` (no shell), runs them several times and compares the
medians of their wall-clock times. doit (a Python task runner, run with `-n N`, its default process
pool) is measured when it is installed (`pip install doit`). The headline shape has no `needs:`;
the `chains` shape (`--shape chains` or `all`) links the steps into 8 chains joined by one final
step, to show what dependency tracking adds.

Steps run with `worktree: false` unless `--worktrees` is given: make has no counterpart to a git
worktree per step, and a no-op step would measure git rather than scheduling.

Besides the CLI, treeflow is also timed in this process (`Run.execute()` under anyio with a
NullSink and the default checkout workspace) so that scheduling cost can be told apart from
interpreter start-up, imports, YAML parsing and the CLI's git workspace, which every CLI run pays;
its CPU time per step is what the in-process goal is on. The spawn floors of `spawn_floors.py`
(the same children started each way a Python program can, with nothing else) run in the same
rounds, and each goal is printed beside the floor under it, saying whether that floor blocks it.

Goals, for the headline shape: the CLI within 1.3x make's time, faster than `doit -n 8`, and at
most 0.5 ms of treeflow's CPU per step in process.

    .venv/bin/python bench/scheduler.py [--steps 1000] [--parallel 8] [--repeat 3] [--worktrees]

Exits 0 when every goal is met, 1 when one is not.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from _common import child_env, compile_treeflow, init_repo, print_header
from spawn_floors import FLOORS, POPEN_ON_LOOP, POSIX_SPAWN, TREEFLOW_WAY, Spent
from treeflow.core.events import NullSink
from treeflow.core.git import open_repository
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.runner import Run
from treeflow.core.spec import load_workflow

GOAL_RATIO = 1.3  # treeflow CLI / make
GOAL_DOIT_RATIO = 1.0  # treeflow CLI / doit: faster
GOAL_CPU_PER_STEP_MS = 0.5  # in process, treeflow's CPU per step
HEADLINE = "independent"
SHAPES = ("independent", "chains")
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Graph:
    """Step names and what each needs; both the workflow and the Makefile are written from it."""

    names: list[str]
    needs: dict[str, list[str]]
    goals: list[str]


def build_graph(shape: str, steps: int, parallel: int) -> Graph:
    width = len(str(steps - 1))
    names = [f"s{index:0{width}d}" for index in range(steps)]
    if shape == "independent" or steps == 1:
        return Graph(names, {name: [] for name in names}, names)
    # All but the last step form `parallel` chains (step i needs step i - chains); the last step
    # joins the chains, so the graph has both long dependency paths and a fan-in.
    linked = steps - 1
    chains = min(parallel, linked)
    needs: dict[str, list[str]] = {}
    for index in range(linked):
        needs[names[index]] = [names[index - chains]] if index >= chains else []
    needs[names[-1]] = [names[index] for index in range(linked - chains, linked)]
    return Graph(names, needs, [names[-1]])


def workflow_text(graph: Graph, parallel: int, worktrees: bool) -> str:
    lines = ["version: 1", "name: scheduler-bench", f"max_parallel: {parallel}"]
    if not worktrees:
        lines += ["defaults:", "  worktree: false"]
    lines.append("steps:")
    for name in graph.names:
        lines.append(f"  {name}:")
        lines.append('    run: "true"')
        if graph.needs[name]:
            lines.append(f"    needs: [{', '.join(graph.needs[name])}]")
    return "\n".join(lines) + "\n"


def makefile_text(graph: Graph) -> str:
    lines = [f".PHONY: all {' '.join(graph.names)}", f"all: {' '.join(graph.goals)}"]
    for name in graph.names:
        lines.append(f"{name}: {' '.join(graph.needs[name])}".rstrip())
        lines.append("\t@true")
    return "\n".join(lines) + "\n"


def dodo_text(graph: Graph) -> str:
    lines = [f"DOIT_CONFIG = {{'default_tasks': {graph.goals!r}, 'verbosity': 0}}", ""]
    for name in graph.names:
        lines += [
            f"def task_{name}():",
            f"    return {{'actions': [['true']], 'task_dep': {graph.needs[name]!r}, 'verbosity': 0}}",
            "",
        ]
    return "\n".join(lines)


def doit_available() -> bool:
    return importlib.util.find_spec("doit") is not None


def time_doit(repo: Path, parallel: int) -> float:
    command = [sys.executable, "-m", "doit", "-n", str(parallel), "-f", str(repo / "dodo.py")]
    started = time.perf_counter()
    subprocess.run(
        [*command, "--db-file", str(repo.parent / f"{repo.name}.doit.db")],
        cwd=repo,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT_S,
    )
    return time.perf_counter() - started


def treeflow_command() -> list[str]:
    script = Path(sys.executable).parent / "treeflow"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "treeflow.cli"]


def time_make(repo: Path, parallel: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["make", f"-j{parallel}", "-s", "-C", str(repo)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=RUN_TIMEOUT_S,
    )
    return time.perf_counter() - started


def time_cli(repo: Path, workflow: Path, steps: int) -> float:
    command = [*treeflow_command(), "run", str(workflow), "--json", "--repo", str(repo)]
    # Worktrees go under the temporary folder rather than the user's cache, so cleanup is complete.
    env = {**child_env(), "TREEFLOW_WORKTREE_ROOT": str(repo.parent / "worktrees")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, timeout=RUN_TIMEOUT_S, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"treeflow exited {done.returncode}: {stderr}")
    result = json.loads(done.stdout)
    succeeded = sum(1 for step in result["steps"].values() if step["status"] == "succeeded")
    if result["status"] != "succeeded" or succeeded != steps:
        raise RuntimeError(f"treeflow run {result['status']}: {succeeded} of {steps} steps succeeded")
    return elapsed


def time_startup(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=RUN_TIMEOUT_S)
    return time.perf_counter() - started


@dataclass(frozen=True)
class InProcess:
    parse_s: float
    execute_s: float
    cpu_s: float  # CPU time of this process alone during execute(), children excluded


async def _in_process(repo_dir: Path, workflow_path: Path, steps: int) -> InProcess:
    repo = await open_repository(repo_dir)
    started = time.perf_counter()
    workflow = load_workflow(workflow_path)
    parsed = time.perf_counter()
    cpu_before = time.process_time()
    with anyio.fail_after(RUN_TIMEOUT_S):
        result = await Run(workflow, repo, NullSink()).execute()
    cpu_s = time.process_time() - cpu_before
    executed = time.perf_counter()
    succeeded = sum(1 for step in result.steps.values() if step.status is StepStatus.SUCCEEDED)
    if result.status is not RunStatus.SUCCEEDED or succeeded != steps:
        raise RuntimeError(f"in-process run {result.status}: {succeeded} of {steps} steps succeeded")
    return InProcess(parsed - started, executed - parsed, cpu_s)


@dataclass
class Samples:
    make: list[float] = field(default_factory=list)
    doit: list[float] = field(default_factory=list)
    cli: list[float] = field(default_factory=list)
    parse: list[float] = field(default_factory=list)
    execute: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    interpreter: list[float] = field(default_factory=list)
    floors: dict[str, list[Spent]] = field(default_factory=lambda: {floor.key: [] for floor in FLOORS})


def measure(
    shape: str, root: Path, steps: int, parallel: int, repeat: int, warmup: int, worktrees: bool
) -> Samples:
    repo = root / shape
    repo.mkdir()
    init_repo(repo)
    graph = build_graph(shape, steps, parallel)
    workflow = repo / "workflow.yml"
    workflow.write_text(workflow_text(graph, parallel, worktrees))
    (repo / "Makefile").write_text(makefile_text(graph))
    (repo / "dodo.py").write_text(dodo_text(graph))
    with_doit = doit_available()

    def in_process() -> InProcess:
        return anyio.run(_in_process, repo, workflow, steps)

    samples = Samples()
    # Rounds interleave the contenders, so that a burst of load from a neighbour hits all of them
    # rather than whichever happened to be running.
    for round_no in range(warmup + repeat):
        make_s = time_make(repo, parallel)
        doit_s = time_doit(repo, parallel) if with_doit else None
        cli_s = time_cli(repo, workflow, steps)
        inside = in_process()
        # Interpreter start-up plus every import `treeflow run` does, with nothing run.
        startup_s = time_startup("import treeflow.cli, treeflow.cli.commands")
        interpreter_s = time_startup("pass")
        floors = {floor.key: floor.measure(steps, parallel) for floor in FLOORS}
        # Each run leaves a log folder with one file per step; dropping them keeps later runs from
        # paying for an ever larger directory.
        shutil.rmtree(repo / ".git" / "treeflow", ignore_errors=True)
        if round_no < warmup:
            continue
        samples.make.append(make_s)
        if doit_s is not None:
            samples.doit.append(doit_s)
        samples.cli.append(cli_s)
        samples.parse.append(inside.parse_s)
        samples.execute.append(inside.execute_s)
        samples.cpu.append(inside.cpu_s)
        samples.startup.append(startup_s)
        samples.interpreter.append(interpreter_s)
        for key, spent in floors.items():
            samples.floors[key].append(spent)
    return samples


def _series(values: list[float]) -> str:
    return " ".join(f"{value:.3f}" for value in values)


@dataclass(frozen=True)
class Goal:
    """One goal as measured: its verdict, and the floor under it when something sets one."""

    name: str
    met: bool
    # Whether a floor measured in the same run already misses the goal with no treeflow code in it.
    blocked: bool = False

    @property
    def verdict(self) -> str:
        if self.met:
            return "PASS"
        return "BLOCKED" if self.blocked else "FAIL"


def _median_floor(samples: Samples, key: str) -> tuple[float, float | None]:
    """The median wall time of a spawn floor, and its median CPU time where it has one."""
    spent = samples.floors[key]
    cpus = [sample.cpu_s for sample in spent if sample.cpu_s is not None]
    return statistics.median(sample.wall_s for sample in spent), statistics.median(cpus) if cpus else None


def report(shape: str, samples: Samples, steps: int, parallel: int) -> list[Goal]:
    med = statistics.median
    make_s, cli_s = med(samples.make), med(samples.cli)
    startup_s, parse_s, execute_s = med(samples.startup), med(samples.parse), med(samples.execute)
    cpu_s = med(samples.cpu)
    # Derived from medians, so only indicative: what the CLI does beyond the parts timed on their own.
    rest_s = cli_s - startup_s - parse_s - execute_s
    print(f"-- {shape}: {steps} steps, max_parallel {parallel} (median of {len(samples.make)} rounds)")
    print(f"   {'':42} {'median':>8} {'per step':>10}   samples (s)")
    rows: list[tuple[str, float, list[float] | None, bool]] = [
        (f"make -j{parallel} -s", make_s, samples.make, True),
        *([(f"doit -n {parallel}", med(samples.doit), samples.doit, True)] if samples.doit else []),
        ("treeflow run --json (CLI)", cli_s, samples.cli, True),
        ("  interpreter start-up + imports", startup_s, samples.startup, False),
        ("  load_workflow (YAML parse)", parse_s, samples.parse, False),
        ("  Run.execute() in-process", execute_s, samples.execute, True),
        ("    CPU of the treeflow process in it", cpu_s, samples.cpu, True),
        ("  rest (git workspace, JSON, exit)", rest_s, None, False),
        ("floor: python -c pass", med(samples.interpreter), samples.interpreter, False),
    ]
    for label, value, series, per_step in rows:
        each = f"{value / steps * 1e3:8.3f}ms" if per_step else ""
        print(f"   {label:42} {value:7.3f}s {each:>10}   {_series(series) if series else '(derived)'}")
    print(f"   spawn floors: {steps} x `true`, at most {parallel} at once {'':6} {'CPU/child':>10}")
    for floor in FLOORS:
        wall_s, floor_cpu_s = _median_floor(samples, floor.key)
        cpu = f"{floor_cpu_s / steps * 1e3:8.3f}ms" if floor_cpu_s is not None else f"{'-':>10}"
        series = _series([spent.wall_s for spent in samples.floors[floor.key]])
        print(f"   {'floor: ' + floor.label:42} {wall_s:7.3f}s {cpu}   {series}")
    print(f"   ratio in-process execute / make           : {execute_s / make_s:.2f}")

    goals: list[Goal] = []
    ratio = cli_s / make_s
    print(f"   goal: CLI / make <= {GOAL_RATIO:.2f}                  : {ratio:.2f}")
    # The least any Python command pays: its interpreter, and its children started the cheapest way.
    python_floor_s = med(samples.interpreter) + _median_floor(samples, POSIX_SPAWN.key)[0]
    make_blocked = python_floor_s > GOAL_RATIO * make_s
    print(
        f"         floor: python -c pass + children by posix_spawn = {python_floor_s:.3f}s, "
        f"{python_floor_s / make_s:.2f} x make: "
        + ("the floor alone misses the goal: BLOCKED by it" if make_blocked else "does not block the goal")
    )
    goals.append(
        Goal(
            f"treeflow CLI / make = {ratio:.2f} (goal <= {GOAL_RATIO:.2f})", ratio <= GOAL_RATIO, make_blocked
        )
    )

    # What any treeflow CLI pays before scheduling, plus its children started the way it starts
    # them with nothing else: if that alone is slower than doit, no scheduler code can win.
    spawn_s, spawn_cpu_s = _median_floor(samples, TREEFLOW_WAY.key)
    cli_floor_s = startup_s + parse_s + spawn_s
    if samples.doit:
        doit_s = med(samples.doit)
        doit_ratio = cli_s / doit_s
        blocked = cli_floor_s >= doit_s
        print(
            f"   goal: CLI faster than doit -n {parallel}            : "
            f"{doit_ratio:.2f} x doit ({cli_s:.3f}s vs {doit_s:.3f}s)"
        )
        print(
            f"         floor: start-up + imports + YAML + children started as treeflow does = "
            f"{cli_floor_s:.3f}s, {cli_floor_s / doit_s:.2f} x doit: "
            + ("the floor alone is slower than doit: BLOCKED by it" if blocked else "does not block the goal")
        )
        goals.append(
            Goal(
                f"treeflow CLI / doit = {doit_ratio:.2f} (goal < {GOAL_DOIT_RATIO:.0f})",
                doit_ratio < GOAL_DOIT_RATIO,
                blocked,
            )
        )
    else:
        print("   goal: CLI faster than doit                : doit not installed (`pip install doit`)")

    cpu_ms = cpu_s / steps * 1e3
    assert spawn_cpu_s is not None
    floor_cpu_ms = spawn_cpu_s / steps * 1e3
    blocked = floor_cpu_ms >= GOAL_CPU_PER_STEP_MS
    print(f"   goal: in-process CPU per step <= {GOAL_CPU_PER_STEP_MS} ms     : {cpu_ms:.3f} ms")
    print(
        f"         floor: CPU per child started as treeflow does = {floor_cpu_ms:.3f} ms: "
        + (
            "at or above the goal: BLOCKED by it"
            if blocked
            else f"leaves {GOAL_CPU_PER_STEP_MS - floor_cpu_ms:.3f} ms for the rest"
        )
    )
    loop_s, loop_cpu_s = _median_floor(samples, POPEN_ON_LOOP.key)
    if loop_cpu_s is not None:
        # The path that costs less CPU holds the event loop through every exec, which on a loaded
        # machine makes a run several times slower (see the README).
        print(
            f"         (children started on the event loop instead: {loop_cpu_s / steps * 1e3:.3f} ms of "
            f"CPU each, {loop_s:.3f}s of wall time against {spawn_s:.3f}s)"
        )
    goals.append(
        Goal(
            f"in-process CPU per step = {cpu_ms:.3f} ms (goal <= {GOAL_CPU_PER_STEP_MS} ms)",
            cpu_ms <= GOAL_CPU_PER_STEP_MS,
            blocked,
        )
    )
    print()
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=1000, help="steps in the workflow (default 1000)")
    parser.add_argument("--parallel", type=int, default=8, help="max_parallel and make -j (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument(
        "--shape",
        choices=(*SHAPES, "all"),
        default=HEADLINE,
        help=f"graph to run (default {HEADLINE}, which the verdict is on; `all` adds chains)",
    )
    parser.add_argument(
        "--worktrees",
        action="store_true",
        help="give every step its own git worktree (slow: use with --steps 50 or so)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1 or args.parallel < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--steps, --parallel and --repeat must be at least 1, --warmup at least 0")
    if shutil.which("make") is None:
        parser.error("make is not installed")
    shapes = SHAPES if args.shape == "all" else (args.shape,)

    compile_treeflow()
    print_header(
        "treeflow scheduler benchmark",
        [
            f"steps    : {args.steps} x `true`, max_parallel {args.parallel}, shapes {', '.join(shapes)}, "
            f"worktree per step: {'yes' if args.worktrees else 'no'}",
            f"rounds   : {args.warmup} warm-up + {args.repeat} measured, interleaved; medians compared",
            f"treeflow : {' '.join(treeflow_command())}",
        ],
    )
    goals: dict[str, list[Goal]] = {}
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-") as tmp:
        for shape in shapes:
            samples = measure(
                shape, Path(tmp), args.steps, args.parallel, args.repeat, args.warmup, args.worktrees
            )
            goals[shape] = report(shape, samples, args.steps, args.parallel)

    verdict_shape = HEADLINE if HEADLINE in goals else shapes[0]
    for goal in goals[verdict_shape]:
        print(f"{goal.verdict}: {goal.name}, {args.steps} {verdict_shape} steps")
    return 0 if all(goal.met for goal in goals[verdict_shape]) else 1


if __name__ == "__main__":
    sys.exit(main())
