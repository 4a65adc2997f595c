"""The JSON Schema of workflow files, built from the keys the parser reads (`spec_keys`, the kinds).

The repository publishes it as schema/treeflow.schema.json, written by `scripts/generate-schema`
(this module run as a program); the editor extension hands it to the YAML extension.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, assert_never

from treeflow.core import kinds
from treeflow.core.matrix import MAX_COMBINATIONS
from treeflow.core.spec_keys import (
    WORKFLOW_KEYS,
    Combinations,
    Duration,
    Either,
    Fields,
    Flag,
    Fraction,
    Key,
    Matrix,
    Shape,
    Steps,
    Text,
    TextList,
    Variables,
    Whole,
)
from treeflow.core.spec_reader import MAX_DURATION_S

DRAFT = "http://json-schema.org/draft-07/schema#"
# As `spec_reader.parse_duration` reads one: number-unit parts, no space between them.
_DURATION_PATTERN = r"^\s*([0-9]+(\.[0-9]+)?(ms|s|m|h))+\s*$"
# As `spec.STEP_ID` and the rule against a leading '-'.
_STEP_ID_PATTERN = r"^(?!-)[A-Za-z0-9_-]{1,64}$"
_NOT_BLANK = r"\S"
# As `matrix.KEY`.
_MATRIX_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
_MATRIX_VALUE = {"type": ["string", "number", "boolean"]}


def json_schema() -> dict[str, Any]:
    """The schema for the step kinds registered now."""
    step_keys = kinds.step_keys()
    step = _fields(step_keys)
    step["oneOf"] = [{"required": [key]} for key in kinds.KINDS]
    return {
        "$schema": DRAFT,
        "title": "treeflow workflow",
        "description": "A treeflow workflow (version 1): steps run in parallel, each in a git worktree.",
        **_fields(WORKFLOW_KEYS),
        "definitions": {"step": step},
    }


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def _fields(keys: tuple[Key, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {key.name: _property(key) for key in keys},
        "additionalProperties": False,
    }
    required = [key.name for key in keys if key.required]
    if required:
        schema["required"] = required
    return schema


def _property(key: Key) -> dict[str, Any]:
    markdown = key.doc if key.default is None else f"{key.doc}\n\nDefault: {key.default}."
    return {"description": markdown, "markdownDescription": markdown, **_shape(key.shape)}


def _shape(shape: Shape) -> dict[str, Any]:
    match shape:
        case Text():
            return _text(shape)
        case Whole():
            return {"type": "integer", "minimum": shape.minimum}
        case Flag():
            return {"type": "boolean"}
        case Fraction():
            return {"type": "number", "minimum": 0, "maximum": 1}
        case Duration():
            return {
                "anyOf": [
                    {"type": "string", "pattern": _DURATION_PATTERN},
                    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION_S},
                ]
            }
        case TextList():
            return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        case Variables():
            return {
                "type": "object",
                "propertyNames": {"pattern": r"^[^=\u0000]+$"},
                "additionalProperties": {"type": ["string", "number", "boolean"]},
            }
        case Fields():
            return _fields(shape.keys)
        case Either():
            return {"anyOf": [_shape(each) for each in shape.shapes]}
        case Steps():
            return {
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": _STEP_ID_PATTERN},
                "additionalProperties": {"$ref": "#/definitions/step"},
            }
        case Combinations():
            return {
                "type": "array",
                "items": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"pattern": _MATRIX_KEY_PATTERN},
                    "additionalProperties": _MATRIX_VALUE,
                },
            }
        case Matrix():
            values = {"type": "array", "minItems": 1, "maxItems": MAX_COMBINATIONS, "items": _MATRIX_VALUE}
            return {
                "type": "object",
                "minProperties": 1,
                "properties": {key.name: _property(key) for key in shape.keys},
                "propertyNames": {"pattern": _MATRIX_KEY_PATTERN},
                "additionalProperties": values,
            }
        case _:
            assert_never(shape)


def _text(shape: Text) -> dict[str, Any]:
    plain: dict[str, Any] = {"type": "string"}
    if shape.not_blank:
        plain["pattern"] = _NOT_BLANK
    if not shape.choices:
        return plain
    listed = {
        "enum": list(shape.choices),
        "markdownEnumDescriptions": list(shape.choices.values()),
    }
    return listed if shape.closed else {"anyOf": [listed, plain]}


def main(argv: list[str]) -> int:
    """Write the schema to the file named in ``argv``, or print it."""
    text = schema_text()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
