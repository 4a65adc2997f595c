"""A Python project's pytest, ruff and mypy, from pyproject.toml and the tools' own config files.

A tool the project declares as a dependency runs from the environment setup makes in the
worktree (`uv run`, `poetry run`, `.venv/bin/`), so that it sees the worktree's code and not an
install of the main checkout; a tool that is only configured runs as found on PATH.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from treeflow.core.starter.model import Found, FoundCommand, FoundSetup, Role

# Extras installed into a plain virtual environment, when the project defines them.
_DEVELOPMENT_EXTRAS = ("dev", "test", "tests", "testing", "lint", "typing")
_REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "dev-requirements.txt", "requirements-test.txt")
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class _Environment:
    """How the worktree gets the project's dependencies, and how a declared tool is run there."""

    setup: FoundSetup | None
    prefix: str
    declared: frozenset[str]


def find(folder: Path) -> Found | None:
    project = _read_toml(folder / "pyproject.toml")
    tool = _table(project, "tool")
    environment = _environment(folder, project)
    commands: list[FoundCommand] = []
    if "ruff" in tool or _exists(folder, "ruff.toml", ".ruff.toml") or "ruff" in environment.declared:
        commands.append(_tool_command(environment, "ruff", "ruff check .", Role.CHECK, "ruff"))
    mypy = _table(tool, "mypy")
    if mypy or _exists(folder, "mypy.ini", ".mypy.ini") or "mypy" in environment.declared:
        # Without configured files, mypy needs to be told what to check.
        configured_files = "files" in mypy or _ini_has(folder / "mypy.ini", "mypy", "files")
        line = "mypy" if configured_files else "mypy ."
        commands.append(_tool_command(environment, "mypy", line, Role.CHECK, "mypy"))
    pytest_configured = (
        "pytest" in tool
        or _exists(folder, "pytest.ini", "conftest.py")
        or _ini_has(folder / "tox.ini", "pytest")
        or _ini_has(folder / "setup.cfg", "tool:pytest")
    )
    if pytest_configured or "pytest" in environment.declared:
        commands.append(_tool_command(environment, "pytest", "pytest -q", Role.TEST, "pytest"))
    if not commands:
        return None
    source = "pyproject.toml" if project else "Python tool settings"
    return Found(source, "py", tuple(commands), environment.setup)


def _tool_command(environment: _Environment, tool: str, line: str, role: Role, name: str) -> FoundCommand:
    if tool in environment.declared:
        return FoundCommand(name, environment.prefix + line, role, f"{tool}: a dependency of the project")
    return FoundCommand(name, line, role, f"{tool}: configured here (run from PATH)")


def _environment(folder: Path, project: dict[str, Any]) -> _Environment:
    declared = frozenset(_declared(project))
    if (folder / "uv.lock").is_file():
        setup = FoundSetup("uv sync --frozen", ("uv.lock", "pyproject.toml"), keep=(".venv",))
        return _Environment(setup, "uv run ", declared)
    if (folder / "poetry.lock").is_file():
        setup = FoundSetup("poetry install --no-interaction", ("poetry.lock", "pyproject.toml"))
        return _Environment(setup, "poetry run ", declared)
    metadata = _table(project, "project")
    if metadata:
        extras = [name for name in _DEVELOPMENT_EXTRAS if name in _table(metadata, "optional-dependencies")]
        target = f"'.[{','.join(extras)}]'" if extras else "."
        installable = set(_requirements(metadata.get("dependencies")))
        for name in extras:
            installable.update(_requirements(_table(metadata, "optional-dependencies").get(name)))
        install = f"python3 -m venv .venv && .venv/bin/python -m pip install -e {target}"
        setup = FoundSetup(install, ("pyproject.toml",), keep=(".venv",))
        return _Environment(setup, ".venv/bin/", frozenset(installable))
    files = [name for name in _REQUIREMENTS if (folder / name).is_file()]
    if files:
        names: set[str] = set()
        for name in files:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
            names.update(_requirements(text.splitlines()))
        flags = " ".join(f"-r {name}" for name in files)
        install = f"python3 -m venv .venv && .venv/bin/python -m pip install {flags}"
        setup = FoundSetup(install, ("requirements*.txt",), keep=(".venv",))
        return _Environment(setup, ".venv/bin/", frozenset(names))
    return _Environment(None, "", declared)


def _declared(project: dict[str, Any]) -> Iterator[str]:
    """Every package the project names: dependencies, extras, dependency groups, Poetry's groups."""
    metadata = _table(project, "project")
    yield from _requirements(metadata.get("dependencies"))
    for extra in _table(metadata, "optional-dependencies").values():
        yield from _requirements(extra)
    for group in _table(project, "dependency-groups").values():
        yield from _requirements(group)
    tool = _table(project, "tool")
    yield from _requirements(_table(tool, "uv").get("dev-dependencies"))
    poetry = _table(tool, "poetry")
    yield from _normalized(_table(poetry, "dependencies"))
    yield from _normalized(_table(poetry, "dev-dependencies"))
    for group in _table(poetry, "group").values():
        if isinstance(group, dict):
            yield from _normalized(_table(group, "dependencies"))


def _requirements(lines: object) -> Iterator[str]:
    if not isinstance(lines, list):
        return
    for line in lines:
        match = _NAME.match(line) if isinstance(line, str) and not line.lstrip().startswith("-") else None
        if match:
            yield _normalize(match.group(1))


def _normalized(names: dict[str, Any]) -> Iterator[str]:
    return (_normalize(name) for name in names)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _table(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def _exists(folder: Path, *names: str) -> bool:
    return any((folder / name).is_file() for name in names)


def _ini_has(path: Path, section: str, option: str | None = None) -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return False
    if not parser.has_section(section):
        return False
    return option is None or parser.has_option(section, option)
