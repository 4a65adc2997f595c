"""Free TCP ports, one per running step, never handed to two running steps at once."""

from __future__ import annotations

import socket


class PortPool:
    def __init__(self) -> None:
        self._in_use: set[int] = set()

    def acquire(self) -> int:
        # The kernel picks a free ephemeral port; the set guards against it offering the same one to
        # two steps before either has bound it.
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = int(probe.getsockname()[1])
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise RuntimeError("no free TCP port found for the step")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
