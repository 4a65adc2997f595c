"""Agents a step names with `agent: {use: NAME, …}`, in one table keyed by that name.

Each entry is an `AgentAdapter`; the local CLIs are small modules here (`claude`, `codex`, `gemini`,
`cursor`, `opencode`) that know their command line and event stream, and `cli_agent` runs any of
them. An agent that is not a local CLI is one more entry, registered with `register`.
"""

from __future__ import annotations

from treeflow.core.agents.base import AgentAdapter, Permissions, UseAgentSpec
from treeflow.core.agents.claude import Claude
from treeflow.core.agents.codex import Codex
from treeflow.core.agents.cursor import Cursor
from treeflow.core.agents.gemini import Gemini
from treeflow.core.agents.opencode import Opencode

__all__ = ["ADAPTERS", "AgentAdapter", "Permissions", "UseAgentSpec", "adapter_for", "register"]

ADAPTERS: dict[str, AgentAdapter] = {}


def register(adapter: AgentAdapter) -> None:
    """Make ``adapter`` the agent `use: <adapter.use>` names."""
    ADAPTERS[adapter.use] = adapter


def adapter_for(use: str) -> AgentAdapter:
    """The adapter ``use`` names. Raises KeyError for a name no adapter has."""
    return ADAPTERS[use]


for _adapter in (Claude(), Codex(), Gemini(), Cursor(), Opencode()):
    register(_adapter)
