"""What a step kind is: the YAML key that selects it, how it reads its block, how it runs an attempt."""

from __future__ import annotations

from typing import Protocol, TypeVar

import yaml

from treeflow.core.attempt import Attempt
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_keys import Shape
from treeflow.core.spec_reader import SpecReader

SpecT = TypeVar("SpecT")


class StepKind(Protocol[SpecT]):
    """One kind of step. A step selects its kind by the one kind key it has (``run:``, ``agent:``, …).

    ``parse`` reads the value under that key into the kind's own frozen description of the step,
    recording each problem through ``reader`` (at the offending node's file:line:col) and returning
    None when there was one. ``run`` carries out one attempt and says how it ended; the runner around
    it handles timeouts, retries and cancellation, so ``run`` only has to let cancellation through.
    """

    key: str
    """The step key that selects this kind."""

    summary: str
    """What a step of this kind is, for messages: "a shell command"."""

    @property
    def doc(self) -> str:
        """What its key does, in a sentence or two of Markdown, for the editor and the JSON Schema."""
        ...

    @property
    def shape(self) -> Shape:
        """What its key takes (`spec_keys`): the schema, completion and hover read it, and ``parse``
        reads the keys it names."""
        ...

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> SpecT | None:
        """The step's description from ``block``; ``what`` names the step in messages ("step `a`")."""
        ...

    async def run(self, spec: SpecT, attempt: Attempt) -> StepOutcome: ...
