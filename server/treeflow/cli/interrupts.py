"""Ctrl-C while a `treeflow` command is still loading: noted, and acted on once the command can.

Python turns SIGINT into KeyboardInterrupt wherever it lands, which in the middle of an import
shows as a traceback (or worse, as an unrelated error of the module being imported). From `hold()`
on, a Ctrl-C is only noted; a run checks `pending()` once it listens for signals itself, and every
other command gets it raised by `release()`.

`hold()` is the first thing the `treeflow` command does, so this module loads nothing: the
interpreter has `_signal` in memory from its start, while `signal` would first load enum, about
3 ms during which a Ctrl-C would still end in a traceback.

A command started with SIGINT ignored (a shell's background job, `nohup`) keeps it ignored, as
Python itself does: a Ctrl-C meant for the foreground must not stop it. SIGTERM still does.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C core of `signal`, which has no stub

_received = False
_ignored = False


def _note(signum: int, frame: object) -> None:
    global _received
    _received = True


def hold() -> None:
    global _ignored
    _ignored = _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN
    if not _ignored:
        _signal.signal(_signal.SIGINT, _note)


def pending() -> bool:
    return _received


def ignored() -> bool:
    """Whether the command started with SIGINT ignored, and so leaves it ignored."""
    return _ignored


def release() -> None:
    """Let Ctrl-C raise KeyboardInterrupt again, at once if one came while it was held."""
    if _ignored:
        return
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    if _received:
        raise KeyboardInterrupt
