"""A step's log file, created on its first write.

Creating a file costs more here than spawning a short command, so a step that prints nothing
gets no log file (its result's `log` is then null).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO


class StepLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    @property
    def created(self) -> bool:
        return self._handle is not None

    def write(self, data: bytes) -> int:
        if self._handle is None:
            self._handle = self.path.open("ab")
        return self._handle.write(data)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> StepLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
