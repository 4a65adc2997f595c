"""What the benchmarks share: a header describing the machine, throwaway git repositories, percentiles."""

from __future__ import annotations

import compileall
import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# The same identity the test suite uses, so that commits work on machines without a git config.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "treeflow bench",
    "GIT_AUTHOR_EMAIL": "bench@treeflow.invalid",
    "GIT_COMMITTER_NAME": "treeflow bench",
    "GIT_COMMITTER_EMAIL": "bench@treeflow.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def compile_treeflow() -> None:
    """Byte-compile treeflow, as an installed package is: an editable install is not, and where
    PYTHONDONTWRITEBYTECODE is set each process would compile it again and time that too."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "server", quiet=1)


def child_env() -> dict[str, str]:
    return {**os.environ, **GIT_IDENTITY}


def tool_version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = done.stdout.strip().splitlines()
    return lines[0] if lines else f"unavailable (exit status {done.returncode})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def print_header(title: str, settings: Sequence[str]) -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"== {title}")
    print(f"   cpus     : {usable} usable of {os.cpu_count()} ({_cpu_model()})")
    # The load average is printed because it explains most run-to-run differences on a shared machine.
    print(f"   load avg : {_load_average()}")
    print(f"   os       : {platform.system()} {platform.release()}")
    print(f"   python   : {platform.python_implementation()} {platform.python_version()} ({sys.executable})")
    print(f"   git      : {tool_version('git', '--version')}")
    print(f"   make     : {tool_version('make', '--version')}")
    for line in settings:
        print(f"   {line}")
    print(flush=True)


def init_repo(root: Path) -> None:
    """A git repository with one commit, so that treeflow sees a HEAD as it would in real use."""
    env = child_env()

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True, timeout=30)

    git("init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("benchmark repository\n")
    git("add", "README.md")
    git("commit", "--quiet", "-m", "initial")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually measured, never an interpolation."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
