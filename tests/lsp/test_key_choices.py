"""A key with a closed set of values, as `use:` of an agent adapter table is: completion offers the
values with what each is, hover explains the one written, the schema lists them as its enum."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from treeflow.core.attempt import Attempt
from treeflow.core.kinds import register, unregister
from treeflow.core.outcome import StepOutcome
from treeflow.core.spec_keys import Fields, Key, Text, names
from treeflow.core.spec_reader import SpecReader
from treeflow.core.workflow_schema import json_schema
from treeflow.lsp.completion import completion_items
from treeflow.lsp.hover import hover_at
from treeflow.lsp.outline import read_outline

AGENTS = {"claude": "Claude Code", "codex": "OpenAI Codex CLI"}
KEYS = (
    Key("use", "Which agent runs the job.", Text("claude", AGENTS, closed=True, wording="an agent's name")),
    Key("prompt", "What the agent is asked to do.", Text("x"), required=True),
)


@dataclass(frozen=True)
class PickSpec:
    use: str


class PickKind:
    key = "pick"
    summary = "a job for a named agent"
    doc = "Runs a job with one of the agents treeflow knows."
    shape = Fields(KEYS)

    def parse(self, block: yaml.Node, reader: SpecReader, what: str) -> PickSpec | None:
        fields = reader.mapping(block, f"{what}: pick", names(KEYS))
        return None if fields is None else PickSpec(str(fields["use"].value))

    async def run(self, spec: PickSpec, attempt: Attempt) -> StepOutcome:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def pick_kind() -> Iterator[None]:
    register(PickKind())
    yield
    unregister("pick")


def test_completion_offers_the_names_with_what_each_is() -> None:
    for text in ("steps:\n  a:\n    pick:\n      use: \n", "steps:\n  a: {pick: {use: }}\n"):
        line = 3 if text.count("\n") == 4 else 1
        offered = completion_items(read_outline(text), (line, text.splitlines()[line].index("use: ") + 5))
        assert {item.label: item.documentation.value for item in offered} == AGENTS  # type: ignore[union-attr]


def test_hover_explains_the_name_written() -> None:
    text = "steps:\n  a:\n    pick: {use: codex, prompt: x}\n"
    shown = hover_at(read_outline(text), (2, 18))
    assert shown is not None
    assert shown[0] == "**codex**: OpenAI Codex CLI"


def test_the_schema_takes_only_those_names() -> None:
    use = json_schema()["definitions"]["step"]["properties"]["pick"]["properties"]["use"]
    assert use["enum"] == ["claude", "codex"]
    assert use["markdownEnumDescriptions"] == ["Claude Code", "OpenAI Codex CLI"]
