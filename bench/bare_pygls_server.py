"""The least a pygls language server can be: the floor that `bench/lsp.py` times treeflow's start against.

It answers `initialize` with pygls' default capabilities over stdio and knows no other method.
"""

from pygls.lsp.server import LanguageServer

if __name__ == "__main__":
    LanguageServer("bare", "1").start_io()
