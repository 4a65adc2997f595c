"""A cached step's key: what its result depends on, read from git objects without reading a file.

The inputs are named by the object ids git already keeps: the start commit's tree for `cache: true`,
else the path, mode and blob id of every file the `inputs` patterns match there (a pattern matches
as `setup.copy` patterns do, and a folder it matches brings everything under it). To them the key
adds the step's kind and its spec after templates (its command or prompt), the environment the
workflow gives it, the workflow's `setup.run`, and for each step it needs, that step's key, or its
outputs when it has none. Your shell's own environment is not part of it, so the CLI and the editor
share hits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from treeflow.core.git import git

# Part of every key: a change to what a key covers makes every earlier entry a miss.
_KEY_FORMAT = "treeflow-cache-1"
_GLOB_CHARACTERS = frozenset("*?[")


async def inputs_digest(root: Path, start: str, inputs: tuple[str, ...] | None) -> str:
    """What the files ``inputs`` names hold at commit ``start`` (None: its whole tree), as a digest."""
    if inputs is None:
        return "tree " + await git(root, "rev-parse", f"{start}^{{tree}}")
    patterns = [PurePosixPath(pattern).parts for pattern in inputs]
    prefixes = _literal_prefixes(patterns)
    # Only the folders the patterns can reach are listed, when each begins with a plain name.
    listing = await git(
        root, "ls-tree", "-r", "-z", "--full-tree", start, *(["--", *prefixes] if prefixes else [])
    )
    digest = hashlib.sha256("\0".join(inputs).encode())
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        parts = tuple(path.split("/"))
        if any(_matches(parts, pattern) for pattern in patterns):
            digest.update(b"\0" + meta.encode() + b"\t" + path.encode())
    return "files " + digest.hexdigest()


def _literal_prefixes(patterns: list[tuple[str, ...]]) -> list[str]:
    """The leading plain folder or file names of the patterns; none when one starts with a glob."""
    prefixes = []
    for parts in patterns:
        plain = []
        for part in parts:
            if _GLOB_CHARACTERS.intersection(part):
                break
            plain.append(part)
        if not plain:
            return []
        prefixes.append("/".join(plain))
    return prefixes


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether ``pattern`` matches ``parts`` or a folder above it; `**` stands for any number of folders."""
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_matches(parts[index:], rest) for index in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _matches(parts[1:], rest)


def step_key(
    *,
    kind: str,
    spec: object,
    env: Mapping[str, str],
    setup: str | None,
    inputs: str,
    needs: Mapping[str, str],
) -> str:
    """The cache key of a step from what its result depends on (see the module's description)."""
    described = {
        "format": _KEY_FORMAT,
        "kind": kind,
        # Specs are frozen dataclasses of strings, numbers, tuples and mappings: their repr is stable.
        "spec": repr(spec),
        "env": sorted(env.items()),
        "setup": setup,
        "inputs": inputs,
        "needs": sorted(needs.items()),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
