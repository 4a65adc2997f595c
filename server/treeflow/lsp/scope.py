"""Which files the language server reads for its client: workflow files inside its workspace folders.

A command may name any path. The server runs a file only if it lies inside one of its workspace
folders once every symlink is resolved, and quotes what a file holds only if that file is a
workflow, so that naming `/etc/shadow`, or a `.env` in the workspace, learns nothing of its content.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from treeflow.core.spec import MAX_WORKFLOW_BYTES
from treeflow.quoting import quoted

WORKSPACE_RULE = "the server runs only workflow files inside its workspace folders"
WORKFLOW_RULE = (
    "a workflow is a file named treeflow.yml, treeflow.yaml or .treeflow/*.yml, "
    "or a YAML file whose top level is a mapping with `steps:`"
)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class OutsideWorkspace(Exception):
    """A path the server will not read for its client; the message names the rule."""


def is_workflow_name(path: Path) -> bool:
    """Named as treeflow looks for workflows: ``treeflow.yml`` / ``.yaml``, or in ``.treeflow/``."""
    if path.suffix not in (".yml", ".yaml"):
        return False
    return path.stem == "treeflow" or path.parent.name == ".treeflow"


def resolve_in_workspace(path: Path, folders: Sequence[Path]) -> Path:
    """``path`` with every symlink resolved, if that lies inside one of ``folders``.

    Raises OutsideWorkspace otherwise, and for a server without workspace folders.
    """
    if not folders:
        raise OutsideWorkspace(f"the server has no workspace folder, and {WORKSPACE_RULE}")
    try:
        real = Path(os.path.realpath(path))
        roots = [Path(os.path.realpath(folder)) for folder in folders]
    except (OSError, ValueError) as exc:  # a NUL byte, say
        raise OutsideWorkspace(f"{quoted(str(path))} is not a usable path: {exc}") from exc
    if not any(real.is_relative_to(root) for root in roots):
        raise OutsideWorkspace(f"{quoted(str(path))} is outside the workspace folders; {WORKSPACE_RULE}")
    return real


def is_workflow(path: Path) -> bool:
    """Whether what ``path`` holds may be quoted back to the client: a file named as a workflow,
    or YAML whose top level is a mapping with a `steps` key. Anything unreadable is not."""
    if is_workflow_name(path):
        return True
    try:
        with path.open("rb") as file:
            data = file.read(MAX_WORKFLOW_BYTES + 1)
        if len(data) > MAX_WORKFLOW_BYTES:
            return False
        root = yaml.compose(data.decode("utf-8"), Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return False
    return isinstance(root, yaml.MappingNode) and any(
        isinstance(key, yaml.ScalarNode) and key.value == "steps" for key, _ in root.value
    )
