"""The exit statuses of the `treeflow` command."""

EXIT_OK = 0
EXIT_FAILED = 1  # a step failed, timed out or was skipped
EXIT_USAGE = 2  # the workflow, the command line or the repository is not usable as given
EXIT_NOT_WAITING = 3  # `treeflow approve`: the step is not waiting for a decision
EXIT_EXISTS = 3  # `treeflow init`: the repository has a workflow already
EXIT_INTERRUPTED = 130  # cancelled by Ctrl-C or SIGTERM
