"""Checks of a workflow against the repository it would run in, for `treeflow validate`: what the
file alone cannot tell and `treeflow run` would refuse later (a `base:` that is not a commit)."""

from __future__ import annotations

import yaml

from treeflow.core.git import Repository, resolve_commit
from treeflow.core.model import Workflow
from treeflow.core.spec_reader import SpecError
from treeflow.quoting import quoted

# libyaml's composer, when there is one: the file is composed again only to find a key's place.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
BASE_KEYWORDS = ("working", "head")


async def repository_problems(workflow: Workflow, text: str, repo: Repository) -> list[SpecError]:
    """What in ``workflow`` (read from ``text``) ``repo`` cannot give it, each at file:line:col."""
    if workflow.base in BASE_KEYWORDS or await resolve_commit(repo, workflow.base) is not None:
        return []
    line, column = _value_position(text, "base")
    message = f"base {quoted(repr(workflow.base))} is not a commit in {repo.root}"
    return [SpecError(workflow.path, line, column, message)]


def _value_position(text: str, key: str) -> tuple[int, int]:
    """The 1-based line and column of the value of top-level ``key`` in ``text`` (1, 1 if none)."""
    root = yaml.compose(text, Loader=_FAST_LOADER)
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node.start_mark.line + 1, value_node.start_mark.column + 1
    return 1, 1
