"""`treeflow serve`: the language server of `treeflow.lsp` over this process's stdin and stdout."""

from __future__ import annotations

import argparse
import sys

import anyio

from treeflow.lsp import configure_logging, create_server


def serve_command(args: argparse.Namespace) -> int:
    server = create_server()
    configure_logging(server, args.log_file, args.verbose)
    return anyio.run(server.serve, sys.stdin.buffer, sys.stdout.buffer)
