"""Commits between a step's worktree and a git remote: the start pushed for a remote agent, its
work fetched back onto the step's branch, and treeflow's branches on the remote removed.

git runs in the step's worktree with the user's own configuration and credentials, and with
terminal prompts off, so a remote that wants a password fails at once instead of waiting for
someone to type it.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import anyio

from treeflow.core.git import GitError, git, run_git
from treeflow.core.matrix import safe_name

_NO_PROMPT = {"GIT_TERMINAL_PROMPT": "0"}
_GITHUB_SSH = re.compile(r"(?:ssh://)?git@github\.com[:/](?P<path>[^\s]+?)(?:\.git)?/?")
_GITHUB_HTTPS = re.compile(r"https://github\.com/(?P<path>[^\s]+?)(?:\.git)?/?")


class RemoteError(Exception):
    """A remote that cannot be used or a git transfer that failed; the message says which."""


def base_branch(run_id: str, step_id: str) -> str:
    """Where the step's start commit waits for the remote agent."""
    return f"treeflow/{run_id}/{safe_name(step_id)}-base"


def agent_branch(run_id: str, step_id: str) -> str:
    """A fresh name for the branch the remote agent pushes its work to; fresh, so that a retry or a
    resumed run never meets a branch an earlier agent left."""
    return f"treeflow/{run_id}/{safe_name(step_id)}-agent-{secrets.token_hex(3)}"


async def remote_url(worktree: Path, remote: str) -> str:
    code, out, err = await run_git(worktree, "remote", "get-url", "--", remote)
    if code != 0 or not out.strip():
        raise RemoteError(f"the repository has no remote `{remote}` ({err.strip() or 'no URL'})")
    return out.strip()


def repository_for_api(url: str) -> str:
    """The remote's URL in the form a hosted agent service names repositories by: a GitHub SSH
    address becomes its https address; anything else is left as it is."""
    for pattern in (_GITHUB_SSH, _GITHUB_HTTPS):
        match = pattern.fullmatch(url.strip())
        if match is not None:
            return f"https://github.com/{match.group('path')}"
    return url


async def push_start(worktree: Path, remote: str, commit: str, branch: str) -> None:
    """Put ``commit`` on ``branch`` of ``remote``, replacing whatever an earlier attempt left there."""
    try:
        await git(worktree, "push", "--quiet", remote, f"+{commit}:refs/heads/{branch}", env=_NO_PROMPT)
    except GitError as exc:
        problem = exc.stderr or str(exc)
        raise RemoteError(f"could not push the step's start to {branch} on `{remote}`: {problem}") from None


async def fetch_work(worktree: Path, remote: str, branch: str) -> str | None:
    """Bring ``branch`` of ``remote`` onto the worktree's branch, which must be where it started
    from or behind it; return the new tip, or None when the remote has no such branch."""
    try:
        listed = await git(worktree, "ls-remote", "--heads", remote, f"refs/heads/{branch}", env=_NO_PROMPT)
        if not listed.strip():
            return None
        await git(worktree, "fetch", "--quiet", "--no-tags", remote, f"refs/heads/{branch}", env=_NO_PROMPT)
        fetched = await git(worktree, "rev-parse", "--verify", "FETCH_HEAD^{commit}")
    except GitError as exc:
        raise RemoteError(f"could not fetch {branch} from `{remote}`: {exc.stderr}") from None
    try:
        # Stopped half-way, it would leave the worktree's index locked and its work unsavable.
        with anyio.CancelScope(shield=True):
            await git(worktree, "merge", "--ff-only", "--quiet", fetched)
    except GitError as exc:
        raise RemoteError(
            f"the agent's branch {branch} on `{remote}` does not continue the step's start, so it cannot "
            f"become the step's work ({exc.stderr}); it is left on the remote as it is"
        ) from None
    return fetched


async def delete_remote_branch(worktree: Path, remote: str, branch: str) -> str | None:
    """Remove ``branch`` from ``remote``; None when done (or it was gone), else why not."""
    code, _out, err = await run_git(
        worktree, "push", "--quiet", remote, "--delete", f"refs/heads/{branch}", env=_NO_PROMPT
    )
    if code == 0 or "remote ref does not exist" in err:
        return None
    return err.strip() or f"git push --delete: exit status {code}"
