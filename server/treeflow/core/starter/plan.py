"""What the sources found, as the steps of one workflow: unique ids, no command twice, sensible `needs`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from treeflow.core.graph import find_cycles
from treeflow.core.starter.model import Found, FoundCommand, FoundSetup, Role, step_id

_ORDER = {Role.CHECK: 0, Role.TEST: 1, Role.BUILD: 2}


@dataclass(frozen=True)
class StarterStep:
    id: str
    run: str
    needs: tuple[str, ...]
    origin: str


@dataclass(frozen=True)
class Starter:
    """The starter workflow: its steps in file order, one setup for all of them (None when no
    source installs anything), and the sources it was made from (empty: nothing was found)."""

    steps: tuple[StarterStep, ...]
    setup: FoundSetup | None
    sources: tuple[str, ...]
    # What setup installs that the repository does not ignore: each step would commit it.
    not_ignored: tuple[str, ...] = ()


def plan(found: Sequence[Found]) -> Starter:
    steps: dict[str, StarterStep] = {}
    by_command: dict[str, str] = {}
    taken: set[str] = set()
    sources: list[str] = []
    for source in found:
        # A source's command names, each with the id of the step that runs it, its own or an
        # earlier step running the same command.
        ids: dict[str, str] = {}
        added: list[FoundCommand] = []
        # No command can hold a NUL byte (the parser refuses one).
        usable = [command for command in source.commands if "\0" not in command.run]
        ordered = sorted(usable, key=lambda command: _ORDER[command.role])
        for command in ordered:
            key = " ".join(command.run.split())
            if key in by_command:
                ids[command.name] = by_command[key]
                continue
            ids[command.name] = by_command[key] = _unique_id(command.name, source.prefix, taken)
            taken.add(ids[command.name].lower())
            added.append(command)
        if not added:
            continue
        sources.append(source.source)
        explicit = any(command.needs for command in usable)
        for command in added:
            needs = _needs(command, usable, ids, implicit=not explicit)
            own = ids[command.name]
            steps[own] = StarterStep(own, command.run, tuple(n for n in needs if n != own), command.origin)
            if find_cycles({sid: step.needs for sid, step in steps.items()}):
                steps[own] = StarterStep(own, command.run, (), command.origin)
    return Starter(tuple(steps.values()), _merged_setup(found, sources), tuple(sources))


def _needs(
    command: FoundCommand, commands: Sequence[FoundCommand], ids: dict[str, str], *, implicit: bool
) -> list[str]:
    if command.needs:
        names = [name for name in command.needs if name in ids]
    elif implicit and command.role is Role.BUILD:
        names = [other.name for other in commands if other.role in (Role.CHECK, Role.TEST)]
    else:
        names = []
    return list(dict.fromkeys(ids[name] for name in names))


def _unique_id(name: str, prefix: str, taken: set[str]) -> str:
    """``name`` as a step id unlike every id in ``taken`` (lower case) even in case, since ids
    become branch names."""
    prefixed = step_id(f"{prefix}-{name}")
    numbered = (f"{prefixed[:58]}-{n}" for n in itertools.count(2))
    candidates = itertools.chain([step_id(name), prefixed], numbered)
    return next(candidate for candidate in candidates if candidate.lower() not in taken)


def _merged_setup(found: Sequence[Found], sources: Sequence[str]) -> FoundSetup | None:
    """One setup installing what every used source needs (a workflow has one `setup:`)."""
    setups = [source.setup for source in found if source.setup and source.source in sources]
    if not setups:
        return None
    return FoundSetup(
        " && ".join(dict.fromkeys(setup.run for setup in setups)),
        tuple(dict.fromkeys(name for setup in setups for name in setup.when_changed)),
        tuple(dict.fromkeys(name for setup in setups for name in setup.keep)),
    )
