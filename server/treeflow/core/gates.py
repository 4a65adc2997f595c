"""Approval gates: a step's `approve:` block, and where its request for a decision stands.

A gate holds its step after its needs have ended and its condition holds, before it takes a slot,
a worktree or runs anything, until a person approves or rejects it (or its timeout passes). The
request and the decision are rows of the journal (`treeflow.core.journal.approvals`), which is how
`treeflow approve` in another process reaches a run waiting in a language server or another
terminal; `treeflow.core.gate_wait` waits for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"  # nobody decided before the gate's timeout
    WITHDRAWN = "withdrawn"  # the run stopped waiting: it was cancelled, or a fail-fast stopped it


class Channel(StrEnum):
    """Where a decision was made."""

    TERMINAL = "terminal"  # the prompt of the `treeflow run` that waits
    CLI = "cli"  # `treeflow approve`, from any shell
    EDITOR = "editor"  # the notification in VS Code / Cursor
    TREEFLOW = "treeflow"  # treeflow itself: a timeout, a withdrawal


@dataclass(frozen=True)
class Gate:
    """A step's `approve:` block: the question asked, and how long to wait for an answer."""

    message: str
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """A step's request for approval as it stands: asked, then decided (or not yet, ``decision``
    None). ``decided_by`` is the user who decided, ``via`` where; ``note`` the message they gave."""

    message: str
    requested_at: float
    expires_at: float | None = None
    decision: Decision | None = None
    decided_by: str | None = None
    via: Channel | None = None
    decided_at: float | None = None
    note: str | None = None

    @property
    def waiting(self) -> bool:
        return self.decision is None

    def describe(self) -> str:
        """``waiting for approval``, ``approved by alice (cli)``, ``rejected by bob (editor): not now``."""
        if self.decision is None:
            return "waiting for approval"
        if self.decision is Decision.TIMED_OUT:
            return "no decision before its approval timeout"
        if self.decision is Decision.WITHDRAWN:
            return "approval withdrawn: the run stopped waiting"
        text = f"{self.decision.value} by {self.decided_by or 'someone'}"
        if self.via is not None:
            text += f" ({self.via.value})"
        return text + (f": {self.note}" if self.note else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "requested_at": _iso(self.requested_at),
            "expires_at": _iso(self.expires_at),
            "decision": None if self.decision is None else self.decision.value,
            "decided_by": self.decided_by,
            "via": None if self.via is None else self.via.value,
            "decided_at": _iso(self.decided_at),
            "note": self.note,
        }


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat(timespec="milliseconds")
