"""The `treeflow` command's entry point: read the command line, then hand it to the module that
does the work.

Deferred imports, the one way the CLI has: a module that costs start-up a command may not need
is imported by a plain `from ... import ...` inside the function that has chosen to use it, never
through importlib, so mypy types it like any other, and with a comment giving the time it saves
as measured. There are four: this module itself, which `treeflow.cli.main` loads only once
Ctrl-C is held; the language server and the engine, here; and rich, in commands.py where a table
or the live display is shown at a terminal. Everything else is imported at the top;
tests/cli/test_start_up.py holds each deferral to what it protects.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Sequence

from treeflow.cli import interrupts
from treeflow.cli.broken_pipe import discard_output
from treeflow.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED
from treeflow.cli.parser import parse_command_line


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's work, with Ctrl-C held (see `treeflow.cli.main`)."""
    try:
        args = parse_command_line(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="treeflow: %(levelname)s: %(message)s",
            stream=sys.stderr,
        )
        if args.command == "serve":
            interrupts.release()
            # Deferred: pygls and lsprotocol, about 350 ms that no other command needs.
            from treeflow.cli.serve import serve_command

            return serve_command(args)
        # Deferred: the engine (anyio, treeflow.core), about 55 ms that `serve` would otherwise
        # spend before it answers `initialize`, and 75 ms of `--help`.
        from treeflow.cli.commands import dispatch

        # What the imports made lives as long as the process: frozen, no collection during the
        # run scans it again (about 20 ms of a run of 1,000 short steps).
        gc.freeze()
        return dispatch(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout left (`treeflow runs | head -1`); what it read is all it wanted.
        discard_output(sys.stdout)
        return EXIT_FAILED
