"""The command line of `treeflow`: its commands, their options, and the checks on their values."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from treeflow.core.agent_protocol import STATES

_RUN_ID_HELP = "a run id, any unique prefix of one, or `last` for the newest run"
_NO_CACHE_HELP = "run every step, even those whose work the cache holds (what succeeds is still kept)"


# Options whose value is free text an agent wrote, which may start with '-' ("--force was needed").
_TEXT_OPTIONS = ("--message", "--summary", "--error")


def parse_command_line(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line ``argv`` (by default the process's) read by `build_parser`."""
    return build_parser().parse_args(_text_values_attached(sys.argv[1:] if argv is None else argv))


def _text_values_attached(argv: Sequence[str]) -> list[str]:
    """``argv`` with each text option joined to the word after it (``--message=-x``): argparse
    takes a word that starts with '-' for an option, and would refuse such a message."""
    words = list(argv)
    joined: list[str] = []
    while words:
        word = words.pop(0)
        if word in _TEXT_OPTIONS and words:
            word = f"{word}={words.pop(0)}"
        joined.append(word)
    return joined


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
    run.add_argument("--no-cache", action="store_true", help=_NO_CACHE_HELP)
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
        type=_days,
        default=30,
        metavar="N",
        help="forget runs (journal rows and logs) that ended more than N days ago, and cached step "
        "results not used for N days (default 30)",
    )
    clean.add_argument(
        "--keep-cache",
        type=_days,
        default=1000,
        metavar="N",
        help="keep at most the N cached step results used last (default 1000)",
    )
    clean.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    runs = commands.add_parser("runs", help="list the runs of this repository, newest first")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    runs.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N runs (default 20)"
    )
    runs.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    show = commands.add_parser("show", help="show one run: steps, outcomes, durations, branches, logs")
    show.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    show.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    resume = commands.add_parser("resume", help="run again the steps of a run that did not succeed")
    resume.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    resume.add_argument(
        "--rebase",
        action="store_true",
        help="start the steps that run again from your checkout as it is now, not from the run's base",
    )
    resume.add_argument("--max-parallel", type=_positive_int, metavar="N", help="at most N steps at once")
    resume.add_argument("--no-cache", action="store_true", help=_NO_CACHE_HELP)
    resume.add_argument("--json", action="store_true", help="print only the result as JSON on stdout")
    resume.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    approve = commands.add_parser("approve", help="approve (or reject) a step waiting at its approval gate")
    approve.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    approve.add_argument("step", metavar="STEP", help="the id of the step waiting for approval")
    approve.add_argument("--reject", action="store_true", help="reject it: the step fails")
    approve.add_argument("--message", metavar="M", help="why, kept with the decision")
    approve.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    _add_review_commands(commands)

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
    report.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an output for the steps after this one (with a final state; repeatable)",
    )

    serve = commands.add_parser("serve", help="run the language server over stdio (for editors)")
    serve.add_argument(
        "--log-file", type=Path, default=_default_server_log(), metavar="FILE", help="where the server logs"
    )

    init = commands.add_parser(
        "init", help="write a starter treeflow.yml from the repository's scripts, tools, Makefile and CI jobs"
    )
    init.add_argument("--force", action="store_true", help="replace an existing treeflow.yml")
    init.add_argument(
        "--cursor",
        action="store_true",
        help="instead, write .cursor/rules/treeflow.mdc for Cursor's agents",
    )
    init.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")
    return parser


def _add_review_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    diff = commands.add_parser("diff", help="show what a run (or one of its steps) changed")
    diff.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    diff.add_argument("--step", metavar="ID", help="what this step changed, instead of the run's result")
    form = diff.add_mutually_exclusive_group()
    form.add_argument("--stat", action="store_true", help="one line per file with its line counts")
    form.add_argument("--name-only", action="store_true", help="only the paths of the changed files")
    diff.add_argument("--json", action="store_true", help="print the changed files as JSON")
    diff.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    apply = commands.add_parser("apply", help="bring a run's work into your checkout (or undo that)")
    apply.add_argument("run_id", nargs="?", metavar="RUN_ID", help=_RUN_ID_HELP)
    apply.add_argument(
        "--step", action="append", default=[], metavar="ID", help="apply this step's work (repeatable)"
    )
    apply.add_argument(
        "--mode",
        choices=("working-tree", "squash", "merge"),
        default="working-tree",
        help="uncommitted edits in your working tree (default), one commit on the current branch, "
        "or a merge commit",
    )
    apply.add_argument(
        "--conflicts",
        choices=("refuse", "markers"),
        default="refuse",
        help="on conflicts, change nothing (default) or write conflict markers and apply the rest",
    )
    apply.add_argument("--undo", action="store_true", help="put back what the last apply changed")
    apply.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")

    discard = commands.add_parser("discard", help="delete a run's branches; the journal keeps the run")
    discard.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    discard.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    discard.add_argument("--repo", type=Path, default=Path.cwd(), metavar="DIR")


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from exc
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _days(text: str) -> int:
    return _whole_number(text, 0)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return value


def _default_server_log() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "treeflow" / "server.log"
