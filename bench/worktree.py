"""Worktree overhead: a treeflow step's git worktree against plain `git worktree add` + `remove`.

In a throwaway repository of about 5,000 files and 50 MB in nested folders (generated from a seeded
random.Random, so every run sees the same content) this times:

1. One step, repeated: treeflow's per-step cost (create the worktree, change one file, commit,
   remove) against `git worktree add <path> HEAD` + `git worktree remove --force <path>`. treeflow
   is timed twice: `step_worktree` alone, which isolates the worktree's cost, and a one-step
   workflow through `Run` with a `GitWorkspace` (`base: head`), which adds run set-up, the shell
   and the result branch. The methods alternate within each repetition and medians are compared.
2. Many at once: a treeflow run of N parallel steps (each changing one file) against the same
   number of raw add + remove pairs run one after another.

Each is measured twice for treeflow: with fresh worktrees (`pool: false`), and with the warm
worktree pool, where a step takes a pooled worktree and moves it to its start commit (only the
files that differ are written) and gives it back instead of removing it. Beside them, the floor of
that move: `git read-tree -u -m` between two commits that differ in one file, in a filled worktree.

Every git call treeflow makes is timed (by wrapping `treeflow.core.git.run_git`, and the
repository lock by wrapping `RepoLock`), so that the report says which call the overhead is in.

    .venv/bin/python bench/worktree.py [--files 5000] [--megabytes 50] [--repeat 10] [--parallel 16]

Exits 0 when the one-step ratios (step_worktree / raw, and with the pool) meet their goals, 1
when one does not.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import anyio

import treeflow.core.git as tf_git
from _common import GIT_IDENTITY, child_env, print_header
from treeflow.core.events import NullSink
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import RepoLock, Repository, identity_env, open_repository
from treeflow.core.git_workspace import GitWorkspace
from treeflow.core.model import PoolSettings, RunResult, RunStatus, StepStatus
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import load_workflow
from treeflow.core.step_worktree import step_worktree
from treeflow.core.worktree_pool import WorktreePool

GOAL_RATIO = 1.15
POOL_GOAL_RATIO = 0.35
GIT_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 300.0
# Folders three levels deep, as in a typical source tree; files land in any of them.
FANOUT = (8, 6, 5)


# ---------------------------------------------------------------------------------------------
# The repository


@dataclass(frozen=True)
class GeneratedRepo:
    root: Path
    files: list[str]
    total_bytes: int
    folders: int
    seconds: float


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=GIT_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd}: {done.stderr.strip()}")
    return done.stdout.rstrip("\n")


def generate_repo(root: Path, files: int, total_bytes: int, seed: int) -> GeneratedRepo:
    started = time.perf_counter()
    rng = random.Random(seed)
    folders: list[Path] = []
    for top in range(FANOUT[0]):
        first = Path(f"pkg{top}")
        folders.append(first)
        for mid in range(FANOUT[1]):
            second = first / f"mod{mid}"
            folders.append(second)
            folders.extend(second / f"part{leaf}" for leaf in range(FANOUT[2]))
    # Hex text rather than raw random bytes, so that zlib compresses objects about as well as it
    # does source code; one pool sliced at random offsets keeps generation to a second or so.
    hex_text = rng.randbytes(3 * 1024 * 1024).hex()
    pool = "\n".join(hex_text[i : i + 79] for i in range(0, len(hex_text), 79))
    largest = len(pool) // 4
    # Log-normal sizes give many small files and a few large ones, as real repositories have.
    weights = [rng.lognormvariate(0.0, 1.0) for _ in range(files)]
    scale = total_bytes / sum(weights)
    sizes = [min(largest, max(64, int(weight * scale))) for weight in weights]
    names: list[str] = []
    written = 0
    root.mkdir(parents=True)
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for index, size in enumerate(sizes):
        relative = (rng.choice(folders) / f"file{index:05d}.txt").as_posix()
        offset = rng.randrange(len(pool) - size)
        content = f"# {relative}\n{pool[offset : offset + size]}\n"
        (root / relative).write_text(content)
        names.append(relative)
        written += len(content)
    _git(root, "init", "--quiet", "--initial-branch=main")
    # No automatic gc or maintenance, so that no background repack lands inside a measurement.
    _git(root, "config", "gc.auto", "0")
    _git(root, "config", "maintenance.auto", "false")
    _git(root, "add", "--all")
    _git(root, "commit", "--quiet", "-m", "generated repository")
    # Packed, as a cloned repository is; no delta search, which random text would not reward.
    _git(root, "repack", "-a", "-d", "-q", "--window=0")
    return GeneratedRepo(root, names, written, len(folders), time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Timing treeflow's git calls and its repository lock


@dataclass
class GitCall:
    label: str
    started: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Recorder:
    calls: list[GitCall] = field(default_factory=list)
    lock_waits: list[float] = field(default_factory=list)
    lock_holds: list[float] = field(default_factory=list)
    closes: list[float] = field(default_factory=list)

    def clear(self) -> None:
        self.calls.clear()
        self.lock_waits.clear()
        self.lock_holds.clear()
        self.closes.clear()


def _label(args: Sequence[str]) -> str:
    if not args:
        return "git"
    # Subcommands whose cost depends on the option: reading a ref is not checking out a tree.
    if args[0] in ("worktree", "reset", "add", "update-ref") and len(args) > 1:
        return f"{args[0]} {args[1]}"
    return args[0]


@contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    """Wrap treeflow's one entry point to the git CLI and its lock for the duration of the block.

    `git()` looks `run_git` up in its module at each call, so replacing the module attribute
    catches every git command treeflow runs; the lock is patched on the class for the same reason.
    """
    original_status = tf_git.run_git
    original_enter = RepoLock.__aenter__
    original_exit = RepoLock.__aexit__
    original_close = GitWorkspace.close
    held_since: dict[int, float] = {}

    async def timed_status(
        cwd: Path, *args: str, env: Mapping[str, str] | None = None, input: bytes | None = None
    ) -> tuple[int, str, str]:
        started = time.perf_counter()
        try:
            return await original_status(cwd, *args, env=env, input=input)
        finally:
            recorder.calls.append(GitCall(_label(args), started, time.perf_counter()))

    async def timed_enter(self: RepoLock) -> RepoLock:
        asked = time.perf_counter()
        entered = await original_enter(self)
        now = time.perf_counter()
        recorder.lock_waits.append(now - asked)
        held_since[id(self)] = now
        return entered

    async def timed_exit(
        self: RepoLock,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        since = held_since.pop(id(self), None)
        await original_exit(self, exc_type, exc, traceback)
        if since is not None:
            recorder.lock_holds.append(time.perf_counter() - since)

    async def timed_close(self: GitWorkspace, run: RunResult) -> str | None:
        started = time.perf_counter()
        try:
            return await original_close(self, run)
        finally:
            recorder.closes.append(time.perf_counter() - started)

    tf_git.run_git = timed_status
    GitWorkspace.close = timed_close  # type: ignore[method-assign]
    RepoLock.__aenter__ = timed_enter  # type: ignore[method-assign]
    RepoLock.__aexit__ = timed_exit  # type: ignore[method-assign]
    try:
        yield
    finally:
        tf_git.run_git = original_status
        RepoLock.__aenter__ = original_enter  # type: ignore[method-assign]
        RepoLock.__aexit__ = original_exit  # type: ignore[method-assign]
        GitWorkspace.close = original_close  # type: ignore[method-assign]


def per_label(calls: Sequence[GitCall]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for call in calls:
        grouped[call.label].append(call.seconds)
    return grouped


# ---------------------------------------------------------------------------------------------
# The contenders


def raw_add_remove(repo: Path, path: Path) -> tuple[float, float]:
    """Seconds for `git worktree add <path> HEAD` and for `git worktree remove --force <path>`."""
    started = time.perf_counter()
    _git(repo, "worktree", "add", "--quiet", str(path), "HEAD")
    added = time.perf_counter()
    _git(repo, "worktree", "remove", "--force", str(path))
    return added - started, time.perf_counter() - added


async def _step_worktree_once(
    repo: Repository,
    path: Path,
    branch: str,
    start: str,
    changed: str,
    identity: Mapping[str, str],
    pooled: bool = False,
) -> float:
    lock = RepoLock(repo)
    pool = WorktreePool(repo, lock, PoolSettings(), 1) if pooled else None
    warnings: list[str] = []
    started = time.perf_counter()
    with anyio.fail_after(RUN_TIMEOUT_S):
        async with step_worktree(
            repo,
            lock,
            path=path,
            branch=branch,
            start=start,
            commit_message="bench: change one file",
            identity=identity,
            warn=warnings.append,
            pool=pool,
        ) as worktree:
            await anyio.Path(worktree.path / changed).write_text(f"changed on {branch}\n")
    elapsed = time.perf_counter() - started
    if warnings or worktree.commit is None or not worktree.removed or pooled != (worktree.pooled is not None):
        raise RuntimeError(f"step_worktree: commit {worktree.commit}, removed {worktree.removed}: {warnings}")
    return elapsed


def move_floor(repo: Path, path: Path, changed: str) -> float:
    """Seconds for `git read-tree -u -m` from a commit to one that differs in ``changed`` only, in
    a filled worktree: the least a pooled worktree's move can cost."""
    _git(repo, "worktree", "add", "--quiet", "--detach", str(path), "HEAD")
    try:
        (path / changed).write_text("moved\n")
        _git(path, "add", changed)
        tree = _git(path, "write-tree")
        other = _git(path, "commit-tree", tree, "-p", "HEAD", "-m", "one file differs")
        _git(path, "read-tree", "-u", "--reset", "HEAD")
        started = time.perf_counter()
        _git(path, "read-tree", "-u", "-m", "HEAD", other)
        return time.perf_counter() - started
    finally:
        _git(repo, "worktree", "remove", "--force", str(path))


async def _run_once(repo: Repository, workflow_path: Path, run_id: str, steps: int, parallel: int) -> float:
    workflow = load_workflow(workflow_path)
    run = Run(
        workflow,
        repo,
        NullSink(),
        RunOptions(max_parallel=parallel, run_id=run_id),
        LocalExecutor(GitWorkspace(repo, workflow)),
    )
    started = time.perf_counter()
    with anyio.fail_after(RUN_TIMEOUT_S):
        result = await run.execute()
    elapsed = time.perf_counter() - started
    succeeded = sum(1 for step in result.steps.values() if step.status is StepStatus.SUCCEEDED)
    if result.status is not RunStatus.SUCCEEDED or succeeded != steps or result.warnings:
        raise RuntimeError(
            f"run {run_id} {result.status}: {succeeded} of {steps} steps succeeded; {result.warnings}"
        )
    return elapsed


def workflow_text(changed: Sequence[str], parallel: int, pool: bool = False) -> str:
    lines = ["version: 1", "name: worktree-bench", "base: head", f"max_parallel: {parallel}"]
    lines += ([] if pool else ["pool: false"]) + ["steps:"]
    width = len(str(len(changed) - 1))
    for index, path in enumerate(changed):
        lines.append(f"  s{index:0{width}d}:")
        lines.append(f"    run: echo \"changed by $TREEFLOW_STEP of $TREEFLOW_RUN_ID\" > '{path}'")
    return "\n".join(lines) + "\n"


def forget_treeflow_state(repo: Path) -> None:
    """Delete the branches and logs earlier repetitions left, so that every repetition starts from
    the same number of refs and log folders."""
    refs = _git(repo, "for-each-ref", "--format=%(refname)", "refs/heads/treeflow/")
    if refs:
        commands = "".join(f"delete {ref}\n" for ref in refs.splitlines())
        subprocess.run(
            ["git", "update-ref", "--stdin"],
            cwd=repo,
            input=commands,
            text=True,
            check=True,
            env=child_env(),
            timeout=GIT_TIMEOUT_S,
        )
    shutil.rmtree(repo / ".git" / "treeflow" / "logs", ignore_errors=True)
    shutil.rmtree(repo / ".git" / "treeflow" / "runs", ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Measurements


@dataclass
class OneStep:
    raw: list[float] = field(default_factory=list)
    raw_add: list[float] = field(default_factory=list)
    raw_remove: list[float] = field(default_factory=list)
    step_worktree: list[float] = field(default_factory=list)
    pooled: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    run: list[float] = field(default_factory=list)
    # Per repetition: seconds per git call label in the step_worktree route, and calls made.
    breakdown: list[dict[str, float]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    run_git_s: list[float] = field(default_factory=list)
    run_calls: int = 0


def measure_one_step(
    gen: GeneratedRepo,
    repo: Repository,
    workdir: Path,
    repeat: int,
    warmup: int,
    run_repeat: int,
    recorder: Recorder,
) -> OneStep:
    head = _git(gen.root, "rev-parse", "HEAD")
    identity = anyio.run(identity_env, repo)
    changed = gen.files[0]
    flows = workdir / "flows"
    flows.mkdir()
    one = flows / "one-step.yml"
    one.write_text(workflow_text([changed], 1))
    raw_dir = workdir / "raw"
    tf_dir = workdir / "step-worktree"
    raw_dir.mkdir()
    tf_dir.mkdir()
    out = OneStep()

    def raw(rep: int) -> None:
        add_s, remove_s = raw_add_remove(gen.root, raw_dir / f"r{rep}")
        if rep >= warmup:
            out.raw.append(add_s + remove_s)
            out.raw_add.append(add_s)
            out.raw_remove.append(remove_s)

    def direct(rep: int) -> None:
        recorder.clear()
        seconds = anyio.run(
            _step_worktree_once, repo, tf_dir / f"s{rep}", f"treeflow/bench/s{rep}", head, changed, identity
        )
        if rep >= warmup:
            out.step_worktree.append(seconds)
            grouped = per_label(recorder.calls)
            out.breakdown.append({label: sum(values) for label, values in grouped.items()})
            out.counts = {label: len(values) for label, values in grouped.items()}

    def from_the_pool(rep: int) -> None:
        seconds = anyio.run(
            _step_worktree_once,
            repo,
            tf_dir / f"p{rep}",
            f"treeflow/bench/p{rep}",
            head,
            changed,
            identity,
            True,
        )
        if rep >= warmup:  # the warm-up fills the pool
            out.pooled.append(seconds)

    def floor(rep: int) -> None:
        seconds = move_floor(gen.root, workdir / f"floor{rep}", changed)
        if rep >= warmup:
            out.floor.append(seconds)

    def through_run(rep: int) -> None:
        recorder.clear()
        seconds = anyio.run(_run_once, repo, one, f"one-{rep}", 1, 1)
        if rep >= warmup:
            out.run.append(seconds)
            out.run_git_s.append(sum(call.seconds for call in recorder.calls))
            out.run_calls = len(recorder.calls)

    for rep in range(warmup + repeat):
        # The Run route mostly repeats the step_worktree route's checkout, which dominates the
        # runtime, so it takes part in the first repetitions only.
        methods: list[Callable[[int], None]] = [raw, direct, from_the_pool, floor]
        if rep < warmup + run_repeat:
            methods.append(through_run)
        # Rotating the order spreads whatever the previous method leaves behind (dirty page cache,
        # a busy disk) evenly over all of them.
        shift = rep % len(methods)
        for method in methods[shift:] + methods[:shift]:
            method(rep)
        forget_treeflow_state(gen.root)
    return out


@dataclass
class ManySteps:
    treeflow: list[float] = field(default_factory=list)
    pooled: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    git_by_label: dict[str, list[float]] = field(default_factory=dict)
    lock_waits: list[float] = field(default_factory=list)
    lock_holds: list[float] = field(default_factory=list)
    closes: list[float] = field(default_factory=list)


def measure_many(
    gen: GeneratedRepo, repo: Repository, workdir: Path, steps: int, rounds: int, recorder: Recorder
) -> ManySteps:
    # Files spread over the repository, one per step, so that the run's final merge is clean.
    stride = max(1, len(gen.files) // steps)
    changed = [gen.files[index * stride] for index in range(steps)]
    flow = workdir / "flows" / "many.yml"
    flow.write_text(workflow_text(changed, steps))
    pooled_flow = workdir / "flows" / "many-pooled.yml"
    pooled_flow.write_text(workflow_text(changed, steps, pool=True))
    # A first run fills the pool; the measured ones find it warm.
    anyio.run(_run_once, repo, pooled_flow, "many-fill", steps, steps)
    forget_treeflow_state(gen.root)
    raw_dir = workdir / "raw-many"
    raw_dir.mkdir()
    out = ManySteps()

    def treeflow(number: int) -> None:
        recorder.clear()
        out.treeflow.append(anyio.run(_run_once, repo, flow, f"many-{number}", steps, steps))
        out.closes.extend(recorder.closes)
        if number == 0:
            out.git_by_label = per_label(recorder.calls)
            out.lock_waits = list(recorder.lock_waits)
            out.lock_holds = list(recorder.lock_holds)

    def raw(number: int) -> None:
        started = time.perf_counter()
        for index in range(steps):
            raw_add_remove(gen.root, raw_dir / f"r{number}-{index}")
        out.raw.append(time.perf_counter() - started)

    def pooled(number: int) -> None:
        out.pooled.append(anyio.run(_run_once, repo, pooled_flow, f"many-pooled-{number}", steps, steps))

    methods: list[Callable[[int], None]] = [treeflow, pooled, raw]
    for number in range(rounds):
        shift = number % len(methods)
        for method in methods[shift:] + methods[:shift]:
            method(number)
            forget_treeflow_state(gen.root)
    return out


# ---------------------------------------------------------------------------------------------
# Report


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.1f}ms"


def _row(label: str, values: Sequence[float]) -> str:
    series = " ".join(f"{value * 1e3:.0f}" for value in values)
    return f"   {label:34} {_ms(statistics.median(values))} {_ms(min(values))} {_ms(max(values))}   {series}"


def report_one_step(out: OneStep) -> tuple[float, float]:
    med = statistics.median
    print(f"-- one step, {len(out.raw)} repetitions ({len(out.run)} for the Run route), methods interleaved")
    print(f"   {'':34} {'median':>10} {'min':>10} {'max':>10}   samples (ms)")
    print(_row("raw: worktree add + remove", out.raw))
    print(_row("  git worktree add <path> HEAD", out.raw_add))
    print(_row("  git worktree remove --force", out.raw_remove))
    print(_row("treeflow: step_worktree", out.step_worktree))
    print(_row("treeflow: step_worktree, warm pool", out.pooled))
    print(_row("  floor: read-tree -u -m, 1 file", out.floor))
    print(_row("treeflow: Run, one-step workflow", out.run))
    print(_row("  of which in git calls", out.run_git_s))
    print(f"   git calls per Run (one step)      : {out.run_calls}")
    print()
    print("   step_worktree, time per git call (median over repetitions; count per step):")
    labels = sorted(out.counts, key=lambda label: -med([rep.get(label, 0.0) for rep in out.breakdown]))
    total_git = [sum(rep.values()) for rep in out.breakdown]
    for label in labels:
        values = [rep.get(label, 0.0) for rep in out.breakdown]
        print(f"     {label:32} {_ms(med(values))}  x{out.counts[label]}")
    other = [whole - git for whole, git in zip(out.step_worktree, total_git, strict=True)]
    print(f"     {'(all git calls)':32} {_ms(med(total_git))}  x{sum(out.counts.values())}")
    print(f"     {'(python, lock, file write)':32} {_ms(med(other))}")
    ratio = med(out.step_worktree) / med(out.raw)
    print()
    print(f"   ratio step_worktree / raw          : {ratio:.2f}")
    pool_ratio = med(out.pooled) / med(out.raw)
    print(f"   ratio warm pool / raw              : {pool_ratio:.2f}  (goal <= {POOL_GOAL_RATIO:.2f})")
    print(f"   ratio floor / raw                  : {med(out.floor) / med(out.raw):.2f}")
    print(f"   ratio Run (one step) / raw         : {med(out.run) / med(out.raw):.2f}")
    print()
    return ratio, pool_ratio


def report_many(out: ManySteps, steps: int) -> None:
    med = statistics.median
    tf_s, raw_s = med(out.treeflow), med(out.raw)
    print(f"-- {steps} steps at once, {len(out.raw)} rounds (alternating which goes first)")
    print(f"   {'':34} {'median':>10} {'min':>10} {'max':>10}   samples (ms)")
    print(_row(f"treeflow run, max_parallel {steps}", out.treeflow))
    print(_row(f"treeflow run, max_parallel {steps}, warm pool", out.pooled))
    print(_row("  of which closing (result branch)", out.closes))
    print(_row(f"raw add + remove x{steps}, serial", out.raw))
    print(f"   ratio treeflow / raw serial        : {tf_s / raw_s:.2f}")
    print(f"   ratio warm pool / raw serial       : {med(out.pooled) / raw_s:.2f}")
    print(f"   per step with the warm pool        : {_ms(med(out.pooled) / steps)} (wall time / steps)")
    print()
    print("   first treeflow round, git calls summed over all steps (busy time, not wall time):")
    ordered = sorted(out.git_by_label.items(), key=lambda item: -sum(item[1]))
    for label, values in ordered:
        print(f"     {label:32} {sum(values):7.3f}s  x{len(values):<4} median {_ms(med(values))}")
    if out.lock_holds:
        print(
            f"     repository lock: held {sum(out.lock_holds):.3f}s in total over {len(out.lock_holds)} "
            f"acquisitions (longest {max(out.lock_holds) * 1e3:.0f}ms); waited {sum(out.lock_waits):.3f}s "
            f"in total (longest {max(out.lock_waits) * 1e3:.0f}ms)"
        )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=5000, help="files in the repository (default 5000)")
    parser.add_argument("--megabytes", type=float, default=50.0, help="their total size (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated content (default 1)")
    parser.add_argument("--repeat", type=int, default=10, help="measured one-step repetitions (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured repetitions first (default 1)")
    parser.add_argument(
        "--run-repeat", type=int, default=5, help="repetitions that also time the Run route (default 5)"
    )
    parser.add_argument("--parallel", type=int, default=16, help="steps in the parallel run (default 16)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the parallel run (default 1)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if min(args.files, args.repeat, args.run_repeat, args.parallel, args.rounds) < 1 or args.warmup < 0:
        parser.error(
            "--files, --repeat, --run-repeat, --parallel and --rounds must be at least 1, --warmup 0+"
        )
    args.run_repeat = min(args.run_repeat, args.repeat)
    if args.parallel > args.files or args.megabytes <= 0:
        parser.error("--parallel must not exceed --files, and --megabytes must be positive")

    print_header(
        "treeflow worktree benchmark",
        [
            f"repo     : {args.files} files, about {args.megabytes:g} MB, seed {args.seed}",
            f"one step : {args.warmup} warm-up + {args.repeat} measured repetitions, methods interleaved "
            f"(the Run route in the first {args.run_repeat})",
            f"parallel : {args.parallel} steps, {args.rounds} rounds",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-worktree-") as tmp:
        workdir = Path(tmp)
        # treeflow's own git calls inherit this process's environment: the bench identity, and
        # worktrees under the temporary folder rather than the user's cache, so cleanup is complete.
        os.environ.update(GIT_IDENTITY)
        os.environ["TREEFLOW_WORKTREE_ROOT"] = str(workdir / "treeflow-worktrees")
        gen = generate_repo(workdir / "repo", args.files, int(args.megabytes * 1e6), args.seed)
        print(
            f"-- repository: {len(gen.files)} files, {gen.total_bytes / 1e6:.1f} MB "
            f"in {gen.folders} folders, generated and committed in {gen.seconds:.1f}s"
        )
        print()
        repo = anyio.run(open_repository, gen.root)
        recorder = Recorder()
        with recording(recorder):
            one = measure_one_step(gen, repo, workdir, args.repeat, args.warmup, args.run_repeat, recorder)
            ratio, pool_ratio = report_one_step(one)
            many = measure_many(gen, repo, workdir, args.parallel, args.rounds, recorder)
            report_many(many, args.parallel)

    passed = ratio <= GOAL_RATIO and pool_ratio <= POOL_GOAL_RATIO
    print(
        f"{'PASS' if passed else 'FAIL'}: step_worktree/raw = {ratio:.2f} per step "
        f"(goal <= {GOAL_RATIO:.2f}), with the warm pool {pool_ratio:.2f} (goal <= {POOL_GOAL_RATIO:.2f}); "
        f"the benchmark took {time.perf_counter() - began:.0f}s"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
