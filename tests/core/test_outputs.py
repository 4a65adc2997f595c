"""Step outputs with real processes and git: `$TREEFLOW_OUTPUT` written, read by later steps through
`${{ needs.<id>.outputs.<name> }}` and variables, never committed, journaled and carried by a resume."""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import Recorder, run_workflow
from treeflow.core import journal
from treeflow.core.events import NullSink, RunWarning
from treeflow.core.git import open_repository
from treeflow.core.journal.schema import SCHEMA
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.service import plan_resume, start_run
from treeflow.core.spec import load_workflow

pytestmark = pytest.mark.anyio

WRITE_OUTPUTS = """\
    version=1.2.3
    notes<<END_OF_NOTES
    first line
    it's "quoted" & $(not run)
    END_OF_NOTES
"""


@pytest.mark.parametrize("worktrees", [True, False])
async def test_later_steps_read_outputs_in_run_env_and_variables(repo: Path, worktrees: bool) -> None:
    (repo / "outputs.txt").write_text(textwrap.dedent(WRITE_OUTPUTS))
    git(repo, "add", "outputs.txt")
    git(repo, "commit", "--quiet", "-m", "outputs")
    worktree = "" if worktrees else "\n        defaults: {worktree: false}"
    workflow = f"""\
        {worktree}
        steps:
          build: {{run: 'cat outputs.txt >> "$TREEFLOW_OUTPUT"; echo built > built.txt'}}
          use:
            needs: build
            env: {{VERSION: "v${{{{ needs.build.outputs.version }}}}"}}
            run: |
              echo "${{{{ needs.build.outputs.version }}}} $VERSION" > used.txt
              printf '%s' "$TREEFLOW_NEEDS_BUILD_OUTPUTS_NOTES" > notes.txt
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow, worktrees=worktrees)
    assert result.status is RunStatus.SUCCEEDED
    build = result.steps["build"]
    assert build.outputs == {"version": "1.2.3", "notes": 'first line\nit\'s "quoted" & $(not run)'}
    assert result.to_json()["steps"]["build"]["outputs"] == dict(build.outputs)
    if worktrees:
        use = result.steps["use"]
        assert use.branch is not None
        assert git(repo, "show", f"{use.branch}:used.txt") == "1.2.3 v1.2.3"
        assert git(repo, "show", f"{use.branch}:notes.txt") == 'first line\nit\'s "quoted" & $(not run)'
        # The outputs file lives in git's own folder: no step's work holds it.
        files = git(repo, "ls-tree", "-r", "--name-only", use.branch).split()
        assert sorted(files) == ["README.md", "built.txt", "notes.txt", "outputs.txt", "used.txt"]
    else:
        assert (repo / "used.txt").read_text() == "1.2.3 v1.2.3\n"
        assert git(repo, "status", "--porcelain", "--untracked-files=all").split() == [
            "??",
            "built.txt",
            "??",
            "notes.txt",
            "??",
            "treeflow.yml",
            "??",
            "used.txt",
        ]


async def test_each_attempt_starts_without_an_outputs_file(repo: Path) -> None:
    workflow = """\
        steps:
          flaky:
            retry: {attempts: 2, backoff: 10ms}
            run: |
              test -e "$TREEFLOW_OUTPUT" && echo "leftover=yes" >> "$TREEFLOW_OUTPUT"
              echo "attempt$TREEFLOW_ATTEMPT=yes" >> "$TREEFLOW_OUTPUT"
              test "$TREEFLOW_ATTEMPT" = 2
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    assert result.steps["flaky"].status is StepStatus.SUCCEEDED
    assert result.steps["flaky"].outputs == {"attempt2": "yes"}


async def test_a_step_that_writes_no_outputs_leaves_no_outputs_file(repo: Path) -> None:
    with anyio.fail_after(30):
        result = await run_workflow(repo, "steps:\n  quiet: {run: 'true'}\n")
    assert result.steps["quiet"].status is StepStatus.SUCCEEDED
    assert result.steps["quiet"].outputs == {}
    assert list((repo / ".git" / "treeflow").rglob("*.outputs")) == []


async def test_a_malformed_outputs_file_fails_the_step(repo: Path) -> None:
    workflow = """\
        steps:
          bad: {run: 'echo "no equals sign" >> "$TREEFLOW_OUTPUT"'}
          unclosed: {run: 'printf "text<<EOF\\nnever closed\\n" >> "$TREEFLOW_OUTPUT"'}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow.replace("steps:", "fail_fast: false\n        steps:"))
    bad = result.steps["bad"]
    assert bad.status is StepStatus.FAILED
    assert bad.error is not None
    assert "line 1: expected `name=value` or `name<<DELIMITER`" in bad.error
    assert "has no closing line `EOF`" in (result.steps["unclosed"].error or "")


async def test_an_output_a_step_did_not_write_is_empty_with_a_warning(repo: Path) -> None:
    recorder = Recorder()
    workflow = """\
        steps:
          quiet: {run: "true"}
          reader: {needs: quiet, run: 'echo "[${{ needs.quiet.outputs.missing }}]" > seen.txt'}
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow, recorder)
    assert result.status is RunStatus.SUCCEEDED
    assert (repo / "seen.txt").read_text() == "[]\n"
    warnings = [event.message for event in recorder.events if isinstance(event, RunWarning)]
    assert warnings == ["`needs.quiet.outputs.missing` is empty: `quiet` wrote no such output"]


async def test_outputs_are_journaled_and_carried_by_a_resume(repo: Path) -> None:
    path = repo / "treeflow.yml"
    path.write_text(
        textwrap.dedent(
            """\
            steps:
              version: {run: 'echo "tag=v7" >> "$TREEFLOW_OUTPUT"'}
              release: {needs: version, run: 'test -e ready && echo "${{ needs.version.outputs.tag }}" > released'}
            """
        )
    )
    repository = await open_repository(repo)
    workflow = load_workflow(path)
    with anyio.fail_after(60):
        first = await start_run(repository, workflow, NullSink()).execute()
    assert first.steps["release"].status is StepStatus.FAILED
    record = journal.read_run(journal.journal_path(repository), first.run_id)
    assert record is not None
    assert record.run.steps["version"].outputs == {"tag": "v7"}

    (repo / "ready").touch()
    git(repo, "add", "ready")
    git(repo, "commit", "--quiet", "-m", "ready")
    plan = plan_resume(record, workflow, rebase=True)
    assert plan.completed["version"].outputs == {"tag": "v7"}
    with anyio.fail_after(60):
        second = await start_run(repository, workflow, NullSink(), resume=plan).execute()
    assert second.status is RunStatus.SUCCEEDED
    release = second.steps["release"]
    assert release.branch is not None
    assert git(repo, "show", f"{release.branch}:released") == "v7"
    again = journal.read_run(journal.journal_path(repository), first.run_id)
    assert again is not None
    assert again.run.steps["version"].outputs == {"tag": "v7"}


async def test_a_journal_written_before_outputs_existed_still_opens(repo: Path) -> None:
    repository = await open_repository(repo)
    path = journal.journal_path(repository)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The journal as a treeflow without outputs left it: every table but `step_outputs`.
    older = re.sub(r"CREATE TABLE IF NOT EXISTS step_outputs \(.*?\) WITHOUT ROWID;", "", SCHEMA, flags=re.S)
    assert "step_outputs" not in older and "discarded_runs" in older
    with sqlite3.connect(path) as connection:
        connection.executescript(older)
        connection.execute(
            "INSERT INTO runs (run_id, workflow, workflow_path, status) VALUES ('r1', 'w', 'w.yml', 'failed')"
        )
        assert "step_outputs" not in {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    record = journal.read_run(path, "r1")
    assert record is not None
    assert record.run.status is RunStatus.FAILED
    with sqlite3.connect(path) as connection:
        assert "step_outputs" in {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
