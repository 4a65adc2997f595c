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

from treeflow.console import LiveSink, PlainSink
from treeflow.core.agent import STATES, TASK_FILE, TREEFLOW_DIR, AgentStatus, find_task, report
from treeflow.core.clean import clean
from treeflow.core.events import EventSink, NullSink
from treeflow.core.git import NotARepository, open_repository
from treeflow.core.model import RunStatus
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
    clean.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

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
        if args.command == "clean":
            return anyio.run(clean_command, args)
        if args.command == "agent":
            return agent_report_command(args)
        if args.command == "init":
            return init_command(args)
        if args.command == "serve":
            return serve_command(args)
        return anyio.run(run_command, args)
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
    repo = await open_repository(args.repo)
    path = _workflow_path(args.workflow, args.repo if args.workflow else repo.root)
    workflow = load_workflow(path)
    options = RunOptions(select=tuple(args.step), max_parallel=args.max_parallel)
    with ExitStack() as stack:
        sink: EventSink
        if args.json:
            sink = NullSink()
        elif sys.stdout.isatty():
            sink = stack.enter_context(LiveSink(Console()))
        else:
            sink = PlainSink(sys.stdout)
        run = Run(workflow, repo, sink, options, workspace=GitWorkspace(repo, workflow))
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_signal, run)
            result = await run.execute()
            group.cancel_scope.cancel()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    if result.status is RunStatus.CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status is RunStatus.SUCCEEDED else EXIT_FAILED


async def clean_command(args: argparse.Namespace) -> int:
    repo = await open_repository(args.repo)
    actions = await clean(repo, dry_run=args.dry_run)
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


if __name__ == "__main__":
    sys.exit(main())
