"""Ctrl-C while a `treeflow` command is still loading: noted, and acted on once the command can.

Python turns SIGINT into KeyboardInterrupt wherever it lands, which in the middle of an import
shows as a traceback (or worse, as an unrelated error of the module being imported). From `hold()`
on, a Ctrl-C is only noted; a run checks `pending()` once it listens for signals itself, and every
other command gets it raised by `release()`.

`hold()` is the first thing the `treeflow` command does, so this module loads nothing: the
interpreter has `_signal` in memory from its start, while `signal` would first load enum, about
3 ms during which a Ctrl-C would still end in a traceback.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C core of `signal`, which has no stub

_received = False


def _note(signum: int, frame: object) -> None:
    global _received
    _received = True


def hold() -> None:
    _signal.signal(_signal.SIGINT, _note)


def pending() -> bool:
    return _received


def release() -> None:
    """Let Ctrl-C raise KeyboardInterrupt again, at once if one came while it was held."""
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    if _received:
        raise KeyboardInterrupt
