"""A step's log file, created on its first write.

Creating a file costs more here than spawning a short command, so a step that prints nothing
gets no log file (its result's `log` is then null).

Writing never raises: output arrives in event-loop callbacks, where an exception would reach no
one. When the log cannot be written (a full disk, say), the step goes on, `on_error` hears why
once, and the rest of the output is not kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO


class StepLog:
    def __init__(self, path: Path, on_error: Callable[[OSError], None] | None = None) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None
        self._on_error = on_error
        self.error: OSError | None = None

    @property
    def created(self) -> bool:
        """Whether the file exists because of this log (it may be short of output after an error)."""
        return self._handle is not None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return 0
        try:
            if self._handle is None:
                self._handle = self.path.open("ab")
            return self._handle.write(data)
        except OSError as exc:
            self._fail(exc)
            return 0

    def flush(self) -> None:
        if self._handle is None or self.error is not None:
            return
        try:
            self._handle.flush()
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        if self._handle is None:
            return
        try:
            self._handle.close()
        except OSError as exc:
            # Closing flushes what was buffered; the handle is closed even when that fails.
            if self.error is None:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        self.error = exc
        if self._on_error is not None:
            self._on_error(exc)

    def __enter__(self) -> StepLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
