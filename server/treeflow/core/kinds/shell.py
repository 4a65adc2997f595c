"""The shell step, `run: COMMAND`: a command run in the step's place, its exit status the outcome."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from treeflow.core.attempt import Attempt
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_keys import Text
from treeflow.core.spec_reader import SpecReader


@dataclass(frozen=True)
class ShellSpec:
    command: str


class ShellKind:
    key = "run"
    summary = "a shell command"
    doc = (
        "A shell command, run with `/bin/sh -e -c` in the step's worktree; its exit status is the "
        "step's outcome. A multi-line script stops at its first failing command."
    )
    shape = Text("make test", not_blank=True, wording="a command")

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> ShellSpec | None:
        command = reader.command(block, f"{what}: run")
        return None if command is None else ShellSpec(command)

    async def run(self, spec: ShellSpec, attempt: Attempt) -> StepOutcome:
        return await attempt.run_to_outcome(spec.command)
