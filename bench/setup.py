"""Dependency setup that runs only when needed: a workflow of 4 steps whose `setup.run` takes 5 s,
keyed on a lockfile (`when_changed: [deps.lock]`), run twice through the CLI.

The first run finds the worktree pool empty, so each step's setup runs; the second takes the
worktrees the first gave back, whose lockfile is unchanged and whose `deps/` folder the pool kept,
so no setup runs. Beside them: the same second run without the pool (`pool: false`, every setup
runs again), and the floor of a CLI run, a workflow of 4 steps with no setup at all, measured in
the same run.

    .venv/bin/python bench/setup.py [--setup-seconds 5] [--steps 4] [--repeat 3]

Runs are timed as their results report them (from the run's start to its end) and as processes
(with the interpreter's start and recovery, which no setup changes). Exits 0 when the second run
takes at most 10 % of the first, 1 when it does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from _common import GIT_IDENTITY, child_env, compile_treeflow, init_repo, print_header

GOAL_RATIO = 0.10
RUN_TIMEOUT_S = 300.0


def workflow(steps: int, setup_seconds: float, *, pool: bool, setup: bool) -> str:
    lines = [f"max_parallel: {steps}", "base: head"]
    lines.append("pool: {keep: [deps]}" if pool else "pool: false")
    if setup:
        lines.append(
            f'setup: {{run: "sleep {setup_seconds:g} && mkdir -p deps && cp deps.lock deps/", '
            "when_changed: [deps.lock]}"
        )
    lines.append("steps:")
    check = "test -e deps/deps.lock" if setup else "true"
    lines += [f"  s{index}: {{run: '{check}'}}" for index in range(steps)]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Timing:
    wall: float  # the `treeflow run` process, from start to exit
    run: float  # the run itself, as its result reports it (no interpreter start-up or recovery)


def timed_run(repo: Path, flow: Path) -> Timing:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "run", str(flow), "--json"],
        cwd=repo,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    elapsed = time.perf_counter() - started
    result = json.loads(done.stdout) if done.stdout else {}
    if done.returncode != 0 or result.get("status") != "succeeded":
        raise RuntimeError(f"treeflow run {flow.name}: exit {done.returncode}: {done.stdout}{done.stderr}")
    run = datetime.fromisoformat(result["ended_at"]) - datetime.fromisoformat(result["started_at"])
    return Timing(elapsed, run.total_seconds())


def make_repo(root: Path, files: int) -> None:
    root.mkdir()
    init_repo(root)
    for index in range(files):
        (root / f"file{index:04d}.txt").write_text(f"file {index}\n")
    (root / "deps.lock").write_text("left-pad 1.3.0\n")
    (root / ".gitignore").write_text("deps/\n")
    env = child_env()
    subprocess.run(["git", "add", "--all"], cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", "files"], cwd=root, env=env, check=True, capture_output=True)


def forget(repo: Path) -> None:
    """Delete the branches and logs of earlier runs (not the pool), so that each run starts alike."""
    env = child_env()
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=delete %(refname)", "refs/heads/treeflow/"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(["git", "update-ref", "--stdin"], cwd=repo, env=env, input=refs, text=True, check=True)


def clean(repo: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "treeflow.cli", "clean"],
        cwd=repo,
        env=child_env(),
        capture_output=True,
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--setup-seconds", type=float, default=5.0, help="what setup.run takes (default 5)")
    parser.add_argument("--steps", type=int, default=4, help="steps in the workflow (default 4)")
    parser.add_argument("--files", type=int, default=500, help="files in the repository (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="first/second pairs measured (default 3)")
    args = parser.parse_args(argv)
    if min(args.steps, args.repeat, args.files) < 1 or args.setup_seconds <= 0:
        parser.error("--steps, --repeat and --files must be at least 1, --setup-seconds positive")
    began = time.perf_counter()
    compile_treeflow()
    print_header(
        "treeflow setup benchmark",
        [
            f"workflow : {args.steps} steps, setup.run {args.setup_seconds:g} s keyed on deps.lock",
            f"repo     : {args.files} files; {args.repeat} first/second pairs, each after `treeflow clean`",
        ],
    )
    first: list[Timing] = []
    second: list[Timing] = []
    no_pool: list[Timing] = []
    floor: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-setup-") as tmp:
        work = Path(tmp)
        os.environ.update(GIT_IDENTITY)
        os.environ["TREEFLOW_WORKTREE_ROOT"] = str(work / "worktrees")
        repo = work / "repo"
        make_repo(repo, args.files)
        flows = {"pooled": (True, True), "unpooled": (False, True), "floor": (True, False)}
        paths = {}
        for name, (pool, setup) in flows.items():
            paths[name] = work / f"{name}.yml"
            paths[name].write_text(workflow(args.steps, args.setup_seconds, pool=pool, setup=setup))
        for _ in range(args.repeat):
            clean(repo)
            first.append(timed_run(repo, paths["pooled"]))
            forget(repo)
            second.append(timed_run(repo, paths["pooled"]))
            forget(repo)
            no_pool.append(timed_run(repo, paths["unpooled"]))
            forget(repo)
            floor.append(timed_run(repo, paths["floor"]))
            forget(repo)
        clean(repo)

    med = statistics.median
    print(f"   {'':44} {'run':>8} {'process':>8}   samples, run (s)")
    for label, values in (
        ("first run (empty pool: every setup runs)", first),
        ("second run (warm pool: no setup runs)", second),
        ("second run without the pool (pool: false)", no_pool),
        ("floor: the same steps with no setup", floor),
    ):
        runs = [value.run for value in values]
        walls = [value.wall for value in values]
        samples = " ".join(f"{value:.2f}" for value in runs)
        print(f"   {label:44} {med(runs):7.2f}s {med(walls):7.2f}s   {samples}")
    ratio = med([t.run for t in second]) / med([t.run for t in first])
    wall_ratio = med([t.wall for t in second]) / med([t.wall for t in first])
    floor_ratio = med([t.wall for t in floor]) / med([t.wall for t in first])
    print()
    print(f"   second / first, the runs                     {ratio:.3f}  (goal <= {GOAL_RATIO:.2f})")
    print(f"   second / first, the processes                {wall_ratio:.3f}")
    print(
        f"   floor / first, the processes                 {floor_ratio:.3f}  (a CLI run with no setup at all)"
    )
    passed = ratio <= GOAL_RATIO
    print()
    print(
        f"{'PASS' if passed else 'FAIL'}: the second run took {ratio:.1%} of the first "
        f"(goal <= {GOAL_RATIO:.0%}; {wall_ratio:.1%} counting the processes' start, whose floor here is "
        f"{floor_ratio:.1%}); the benchmark took {time.perf_counter() - began:.0f}s"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
