"""Text from steps, agents and workflow files made safe to print on a terminal.

A terminal obeys the control characters it is sent: an escape sequence can retitle the window,
move the cursor or redraw what was printed before, and a carriage return lets a line overwrite
itself. Whatever treeflow prints that it did not write itself therefore shows each control
character (Unicode category Cc: C0, DEL and C1) as an escape instead: ``\\r``, ``\\n`` (in one-line
text) and ``\\xNN`` for the others, such as ``\\x1b`` for ESC. Tabs are kept, and so are newlines in
text that may span lines. Backslashes are left as they are, so ``\\x1b`` is also what a step that
prints those four characters shows.
"""

from __future__ import annotations

import re

from treeflow.quoting import QUOTED_LIMIT, quoted

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NAMED = {"\r": "\\r", "\n": "\\n"}
_MAX_LINES = 20


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    return _NAMED.get(character) or f"\\x{ord(character):02x}"


def shown(text: str) -> str:
    """``text`` with its control characters escaped, its tabs and newlines kept."""
    return _CONTROL_BUT_NEWLINE.sub(_escape, text)


def shown_line(text: str, limit: int = QUOTED_LIMIT) -> str:
    """``text`` as one line of at most ``limit`` characters (and an ellipsis), newlines escaped."""
    # Cut first, so that a huge text costs no more than its shown part; then again, as escapes
    # make it longer.
    return quoted(_CONTROL.sub(_escape, text[: limit + 1]), limit)


def shown_lines(text: str, limit: int = QUOTED_LIMIT) -> str:
    """``text`` kept on its lines, each cut to ``limit`` characters, its last lines only if many."""
    lines = text.split("\n")
    if len(lines) > _MAX_LINES:
        lines = [f"… ({len(lines) - _MAX_LINES + 1} earlier lines left out)", *lines[-(_MAX_LINES - 1) :]]
    return "\n".join(shown_line(line, limit) for line in lines)
