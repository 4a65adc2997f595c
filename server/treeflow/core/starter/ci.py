"""GitHub Actions jobs: the `run:` steps of each job, as one step per job.

Only what runs the same outside GitHub is taken: a step with a `${{ … }}` expression, a `uses:`
action, a shell other than sh or bash, or a command that installs packages on the machine is
left out (setup installs the project's dependencies instead). Jobs that publish or deploy are
never taken, since the starter runs with one click.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from treeflow.core.starter.model import Found, FoundCommand, Role

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PUBLISHES = re.compile(r"deploy|release|publish|pages|upload|docker|push", re.I)
_PUSHES = re.compile(r"\bgit\s+push\b|\bpublish\b|\bdeploy\b|\btwine\s+upload\b", re.I)
_INSTALLS = re.compile(
    r"^\s*(sudo\b|apt(-get)?\s|brew\s|choco\s|corepack\s|npm\s+(ci|install|i)\b|pnpm\s+(install|i)\b|"
    r"yarn(\s+install)?\s*$|bun\s+install\b|(python3?\s+-m\s+)?pip3?\s+install\b|pipx\s+install\b|"
    r"uv\s+(sync|pip\s+install)\b|poetry\s+install\b|cargo\s+install\b|go\s+install\b)"
)
_SHELLS = frozenset({"sh", "bash"})
_CHECK_WORDS = frozenset({"lint", "check", "checks", "style", "typecheck", "types", "format", "fmt"})
_BUILD_WORDS = frozenset({"build", "compile", "bundle", "package"})
_WORDS = re.compile(r"[^a-z0-9]+")


def find(folder: Path) -> Found | None:
    directory = folder / ".github" / "workflows"
    try:
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    except OSError:
        return None
    commands: list[FoundCommand] = []
    for path in files:
        commands.extend(_jobs(path))
    return Found(".github/workflows", "ci", tuple(commands)) if commands else None


def _jobs(path: Path) -> Iterator[FoundCommand]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, dict):
        return
    taken: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        if not isinstance(job, dict) or _PUBLISHES.search(f"{job_id} {job.get('name', '')}"):
            continue
        lines = list(_run_lines(job))
        if lines and not any(_PUSHES.search(line) for line in lines):
            taken[str(job_id)] = lines
    where = f".github/workflows/{path.name}"
    for job_id, lines in taken.items():
        needs = tuple(name for name in _names(jobs[job_id].get("needs")) if name in taken)
        script = lines[0] if len(lines) == 1 and "\n" not in lines[0] else "\n".join(["set -e", *lines])
        yield FoundCommand(job_id, script, _role(job_id), f"{where}: job {job_id}", needs)


def _run_lines(job: dict[str, Any]) -> Iterator[str]:
    defaults = _mapping(_mapping(job.get("defaults")).get("run"))
    job_shell = defaults.get("shell")
    job_folder = defaults.get("working-directory")
    steps = job.get("steps")
    for step in steps if isinstance(steps, list) else []:
        if not isinstance(step, dict) or not isinstance(step.get("run"), str) or "uses" in step:
            continue
        command = step["run"].strip()
        shell = (str(step.get("shell", job_shell or "bash")).split() or [""])[0]
        folder = step.get("working-directory", job_folder)
        if not command or shell not in _SHELLS or _INSTALLS.match(command) or "\0" in command:
            continue
        if "${{" in command or (folder is not None and (not isinstance(folder, str) or "${{" in folder)):
            continue
        yield _in_folder(command, folder) if folder and folder != "." else command


def _in_folder(command: str, folder: str) -> str:
    """``command`` run in ``folder``, in a subshell so that the job's next step starts where it did."""
    if "\n" in command:
        return f"(\ncd {shlex.quote(folder)}\n{command}\n)"
    return f"(cd {shlex.quote(folder)} && {command})"


def _role(job_id: str) -> Role:
    words = set(_WORDS.split(job_id.lower()))
    if words & _CHECK_WORDS:
        return Role.CHECK
    if words & _BUILD_WORDS:
        return Role.BUILD
    return Role.TEST


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
