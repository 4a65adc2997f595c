"""The published JSON Schema is the one the key model gives, and it agrees with the parser on every key:
each key's example is accepted by both, a value of the wrong type and an unknown key refused by both."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from treeflow.core import kinds
from treeflow.core.spec import WorkflowError, parse_workflow
from treeflow.core.spec_keys import WORKFLOW_KEYS, Either, Fields, Key, Shape, Steps
from treeflow.core.workflow_schema import json_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "schema" / "treeflow.schema.json"
# A step the others can need, and the step each key under test is put in.
BASE: dict[str, Any] = {"steps": {"a": {"run": "true"}, "b": {"run": "true"}}}
WRONG_FOR_EVERY_SHAPE = [[1]]


def test_the_published_schema_is_the_generated_one() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == schema_text(), "run scripts/generate-schema"


def test_the_extension_hands_the_schema_to_the_yaml_extension() -> None:
    manifest = json.loads((ROOT / "package.json").read_text())
    [entry] = manifest["contributes"]["yamlValidation"]
    assert (ROOT / entry["url"]).resolve() == PUBLISHED
    assert set(entry["fileMatch"]) >= {"treeflow.yml", "treeflow.yaml", ".treeflow/*.yml", ".treeflow/*.yaml"}
    assert "!schema/treeflow.schema.json" in (ROOT / ".vscodeignore").read_text().splitlines()


Chosen = dict[tuple[str, ...], tuple[Key, ...]]
"""For each mapping on the way to a key, the form of it the key is tried in."""


def variants_of(shape: Shape) -> list[tuple[Key, ...]]:
    if isinstance(shape, Fields):
        return [shape.keys]
    if isinstance(shape, Either):
        return [keys for each in shape.shapes for keys in variants_of(each)]
    return []


def key_paths(
    keys: tuple[Key, ...], path: tuple[str, ...] = (), chosen: Chosen | None = None
) -> Iterator[tuple[tuple[str, ...], Key, Chosen]]:
    """Every key of the format, in each form of the block it is in; a step's keys under step `b`."""
    chosen = chosen or {}
    for key in keys:
        here = (*path, key.name)
        if isinstance(key.shape, Steps):
            yield from key_paths(kinds.step_keys(), (*here, "b"), chosen)
            continue
        yield here, key, chosen
        for variant in variants_of(key.shape):
            yield from key_paths(variant, here, {**chosen, here: variant})


def minimal(keys: tuple[Key, ...]) -> dict[str, Any]:
    return {key.name: yaml.safe_load(key.shape.example) for key in keys if key.required}


# Keys the parser takes only beside another, which the schema does not express.
GOES_WITH: dict[tuple[str, ...], dict[str, Any]] = {("setup", "when_changed"): {"run": "npm ci"}}


def document_with(path: tuple[str, ...], value: Any, chosen: Chosen) -> dict[str, Any]:
    """The base workflow with ``value`` at ``path``, in the forms ``chosen`` of the blocks around it."""
    document = copy.deepcopy(BASE)
    mapping = document
    if path[0] == "steps":
        mapping = document["steps"][path[1]]
        if path[2] in kinds.KINDS:
            del mapping["run"]
    start = 2 if path[0] == "steps" else 0
    for depth in range(start + 1, len(path)):
        mapping = mapping.setdefault(path[depth - 1], minimal(chosen[path[:depth]]))
    mapping[path[-1]] = value
    mapping.update(
        {name: sibling for name, sibling in GOES_WITH.get(path, {}).items() if name not in mapping}
    )
    return document


def parser_accepts(document: dict[str, Any], tmp_path: Path) -> bool:
    try:
        parse_workflow(yaml.safe_dump(document), tmp_path / "treeflow.yml")
    except WorkflowError:
        return False
    return True


def schema_accepts(document: dict[str, Any]) -> bool:
    return jsonschema.Draft7Validator(json_schema()).is_valid(document)


ALL_KEYS = list(key_paths(WORKFLOW_KEYS))
IDS = [".".join(path) for path, _, _ in ALL_KEYS]


def test_every_key_is_found() -> None:
    found = set(IDS)
    assert {"base", "defaults.retry.jitter", "setup.copy", "steps.b.run", "steps.b.agent.heartbeat"} <= found
    assert {"steps.b.needs", "steps.b.agent.use", "steps.b.agent.repository", "steps.b.agent.report"} <= found


@pytest.mark.parametrize(("path", "key", "chosen"), ALL_KEYS, ids=IDS)
def test_parser_and_schema_agree_on_the_key(
    path: tuple[str, ...], key: Key, chosen: Chosen, tmp_path: Path
) -> None:
    valid = document_with(path, yaml.safe_load(key.shape.example), chosen)
    assert parser_accepts(valid, tmp_path), f"the parser refuses {valid}"
    assert schema_accepts(valid), f"the schema refuses {valid}"
    wrong = document_with(path, WRONG_FOR_EVERY_SHAPE, chosen)
    assert not parser_accepts(wrong, tmp_path), f"the parser takes {wrong}"
    assert not schema_accepts(wrong), f"the schema takes {wrong}"


FIELD_PLACES: list[tuple[tuple[str, ...], Chosen]] = [
    ((), {}),
    (("steps", "b"), {}),
    *(
        (path, {**chosen, path: variant})
        for path, key, chosen in ALL_KEYS
        for variant in variants_of(key.shape)
    ),
]


@pytest.mark.parametrize(
    ("place", "chosen"), FIELD_PLACES, ids=[".".join(p) or "top" for p, _ in FIELD_PLACES]
)
def test_an_unknown_key_is_refused_by_both(place: tuple[str, ...], chosen: Chosen, tmp_path: Path) -> None:
    document = document_with((*place, "zz_unknown"), 1, chosen)
    assert not parser_accepts(document, tmp_path)
    assert not schema_accepts(document)
    with pytest.raises(WorkflowError, match="unknown key `zz_unknown`"):
        parse_workflow(yaml.safe_dump(document), tmp_path / "treeflow.yml")


@pytest.mark.parametrize("step", [{"run": "true", "agent": {"prompt": "x"}}, {"timeout": "1s"}])
def test_a_step_needs_exactly_one_kind_key_in_both(step: dict[str, Any], tmp_path: Path) -> None:
    document = {"steps": {"a": step}}
    assert not parser_accepts(document, tmp_path)
    assert not schema_accepts(document)


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*/*.yml")), ids=str)
def test_the_examples_fit_the_schema(example: Path) -> None:
    jsonschema.Draft7Validator(json_schema()).validate(yaml.safe_load(example.read_text()))
