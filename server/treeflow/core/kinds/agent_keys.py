"""The keys of an `agent:` block, in its forms: each form is the set of keys the parser takes together.

`AGENT_SHAPE` is one of them; the parser of `kinds.agent` and of `cloud.cursor_cloud` take their key
names from here, and the schema, completion and hover their documentation. The names `use:` accepts
are read from the adapter table (`treeflow.core.agents.ADAPTERS`) when asked, so an adapter
registered later is offered too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

from treeflow.core import agents
from treeflow.core.agent import DEFAULT_HEARTBEAT_S
from treeflow.core.agents.base import DEFAULT_CLI_HEARTBEAT_S, Permissions
from treeflow.core.cloud.cursor_cloud import CLOUD_KEYS
from treeflow.core.spec_keys import Duration, Either, Fields, Key, Text, TextList, Variables, names


class _AdapterTitles(Mapping[str, str]):
    """Each `use:` name of the adapter table with what it runs, as the table is when read."""

    def __getitem__(self, use: str) -> str:
        return agents.ADAPTERS[use].title

    def __iter__(self) -> Iterator[str]:
        return iter(agents.ADAPTERS)

    def __len__(self) -> int:
        return len(agents.ADAPTERS)


def _seconds(value: float) -> str:
    return f"{value / 60:g}m" if value >= 60 else f"{value:g}s"


_PROMPT = "What the agent is asked to do."
_STATUS_PROMPT = Key(
    "prompt", _PROMPT + " Written to `.treeflow/PROMPT.md`.", Text("Fix it", not_blank=True), required=True
)
_STATUS_HEARTBEAT = Key(
    "heartbeat",
    "How long the agent may go without a new status before the step fails.",
    Duration("2m"),
    _seconds(DEFAULT_HEARTBEAT_S),
)
_COMMAND_DOC = "Starts the agent in the worktree, as a `run:` command does."

STATUS_AGENT_KEYS = (
    _STATUS_PROMPT,
    Key(
        "command",
        _COMMAND_DOC + " It reports through treeflow's status file (`TREEFLOW_TASK_FILE`). Without it, "
        "treeflow waits for an agent started by someone else.",
        Text("my-agent --prompt-file .treeflow/PROMPT.md", not_blank=True, wording="a command"),
        "none: wait for an agent started elsewhere",
    ),
    Key(
        "report",
        "How the agent says it is done: `status`, through treeflow's status file.",
        Text("status", MappingProxyType({"status": "Through treeflow's status file."}), closed=True),
        "status",
    ),
    _STATUS_HEARTBEAT,
)
"""An agent that speaks treeflow's status-file protocol."""

EXIT_AGENT_KEYS = (
    Key(
        "command",
        _COMMAND_DOC + " Its exit code is the step's outcome.",
        Text("my-agent --headless", not_blank=True, wording="a command"),
        required=True,
    ),
    Key(
        "report",
        "`exit`: the command's exit code is the final state, for any program that runs headless.",
        Text("exit", MappingProxyType({"exit": "The command's exit code is the final state."}), closed=True),
        required=True,
    ),
    Key("prompt", _PROMPT + " Given to the command as `TREEFLOW_PROMPT`.", Text("Fix it", not_blank=True)),
    Key("heartbeat", "No output for this long fails the step.", Duration("10m"), "none"),
)
"""Any program, its exit code the outcome (`report: exit`)."""

CLI_AGENT_KEYS = (
    Key(
        "use",
        "The agent CLI treeflow runs headless, following its event stream.",
        Text("claude", _AdapterTitles(), closed=True, not_blank=True, wording="an agent's name"),
        required=True,
    ),
    Key("prompt", _PROMPT, Text("Fix the failing test", not_blank=True), required=True),
    Key("model", "Passed as the CLI's `--model`.", Text("sonnet", not_blank=True), "the CLI's own"),
    Key("args", "Extra arguments for the CLI, put before the prompt.", TextList("['--verbose']"), "none"),
    Key("env", "Extra environment variables for the CLI, over the step's own.", Variables(), "none"),
    Key(
        "permissions",
        "What the agent may do without asking, since nobody is there to answer.",
        Text(
            "edit",
            MappingProxyType(
                {
                    Permissions.EDIT.value: "Change files in its worktree without asking.",
                    Permissions.FULL.value: "Anything without asking, commands included.",
                }
            ),
            closed=True,
        ),
        Permissions.EDIT.value,
    ),
    Key(
        "program",
        "The executable, when it is not the CLI's usual name on PATH.",
        Text("/opt/bin/claude", not_blank=True, wording="a program"),
        "the CLI's usual name",
    ),
    Key(
        "heartbeat",
        "No output from the CLI for this long fails the step and stops the CLI.",
        Duration("10m"),
        _seconds(DEFAULT_CLI_HEARTBEAT_S),
    ),
)
"""An agent CLI named by `use:`."""

AGENT_SHAPE = Either(
    (Fields(STATUS_AGENT_KEYS), Fields(EXIT_AGENT_KEYS), Fields(CLI_AGENT_KEYS), Fields(CLOUD_KEYS))
)
LOCAL_AGENT_KEYS = tuple(
    dict.fromkeys(names(STATUS_AGENT_KEYS) + names(EXIT_AGENT_KEYS) + names(CLI_AGENT_KEYS))
)
"""Every key of an agent block that is not `use: cursor-cloud`."""
CLI_ONLY_KEYS = tuple(key for key in names(CLI_AGENT_KEYS) if key not in (*names(STATUS_AGENT_KEYS), "use"))
"""Keys that only an agent named by `use:` takes."""
