"""The work a run left, as the review commands take it: the run's result, or the work of chosen
steps, each as a commit to compare with the run's base.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from treeflow.core.git import (
    MergeConflict,
    Repository,
    changed_files,
    identity_env,
    merge_commits,
    resolve_commit,
)
from treeflow.core.journal import RunRecord
from treeflow.core.locations import run_branch, step_branch
from treeflow.core.matrix import named_steps
from treeflow.core.model import RunStatus
from treeflow.core.service import RunRefused


class NoWork(RunRefused):
    """The run (or step) has nothing to review or apply: still going on, no result, discarded."""


@dataclass(frozen=True)
class FileConflict:
    """A file two sides changed differently, and the steps of the run that changed it."""

    path: str
    steps: tuple[str, ...]

    def describe(self) -> str:
        by = " and ".join(f"`{step}`" for step in self.steps) or "the run"
        return f"{self.path} (changed by {by})"


@dataclass(frozen=True)
class RunWork:
    """The work of run ``run_id``: ``commit`` holds it, ``base`` is where it started. ``steps`` are
    the steps it was taken from (empty for the run's result); ``step_commits`` holds each step of
    the run that has work, to tell who changed a file."""

    run_id: str
    workflow: str
    base: str
    commit: str
    steps: tuple[str, ...] = ()
    step_commits: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.steps:
            return f"run {self.run_id}"
        return f"step{'s' if len(self.steps) > 1 else ''} {', '.join(self.steps)} of run {self.run_id}"

    async def conflicts(self, repo: Repository, paths: Sequence[str]) -> tuple[FileConflict, ...]:
        """Each of ``paths`` with the steps whose work changed it."""
        wanted = set(paths)
        touched: dict[str, list[str]] = {path: [] for path in paths}
        chosen = self.steps or tuple(self.step_commits)
        for step_id in chosen:
            commit = self.step_commits.get(step_id)
            if commit is None or commit == self.base:
                continue
            for path in (await changed_files(repo, self.base, commit)) & wanted:
                touched[path].append(step_id)
        return tuple(FileConflict(path, tuple(steps)) for path, steps in touched.items())


@dataclass(frozen=True)
class StepsConflict(Exception):
    """The chosen steps' work cannot be merged: each file, with the steps that changed it."""

    work: RunWork
    files: tuple[FileConflict, ...]

    def __str__(self) -> str:
        return f"the work of {self.work.label} conflicts in " + ", ".join(f.describe() for f in self.files)


async def run_work(repo: Repository, record: RunRecord, steps: Sequence[str] = ()) -> RunWork:
    """The work of ``record``'s run: its result branch as it is now, or the merge of the branches of
    ``steps``. Raises NoWork when there is none to take, and StepsConflict when the steps' work
    cannot be merged."""
    run = record.run
    if record.discarded_at is not None:
        raise NoWork(f"run {run.run_id} was discarded: its branches are gone")
    if run.status is RunStatus.RUNNING:
        raise NoWork(f"run {run.run_id} is still going on; wait for it to end")
    if run.base_commit is None:
        raise NoWork(f"run {run.run_id} has no base commit: it never started")
    named = {name: named_steps(run.steps, name) for name in steps}
    unknown = [name for name, found in named.items() if not found]
    if unknown:
        raise NoWork(f"run {run.run_id} has no step {', '.join(unknown)} (its steps: {', '.join(run.steps)})")
    # A matrix step named by its id is every combination of it.
    steps = [step_id for found in named.values() for step_id in found]
    work = RunWork(
        run.run_id,
        run.workflow,
        run.base_commit,
        run.base_commit,
        tuple(steps),
        await step_commits(repo, record),
    )
    if not steps:
        tip = await resolve_commit(repo, f"refs/heads/{run_branch(run.run_id)}")
        if tip is None:
            raise NoWork(_no_result(record))
        return _with_commit(work, tip)
    commits = [work.step_commits.get(step_id, run.base_commit) for step_id in dict.fromkeys(steps)]
    message = f"treeflow: work of steps {', '.join(steps)} of run {run.run_id}"
    merged = await merge_commits(repo, commits, message, await identity_env(repo))
    if isinstance(merged, MergeConflict):
        raise StepsConflict(work, await work.conflicts(repo, merged.files))
    return _with_commit(work, merged)


def _with_commit(work: RunWork, commit: str) -> RunWork:
    return RunWork(work.run_id, work.workflow, work.base, commit, work.steps, work.step_commits)


async def step_commits(repo: Repository, record: RunRecord) -> dict[str, str]:
    """Each step of the run that left work, with its commit: its branch as it is now (the user may
    have committed on it), else the commit it left."""
    commits = {}
    for step_id, result in record.run.steps.items():
        tip = await resolve_commit(repo, f"refs/heads/{step_branch(record.run.run_id, step_id)}")
        if tip or result.commit:
            commits[step_id] = tip or result.commit or ""
    return commits


def _no_result(record: RunRecord) -> str:
    run = record.run
    if run.status is not RunStatus.SUCCEEDED and run.result_branch is None:
        return (
            f"run {run.run_id} {run.status.value} and has no result; "
            f"take the work of single steps with --step (see `treeflow show {run.run_id}`)"
        )
    if run.result_branch is None:
        reason = "; ".join(run.warnings) or "its steps changed nothing"
        return f"run {run.run_id} has no result: {reason}"
    return f"run {run.run_id} has no result: its branch {run.result_branch} is gone"
