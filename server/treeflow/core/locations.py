"""What treeflow calls the things it makes in a repository, and where it keeps them: step and run
branches, the lock file each run holds, and the folder of step worktrees."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from treeflow.core.git import (
    Repository,
)


def step_branch(run_id: str, step_id: str) -> str:
    return f"treeflow/{run_id}/{step_id}"


def run_branch(run_id: str) -> str:
    # Not `treeflow/<run_id>`: git cannot hold that ref beside `treeflow/<run_id>/<step>`.
    return f"treeflow/runs/{run_id}"


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
