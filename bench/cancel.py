"""Fail-fast teardown: how long after a step fails every process of the other running steps is gone.

Each repetition runs, through the engine API with the default checkout workspace, a workflow of
N (default 8) long-running step trees and one step that fails once all of them are up, with
fail_fast on and max_parallel high enough for all of them to run at once:

- `nested*`: `sh -c 'sleep 60 & wait'` under the step's shell, so three processes per group;
- `plain*`:  the step's shell replaced by `sleep 60`, a single process.

Each tree writes its process group id to a file when it is fully started. The clock starts when
the failing step's `StepFinished` event reaches the sink and stops at the end of the first scan
of /proc that finds no live (non-zombie) process in any of the groups, so the figure includes
one scan by this process (about a millisecond) and never flatters treeflow. A group still alive
10 s after `execute()` returned counts its processes as survivors (they are then killed).

Also shown: from the failing shell's last command to `StepFinished` (a CLOCK_MONOTONIC stamp the
step writes just before `exit 1`) and from `StepFinished` to the return of `execute()`.

    .venv/bin/python bench/cancel.py [--trees 8] [--repeat 20]

Exits 0 when the goal (p95 below 50 ms, no survivors) is met, 1 when it is not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from _common import init_repo, percentile, print_header
from treeflow.core.events import Event, StepFinished
from treeflow.core.git import Repository, open_repository
from treeflow.core.model import StepStatus, Workflow
from treeflow.core.runner import Run
from treeflow.core.spec import parse_workflow

GOAL_P95_S = 0.050
FAILING_STEP = "fail"
RUN_TIMEOUT_S = 20.0
SURVIVOR_WAIT_S = 10.0


def tree_names(trees: int) -> list[str]:
    half = (trees + 1) // 2
    return [f"nested{index}" for index in range(1, half + 1)] + [
        f"plain{index}" for index in range(1, trees - half + 1)
    ]


def workflow_text(names: list[str], pids: Path, stamp: Path) -> str:
    # The group id is written to a temporary name and renamed, so that a reader never sees half a number.
    def publish(name: str, variable: str) -> str:
        return f'echo "{variable}" > "$PIDS/{name}.tmp" && mv "$PIDS/{name}.tmp" "$PIDS/{name}"'

    lines = [
        "version: 1",
        "name: cancel-bench",
        f"max_parallel: {len(names) + 1}",
        "fail_fast: true",
        # A safety net: a step the engine failed to cancel still ends long before the benchmark would.
        "defaults:",
        "  timeout: 15s",
        "env:",
        f"  PIDS: {json.dumps(str(pids))}",  # a JSON string is a valid YAML scalar, whatever the path holds
        "steps:",
    ]
    for name in names:
        if name.startswith("nested"):
            # The inner shell publishes only after forking `sleep`, so the whole tree exists by then.
            command = f"P=$$ sh -c 'sleep 60 & {publish(name, '$P')}; wait'"
        else:
            command = f"{publish(name, '$$')} && exec sleep 60"
        lines += [f"  {name}:", "    run: |", f"      {command}"]
    waits = " ".join(names)
    python = shlex.quote(sys.executable)
    lines += [
        f"  {FAILING_STEP}:",
        "    run: |",
        f"      for n in {waits}; do",
        '        while [ ! -s "$PIDS/$n" ]; do sleep 0.005; done',
        "      done",
        f"      {python} -c 'import time; print(time.monotonic())' > {shlex.quote(str(stamp))}",
        "      exit 1",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class FailureClock:
    """An event sink that notes when the failing step's end reaches the outside world."""

    step_id: str
    finished_at: float | None = None

    def emit(self, event: Event) -> None:
        if isinstance(event, StepFinished) and event.step_id == self.step_id and self.finished_at is None:
            self.finished_at = time.monotonic()


def live_members(groups: set[int]) -> list[int]:
    """Pids of live processes (zombies excluded) whose process group is one of ``groups``."""
    found: list[int] = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                    stat = stat_file.read()
            except OSError:
                continue
            # The command name may hold spaces and parentheses; the fields after its last ')' do not.
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 2 and int(fields[2]) in groups and fields[0] not in (b"Z", b"X"):
                found.append(int(entry.name))
    return found


@dataclass
class Sample:
    teardown_s: float  # StepFinished of the failing step -> no live process left in any group
    returned_s: float  # StepFinished -> execute() returned
    detected_s: float | None  # the failing shell's last command -> StepFinished
    survivors: int


def reset_markers(pids: Path, stamp: Path) -> None:
    shutil.rmtree(pids, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    pids.mkdir()


def read_groups(pids: Path, names: list[str]) -> set[int]:
    return {int(path.read_text().split()[0]) for path in (pids / name for name in names) if path.exists()}


def kill_groups(groups: set[int]) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def read_stamp(stamp: Path) -> float | None:
    try:
        return float(stamp.read_text())
    except (OSError, ValueError):
        return None


async def one_repetition(
    repo: Repository, workflow: Workflow, names: list[str], pids: Path, stamp: Path
) -> Sample:
    reset_markers(pids, stamp)
    clock = FailureClock(FAILING_STEP)
    run = Run(workflow, repo, clock)
    try:
        with anyio.fail_after(RUN_TIMEOUT_S):
            result = await run.execute()
    except BaseException:
        kill_groups(read_groups(pids, names))
        raise
    returned_at = time.monotonic()
    groups = read_groups(pids, names)

    deadline = returned_at + SURVIVOR_WAIT_S
    while True:
        alive = live_members(groups)
        checked_at = time.monotonic()
        if not alive or checked_at > deadline:
            break
        await anyio.sleep(0.0005)
    if alive:
        kill_groups(groups)

    # Checked only now, so that the trees of a run that went wrong are not left running either.
    statuses = {step_id: step.status for step_id, step in result.steps.items()}
    expected = {**{name: StepStatus.CANCELLED for name in names}, FAILING_STEP: StepStatus.FAILED}
    if statuses != expected or clock.finished_at is None or len(groups) != len(names):
        raise RuntimeError(f"unexpected outcome {result.status}: {statuses}, {len(groups)} groups seen")
    failed_at = read_stamp(stamp)
    return Sample(
        teardown_s=checked_at - clock.finished_at,
        returned_s=returned_at - clock.finished_at,
        detected_s=None if failed_at is None else clock.finished_at - failed_at,
        survivors=len(alive),
    )


@dataclass
class Results:
    samples: list[Sample] = field(default_factory=list)


async def run_all(root: Path, trees: int, repeat: int, warmup: int) -> Results:
    repo_dir = root / "repo"
    repo_dir.mkdir()
    init_repo(repo_dir)
    repo = await open_repository(repo_dir)
    names = tree_names(trees)
    pids, stamp = root / "pids", root / "failed-at"
    path = repo_dir / "workflow.yml"
    path.write_text(workflow_text(names, pids, stamp))
    workflow = parse_workflow(path.read_text(), path)
    results = Results()
    for index in range(warmup + repeat):
        sample = await one_repetition(repo, workflow, names, pids, stamp)
        if index >= warmup:
            results.samples.append(sample)
    return results


def _ms(value: float) -> str:
    return f"{value * 1e3:.1f}"


def report(results: Results) -> bool:
    teardown = [sample.teardown_s for sample in results.samples]
    returned = [sample.returned_s for sample in results.samples]
    detected = [sample.detected_s for sample in results.samples if sample.detected_s is not None]
    survivors = sum(sample.survivors for sample in results.samples)
    print(f"   {'(ms, nearest-rank percentiles)':44} {'p50':>7} {'p95':>7} {'max':>7} {'mean':>7}")
    rows = [
        ("failure event -> all groups dead  [goal]", teardown),
        ("failure event -> execute() returned", returned),
        ("failing shell's last command -> event", detected),
    ]
    for label, values in rows:
        if not values:
            continue
        print(
            f"   {label:44} {_ms(percentile(values, 0.5)):>7} {_ms(percentile(values, 0.95)):>7} "
            f"{_ms(max(values)):>7} {_ms(statistics.fmean(values)):>7}"
        )
    print(f"   samples, failure event -> all dead (ms): {' '.join(_ms(value) for value in teardown)}")
    print(f"   survivors: {survivors}")
    print()
    p95 = percentile(teardown, 0.95)
    passed = p95 < GOAL_P95_S and survivors == 0
    print(
        f"{'PASS' if passed else 'FAIL'}: p95 {_ms(p95)} ms (goal < {_ms(GOAL_P95_S)} ms), "
        f"{survivors} survivors (goal 0) over {len(teardown)} repetitions"
    )
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trees", type=int, default=8, help="long-running step trees to cancel (default 8)")
    parser.add_argument("--repeat", type=int, default=20, help="measured repetitions (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured repetitions first (default 1)")
    args = parser.parse_args(argv)
    if args.trees < 1 or args.repeat < 1 or args.warmup < 0:
        parser.error("--trees and --repeat must be at least 1, --warmup at least 0")
    if not Path("/proc/self/stat").exists():
        parser.error("this benchmark reads /proc and runs on Linux only")

    names = tree_names(args.trees)
    print_header(
        "treeflow fail-fast cancellation benchmark",
        [
            f"trees    : {len(names)} ({', '.join(names)}), plus `{FAILING_STEP}` exiting 1 once all are up",
            f"rounds   : {args.warmup} warm-up + {args.repeat} measured, in-process, default kill grace",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-") as tmp:
        results = anyio.run(run_all, Path(tmp), args.trees, args.repeat, args.warmup)
    return 0 if report(results) else 1


if __name__ == "__main__":
    sys.exit(main())
