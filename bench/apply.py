"""Applying a run's work: `treeflow apply` against the raw git that does the same, in one run.

In the generated repository of bench/worktree.py (about 5,000 files, 50 MB) a treeflow run changes
500 files (a line appended to each); the checkout then has 20 uncommitted edits to other files.
Each round times, in alternating order, from the same starting state:

- `treeflow apply RUN_ID` as a user runs it (a new process: interpreter start included);
- the raw git equivalent: `git stash && git merge --squash <result branch> && git stash pop`.

Between rounds the checkout is put back (`git reset --hard`, the 20 edits written again, treeflow's
backup refs removed). It also times reading the run's changes in process (`read_changes`, what
`treeflow diff --json` and the editor's review read), `treeflow diff RUN_ID --json` as a process, and
the language server's `treeflow.diff` of the run (request to reply, on a server already initialized,
as the editor's "Review Changes" and its change stat ask for it), beside the `git diff` that all of
them run to count the lines.

    .venv/bin/python bench/apply.py [--files 5000] [--changed 500] [--edits 20] [--rounds 7]

Exits 0 when the median ratio treeflow / raw is at most 1.5 and the median `treeflow.diff` takes at
most 200 ms, 1 when either is not met.
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
from collections.abc import Sequence
from pathlib import Path

import anyio

from _common import GIT_IDENTITY, child_env, compile_treeflow, percentile, print_header
from lsp import Setup, initialize_params, load_capabilities, spawned
from treeflow.core.changes import read_changes
from worktree import generate_repo

GOAL_RATIO = 1.5
GOAL_LSP_DIFF_P50_S = 0.200
TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def _run(cwd: Path, command: Sequence[str]) -> float:
    """Run ``command`` in ``cwd``; its wall time in seconds. A failure ends the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {cwd}: exit {done.returncode}: {done.stderr.strip()}")
    return elapsed


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=child_env(), capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_run(repo: Path, files: Sequence[str], workdir: Path) -> tuple[str, str]:
    """A treeflow run whose result appends a line to each of ``files``: its id and result branch."""
    listing = workdir / "changed.txt"
    listing.write_text("\n".join(files) + "\n")
    workflow = workdir / "workflow.yml"
    workflow.write_text(
        "base: head\nsteps:\n"
        f'  change: {{run: "while read -r f; do echo changed by the run >> \\"$f\\"; done < {listing}"}}\n'
    )
    done = subprocess.run(
        [*TREEFLOW, "run", str(workflow), "--json"], cwd=repo, env=child_env(), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"the run failed: {done.stderr.strip()}")
    result = json.loads(done.stdout)
    return str(result["run_id"]), str(result["result_branch"])


def reset(repo: Path, head: str, edits: dict[str, str]) -> None:
    """The starting state: HEAD, a clean index, the uncommitted ``edits``, no backups."""
    _git(repo, "reset", "--quiet", "--hard", head)
    for ref in _git(repo, "for-each-ref", "--format=%(refname)", "refs/treeflow").splitlines():
        _git(repo, "update-ref", "-d", ref)
    for path, text in edits.items():
        (repo / path).write_text(text)
    # A status, as a user's editor would have run one, so neither side pays for a stale index.
    _git(repo, "status", "--porcelain")


def check_applied(repo: Path, changed: Sequence[str], edits: dict[str, str]) -> None:
    """Both ways must leave the same files: every change of the run and every edit."""
    for path in (changed[0], changed[-1]):
        if not (repo / path).read_text().endswith("changed by the run\n"):
            raise RuntimeError(f"{path} does not hold the run's change")
    for path, text in edits.items():
        if (repo / path).read_text() != text:
            raise RuntimeError(f"the uncommitted edit of {path} was lost")


def time_lsp_diff(root: Path, repo: Path, run_id: str, calls: int) -> tuple[list[float], int]:
    """``calls`` round trips of `treeflow.diff` through a `treeflow serve` on ``repo``, after one
    that warms it; and how many files the reply listed."""
    capabilities, _ = load_capabilities()
    setup = Setup(root, repo, child_env(), capabilities)
    times = []
    with spawned(setup) as server:
        server.request("initialize", initialize_params(setup))
        server.notify("initialized", {})
        arguments = {"command": "treeflow.diff", "arguments": [{"runId": run_id}]}
        files = len(server.request("workspace/executeCommand", arguments).result["files"])
        for _ in range(calls):
            reply = server.request("workspace/executeCommand", arguments)
            times.append(reply.at - reply.sent_at)
        server.shutdown()
    return times, files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=5000, help="files in the repository (default 5000)")
    parser.add_argument("--megabytes", type=float, default=50.0, help="their total size (default 50)")
    parser.add_argument("--changed", type=int, default=500, help="files the run changes (default 500)")
    parser.add_argument("--edits", type=int, default=20, help="uncommitted edits of the user (default 20)")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.changed + args.edits > args.files or min(args.changed, args.edits, args.rounds) < 1:
        parser.error("--changed plus --edits must fit in --files, and each must be at least 1")
    compile_treeflow()
    print_header(
        "treeflow apply benchmark",
        [
            f"repo     : {args.files} files, about {args.megabytes:g} MB, seed {args.seed}",
            f"run      : changes {args.changed} files; checkout: {args.edits} uncommitted edits to others",
            f"rounds   : {args.rounds}, alternating which goes first",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="treeflow-bench-apply-") as tmp:
        workdir = Path(tmp)
        os.environ.update(GIT_IDENTITY)
        os.environ["TREEFLOW_WORKTREE_ROOT"] = str(workdir / "treeflow-worktrees")
        gen = generate_repo(workdir / "repo", args.files, int(args.megabytes * 1e6), args.seed)
        repo = gen.root
        changed = gen.files[: args.changed]
        edits = {path: "an uncommitted edit\n" for path in gen.files[-args.edits :]}
        run_id, branch = make_run(repo, changed, workdir)
        head = _git(repo, "rev-parse", "HEAD")
        print(f"-- repository: {len(gen.files)} files, {gen.total_bytes / 1e6:.1f} MB; run {run_id}")

        treeflow_s: list[float] = []
        raw_s: list[float] = []
        raw = [
            "sh",
            "-c",
            f"git stash --quiet && git merge --quiet --squash {branch} && git stash pop --quiet",
        ]
        for round_number in range(args.rounds + 1):
            order = [("treeflow", True), ("raw", False)]
            for name, is_treeflow in order if round_number % 2 else reversed(order):
                reset(repo, head, edits)
                elapsed = _run(repo, [*TREEFLOW, "apply", run_id] if is_treeflow else raw)
                check_applied(repo, changed, edits)
                if round_number:  # the first round warms the caches and is not counted
                    (treeflow_s if name == "treeflow" else raw_s).append(elapsed)
        reset(repo, head, edits)

        base = _git(repo, "rev-parse", f"{branch}~1")
        reads = []
        for _ in range(args.rounds * 3):
            started = time.perf_counter()
            changes = anyio.run(read_changes, repo, base, branch)
            reads.append(time.perf_counter() - started)
        diff_cli = [_run(repo, [*TREEFLOW, "diff", run_id, "--json"]) for _ in range(args.rounds)]
        # What every reading of the changes pays: git's own line counts of the 500 files.
        numstat = ["git", "diff", "--raw", "--numstat", "-z", "-M", "--no-abbrev", base, branch]
        diff_raw = [_run(repo, numstat) for _ in range(args.rounds * 3)]
        diff_lsp, lsp_files = time_lsp_diff(workdir, repo, run_id, args.rounds * 3)
        if lsp_files != len(changes.files):
            raise RuntimeError(f"treeflow.diff listed {lsp_files} files, read_changes {len(changes.files)}")

    med = statistics.median
    ratio = med(treeflow_s) / med(raw_s)
    print(f"   {'':40} {'median':>9} {'min':>9} {'max':>9}")
    for label, values in [
        ("treeflow apply (CLI, start included)", treeflow_s),
        ("git stash; merge --squash; stash pop", raw_s),
        (f"read_changes in process ({len(changes.files)} files)", reads),
        ("treeflow diff --json (CLI)", diff_cli),
        ("treeflow.diff (language server)", diff_lsp),
        ("git diff --raw --numstat -M (raw git)", diff_raw),
    ]:
        print(
            f"   {label:40} {med(values) * 1e3:7.0f}ms {min(values) * 1e3:7.0f}ms {max(values) * 1e3:7.0f}ms"
        )
    print(f"   read_changes p95: {percentile(reads, 0.95) * 1e3:.0f}ms")
    print(f"   treeflow.diff p95: {percentile(diff_lsp, 0.95) * 1e3:.0f}ms")
    print()
    passed = ratio <= GOAL_RATIO
    verdict = "met" if passed else "NOT met"
    print(f"ratio treeflow apply / raw git: {ratio:.2f} (goal <= {GOAL_RATIO}): {verdict}")
    lsp_p50 = med(diff_lsp)
    lsp_passed = lsp_p50 <= GOAL_LSP_DIFF_P50_S
    print(
        f"treeflow.diff through the language server: p50 {lsp_p50 * 1e3:.0f}ms "
        f"(goal <= {GOAL_LSP_DIFF_P50_S * 1e3:.0f}ms): {'met' if lsp_passed else 'NOT met'}"
    )
    return 0 if passed and lsp_passed else 1


if __name__ == "__main__":
    sys.exit(main())
