"""Stash entries a step made, moved from the user's stash list onto the step's branch.

git keeps one stash list (`refs/stash`) for all the worktrees of a repository, so a `git stash` run
by a step in its worktree pushes onto the user's own list, and what the step stashed would be found
only there. treeflow reads the list before the step starts; when it saves the step's work, each
entry that is new since then and was made on the step's branch becomes a commit on that branch and
is taken off the list. Entries are told apart by commit id and by the branch their message names,
never by position, so the user's own entries and those of steps running beside it are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from treeflow.core.git import GitError, RepoLock, git, run_git

_DROP_TRIES = 5


@dataclass(frozen=True)
class StashEntry:
    commit: str
    message: str  # as `git stash list` shows it: "WIP on <branch>: ..." or "On <branch>: ..."


@dataclass(frozen=True)
class MovedStash:
    """Where the work of one stash entry went: ``commit`` on the step's branch, or, when it
    conflicts with what the step did after stashing, the tip of the branch ``kept_on``."""

    entry: StashEntry
    commit: str
    kept_on: str | None = None


async def stash_entries(cwd: Path) -> list[StashEntry]:
    """The repository's stash list, newest first."""
    out = await git(cwd, "stash", "list", "--format=%H%x00%gs")
    entries = []
    for line in out.splitlines():
        commit, _, message = line.partition("\0")
        entries.append(StashEntry(commit, message))
    return entries


def made_on_branch(entries: Sequence[StashEntry], before: frozenset[str], branch: str) -> list[StashEntry]:
    """The ``entries`` not among the commits ``before`` that were made on ``branch``, oldest first."""
    prefixes = (f"WIP on {branch}: ", f"On {branch}: ")
    return [e for e in reversed(entries) if e.commit not in before and e.message.startswith(prefixes)]


async def move_stashed_work(
    worktree: Path,
    branch: str,
    before: frozenset[str],
    lock: RepoLock,
    *,
    held_back: Sequence[str],
    step_label: str,
    identity: Mapping[str, str],
    warn: Callable[[str], None],
) -> list[MovedStash]:
    """Give ``branch``, checked out in ``worktree`` with nothing left to commit, the work of each
    stash entry made on it since the list held ``before``, and take those entries off the list.

    An entry is dropped only once its work is on a branch; one that cannot be moved stays on the
    list and ``warn`` says why. New files under ``held_back`` are not committed, as in the step's
    own work, and neither are files the stash holds that .gitignore ignores (`git stash --all`).
    """
    moved: list[MovedStash] = []
    try:
        listed = await stash_entries(worktree)
    except (GitError, OSError) as exc:
        warn(f"could not read the stash list to find what the step stashed: {exc}")
        return moved
    for entry in made_on_branch(listed, before, branch):
        try:
            done = await _move_entry(worktree, branch, entry, lock, held_back, step_label, identity)
            await _drop(worktree, entry, lock)
        except (GitError, OSError) as exc:
            warn(
                f"its work in your stash list ({entry.message}) could not be moved onto {branch}, so it "
                f"stays there as {entry.commit[:10]}: {exc}"
            )
            continue
        moved.append(done)
        if done.kept_on is None:
            warn(
                f"`git stash` put its work in your stash list ({entry.message}); it is now commit "
                f"{done.commit[:10]} on {branch}, and your stash list is as it was"
            )
        else:
            warn(
                f"`git stash` put its work in your stash list ({entry.message}), and it conflicts with "
                f"what the step did afterwards, so it is kept on {done.kept_on} instead; your stash list "
                "is as it was"
            )
    return moved


async def _move_entry(
    worktree: Path,
    branch: str,
    entry: StashEntry,
    lock: RepoLock,
    held_back: Sequence[str],
    step_label: str,
    identity: Mapping[str, str],
) -> MovedStash:
    parents = (await git(worktree, "rev-list", "--parents", "-n", "1", entry.commit)).split()[1:]
    stashed_on = parents[0]
    untracked = parents[2] if len(parents) > 2 else None
    tree = await _stashed_tree(worktree, entry.commit, untracked, held_back)
    message = f"treeflow: what step {step_label} stashed\n\n{entry.message}"
    # The stash as an ordinary commit on the one it was made on, so that merging it into the
    # branch's tip replays exactly what the step stashed.
    stashed = await git(
        worktree, "commit-tree", "--no-gpg-sign", tree, "-p", stashed_on, "-m", message, env=identity
    )
    tip = await git(worktree, "rev-parse", "HEAD")
    code, out, err = await run_git(
        worktree, "merge-tree", "--write-tree", "--no-messages", "--name-only", tip, stashed
    )
    if code == 1:
        kept_on = await _new_branch(worktree, f"{branch}.stash", stashed, lock)
        return MovedStash(entry, stashed, kept_on)
    if code != 0:
        raise GitError(("merge-tree", tip, stashed), code, err.strip())
    merged_tree = out.splitlines()[0]
    commit = await git(
        worktree, "commit-tree", "--no-gpg-sign", merged_tree, "-p", tip, "-m", message, env=identity
    )
    # Files first, then the branch: should treeflow stop in between, the worktree shows the stashed
    # work as changes not yet committed, which whoever saves it commits.
    await git(worktree, "read-tree", "-m", "-u", tip, commit)
    await git(worktree, "update-ref", "-m", "treeflow: move stashed work", "HEAD", commit, tip)
    return MovedStash(entry, commit)


async def _stashed_tree(worktree: Path, stash: str, untracked: str | None, held_back: Sequence[str]) -> str:
    """The files the stash entry holds: the tracked ones, and its untracked ones (`-u`, `--all`)
    but for those held back or ignored."""
    if untracked is None:
        return await git(worktree, "rev-parse", f"{stash}^{{tree}}")
    git_dir = Path(await git(worktree, "rev-parse", "--path-format=absolute", "--git-dir"))
    # In the worktree's own git folder, which goes when the worktree does.
    index = git_dir / f"treeflow-stash-{os.getpid()}-{os.urandom(4).hex()}.index"
    scratch = {"GIT_INDEX_FILE": str(index)}
    try:
        await git(worktree, "read-tree", f"{untracked}^{{tree}}", env=scratch)
        listed = await git(worktree, "ls-files", "-z", env=scratch)
        ignored = await git(
            worktree, "ls-files", "-z", "--cached", "--ignored", "--exclude-standard", env=scratch
        )
        unwanted = {path for path in ignored.split("\0") if path}
        unwanted.update(
            path
            for path in listed.split("\0")
            if path and any(path == p or path.startswith(f"{p}/") for p in held_back)
        )
        if unwanted:
            paths = git_dir / f"{index.name}.paths"
            await anyio.Path(paths).write_bytes(b"\0".join(p.encode() for p in sorted(unwanted)))
            try:
                await git(
                    worktree,
                    "rm",
                    "--cached",
                    "--quiet",
                    f"--pathspec-from-file={paths}",
                    "--pathspec-file-nul",
                    env=scratch,
                )
            finally:
                await anyio.Path(paths).unlink(missing_ok=True)
        kept = await git(worktree, "write-tree", env=scratch)
        # Without -m, read-tree lays the trees over each other; tracked and untracked paths never meet.
        await git(worktree, "read-tree", f"{stash}^{{tree}}", kept, env=scratch)
        return await git(worktree, "write-tree", env=scratch)
    finally:
        await anyio.Path(index).unlink(missing_ok=True)


async def _new_branch(worktree: Path, name: str, commit: str, lock: RepoLock) -> str:
    """A new branch at ``commit`` named ``name``, or ``name-2`` and so on if that one is taken."""
    for number in range(1, 1000):
        candidate = name + (f"-{number}" if number > 1 else "")
        code, _, _ = await run_git(worktree, "rev-parse", "--verify", "--quiet", f"refs/heads/{candidate}")
        if code != 0:
            async with lock:
                with anyio.CancelScope(shield=True):
                    # The empty old value makes git refuse if the branch appeared meanwhile.
                    await git(worktree, "update-ref", f"refs/heads/{candidate}", commit, "")
            return candidate
    raise GitError(("branch", name), 1, "no free branch name")


async def _drop(worktree: Path, entry: StashEntry, lock: RepoLock) -> None:
    """Take ``entry`` off the stash list.

    git drops an entry only by its position, and a step may push another entry at any moment,
    moving every position by one. So the list is read again after each drop: an entry that went
    instead of ``entry`` is stored back, and the drop tried again. No entry is ever lost; a push in
    that instant can only change the order of the user's list.
    """
    async with lock:
        with anyio.CancelScope(shield=True):
            for _ in range(_DROP_TRIES):
                listed = await stash_entries(worktree)
                commits = [e.commit for e in listed]
                if entry.commit not in commits:
                    return
                position = commits.index(entry.commit)
                await run_git(worktree, "stash", "drop", "--quiet", f"stash@{{{position}}}")
                remaining = {e.commit for e in await stash_entries(worktree)}
                for other in listed:
                    if other.commit != entry.commit and other.commit not in remaining:
                        await git(worktree, "stash", "store", "--quiet", "-m", other.message, other.commit)
                if entry.commit not in remaining:
                    return
                await anyio.sleep(0.01)
    raise GitError(("stash", "drop"), 1, f"{entry.commit[:10]} is still on the stash list")
