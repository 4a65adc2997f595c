"""What treeflow calls the things it makes in a repository, and where it keeps them: step and run
branches, the lock file each run holds, and the folder of step worktrees."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from treeflow.core.git import Repository, git
from treeflow.core.matrix import safe_name

# The run ids `runner.new_run_id` makes (<date>-<time>-<random>), and the step ids spec.py allows,
# followed, for a combination of a matrix, by its values (`matrix.safe_name`), and for a round of a
# fix loop by `.round-<n>` (`round_name`).
_RUN_ID = r"[0-9]{8}-[0-9]{6}-[0-9a-z]{1,16}"
_STEP_ID = r"[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_.-]+)?"
# Only branches of exactly these forms are treeflow's; any other name under `treeflow/` is the
# user's, however treeflow-like it looks.
_TREEFLOW_BRANCH = re.compile(
    rf"treeflow/(?:runs/(?P<result_of>{_RUN_ID})|(?P<step_of>{_RUN_ID})/{_STEP_ID}(?:\.interrupted(?:-[0-9]+)?)?)"
)


def step_branch(run_id: str, step_id: str) -> str:
    return f"treeflow/{run_id}/{safe_name(step_id)}"


def round_name(step_id: str, number: int) -> str:
    """What round ``number`` of a step's fix loop is called where a step's id would be: its branch
    `treeflow/<run_id>/<step>.round-<n>`, its worktree's folder. Written ids hold no `.`, so it
    never names a step of the workflow."""
    return f"{safe_name(step_id)}.round-{number}"


def round_branch(run_id: str, step_id: str, number: int) -> str:
    return step_branch(run_id, round_name(step_id, number))


def run_branch(run_id: str) -> str:
    # Not `treeflow/<run_id>`: git cannot hold that ref beside `treeflow/<run_id>/<step>`.
    return f"treeflow/runs/{run_id}"


def run_of_branch(branch: str) -> str | None:
    """The run a branch of treeflow's (a run's result, a step's work, or its earlier work moved
    aside) belongs to; None for every other branch."""
    match = _TREEFLOW_BRANCH.fullmatch(branch)
    if match is None:
        return None
    return match.group("result_of") or match.group("step_of")


async def branches_in_the_way(repo: Repository, run_id: str, step_ids: Iterable[str]) -> list[str]:
    """Existing branches that keep git from making the branches of run ``run_id``: git stores
    `a/b` as a file in folder `a`, so a branch `treeflow/runs` leaves no room for
    `treeflow/runs/<run_id>`, nor a branch `treeflow/runs/<run_id>/x` for the branch itself."""
    wanted = [run_branch(run_id), *(step_branch(run_id, step_id) for step_id in step_ids)]
    listing = await git(repo.root, "for-each-ref", "--format=%(refname)", "refs/heads/treeflow")
    names = [ref.removeprefix("refs/heads/") for ref in listing.splitlines()]
    return [
        name
        for name in names
        if any(want.startswith(f"{name}/") or name.startswith(f"{want}/") for want in wanted)
    ]


def in_the_way_message(run_id: str, names: list[str]) -> str:
    """Why run ``run_id`` cannot start with branches ``names`` there, and what to do about it."""
    plural = len(names) > 1
    return (
        f"cannot start run {run_id}: branch{'es' if plural else ''} {', '.join(names)} "
        f"{'are' if plural else 'is'} in the way of the branches treeflow makes "
        f"({run_branch(run_id)} for the run's result, {step_branch(run_id, '<step>')} for each step's "
        "work), because git cannot hold a branch `a` beside a branch `a/b`; rename "
        f"{'them' if plural else 'it'} (`git branch -m {names[0]} {names[0].replace('/', '-')}`) and "
        "run again"
    )


def run_locks_folder(repo: Repository) -> Path:
    return repo.state_dir / "runs"


def run_lock_path(repo: Repository, run_id: str) -> Path:
    """Held (flock) by the process running ``run_id``, so that `treeflow clean` leaves live runs alone."""
    return run_locks_folder(repo) / f"{run_id}.lock"


def worktree_root(repo: Repository) -> Path:
    """The folder holding this repository's step worktrees, outside the workspace so that editors and
    file watchers do not index them: ``$TREEFLOW_WORKTREE_ROOT`` or the user's cache folder."""
    override = os.environ.get("TREEFLOW_WORKTREE_ROOT")
    if override:
        base = Path(override)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = Path(cache) / "treeflow" / "worktrees"
    digest = hashlib.sha256(str(repo.common_dir).encode()).hexdigest()[:10]
    return base / f"{repo.root.name}-{digest}"


def pool_folder(repo: Repository) -> Path:
    """Where the warm worktree pool keeps its worktrees: beside the runs' folders, under a name no
    run id can take."""
    return worktree_root(repo) / "pool"


def pool_claims_folder(repo: Repository) -> Path:
    """One claim file per pooled worktree (``<slot>.lock``): held (flock) by the process whose step
    uses it, and holding a note of its state."""
    return repo.state_dir / "pool"
