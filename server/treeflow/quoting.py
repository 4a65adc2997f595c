"""User input quoted in a message or a log line, cut to a length a person can read."""

from __future__ import annotations

QUOTED_LIMIT = 200


def quoted(text: str, limit: int = QUOTED_LIMIT) -> str:
    """``text`` as it is if short, else its first ``limit`` characters and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + "…"
