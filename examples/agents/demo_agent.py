"""A scripted stand-in for a coding agent, speaking treeflow's status-file protocol (version 1).

treeflow starts it in the step's worktree with TREEFLOW_TASK_FILE pointing at `.treeflow/task.json`.
It reads the task, reports progress, does its "work" (writes a file named after the step), and
reports success. Real agents can do the same, or call `treeflow agent report`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def report(task: dict[str, object], status_file: Path, **fields: object) -> None:
    body = {"protocol": 1, "nonce": task["nonce"], **fields, "updated_at": datetime.now(UTC).isoformat()}
    # Write a temporary file, then rename it: treeflow never sees half a status.
    temporary = status_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(body))
    os.replace(temporary, status_file)


def main() -> int:
    task_file = Path(os.environ["TREEFLOW_TASK_FILE"])
    task = json.loads(task_file.read_text())
    status_file = task_file.with_name("status.json")
    prompt = (task_file.parent / "PROMPT.md").read_text().strip()
    report(task, status_file, state="running", progress=0.1, message="reading the prompt")
    time.sleep(0.4)
    report(task, status_file, state="running", progress=0.5, message="writing the answer")
    output = Path(f"{task['step_id']}.md")
    output.write_text(f"# {task['step_id']}\n\nTask: {prompt}\n\nDone by the demo agent.\n")
    time.sleep(0.4)
    report(task, status_file, state="succeeded", progress=1.0, summary=f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
