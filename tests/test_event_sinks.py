"""Every event sink handles every kind of event: the type checker says so when one does not.

The test adds an event class to a copy of the package and runs mypy on the copy: each sink must
then fail at its ``assert_never``, and nothing else may fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import treeflow

NEW_EVENT = """
@dataclass(frozen=True)
class EventNobodyHandles:
    run_id: str


"""
# The sink protocol itself, and what passes every event on whatever its kind (to no one, to several
# sinks, from a step kind to the run's sink), need not name the kinds.
PASSING_ON = {"EventSink", "NullSink", "FanOut", "Attempt"}


def sink_modules(package: Path) -> set[str]:
    """The modules of ``package`` with a class whose `emit` takes an `Event` and looks at it."""
    found = set()
    for path in package.rglob("*.py"):
        text = path.read_text()
        for match in re.finditer(r"^class (\w+)\b.*?(?=^class |\Z)", text, re.MULTILINE | re.DOTALL):
            if match.group(1) not in PASSING_ON and "def emit(self, event: Event)" in match.group(0):
                found.add(path.relative_to(package.parent).as_posix())
    return found


@pytest.mark.slow
def test_a_new_event_kind_is_a_type_error_in_every_sink_that_does_not_handle_it(tmp_path: Path) -> None:
    package = tmp_path / "treeflow"
    shutil.copytree(Path(treeflow.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    events = package / "core" / "events.py"
    text = events.read_text()
    assert text.count("\nEvent = (\n    ") == 1
    events.write_text(
        text.replace("\nEvent = (\n    ", NEW_EVENT + "Event = (\n    EventNobodyHandles\n    | ")
    )

    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.11",
            "--cache-dir",
            "cache",
            "-p",
            "treeflow",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    errors = [line for line in checked.stdout.splitlines() if ": error: " in line]
    unhandled = {line.split(":", 1)[0] for line in errors if 'Argument 1 to "assert_never"' in line}
    expected = sink_modules(package)
    assert {
        "treeflow/core/journal/writer.py",
        "treeflow/cli/plain_output.py",
        "treeflow/cli/live_output.py",
        "treeflow/lsp/progress.py",
    } <= expected
    assert unhandled == expected, checked.stdout
    assert all("EventNobodyHandles" in line for line in errors), checked.stdout
