"""Cached steps: a 50-step workflow run twice through the CLI, one input file changed in between.

The repository holds 10 packages; each has 5 steps with `cache: {inputs: [...]}` on its own folders:
`gen` (its schema), `build` after `gen` and `lint` (its sources), `test` after `build` (its tests),
`docs` after `build` (its docs). Each step works for `--work` seconds (default 1) and writes a file.
The first run finds the cache empty, so every step runs; then one source file of one package is
changed and committed, and the second run must run only that package's `build` and `lint`, and
`test` and `docs`, whose need's key changed: 4 steps, the 46 others `cached`. Beside them, the floor
of the second run: the critical path of the steps it must run (two steps one after the other), and
what each cached step cost.

    .venv/bin/python bench/cache.py [--work 1] [--repeat 3] [--max-parallel N]

Each pair (first, second) starts from an empty cache (`treeflow clean --keep-days 0`). Exits 0
when the second run takes at most 15 % of the first and ran exactly the affected steps, else 1.
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
from typing import Any

from _common import GIT_IDENTITY, child_env, compile_treeflow, init_repo, print_header

GOAL_RATIO = 0.15
RUN_TIMEOUT_S = 600.0
PACKAGES = 10
CHANGED_PACKAGE = 3
AFFECTED = {f"{kind}-{CHANGED_PACKAGE}" for kind in ("build", "lint", "test", "docs")}
FOLDERS = {"schema": 5, "src": 30, "tests": 10, "docs": 5}


def workflow(work_s: float, max_parallel: int | None) -> str:
    lines = ["name: packages"]
    if max_parallel:
        lines.append(f"max_parallel: {max_parallel}")
    lines.append("steps:")
    work = f"sleep {work_s:g}"
    for index in range(PACKAGES):
        pkg = f"pkg{index}"
        steps = {
            f"gen-{index}": ("[]", f"{pkg}/schema/**", f"{pkg}/out/gen.txt"),
            f"build-{index}": (f"[gen-{index}]", f"{pkg}/src/**", f"{pkg}/out/build.txt"),
            f"lint-{index}": ("[]", f"{pkg}/src/**", f"{pkg}/out/lint.txt"),
            f"test-{index}": (f"[build-{index}]", f"{pkg}/tests/**", f"{pkg}/out/test.txt"),
            f"docs-{index}": (f"[build-{index}]", f"{pkg}/docs/**", f"{pkg}/out/docs.txt"),
        }
        for step_id, (needs, inputs, product) in steps.items():
            command = f"{work} && mkdir -p {pkg}/out && echo {step_id} > {product} && echo done {step_id}"
            lines.append(
                f"  {step_id}: {{needs: {needs}, run: '{command}', cache: {{inputs: ['{inputs}']}}}}"
            )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Timing:
    wall: float  # the `treeflow run` process, from start to exit
    run: float  # the run itself, as its result reports it
    ran: frozenset[str]  # the steps that ran (not `cached`)
    cached: int
    cached_durations: tuple[float, ...]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=child_env(), capture_output=True, text=True, check=True
    )
    return done.stdout


def treeflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "treeflow.cli", *args],
        cwd=repo,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def timed_run(repo: Path) -> Timing:
    started = time.perf_counter()
    done = treeflow(repo, "run", "--json")
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = json.loads(done.stdout) if done.stdout else {}
    if done.returncode != 0 or result.get("status") != "succeeded":
        raise RuntimeError(f"treeflow run: exit {done.returncode}: {done.stdout}{done.stderr}")
    run = datetime.fromisoformat(result["ended_at"]) - datetime.fromisoformat(result["started_at"])
    steps = result["steps"]
    cached = [step for step in steps.values() if step["status"] == "cached"]
    return Timing(
        wall=elapsed,
        run=run.total_seconds(),
        ran=frozenset(step_id for step_id, step in steps.items() if step["status"] != "cached"),
        cached=len(cached),
        cached_durations=tuple(step["duration_s"] for step in cached),
    )


def make_repo(root: Path) -> None:
    root.mkdir()
    init_repo(root)
    for index in range(PACKAGES):
        for folder, count in FOLDERS.items():
            path = root / f"pkg{index}" / folder
            path.mkdir(parents=True)
            for number in range(count):
                (path / f"f{number:02d}.txt").write_text(f"package {index} {folder} {number}\n")
    git(root, "add", "--all")
    git(root, "commit", "-q", "-m", "packages")


def change_one_source(repo: Path, round_number: int) -> None:
    source = repo / f"pkg{CHANGED_PACKAGE}" / "src" / "f07.txt"
    source.write_text(f"changed in round {round_number}\n")
    git(repo, "commit", "-q", "-am", f"change {round_number}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--work", type=float, default=1.0, help="seconds each step works (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="first/second pairs measured (default 3)")
    parser.add_argument("--max-parallel", type=int, default=None, help="default: the number of CPUs")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.work <= 0:
        parser.error("--repeat must be at least 1 and --work positive")
    began = time.perf_counter()
    compile_treeflow()
    parallel = args.max_parallel or os.cpu_count() or 1
    print_header(
        "treeflow cache benchmark",
        [
            f"workflow : {PACKAGES * 5} steps in {PACKAGES} packages, each working {args.work:g} s, "
            f"max_parallel {parallel}",
            f"change   : one source file of pkg{CHANGED_PACKAGE}; to run: {', '.join(sorted(AFFECTED))}",
            f"pairs    : {args.repeat}, each from an empty cache",
        ],
    )
    first: list[Timing] = []
    second: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-cache-") as tmp:
        work = Path(tmp)
        os.environ.update(GIT_IDENTITY)
        os.environ["TREEFLOW_WORKTREE_ROOT"] = str(work / "worktrees")
        repo = work / "repo"
        make_repo(repo)
        (repo / "treeflow.yml").write_text(workflow(args.work, args.max_parallel))
        git(repo, "add", "treeflow.yml")
        git(repo, "commit", "-q", "-m", "workflow")
        for round_number in range(args.repeat):
            treeflow(repo, "clean", "--keep-days", "0")
            first.append(timed_run(repo))
            change_one_source(repo, round_number)
            second.append(timed_run(repo))
        treeflow(repo, "clean", "--keep-days", "0")

    med = statistics.median
    print(f"   {'':46} {'run':>8} {'process':>8}   ran  cached   samples, run (s)")
    for label, values in (
        ("first run (empty cache: every step runs)", first),
        ("second run (one input changed)", second),
    ):
        runs = [value.run for value in values]
        samples = " ".join(f"{value:.2f}" for value in runs)
        print(
            f"   {label:46} {med(runs):7.2f}s {med(v.wall for v in values):7.2f}s"
            f"   {len(values[-1].ran):3d}  {values[-1].cached:6d}   {samples}"
        )
    critical_path = 2 * args.work
    per_hit = [duration for timing in second for duration in timing.cached_durations]
    print(f"   {'floor: the critical path of the 4 affected steps':46} {critical_path:7.2f}s")
    print(
        f"   {'each cached step (replay, log, journal)':46} p50 {med(per_hit) * 1000:.1f} ms, "
        f"max {max(per_hit) * 1000:.1f} ms"
    )
    ratio = med(t.run for t in second) / med(t.run for t in first)
    wall_ratio = med(t.wall for t in second) / med(t.wall for t in first)
    floor_ratio = critical_path / med(t.run for t in first)
    exact = all(timing.ran == AFFECTED for timing in second)
    print()
    print(f"   second / first, the runs                       {ratio:.3f}  (goal <= {GOAL_RATIO:.2f})")
    print(f"   second / first, the processes                  {wall_ratio:.3f}")
    print(f"   floor / first                                  {floor_ratio:.3f}")
    if not exact:
        print(f"   the second run ran {sorted(second[-1].ran)}, not only {sorted(AFFECTED)}")
    passed = ratio <= GOAL_RATIO and exact
    print()
    print(
        f"{'PASS' if passed else 'FAIL'}: the second run ran {'only' if exact else 'more than'} the "
        f"{len(AFFECTED)} affected steps and took {ratio:.1%} of the first (goal <= {GOAL_RATIO:.0%}; "
        f"the floor, their critical path, is {floor_ratio:.1%}); the benchmark took "
        f"{time.perf_counter() - began:.0f}s"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
