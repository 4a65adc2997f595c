"""The `treeflow` command line: a thin adapter from the terminal to the engine in `treeflow.core`.

`parser` reads the command line, `entry` hands it on, `commands` does each command's work and
`serve` starts the language server of `treeflow.lsp`; `plain_output` and `live_output` show runs.
"""

from treeflow.cli.entry import main

__all__ = ["main"]
