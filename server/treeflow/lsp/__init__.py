"""The language server: a thin adapter from LSP to the engine in `treeflow.core`."""
