"""The names and limits of the agent status-file protocol (version 1), without the code that speaks it.

Kept apart from `treeflow.core.agent` so that the command line can offer the states without loading
the engine. The protocol is described in docs/agents.md.
"""

PROTOCOL = 1
TREEFLOW_DIR = ".treeflow"
TASK_FILE = "task.json"
PROMPT_FILE = "PROMPT.md"
STATUS_FILE = "status.json"
MAX_STATUS_BYTES = 1024 * 1024
# Characters kept of each text of a status (message, summary, error): they travel in events and
# notifications and are kept in the journal, where a few lines say what a person needs.
MAX_STATUS_TEXT = 4096
FINAL_STATES = ("succeeded", "failed")
STATES = ("running", *FINAL_STATES)
