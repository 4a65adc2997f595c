"""An agent that misbehaves on request, for tests: `python scripted_agent.py MODE [PIDFILE]`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

task_file = Path(os.environ["TREEFLOW_TASK_FILE"])
task = json.loads(task_file.read_text())
status_file = task_file.with_name("status.json")


def body(**fields: object) -> str:
    return json.dumps({"protocol": 1, "nonce": task["nonce"], **fields})


def replace(text: str) -> None:
    temporary = status_file.with_name("status.tmp")
    temporary.write_text(text)
    os.replace(temporary, status_file)


def main(mode: str) -> int:
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(str(os.getpid()))
    if mode == "succeed":
        replace(body(state="running", progress=0.25, message="quarter"))
        time.sleep(0.2)
        replace(body(state="running", progress=0.75, message="three quarters"))
        time.sleep(0.2)
        replace(body(state="succeeded", progress=1, summary="all done"))
    elif mode == "partial":
        # Not atomic: the reader may find half a JSON document for a while.
        text = body(state="succeeded", summary="written in two halves")
        with status_file.open("w") as handle:
            handle.write(text[: len(text) // 2])
            handle.flush()
            time.sleep(0.6)
            handle.write(text[len(text) // 2 :])
    elif mode == "silent":
        replace(body(state="running", message="about to go quiet"))
        time.sleep(600)
    elif mode == "exit-without-status":
        print("working hard")
        print("oops, forgot to report")
    elif mode == "fail":
        replace(body(state="failed", error="tests do not pass"))
    elif mode == "flood":
        deadline = time.monotonic() + 2.0
        count = 0
        while time.monotonic() < deadline:
            count += 1
            replace(body(state="running", progress=min(count / 3000, 1), message=f"update {count}"))
            time.sleep(0.001)
        replace(body(state="succeeded", summary=f"sent {count} updates"))
    elif mode == "oversize":
        replace(body(state="running", message="x" * (1024 * 1024 + 10)))
        time.sleep(0.5)
        replace(body(state="succeeded", summary="small again"))
    elif mode == "fifo":
        os.mkfifo(status_file)
        time.sleep(600)
    elif mode == "directory":
        status_file.mkdir()
        time.sleep(600)
    elif mode == "symlink-loop":
        status_file.symlink_to(status_file.name)
        time.sleep(600)
    elif mode == "deep-nesting":
        replace("[" * 100_000 + "]" * 100_000)
        time.sleep(600)
    elif mode == "encoded-surrogate":
        # A surrogate encoded as if it were a character: not UTF-8, though Python's JSON reader
        # passes it through from bytes.
        text = body(state="succeeded", summary="caf\udce9").replace("\\udce9", "\udce9")
        temporary = status_file.with_name("status.tmp")
        temporary.write_bytes(text.encode("utf-8", "surrogatepass"))
        os.replace(temporary, status_file)
        time.sleep(600)
    elif mode == "sleep":
        replace(body(state="running", message="working"))
        time.sleep(600)
    else:
        raise SystemExit(f"unknown mode {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
