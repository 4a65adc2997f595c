"""What the CLI does once the reader of its output has gone (`treeflow runs | head -1`)."""

from __future__ import annotations

import os
from typing import TextIO


def discard_output(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null once its reader has gone, so that nothing written
    later, up to the interpreter's last flush, fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)
