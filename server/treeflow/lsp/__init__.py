"""The language server: a thin adapter from LSP to the engine in `treeflow.core`."""

from treeflow.lsp.handlers import register
from treeflow.lsp.server import TreeflowServer, configure_logging

__all__ = ["TreeflowServer", "configure_logging", "create_server"]


def create_server() -> TreeflowServer:
    server = TreeflowServer()
    register(server)
    return server
