"""A treeflow of another version on the same repository, as a real process.

`other_treeflow` runs the `treeflow` command as a release with another version and journal format
would: the same code with `treeflow.__version__` and the journal format it writes set first, the way
a CLI installed apart from the editor's bundled server differs from it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_AS_ANOTHER_RELEASE = """\
import sys
import treeflow
treeflow.__version__ = sys.argv[1]
from treeflow.core.journal import compatibility
compatibility.JOURNAL_FORMAT = int(sys.argv[2])
from treeflow.cli import main
sys.exit(main(sys.argv[3:]))
"""


def other_treeflow(
    cwd: Path, version: str, journal_format: int, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _AS_ANOTHER_RELEASE, version, str(journal_format), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
