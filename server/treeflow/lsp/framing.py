"""The LSP base protocol as the server reads it: header lines, a blank line, then a body of exactly
`Content-Length` bytes.

A header part without a usable `Content-Length` cannot say where its body ends, and neither can
bytes that belong to no frame: reading starts again at the next `Content-Length:` header, wherever
it stands in a line (a body without a final newline runs into the next frame's first header line),
so such garbage costs no well-framed message after it. A `Content-Length` too short leaves the rest
of its body to be skipped the same way; one too long takes in what follows, as the base protocol
says it must, and reading waits for the bytes it was promised. A body over MAX_BODY_BYTES is read
and thrown away as it comes, never held. Nothing here closes the connection: only the end of the
input ends reading.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
_DISCARD_CHUNK = 1024 * 1024
# Eighteen digits at most: a longer number is no length a client can mean, and no int() to risk.
_CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*([0-9]{1,18})[ \t]*\r?\n?\Z", re.IGNORECASE)


async def read_frames(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The body of each frame ``reader`` brings, until its end.

    Raises asyncio.IncompleteReadError if the input ends inside a body.
    """
    length: int | None = None
    while line := await _read_line(reader):
        if not line.strip():
            if length is None:
                continue  # a blank line outside a header part, or a header part to skip
            if length > MAX_BODY_BYTES:
                await _discard(reader, length)
            else:
                yield await reader.readexactly(length)
            length = None
            continue
        header = _CONTENT_LENGTH.search(line)
        if header is None:
            continue  # Content-Type, another header, or bytes that belong to no frame
        if header.start() > 0:
            log.info("skipped %d bytes that were not part of any message", header.start())
        length = int(header.group(1))


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError:
        # Longer than the reader's limit: asyncio has dropped it (or its first part, the rest comes
        # as the next line); either way it was no header.
        log.info("skipped a line too long to be a header")
        return b"-\n"


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    log.warning("a message of %d bytes, over the %d-byte limit, was skipped", length, MAX_BODY_BYTES)
    left = length
    while left:
        chunk = await reader.read(min(left, _DISCARD_CHUNK))
        if not chunk:
            raise asyncio.IncompleteReadError(b"", left)
        left -= len(chunk)
