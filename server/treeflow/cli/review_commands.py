"""`treeflow diff`, `apply` and `discard`, and the change stats `treeflow show` adds: reviewing a
run's work and bringing it into the checkout, through the engine's `changes`, `apply` and
`discard` modules.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from treeflow.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from treeflow.cli.plain_output import print_json
from treeflow.core.apply import (
    ApplyMode,
    ApplyOutcome,
    ApplyResult,
    ConflictPolicy,
    UndoRefused,
    apply_work,
    undo_apply,
)
from treeflow.core.checkout import CheckoutRefused, refuse_if_bare
from treeflow.core.discard import DiscardPlan, discard, plan_discard
from treeflow.core.git import Repository, open_repository
from treeflow.core.journal import RunRecord
from treeflow.core.recovery import recover
from treeflow.core.run_work import NoWork, RunWork, StepsConflict, run_work, step_commits
from treeflow.core.service import find_run

if TYPE_CHECKING:
    from treeflow.core.changes import FileChange

_STAT_WIDTH = 40


async def _open(args: argparse.Namespace) -> Repository:
    await refuse_if_bare(args.repo)
    repo = await open_repository(args.repo)
    await recover(repo, lambda message: print(f"treeflow: {message}", file=sys.stderr))
    return repo


def _refusal(error: Exception) -> int:
    print(f"treeflow: {error}", file=sys.stderr)
    return EXIT_USAGE


async def diff_command(args: argparse.Namespace) -> int:
    # Deferred: GitPython, 40-90 ms that no other command needs.
    from treeflow.core.changes import read_changes, read_patch

    try:
        repo = await _open(args)
        record = await find_run(repo, args.run_id)
        work = await run_work(repo, record, [args.step] if args.step else [])
    except (CheckoutRefused, NoWork) as exc:
        return _refusal(exc)
    if not (args.stat or args.name_only or args.json):
        sys.stdout.flush()
        sys.stdout.buffer.write(await read_patch(repo.root, work.base, work.commit))
        return EXIT_OK
    changes = await read_changes(repo.root, work.base, work.commit)
    if args.json:
        print_json({"run_id": work.run_id, "step": args.step, **changes.to_json()})
    elif args.name_only:
        for change in changes.files:
            print(change.path)
    else:
        for line in stat_lines(changes.files):
            print(line)
    return EXIT_OK


def stat_lines(files: Sequence[FileChange]) -> list[str]:
    """`git diff --stat` style: a line per file, then the totals."""
    if not files:
        return []
    names = [f"{f.old_path} => {f.path}" if f.old_path else f.path for f in files]
    width = max(len(name) for name in names)
    biggest = max((f.additions + f.deletions for f in files), default=0)
    scale = min(1.0, _STAT_WIDTH / biggest) if biggest else 1.0
    lines = []
    for name, change in zip(names, files, strict=True):
        if change.binary:
            graph = "Bin"
        else:
            total = change.additions + change.deletions
            graph = (
                f"{total} " + "+" * round(change.additions * scale) + "-" * round(change.deletions * scale)
            ).rstrip()
            if change.status == "mode":
                graph = "mode only"
        lines.append(f" {name.ljust(width)} | {graph}")
    additions = sum(f.additions for f in files)
    deletions = sum(f.deletions for f in files)
    lines.append(f" {describe_stat(len(files), additions, deletions)}")
    return lines


def describe_stat(files: int, additions: int, deletions: int) -> str:
    return f"+{additions} -{deletions} in {files} file{'s' if files != 1 else ''}"


async def apply_command(args: argparse.Namespace) -> int:
    if args.undo:
        if args.run_id or args.step:
            return _refusal(ValueError("apply --undo takes no RUN_ID or --step: it undoes the last apply"))
        return await _undo(args)
    if not args.run_id:
        return _refusal(ValueError("say which run to apply: treeflow apply RUN_ID (or --undo)"))
    try:
        repo = await _open(args)
        record = await find_run(repo, args.run_id)
        work = await run_work(repo, record, args.step)
        result = await apply_work(
            repo, work, mode=ApplyMode(args.mode), on_conflict=ConflictPolicy(args.conflicts)
        )
    except StepsConflict as exc:
        print(f"treeflow: cannot apply: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_FAILED
    except (CheckoutRefused, NoWork) as exc:
        return _refusal(exc)
    return _report_apply(result, work)


def _report_apply(result: ApplyResult, work: RunWork) -> int:
    where = {
        ApplyMode.WORKING_TREE: "your working tree",
        ApplyMode.SQUASH: "a commit on your current branch",
        ApplyMode.MERGE: "a merge commit on your current branch",
    }[result.mode]
    if result.outcome is ApplyOutcome.ALREADY_APPLIED:
        print(f"{result.work} is already applied: your checkout holds all of its work; nothing changed")
        return EXIT_OK
    if result.outcome is ApplyOutcome.CONFLICTS:
        print(
            f"treeflow: cannot apply {result.work}: it conflicts with {result.conflicts_with} in",
            file=sys.stderr,
        )
        for conflict in result.conflicts:
            print(f"  {conflict.describe()}", file=sys.stderr)
        hint = (
            "`--conflicts markers` writes conflict markers into these files and applies the rest"
            if result.mode is ApplyMode.WORKING_TREE
            else "apply it with `--mode working-tree` (add `--conflicts markers` to write conflict markers)"
        )
        print(f"nothing was changed; {hint}", file=sys.stderr)
        return EXIT_FAILED
    commit = f" {result.commit[:10]}" if result.commit else ""
    print(f"applied {result.work} as {where}{commit}: {len(result.files)} files changed")
    for path in result.files:
        print(f"  {path}")
    print(f"your checkout as it was is kept in {result.backup}; `treeflow apply --undo` puts it back")
    if result.conflicts:
        print(
            f"treeflow: conflict markers written in {len(result.conflicts)} files; resolve them:",
            file=sys.stderr,
        )
        for conflict in result.conflicts:
            print(f"  {conflict.describe()}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _undo(args: argparse.Namespace) -> int:
    try:
        repo = await _open(args)
        undone = await undo_apply(repo)
    except UndoRefused as exc:
        print(f"treeflow: {exc}", file=sys.stderr)
        for path in exc.paths:
            print(f"  {path}", file=sys.stderr)
        return EXIT_USAGE
    except CheckoutRefused as exc:
        return _refusal(exc)
    head = f", HEAD back at {undone.head[:10]}" if undone.head else ""
    print(f"undid the apply of {undone.work}: {len(undone.files)} files put back{head}")
    for path in undone.files:
        print(f"  {path}")
    return EXIT_OK


async def discard_command(args: argparse.Namespace) -> int:
    try:
        repo = await _open(args)
    except CheckoutRefused as exc:
        return _refusal(exc)
    record = await find_run(repo, args.run_id)
    plan = await plan_discard(repo, record)
    if not plan.branches:
        print(f"run {plan.run_id} has no branches left; nothing to discard")
        return EXIT_OK
    _print_plan(plan)
    if not args.yes:
        if not sys.stdin.isatty():
            print("treeflow: not a terminal, so nothing was deleted; add --yes to discard", file=sys.stderr)
            return EXIT_USAGE
        prompt = f"delete the {len(plan.branches)} branches of run {plan.run_id}? [y/N] "
        answer = await anyio.to_thread.run_sync(input, prompt)
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing was deleted")
            return EXIT_FAILED
    result = await discard(repo, plan)
    print(f"run {result.run_id} discarded: {len(result.deleted)} branches deleted")
    for name in result.kept:
        print(f"kept {name}: it is checked out in a worktree, or moved since it was listed")
    return EXIT_FAILED if result.kept else EXIT_OK


def _print_plan(plan: DiscardPlan) -> None:
    print(f"branches of run {plan.run_id}:")
    for branch in plan.branches:
        note = (
            f"{len(branch.unique_commits)} commit{'s' if len(branch.unique_commits) != 1 else ''} "
            "found nowhere else"
            if branch.unique_commits
            else "its commits are on other branches"
        )
        print(f"  {branch.name} ({note}{'; checked out, kept' if branch.checked_out else ''})")
        for subject in branch.unique_commits[:5]:
            print(f"      {subject}")


async def add_changes(repo: Repository, record: RunRecord, data: dict[str, Any]) -> None:
    """Give the result object ``data`` of ``record``'s run (as `show --json` prints it) the change
    stat of the run's result (`changes`) and of each step (`steps.<id>.changes`), None where there
    is no work to compare; and `discarded_at`."""
    # Deferred: GitPython, as in `diff`.
    from treeflow.core.changes import read_changes

    run = record.run
    data["discarded_at"] = record.discarded_at
    data["changes"] = None
    for step in data["steps"].values():
        step["changes"] = None
    if run.base_commit is None or record.discarded_at is not None:
        return
    try:
        work = await run_work(repo, record)
    except NoWork:
        pass
    else:
        data["changes"] = (await read_changes(repo.root, work.base, work.commit)).stat_json()
    for step_id, commit in (await step_commits(repo, record)).items():
        data["steps"][step_id]["changes"] = (
            await read_changes(repo.root, run.base_commit, commit)
        ).stat_json()


def change_lines(data: dict[str, Any]) -> list[str]:
    """The stats `add_changes` gave ``data``, for a person."""
    lines = []
    if data["changes"] is not None:
        lines.append(f"changes of the result: {_stat_text(data['changes'])}")
    for step_id, step in data["steps"].items():
        if step["changes"] is not None:
            lines.append(f"  {step_id}: {_stat_text(step['changes'])}")
    if data["discarded_at"] is not None:
        lines.append("discarded: its branches were deleted")
    return lines


def _stat_text(stat: dict[str, int]) -> str:
    return describe_stat(stat["files"], stat["additions"], stat["deletions"])
