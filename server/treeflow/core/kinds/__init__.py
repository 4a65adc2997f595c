"""The step kinds, in one table keyed by the step key that selects each: `run:`, `agent:`, …

A kind registered here is known to the workflow parser (its key becomes a step key) and to the
runner, which hands it each attempt. See `base.StepKind` for what a kind provides.
"""

from __future__ import annotations

from typing import Any

from treeflow.core.kinds.agent import AgentKind
from treeflow.core.kinds.base import StepKind
from treeflow.core.kinds.shell import ShellKind
from treeflow.core.spec_keys import STEP_KEYS, Key, names

COMMON_STEP_KEYS = names(STEP_KEYS)
"""Keys every step may have, whatever its kind; no kind may take one of them."""

KINDS: dict[str, StepKind[Any]] = {}


def register(kind: StepKind[Any]) -> None:
    """Make ``kind`` known under ``kind.key``; registering the same kind again changes nothing.

    Raises ValueError when the key is a common step key or belongs to another kind.
    """
    if kind.key in COMMON_STEP_KEYS:
        raise ValueError(f"`{kind.key}` is a key of every step and cannot select a step kind")
    registered = KINDS.get(kind.key)
    if registered is not None and registered is not kind:
        raise ValueError(f"step key `{kind.key}` already selects {registered.summary}")
    KINDS[kind.key] = kind


def unregister(key: str) -> None:
    """Forget the kind selected by ``key``, if there is one."""
    KINDS.pop(key, None)


def step_keys() -> tuple[Key, ...]:
    """Every key a step may have: each kind's, then the common ones."""
    return (*(Key(kind.key, kind.doc, kind.shape) for kind in KINDS.values()), *STEP_KEYS)


def kind_for(key: str) -> StepKind[Any]:
    """The kind a step key selects. Raises KeyError for a key no kind has."""
    return KINDS[key]


register(ShellKind())
register(AgentKind())
