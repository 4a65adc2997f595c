"""The `treeflow` command: a thin adapter from the terminal to the engine in `treeflow.core`."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import anyio
from rich.console import Console
from rich.text import Text

from treeflow.console import (
    LiveSink,
    PlainSink,
    describe_result_branch,
    describe_run,
    runs_table,
    summary_table,
)
from treeflow.core import journal
from treeflow.core.agent import STATES, TASK_FILE, TREEFLOW_DIR, AgentStatus, find_task, report
from treeflow.core.clean import clean
from treeflow.core.events import EventSink, FanOut, NullSink
from treeflow.core.git import NotARepository, Repository, open_repository
from treeflow.core.journal import Journal
from treeflow.core.model import RunStatus, StepStatus, Workflow
from treeflow.core.recovery import recover
from treeflow.core.runner import Run, RunOptions, UnknownStep
from treeflow.core.spec import WorkflowError, find_workflow, load_workflow
from treeflow.core.worktree import GitWorkspace, WorkspaceError
from treeflow.cursor_rule import CURSOR_RULE

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

log = logging.getLogger("treeflow")


class UsageError(Exception):
    """Something the user asked for cannot be done as asked; exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="treeflow",
        description="Run a graph of shell and coding-agent steps in parallel, each in its own git worktree.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a workflow")
    run.add_argument(
        "workflow",
        nargs="?",
        type=Path,
        help="workflow file (default: treeflow.yml or the single .treeflow/*.yml of the repository)",
    )
    run.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="ID",
        help="run this step and what it needs (repeatable)",
    )
    run.add_argument("--max-parallel", type=_positive_int, metavar="N", help="at most N steps at once")
    run.add_argument("--json", action="store_true", help="print only the result as JSON on stdout")
    run.add_argument(
        "--repo",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="the git repository to run in (default: the current directory)",
    )

    validate = commands.add_parser("validate", help="check a workflow file and report every error")
    validate.add_argument("workflow", nargs="?", type=Path)
    validate.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    clean = commands.add_parser(
        "clean", help="remove leftover worktrees and treeflow branches whose work is kept elsewhere"
    )
    clean.add_argument("--dry-run", action="store_true", help="only say what would be done")
    clean.add_argument(
        "--keep-days",
        type=_positive_int,
        default=30,
        metavar="N",
        help="forget runs (journal rows and logs) that ended more than N days ago (default 30)",
    )
    clean.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    runs = commands.add_parser("runs", help="list the runs of this repository, newest first")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N runs (default 20)"
    )
    runs.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    show = commands.add_parser("show", help="show one run: steps, outcomes, durations, branches, logs")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    show.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    resume = commands.add_parser("resume", help="run again the steps of a run that did not succeed")
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument("--max-parallel", type=_positive_int, metavar="N", help="at most N steps at once")
    resume.add_argument("--json", action="store_true", help="print only the result as JSON on stdout")
    resume.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    agent = commands.add_parser("agent", help="commands for coding agents working on a treeflow task")
    agent_commands = agent.add_subparsers(dest="agent_command", required=True, metavar="COMMAND")
    report = agent_commands.add_parser(
        "report", help="report the state of the task of this worktree (run from inside it)"
    )
    report.add_argument("--state", required=True, choices=STATES)
    report.add_argument("--progress", type=_fraction, metavar="F", help="how far along, from 0 to 1")
    report.add_argument("--message", metavar="M", help="what the agent is doing now")
    report.add_argument("--summary", metavar="S", help="what the agent did (with a final state)")
    report.add_argument("--error", metavar="E", help="why the agent failed")

    serve = commands.add_parser("serve", help="run the language server over stdio (for editors)")
    serve.add_argument(
        "--log-file", type=Path, default=_default_server_log(), metavar="FILE", help="where the server logs"
    )

    init = commands.add_parser("init", help="set up editor integrations in this repository")
    init.add_argument(
        "--cursor", action="store_true", help="write .cursor/rules/treeflow.mdc for Cursor's agents"
    )
    init.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="treeflow: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "validate":
            return validate_command(args)
        if args.command in ASYNC_COMMANDS:
            return anyio.run(ASYNC_COMMANDS[args.command], args)
        if args.command == "agent":
            return agent_report_command(args)
        if args.command == "init":
            return init_command(args)
        if args.command == "serve":
            return serve_command(args)
        raise AssertionError(f"unhandled command {args.command}")
    except WorkflowError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        count = len(exc.errors)
        print(f"{count} error{'s' if count != 1 else ''} in the workflow", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, NotARepository, UnknownStep, WorkspaceError) as exc:
        print(f"treeflow: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _workflow_path(given: Path | None, repo_dir: Path) -> Path:
    if given is not None:
        if not given.is_file():
            raise UsageError(f"{given}: no such workflow file")
        return given
    try:
        return find_workflow(repo_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc


def validate_command(args: argparse.Namespace) -> int:
    path = _workflow_path(args.workflow, args.repo)
    workflow = load_workflow(path)
    print(f"{path}: ok ({len(workflow.steps)} steps)")
    return EXIT_OK


async def run_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    path = _workflow_path(args.workflow, args.repo if args.workflow else repo.root)
    workflow = load_workflow(path)
    options = RunOptions(select=tuple(args.step), max_parallel=args.max_parallel)
    return await _execute(args, repo, workflow, options, GitWorkspace(repo, workflow))


async def resume_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    record = await anyio.to_thread.run_sync(journal.read_run, journal.journal_path(repo), args.run_id)
    if record is None:
        raise UsageError(f"no run {args.run_id} in the journal of {repo.root} (see `treeflow runs`)")
    status = record.run.status
    if status is RunStatus.RUNNING:
        raise UsageError(f"run {args.run_id} is still going on in another treeflow process")
    if status is RunStatus.SUCCEEDED:
        raise UsageError(f"run {args.run_id} succeeded; there is nothing to resume")
    workflow = load_workflow(record.run.workflow_path)
    selected = tuple(step_id for step_id in record.steps if step_id in workflow.steps)
    completed = {
        step_id: step.result
        for step_id, step in record.steps.items()
        if step.result.status is StepStatus.SUCCEEDED and step_id in workflow.steps
    }
    base = record.run.base_commit
    results = {
        step_id: record.steps[step_id].result.commit or record.steps[step_id].start_commit or base or ""
        for step_id in completed
    }
    options = RunOptions(
        select=selected, max_parallel=args.max_parallel, run_id=args.run_id, completed=completed
    )
    workspace = GitWorkspace(repo, workflow, base=base, results=results)
    return await _execute(args, repo, workflow, options, workspace)


async def _execute(
    args: argparse.Namespace,
    repo: Repository,
    workflow: Workflow,
    options: RunOptions,
    workspace: GitWorkspace,
) -> int:
    run_journal = Journal(repo)
    try:
        with ExitStack() as stack:
            display: EventSink
            if args.json:
                display = NullSink()
            elif sys.stdout.isatty():
                display = stack.enter_context(LiveSink(Console()))
            else:
                display = PlainSink(sys.stdout)
            run = Run(workflow, repo, FanOut([run_journal, display]), options, workspace=workspace)
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_signal, run)
                result = await run.execute()
                group.cancel_scope.cancel()
    finally:
        await anyio.to_thread.run_sync(run_journal.close)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    if result.status is RunStatus.CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status is RunStatus.SUCCEEDED else EXIT_FAILED


async def _open_and_recover(directory: Path) -> Repository:
    """The repository, after recovering any run whose treeflow process died."""
    repo = await open_repository(directory)
    await recover(repo, lambda message: print(f"treeflow: {message}", file=sys.stderr))
    return repo


async def runs_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    records = await anyio.to_thread.run_sync(journal.read_runs, journal.journal_path(repo), args.limit)
    if args.json:
        print(json.dumps([record.run.to_json() for record in records], indent=2))
    elif not records:
        print("no runs yet")
    else:
        Console().print(runs_table([record.run for record in records]))
    return EXIT_OK


async def show_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    record = await anyio.to_thread.run_sync(journal.read_run, journal.journal_path(repo), args.run_id)
    if record is None:
        raise UsageError(f"no run {args.run_id} in the journal of {repo.root} (see `treeflow runs`)")
    if args.json:
        print(json.dumps(record.run.to_json(), indent=2))
    else:
        console = Console()
        console.print(summary_table(record.run))
        console.print(Text(describe_run(record.run)))
        branch = describe_result_branch(record.run)
        if branch:
            console.print(Text(branch))
    return EXIT_OK


async def clean_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    actions = await clean(repo, dry_run=args.dry_run, keep_days=args.keep_days)
    for action in actions:
        print(action)
    if not actions:
        print("nothing to clean")
    return EXIT_FAILED if any(action.failed for action in actions) else EXIT_OK


def agent_report_command(args: argparse.Namespace) -> int:
    task = find_task(Path.cwd())
    if task is None:
        raise UsageError(
            f"no treeflow task here: {Path.cwd()} is not inside a treeflow step's worktree "
            f"(looked for {TREEFLOW_DIR}/{TASK_FILE} in it and its parents)"
        )
    status = AgentStatus(
        state=args.state, progress=args.progress, message=args.message, summary=args.summary, error=args.error
    )
    report(task, status)
    return EXIT_OK


def _default_server_log() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "treeflow" / "server.log"


def serve_command(args: argparse.Namespace) -> int:
    # pygls and lsprotocol take about 300 ms to import; only `serve` loads them, so that every
    # other command starts without that cost.
    lsp = importlib.import_module("treeflow.lsp")
    server = lsp.create_server()
    lsp.configure_logging(server, args.log_file, args.verbose)
    code: int = anyio.run(server.serve, sys.stdin.buffer, sys.stdout.buffer)
    return code


def init_command(args: argparse.Namespace) -> int:
    if not args.cursor:
        raise UsageError("say what to set up: treeflow init --cursor")
    target = args.repo / ".cursor" / "rules" / "treeflow.mdc"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(CURSOR_RULE, encoding="utf-8")
    print(f"wrote {target}")
    return EXIT_OK


async def _cancel_on_signal(run: Run) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.warning("%s: cancelling the run; stopping every step", signal.Signals(signum).name)
            run.cancel()


ASYNC_COMMANDS = {
    "run": run_command,
    "resume": resume_command,
    "runs": runs_command,
    "show": show_command,
    "clean": clean_command,
}

if __name__ == "__main__":
    sys.exit(main())
