"""`python -m treeflow.cli`: the `treeflow` command, as editors and tests start it."""

import sys

from treeflow.cli import main

sys.exit(main())
