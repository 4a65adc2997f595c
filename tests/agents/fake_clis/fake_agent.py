"""A stand-in for an agent CLI that replays a recorded event stream, for tests and the example.

The executables beside this file (`claude`, `codex`, `gemini`, `cursor-agent`, `opencode`) run it
with their own name. It replays `<streams>/<name>/<scenario>.jsonl`, where `<streams>` is
`FAKE_AGENT_STREAMS` (default: the `streams` folder beside this file) and `<scenario>` is
`FAKE_AGENT_SCENARIO` (default `success`). In a stream file, a line starting with `#` is a comment
(the file's first lines say which CLI version and documentation it follows), `!sleep S` pauses,
`!stderr TEXT` writes TEXT to stderr, `!exit N` ends with that exit code, `!write PATH TEXT` writes
a file (the agent's "work"), and every other line is written to stdout as it is. `{session}` in a
line is replaced by a session id: the one the command line resumes, or a fresh one.

A few scenarios change the `success` stream instead of reading a file of their own: `crash` (half
of it, then half a line, then the process kills itself), `silent` (the first event, then nothing),
`slow` (a pause between events), `flood` (the second event `FAKE_AGENT_FLOOD` times, default
20000), `malformed` (a broken line and a stray stderr line in the middle). `fail-until-resumed`
replays `error` unless the command line resumes a session, then `success`.

With `FAKE_AGENT_ARGV` set, the command line is appended to that file as one JSON list per call.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

# How each CLI's command line names the session it continues.
_RESUME = {"claude": "--resume", "gemini": "--resume", "cursor-agent": "--resume", "opencode": "--session"}


def resumed_session(name: str, argv: list[str]) -> str | None:
    if name == "codex":
        return argv[argv.index("resume") + 1] if "resume" in argv else None
    flag = _RESUME.get(name)
    return argv[argv.index(flag) + 1] if flag in argv else None


def stream_lines(name: str, scenario: str) -> list[str]:
    folder = Path(os.environ.get("FAKE_AGENT_STREAMS") or Path(__file__).resolve().parent / "streams")
    path = folder / name / f"{scenario}.jsonl"
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def scripted(name: str, scenario: str, resumed: bool) -> list[str]:
    if scenario == "fail-until-resumed":
        return stream_lines(name, "success" if resumed else "error")
    if scenario not in ("crash", "silent", "slow", "flood", "malformed"):
        return stream_lines(name, scenario)
    lines = [line for line in stream_lines(name, "success") if not line.startswith("!exit")]
    events = [line for line in lines if not line.startswith("!")]
    if scenario == "crash":
        cut = events[len(events) // 2]
        return [*events[: len(events) // 2], "!partial " + cut[: len(cut) // 2], "!kill"]
    if scenario == "silent":
        return [events[0], "!sleep 3600"]
    if scenario == "slow":
        return [step for line in lines for step in (line, "!sleep 0.3")]
    if scenario == "flood":
        count = int(os.environ.get("FAKE_AGENT_FLOOD", "20000"))
        return [lines[0], *[lines[1]] * count, *lines[1:]]
    return [
        lines[0],
        '{"type": "assistant", "message": {"content": [',
        "!stderr warning: retrying",
        *lines[1:],
    ]


def main(name: str) -> int:
    argv = sys.argv[1:]
    if os.environ.get("FAKE_AGENT_ARGV"):
        with open(os.environ["FAKE_AGENT_ARGV"], "a") as record:
            record.write(json.dumps(argv) + "\n")
    session = resumed_session(name, argv)
    lines = scripted(name, os.environ.get("FAKE_AGENT_SCENARIO", "success"), session is not None)
    session = session or str(uuid.uuid4())
    exit_code = 0
    for line in lines:
        line = line.replace("{session}", session)
        if line.startswith("!sleep "):
            time.sleep(float(line.split()[1]))
        elif line.startswith("!stderr "):
            sys.stderr.write(line[len("!stderr ") :] + "\n")
            sys.stderr.flush()
        elif line.startswith("!exit "):
            exit_code = int(line.split()[1])
        elif line.startswith("!write "):
            _, path, text = line.split(" ", 2)
            Path(path).write_text(text + "\n")
        elif line.startswith("!partial "):
            sys.stdout.write(line[len("!partial ") :])
            sys.stdout.flush()
        elif line == "!kill":
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv.pop(1)))
