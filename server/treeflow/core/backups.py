"""The state of a checkout before an apply, kept as a ref so that `apply --undo` can bring it back.

A backup is a commit under `refs/treeflow/backups/<time>` whose tree is the working tree as it was
(tracked files as they were on disk, and the untracked files the apply would overwrite). Its parents
keep what else was there reachable, so that git's garbage collection never takes it: a commit of
the index as it was (on the old HEAD), a commit of what the apply left (its working tree, on a
commit of its index, on its HEAD), which is what undo compares the checkout with, and a commit
holding the index file itself. The message holds the rest as JSON. An undone backup moves to
`refs/treeflow/undone/<time>`: nothing is ever deleted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from treeflow.core.git import RepoLock, Repository, git, git_locked, run_git

BACKUPS = "refs/treeflow/backups"
UNDONE = "refs/treeflow/undone"


@dataclass(frozen=True)
class Backup:
    """A checkout before an apply (``head``, ``index_tree``, ``work_tree``) and after it
    (``applied_*``); ``untracked`` are the untracked files ``work_tree`` holds."""

    run_id: str
    label: str
    mode: str
    head: str | None
    head_ref: str | None
    index_tree: str
    work_tree: str
    untracked: tuple[str, ...]
    applied_head: str | None
    applied_index_tree: str
    applied_work_tree: str
    index_file: str | None = None  # a blob of the index file itself, its stat cache included
    ref: str = ""


async def save_backup(repo: Repository, lock: RepoLock, backup: Backup, env: Mapping[str, str]) -> Backup:
    """Write ``backup`` under a new ref and return it with that ref."""

    async def commit(tree: str, parents: list[str | None], message: str) -> str:
        args = [arg for parent in parents if parent for arg in ("-p", parent)]
        return await git(repo.root, "commit-tree", "--no-gpg-sign", tree, *args, "-m", message, env=env)

    index = await commit(backup.index_tree, [backup.head], "treeflow: the index before an apply")
    applied_index = await commit(
        backup.applied_index_tree, [backup.applied_head], "treeflow: the index after"
    )
    applied = await commit(backup.applied_work_tree, [applied_index], "treeflow: the working tree after")
    parents: list[str | None] = [index, applied]
    if backup.index_file is not None:
        holder = await git(repo.root, "mktree", input=f"100644 blob {backup.index_file}\tindex\n".encode())
        parents.append(await commit(holder, [], "treeflow: the index file before an apply"))
    facts = {name: value for name, value in asdict(backup).items() if name != "ref"}
    message = f"treeflow: before applying {backup.label}\n\n{json.dumps(facts, indent=1)}\n"
    saved = await commit(backup.work_tree, parents, message)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    ref = f"{BACKUPS}/{stamp}"
    await git_locked(lock, repo.root, "update-ref", ref, saved, "")
    return Backup(**{**facts, "untracked": backup.untracked, "ref": ref})


async def latest_backup(repo: Repository) -> Backup | None:
    """The newest backup not yet undone."""
    listing = await git(
        repo.root, "for-each-ref", "--sort=-refname", "--count=1", "--format=%(refname)", BACKUPS
    )
    ref = listing.strip()
    if not ref:
        return None
    code, body, _ = await run_git(repo.root, "log", "-1", "--format=%b", ref)
    if code != 0:
        return None
    facts = json.loads(body)
    facts["untracked"] = tuple(facts["untracked"])
    return Backup(**facts, ref=ref)


async def retire_backup(repo: Repository, lock: RepoLock, backup: Backup) -> str:
    """Move an undone backup aside, so that the next undo takes the one before it; return its new ref."""
    target = backup.ref.replace(BACKUPS, UNDONE, 1)
    commit = await git(repo.root, "rev-parse", backup.ref)
    await git_locked(lock, repo.root, "update-ref", target, commit, "")
    await git_locked(lock, repo.root, "update-ref", "-d", backup.ref, commit)
    return target
