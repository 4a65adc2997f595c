"""What a look at a repository found: commands to run as steps, and how to install what they need."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    """What a command does, which decides the order of the starter's steps and their `needs`."""

    CHECK = "check"  # linters and type checkers
    TEST = "test"
    BUILD = "build"  # starts once the checks and tests of its source have succeeded


@dataclass(frozen=True)
class FoundCommand:
    """A command the repository already runs. ``needs`` names other commands of the same source
    by their ``name`` (a CI job's `needs:`); ``origin`` says where it was read, for the comment
    above its step."""

    name: str
    run: str
    role: Role
    origin: str
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class FoundSetup:
    """How a worktree gets the dependencies the commands need: ``run`` once per worktree, again
    when a file of ``when_changed`` changes; ``keep``, what it installs, survives in pooled worktrees."""

    run: str
    when_changed: tuple[str, ...]
    keep: tuple[str, ...] = ()


@dataclass(frozen=True)
class Found:
    """What one source (``package.json``, ``Makefile``, …) holds; ``prefix`` tells its step ids from
    another source's (`make-test` beside `test`)."""

    source: str
    prefix: str
    commands: tuple[FoundCommand, ...]
    setup: FoundSetup | None = None


_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_-]+")


def step_id(name: str) -> str:
    """``name`` as a valid step id: `lint:css` becomes `lint-css`."""
    cleaned = _NOT_IN_ID.sub("-", name).strip("-")[:64].rstrip("-")
    return cleaned or "step"
