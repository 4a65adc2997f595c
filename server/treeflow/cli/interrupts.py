"""Ctrl-C while a `treeflow` command is still loading: noted, and acted on once the command can.

Python turns SIGINT into KeyboardInterrupt wherever it lands, which in the middle of an import
shows as a traceback (or worse, as an unrelated error of the module being imported). From `hold()`
on, a Ctrl-C is only noted; a run checks `pending()` once it listens for signals itself, and every
other command gets it raised by `release()`.
"""

from __future__ import annotations

import signal
from types import FrameType

_received = False


def _note(signum: int, frame: FrameType | None) -> None:
    global _received
    _received = True


def hold() -> None:
    signal.signal(signal.SIGINT, _note)


def pending() -> bool:
    return _received


def release() -> None:
    """Let Ctrl-C raise KeyboardInterrupt again, at once if one came while it was held."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if _received:
        raise KeyboardInterrupt
