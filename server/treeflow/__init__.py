"""treeflow: run a graph of shell and coding-agent steps in parallel, each in its own git worktree."""

__version__ = "0.1.0"
