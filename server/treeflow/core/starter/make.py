"""Makefile targets that lint, test or build."""

from __future__ import annotations

import re
from pathlib import Path

from treeflow.core.starter.model import Found, FoundCommand, Role

_MAKEFILES = ("GNUmakefile", "makefile", "Makefile")
# `name other:` at the start of a line; not `name := value` or `name ::= value`.
_RULE = re.compile(
    r"^([A-Za-z0-9_][A-Za-z0-9_./-]*(?:[ \t]+[A-Za-z0-9_][A-Za-z0-9_./-]*)*)[ \t]*:(?![:=])", re.M
)
_ROLES: dict[str, Role] = {
    **dict.fromkeys(("lint", "check", "vet", "typecheck", "fmt-check", "format-check", "style"), Role.CHECK),
    **dict.fromkeys(("test", "tests", "unit", "unittest", "unit-test", "test-unit"), Role.TEST),
    **dict.fromkeys(("build", "compile"), Role.BUILD),
}


def find(folder: Path) -> Found | None:
    for name in _MAKEFILES:
        path = folder / name
        if path.is_file():
            return _targets(path, name)
    return None


def _targets(path: Path, name: str) -> Found | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    seen: list[str] = []
    for match in _RULE.finditer(text):
        for target in match.group(1).split():
            if target in _ROLES and target not in seen:
                seen.append(target)
    commands = tuple(
        FoundCommand(target, f"make {target}", _ROLES[target], f"{name}: {target}") for target in seen
    )
    return Found(name, "make", commands) if commands else None
