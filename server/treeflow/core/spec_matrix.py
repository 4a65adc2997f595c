"""A step's `matrix:` read from its YAML node, each problem at file:line:col: keys and values,
`include` and `exclude`, and the limits of what it may make (`treeflow.core.matrix`)."""

from __future__ import annotations

import yaml

from treeflow.core.matrix import (
    KEY,
    KEY_RULE,
    MAX_COMBINATIONS,
    MAX_SAFE_NAME,
    RESERVED_KEYS,
    Matrix,
    combination_id,
    combinations,
    safe_name,
)
from treeflow.core.spec_reader import SpecReader, describe
from treeflow.quoting import quoted

_SCALARS = (
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
)


def read_matrix(reader: SpecReader, step_id: str, node: yaml.Node, what: str) -> list[dict[str, str]] | None:
    """The combinations of the `matrix:` at ``node`` of step ``step_id``, each its values by key;
    None, with the problems recorded in ``reader``, when it has any."""
    what = f"{what}: matrix"
    fields = reader.mapping(node, what, ())
    if fields is None:
        return None
    before = len(reader.errors)
    key_nodes = {key.value: key for key, _ in node.value if isinstance(key, yaml.ScalarNode)}
    axes: dict[str, tuple[str, ...]] = {}
    for key, value_node in fields.items():
        if key in RESERVED_KEYS:
            continue
        if not KEY.fullmatch(key):
            reader.error(key_nodes[key], f"{what}: bad key {quoted(repr(key))}: use {KEY_RULE}")
            continue
        values = _values(reader, value_node, f"{what}.{key}")
        if values is not None:
            axes[key] = values
    include = _entries(reader, fields.get("include"), f"{what}.include", None)
    written = tuple(key for key in fields if key not in RESERVED_KEYS)
    exclude = _entries(reader, fields.get("exclude"), f"{what}.exclude", written)
    if len(reader.errors) > before:
        return None
    if not axes and not include:
        reader.error(node, f"{what} is empty: give it a key with a list of values, or `include` entries")
        return None
    matrix = Matrix(axes, tuple(include), tuple(exclude))
    if matrix.product_size() + len(include) > MAX_COMBINATIONS:
        reader.error(
            node,
            f"{what} makes {matrix.product_size() + len(include)} combinations, more than "
            f"{MAX_COMBINATIONS}; use fewer values, or split the step",
        )
        return None
    made = combinations(matrix)
    if not made:
        reader.error(fields.get("exclude", node), f"{what}: `exclude` removes every combination")
        return None
    return made if _distinct(reader, node, step_id, made, what) else None


def written_keys(node: yaml.Node) -> tuple[str, ...]:
    """The keys a `matrix:` node names, its own and those of its `include` entries, readable or not:
    what its step's expressions may refer to."""
    if not isinstance(node, yaml.MappingNode):
        return ()
    keys: list[str] = []
    for key, value in node.value:
        name = key.value if isinstance(key, yaml.ScalarNode) else None
        if not isinstance(name, str) or name == "exclude":
            continue
        if name != "include":
            keys.append(name)
        elif isinstance(value, yaml.SequenceNode):
            for entry in value.value:
                if isinstance(entry, yaml.MappingNode):
                    keys.extend(k.value for k, _ in entry.value if isinstance(k, yaml.ScalarNode))
    return tuple(dict.fromkeys(str(key) for key in keys))


def _values(reader: SpecReader, node: yaml.Node, what: str) -> tuple[str, ...] | None:
    if not isinstance(node, yaml.SequenceNode):
        reader.error(node, f"{what} must be a list of values such as ['3.11', '3.12'], not {describe(node)}")
        return None
    if not node.value:
        reader.error(node, f"{what} is an empty list: give it at least one value")
        return None
    values: dict[str, None] = {}
    for item in node.value:
        value = _value(reader, item, f"{what}: each value")
        if value is None:
            continue
        if value in values:
            reader.error(item, f"{what}: {quoted(repr(value))} is listed twice")
            continue
        values[value] = None
    return tuple(values)


def _value(reader: SpecReader, node: yaml.Node, what: str) -> str | None:
    """A value as written: ``3.10`` stays `3.10`, where YAML would read the number 3.1."""
    return reader.scalar(node, what, _SCALARS, "a string, a number or true or false")


def _entries(
    reader: SpecReader, node: yaml.Node | None, what: str, known: tuple[str, ...] | None
) -> list[dict[str, str]]:
    """The mappings of an `include` or `exclude` list; with ``known``, each key must be one."""
    if node is None:
        return []
    if not isinstance(node, yaml.SequenceNode):
        reader.error(
            node, f"{what} must be a list of mappings such as [{{python: '3.13'}}], not {describe(node)}"
        )
        return []
    entries = []
    for item in node.value:
        fields = reader.mapping(item, f"each entry of {what}", ())
        if fields is None:
            continue
        if not fields:
            reader.error(item, f"{what}: an entry is empty")
            continue
        key_nodes = {key.value: key for key, _ in item.value if isinstance(key, yaml.ScalarNode)}
        entry: dict[str, str] = {}
        for key, value_node in fields.items():
            if known is not None and key not in known:
                listed = ", ".join(known) or "none"
                reader.error(key_nodes[key], f"{what}: unknown matrix key `{quoted(key)}` (keys: {listed})")
                continue
            if key in RESERVED_KEYS:
                reader.error(key_nodes[key], f"{what}: `{key}` cannot be a matrix key")
                continue
            if not KEY.fullmatch(key):
                reader.error(key_nodes[key], f"{what}: bad key {quoted(repr(key))}: use {KEY_RULE}")
                continue
            value = _value(reader, value_node, f"{what}: {key}")
            if value is not None:
                entry[key] = value
        entries.append(entry)
    return entries


def _distinct(
    reader: SpecReader, node: yaml.Node, step_id: str, made: list[dict[str, str]], what: str
) -> bool:
    """Whether every combination has an id, a branch and files of its own (names that differ only
    in case collide where file names ignore it)."""
    seen: dict[str, str] = {}
    for values in made:
        combination = combination_id(step_id, values)
        name = safe_name(combination)
        if len(name) > MAX_SAFE_NAME:
            reader.error(
                node,
                f"{what}: the branch name of combination `{quoted(combination)}` would be longer than "
                f"{MAX_SAFE_NAME} characters; use shorter values",
            )
            return False
        other = seen.setdefault(name.casefold(), combination)
        if other is combination:
            continue
        if other == combination:
            reader.error(node, f"{what}: `include` makes combination `{quoted(combination)}` a second time")
        else:
            reader.error(
                node,
                f"{what}: combinations `{quoted(other)}` and `{quoted(combination)}` would share the "
                f"branch name `{quoted(name)}`; make their values differ in more than case or punctuation",
            )
        return False
    return True
