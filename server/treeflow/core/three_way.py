"""A three-way merge of two trees against a base commit of our choosing, made without a checkout.

`git merge-tree --write-tree` (git 2.38) finds the merge base itself, and `--merge-base` to name
one came only with git 2.40. So each side becomes a commit whose one parent is the base: the base
is then their only common ancestor, whatever the real history. Conflict markers are labelled with
the names of the sides as merge-tree was given them, so each side is given as a ref named for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import anyio

from treeflow.core.git import GitError, RepoLock, Repository, git, run_git

_MERGE_TREE = ("merge-tree", "--write-tree", "--name-only", "--no-messages")


@dataclass(frozen=True)
class TreeMerge:
    """The merged tree (with conflict markers in the files that conflict) and those files."""

    tree: str
    conflicts: tuple[str, ...]


async def merge_trees(
    repo: Repository,
    lock: RepoLock,
    base: str,
    ours: tuple[str, str],
    theirs: tuple[str, str],
    env: Mapping[str, str],
) -> TreeMerge:
    """Merge trees ``ours`` and ``theirs`` (each ``(label, tree)``) with commit ``base`` as ancestor."""
    (our_label, our_tree), (their_label, their_tree) = ours, theirs
    base_tree = await git(repo.root, "rev-parse", f"{base}^{{tree}}")
    if their_tree in (base_tree, our_tree):
        return TreeMerge(our_tree, ())
    if our_tree == base_tree:
        return TreeMerge(their_tree, ())
    sides = []
    for tree in (our_tree, their_tree):
        sides.append(
            await git(
                repo.root,
                "commit-tree",
                "--no-gpg-sign",
                tree,
                "-p",
                base,
                "-m",
                "treeflow: merge side",
                env=env,
            )
        )
    code, out, err = await run_git(repo.root, *_MERGE_TREE, *sides)
    if code == 1:
        # Conflicts: merged again, this time under the sides' names, for the markers.
        code, out, err = await _merge_labelled(repo, lock, {our_label: sides[0], their_label: sides[1]})
    if code not in (0, 1):
        raise GitError(("merge-tree", our_tree, their_tree), code, err.strip())
    lines = out.splitlines()
    conflicts = tuple(dict.fromkeys(line for line in lines[1:] if line))
    return TreeMerge(lines[0], conflicts)


async def _merge_labelled(repo: Repository, lock: RepoLock, sides: dict[str, str]) -> tuple[int, str, str]:
    """merge-tree of the commits ``sides`` (label: commit), each given as a ref named by its label."""
    refs = {f"refs/treeflow/{label}": commit for label, commit in sides.items()}
    create = "".join(f"create {ref} {commit}\n" for ref, commit in refs.items())
    delete = "".join(f"delete {ref}\n" for ref in refs)
    # Shielded: a cancel half-way would leave the refs behind.
    with anyio.CancelScope(shield=True):
        async with lock:
            await git(repo.root, "update-ref", "--stdin", input=create.encode())
            try:
                merged = await run_git(repo.root, *_MERGE_TREE, *(f"treeflow/{label}" for label in sides))
            finally:
                await run_git(repo.root, "update-ref", "--stdin", input=delete.encode())
    return merged
