"""What each `treeflow` command but `serve` does, once the entry point has read the command line.

Everything here may load the engine; the entry point imports this module only once it knows the
command is not `serve` (see entry.py).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

import anyio

from treeflow.cli import interrupts
from treeflow.cli.approval_prompt import TerminalApprovals
from treeflow.cli.cursor_rule import CURSOR_RULE
from treeflow.cli.exit_codes import (
    EXIT_EXISTS,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_INSTALLED,
    EXIT_NOT_WAITING,
    EXIT_OK,
    EXIT_USAGE,
)
from treeflow.cli.plain_output import PlainSink, print_json, write_run, write_runs
from treeflow.cli.review_commands import (
    add_changes,
    apply_command,
    change_lines,
    diff_command,
    discard_command,
)
from treeflow.cli.terminal_text import shown, shown_line
from treeflow.core import journal
from treeflow.core.agent import AgentStatus, find_task, report
from treeflow.core.agent_protocol import TASK_FILE, TREEFLOW_DIR
from treeflow.core.clean import clean
from treeflow.core.events import EventSink, FanOut, NullSink
from treeflow.core.gatekeeper import NotWaiting, decide
from treeflow.core.gates import Channel
from treeflow.core.git import NotARepository, Repository, open_repository
from treeflow.core.git_workspace import WorkspaceError
from treeflow.core.journal import JournalUnavailable
from treeflow.core.matrix import written_ids
from treeflow.core.model import RunStatus, Workflow
from treeflow.core.recovery import recover
from treeflow.core.remote.choice import ExecutorRefused, ExecutorUnavailable, choose_executor
from treeflow.core.runner import Run, UnknownStep
from treeflow.core.service import ResumePlan, RunRefused, find_run, load_resume, start_run
from treeflow.core.spec import WorkflowError, find_workflow, load_workflow
from treeflow.core.spec_reader import SpecError
from treeflow.core.starter import STARTER_NAME, WorkflowExists, write_starter
from treeflow.core.step_outputs import OUTPUT_NAME, OUTPUT_NAME_RULE
from treeflow.core.workflow_checks import BASE_KEYWORDS, repository_problems

log = logging.getLogger("treeflow")


class UsageError(Exception):
    """Something the user asked for cannot be done as asked; exit status 2."""


def dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; errors the user can cause become a message and exit status 2."""
    try:
        return _dispatch_unwrapped(args)
    except BaseExceptionGroup as group:
        # A task group wraps what its tasks raise; an error of the user's is still the user's.
        _, others = group.split(_USER_ERRORS)
        if others is not None:
            raise
        return _report_user_error(_first_leaf(group))


_USER_ERRORS = (
    WorkflowError,
    UsageError,
    NotARepository,
    UnknownStep,
    WorkspaceError,
    JournalUnavailable,
    RunRefused,
    ExecutorRefused,
)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _report_user_error(error: BaseException) -> int:
    """Say what is wrong; exit status 2."""
    if isinstance(error, WorkflowError):
        for line in error.errors:
            print(shown(str(line)), file=sys.stderr)
        count = len(error.errors)
        print(f"{count} error{'s' if count != 1 else ''} in the workflow", file=sys.stderr)
    else:
        print(f"treeflow: {shown(str(error))}", file=sys.stderr)
    if isinstance(error, ExecutorUnavailable):
        return EXIT_NOT_INSTALLED
    return EXIT_USAGE


def _dispatch_unwrapped(args: argparse.Namespace) -> int:
    if args.command not in ("run", "resume"):
        interrupts.release()
    try:
        if args.command == "validate":
            return validate_command(args)
        if args.command in ASYNC_COMMANDS:
            return anyio.run(ASYNC_COMMANDS[args.command], args)
        if args.command == "agent":
            return agent_report_command(args)
        if args.command == "init":
            return init_command(args)
        raise AssertionError(f"unhandled command {args.command}")
    except _USER_ERRORS as exc:
        return _report_user_error(exc)


def _workflow_path(given: Path | None, repo_dir: Path) -> Path:
    if given is not None:
        if not given.is_file():
            raise UsageError(f"{given}: no such workflow file")
        return given
    try:
        return find_workflow(repo_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc


def _enclosing_repository(folder: Path) -> Path:
    """The root of the git checkout holding ``folder`` (where `run` looks for a workflow), found
    without git so that `validate` stays instant; ``folder`` itself outside any checkout."""
    folder = folder.absolute()
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return folder


def validate_command(args: argparse.Namespace) -> int:
    path = _workflow_path(args.workflow, args.repo if args.workflow else _enclosing_repository(args.repo))
    workflow = load_workflow(path)
    if workflow.base not in BASE_KEYWORDS:
        # Only a revision needs git; outside a repository there is nothing to check it against.
        problems = anyio.run(_repository_problems, workflow, args.repo)
        if problems:
            raise WorkflowError(problems)
    written = len(written_ids(workflow.steps))
    expanded = "" if written == len(workflow.steps) else f", {len(workflow.steps)} with matrix combinations"
    print(f"{path}: ok ({written} steps{expanded})")
    return EXIT_OK


async def _repository_problems(workflow: Workflow, folder: Path) -> list[SpecError]:
    try:
        repo = await open_repository(folder)
    except NotARepository:
        return []
    text = await anyio.Path(workflow.path).read_text(encoding="utf-8")
    return await repository_problems(workflow, text, repo)


async def run_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    # Absolute, as the journal keeps it for `resume`, which may start from another folder.
    path = _workflow_path(args.workflow, args.repo if args.workflow else repo.root).absolute()
    workflow = load_workflow(path)
    return await _execute(args, repo, workflow, steps=tuple(args.step))


async def resume_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    workflow, plan = await load_resume(repo, args.run_id, rebase=args.rebase)
    return await _execute(args, repo, workflow, resume=plan)


async def _execute(
    args: argparse.Namespace,
    repo: Repository,
    workflow: Workflow,
    *,
    steps: tuple[str, ...] = (),
    resume: ResumePlan | None = None,
) -> int:
    with ExitStack() as stack:
        display: EventSink
        prompt: TerminalApprovals | None = None
        if args.json:
            display = NullSink()
        elif sys.stdout.isatty():
            # Deferred: rich, about 30 ms, a fifth of the start-up of a run piped or in `--json`.
            from treeflow.cli.live_output import LiveSink

            live = stack.enter_context(LiveSink())
            display = live
            if sys.stdin.isatty():
                prompt = TerminalApprovals(repo, live.paused)
                display = FanOut([live, prompt])
        else:
            display = PlainSink(sys.stdout)
        executor = choose_executor(
            workflow, given=args.executor, scheduler=args.dask_scheduler, insecure=args.insecure
        )
        started = start_run(
            repo,
            workflow,
            display,
            steps=steps,
            max_parallel=args.max_parallel,
            resume=resume,
            reuse_cache=not args.no_cache,
            executor=executor,
        )
        async with anyio.create_task_group() as group:
            group.start_soon(_cancel_on_signal, started.run)
            if prompt is not None:
                group.start_soon(prompt.serve)
            result = await started.execute()
            group.cancel_scope.cancel()
        # The run is over and only the report is left: a late Ctrl-C has nothing to stop, and
        # would only break the report off with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.json:
        print_json(result.to_json())
    if result.status is RunStatus.CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status is RunStatus.SUCCEEDED else EXIT_FAILED


async def _open_and_recover(directory: Path) -> Repository:
    """The repository, after recovering any run whose treeflow process died."""
    repo = await open_repository(directory)
    await recover(repo, lambda message: print(f"treeflow: {shown(message)}", file=sys.stderr))
    return repo


async def runs_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    records = await anyio.to_thread.run_sync(journal.read_runs, journal.journal_path(repo), args.limit)
    discarded = {record.run.run_id for record in records if record.discarded_at is not None}
    if args.json:
        print_json([{**record.run.to_json(), "discarded_at": record.discarded_at} for record in records])
    elif not records:
        print("no runs yet")
    elif not sys.stdout.isatty():
        write_runs([record.run for record in records], sys.stdout, discarded)
    else:
        # Deferred: rich, about 30 ms, which `--json` and a pipe do without.
        from treeflow.cli.live_output import print_runs

        print_runs([record.run for record in records], discarded)
    return EXIT_OK


async def show_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    record = await find_run(repo, args.run_id)
    data = record.run.to_json()
    await add_changes(repo, record, data)
    if args.json:
        print_json(data)
        return EXIT_OK
    if not sys.stdout.isatty():
        write_run(record.run, sys.stdout)
    else:
        # Deferred: rich, about 30 ms, which `--json` and a pipe do without.
        from treeflow.cli.live_output import print_run

        print_run(record.run)
    for line in change_lines(data):
        print(shown(line))
    return EXIT_OK


async def approve_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    record = await find_run(repo, args.run_id)
    run = record.run
    if args.step not in run.steps:
        known = ", ".join(run.steps)
        raise UsageError(f"run {run.run_id} has no step {args.step} (its steps: {known})")
    try:
        approval = await decide(
            repo, run.run_id, args.step, approve=not args.reject, via=Channel.CLI, note=args.message
        )
    except NotWaiting as exc:
        print(f"treeflow: {shown(str(exc))}", file=sys.stderr)
        return EXIT_NOT_WAITING
    print(f"{args.step} of run {run.run_id}: {shown_line(approval.describe())}")
    if run.status is not RunStatus.RUNNING or not record.owner_alive():
        print(f"run {run.run_id} is not running: `treeflow resume {run.run_id}` goes on with this decision")
    return EXIT_OK


async def clean_command(args: argparse.Namespace) -> int:
    repo = await _open_and_recover(args.repo)
    actions = await clean(repo, dry_run=args.dry_run, keep_days=args.keep_days, keep_cache=args.keep_cache)
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
        state=args.state,
        progress=args.progress,
        message=args.message,
        summary=args.summary,
        error=args.error,
        outputs=_agent_outputs(args.output) or None,
    )
    report(task, status)
    return EXIT_OK


def _agent_outputs(given: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` arguments as outputs; the last value of a name given twice wins."""
    outputs: dict[str, str] = {}
    for argument in given:
        name, equals, value = argument.partition("=")
        if not equals or not OUTPUT_NAME.fullmatch(name):
            raise UsageError(
                f"--output {shown_line(argument)!r}: write NAME=VALUE, the name {OUTPUT_NAME_RULE}"
            )
        outputs[name] = value
    return outputs


def init_command(args: argparse.Namespace) -> int:
    if args.cursor:
        target = args.repo / ".cursor" / "rules" / "treeflow.mdc"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(CURSOR_RULE, encoding="utf-8")
        print(f"wrote {target}")
        return EXIT_OK
    folder = _enclosing_repository(args.repo)
    try:
        path = write_starter(folder, force=args.force).path
    except WorkflowExists as exc:
        print(f"treeflow: {shown(str(exc))}", file=sys.stderr)
        return EXIT_EXISTS
    except OSError as exc:
        raise UsageError(f"cannot write {folder / STARTER_NAME}: {exc.strerror}") from exc
    workflow = load_workflow(path)
    print(f"wrote {path} ({len(workflow.steps)} steps); run it with: treeflow run")
    return EXIT_OK


async def _cancel_on_signal(run: Run) -> None:
    heard = (signal.SIGTERM,) if interrupts.ignored() else (signal.SIGINT, signal.SIGTERM)
    with anyio.open_signal_receiver(*heard) as signals:
        if interrupts.pending():
            log.warning("SIGINT: cancelling the run; stopping every step")
            run.cancel()
        async for signum in signals:
            log.warning("%s: cancelling the run; stopping every step", signal.Signals(signum).name)
            run.cancel()


ASYNC_COMMANDS = {
    "run": run_command,
    "resume": resume_command,
    "runs": runs_command,
    "show": show_command,
    "clean": clean_command,
    "approve": approve_command,
    "diff": diff_command,
    "apply": apply_command,
    "discard": discard_command,
}
