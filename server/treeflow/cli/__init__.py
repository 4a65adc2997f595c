"""The `treeflow` command line: a thin adapter from the terminal to the engine in `treeflow.core`.

`parser` reads the command line, `entry` hands it on, `commands` does each command's work and
`serve` starts the language server of `treeflow.lsp`; `plain_output` and `live_output` show runs.
"""

from __future__ import annotations

from treeflow.cli import interrupts


def main(argv: list[str] | None = None) -> int:
    """The `treeflow` command: Ctrl-C is held before anything else loads, then `entry` takes over."""
    interrupts.hold()
    # Deferred: Python's own SIGINT handler would turn a Ctrl-C that lands while the rest of the
    # CLI loads (about 25 ms) into a traceback; from here on it only finds `hold`'s.
    from treeflow.cli.entry import main as read_command_line

    return read_command_line(argv)


__all__ = ["main"]
