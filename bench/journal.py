"""What the run journal costs: the 1,000-step scheduler run with and without it, in one process.

Both variants run the same workflow (1,000 steps of `true`, max_parallel 8, no worktrees) through
`Run.execute()`; one hands events to a `Journal` (SQLite, WAL, a writer thread) as the CLI does, the
other to a sink that drops them. Rounds alternate so that the machine's drift hits both alike.

    .venv/bin/python bench/journal.py [--steps 1000] [--repeat 121]

Exits 0 when the overhead meets the goal, 1 when it does not.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from _common import init_repo, print_header
from treeflow.core.events import EventSink, FanOut, NullSink
from treeflow.core.git import open_repository
from treeflow.core.journal import Journal
from treeflow.core.model import RunStatus
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import load_workflow

GOAL_OVERHEAD = 0.05


async def one_round(root: Path, with_journal: bool) -> float:
    workflow = load_workflow(root / "treeflow.yml")
    repo = await open_repository(root)
    journal = Journal(repo) if with_journal else None
    sink: EventSink = FanOut([journal]) if journal else NullSink()
    run = Run(workflow, repo, sink, RunOptions())
    started = time.perf_counter()
    result = await run.execute()
    if journal is not None:
        # The CLI waits for the journal before it exits, so the benchmark counts that wait too.
        await anyio.to_thread.run_sync(journal.close)
    elapsed = time.perf_counter() - started
    if result.status is not RunStatus.SUCCEEDED:
        raise SystemExit(f"the run did not succeed: {result.status}")
    return elapsed


def _interval_of_median(ratios: list[float], resamples: int = 2000) -> tuple[float, float]:
    """How far the median could be from the truth: this machine's speed wanders within a round too."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    return medians[int(resamples * 0.025)], medians[int(resamples * 0.975) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=121, help="measured rounds of each variant")
    args = parser.parse_args(argv)
    print_header(
        "treeflow run journal overhead",
        [
            f"steps    : {args.steps} x `true`, max_parallel 8, no worktrees",
            f"rounds   : 1 warm-up + {args.repeat}",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-journal-") as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        init_repo(root)
        steps = "".join(f"  s{i}: {{run: 'true'}}\n" for i in range(args.steps))
        (root / "treeflow.yml").write_text(f"max_parallel: 8\ndefaults: {{worktree: false}}\nsteps:\n{steps}")
        samples: dict[bool, list[float]] = {False: [], True: []}
        for round_number in range(args.repeat + 1):
            order = (False, True) if round_number % 2 else (True, False)
            for with_journal in order:
                elapsed = anyio.run(one_round, root, with_journal)
                if round_number:
                    samples[with_journal].append(elapsed)
    without = statistics.median(samples[False])
    with_it = statistics.median(samples[True])
    # Each round runs both variants back to back, so the ratio within a round is spared the drift
    # between rounds that this machine shows (10 % and more); the median of those ratios is the verdict.
    ratios = [w / wo for w, wo in zip(samples[True], samples[False], strict=True)]
    overhead = statistics.median(ratios) - 1
    low, high = _interval_of_median(ratios)
    print()
    print(f"   without journal : {without:.3f}s  ({' '.join(f'{s:.3f}' for s in samples[False])})")
    print(f"   with journal    : {with_it:.3f}s  ({' '.join(f'{s:.3f}' for s in samples[True])})")
    print(f"   ratio of medians: {with_it / without - 1:+.1%}")
    print(f"   overhead        : {overhead:+.1%} (median of the {args.repeat} rounds' ratios)")
    print(f"   95 % interval   : {low - 1:+.1%} to {high - 1:+.1%} (bootstrap of that median)")
    verdict = "PASS" if overhead <= GOAL_OVERHEAD else "FAIL"
    print(f"\n{verdict}: journal overhead {overhead:+.1%} of wall time (goal <= {GOAL_OVERHEAD:.0%})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
