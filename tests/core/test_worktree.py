"""Steps in their own worktrees, with real repositories: isolation, saved work, joins, setup."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import make_run, run_workflow, worktrees_left
from treeflow.core.git import RepoLock, git_locked, open_repository
from treeflow.core.git_workspace import WorkspaceError
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.step_worktree import step_worktree
from treeflow.core.workspace import StepSetupError

pytestmark = pytest.mark.anyio


def treeflow_worktrees(repo: Path) -> list[str]:
    """Worktrees left behind: any but the checkout and the pool's clean, idle ones."""
    return worktrees_left(repo)


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--format=%(refname:short)").splitlines()


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


@pytest.mark.slow
async def test_sixteen_parallel_steps_twenty_times_without_a_git_error(
    repo: Path, worktree_root: Path
) -> None:
    steps = "\n".join(
        f"  s{i}: {{run: 'mkdir -p out && echo {i} > out/s{i}.txt && echo $TREEFLOW_STEP > out/s{i}.who'}}"
        for i in range(16)
    )
    for _ in range(20):
        result = await run_workflow(repo, f"max_parallel: 16\nsteps:\n{steps}\n", worktrees=True)
        assert result.warnings == ()
        assert {s.status for s in result.steps.values()} == {StepStatus.SUCCEEDED}, {
            step_id: s.error for step_id, s in result.steps.items() if s.error
        }
        for i in range(16):
            step = result.steps[f"s{i}"]
            assert step.branch == f"treeflow/{result.run_id}/s{i}"
            assert step.commit == git(repo, "rev-parse", step.branch)
            assert show(repo, step.branch, f"out/s{i}.txt") == str(i)
            assert show(repo, step.branch, f"out/s{i}.who") == f"s{i}"
    assert treeflow_worktrees(repo) == []
    # Pooled worktrees hold the files of the last step they served, at its commit.
    assert not any(
        path for path in worktree_root.rglob("*.txt") if "pool" not in path.relative_to(worktree_root).parts
    )


async def test_the_users_checkout_is_untouched_and_its_changes_are_the_base(repo: Path) -> None:
    (repo / "README.md").write_text("edited but not committed\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "stashed.txt").write_text("s\n")
    git(repo, "add", "stashed.txt")
    git(repo, "stash", "push", "--quiet", "--", "stashed.txt")
    (repo / "README.md").write_text("edited but not committed\n")

    def state() -> list[str]:
        return [
            git(repo, "status", "--porcelain", "--untracked-files=all"),
            git(repo, "diff"),
            git(repo, "diff", "--cached"),
            git(repo, "rev-parse", "HEAD"),
            git(repo, "branch", "--show-current"),
            git(repo, "stash", "list"),
            (repo / "README.md").read_text(),
        ]

    workflow_file = repo.parent / "workflow.yml"
    before = state()
    result = await run_workflow(
        repo,
        """\
        steps:
          reader: {run: "cat README.md > seen.txt; cat staged.txt >> seen.txt; test ! -e notes.txt"}
        """,
        worktrees=True,
        workflow_path=workflow_file,
    )
    assert result.status is RunStatus.SUCCEEDED, result.steps["reader"].error
    assert state() == before
    seen = show(repo, result.steps["reader"].branch or "?", "seen.txt")
    assert seen == "edited but not committed\nstaged"
    assert result.base_commit != git(repo, "rev-parse", "HEAD")


async def test_base_head_ignores_uncommitted_changes(repo: Path) -> None:
    (repo / "README.md").write_text("uncommitted\n")
    result = await run_workflow(
        repo,
        "base: head\nsteps:\n  r: {run: 'cp README.md copy.txt'}\n",
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    assert result.base_commit == git(repo, "rev-parse", "HEAD")
    assert show(repo, result.steps["r"].branch or "?", "copy.txt") == "hello"


@pytest.mark.parametrize(
    ("run", "extra", "status"),
    [
        ("echo partial > work.txt; exit 1", "", StepStatus.FAILED),
        ("echo partial > work.txt; sleep 60", "timeout: 300ms", StepStatus.TIMED_OUT),
    ],
)
async def test_partial_work_of_a_failed_or_timed_out_step_is_committed(
    repo: Path, run: str, extra: str, status: StepStatus
) -> None:
    result = await run_workflow(
        repo, f"steps:\n  s: {{run: '{run}', {extra or 'retry: 1'}}}\n", worktrees=True
    )
    step = result.steps["s"]
    assert step.status is status
    assert step.branch is not None
    assert show(repo, step.branch, "work.txt") == "partial"
    assert treeflow_worktrees(repo) == []


async def test_a_cancelled_step_keeps_what_it_wrote(repo: Path) -> None:
    mark = repo.parent / "started"
    run = await make_run(
        repo, f"steps:\n  s: {{run: 'echo partial > work.txt; touch {mark}; sleep 60'}}\n", worktrees=True
    )
    async with anyio.create_task_group() as group:
        group.start_soon(run.execute)
        with anyio.fail_after(20):
            while not mark.exists():
                await anyio.sleep(0.02)
        run.cancel()
    step = run.snapshot().steps["s"]
    assert step.status is StepStatus.CANCELLED
    assert show(repo, step.branch or "?", "work.txt") == "partial"
    assert treeflow_worktrees(repo) == []


async def test_branches_without_work_are_deleted_and_the_run_branch_merges_the_rest(repo: Path) -> None:
    result = await run_workflow(
        repo,
        """\
        steps:
          idle: {run: "true"}
          writer: {run: "echo w > w.txt"}
          other: {run: "echo o > o.txt"}
        """,
        worktrees=True,
    )
    assert result.steps["idle"].branch is None
    assert f"treeflow/{result.run_id}/idle" not in branches(repo)
    assert result.result_branch == f"treeflow/runs/{result.run_id}"
    assert show(repo, result.result_branch, "w.txt") == "w"
    assert show(repo, result.result_branch, "o.txt") == "o"


async def test_no_run_branch_when_nothing_changed(repo: Path) -> None:
    result = await run_workflow(repo, "steps:\n  idle: {run: 'true'}\n", worktrees=True)
    assert result.result_branch is None
    assert [b for b in branches(repo) if b.startswith("treeflow/")] == []


async def test_a_join_starts_from_the_work_of_all_its_needs(repo: Path) -> None:
    result = await run_workflow(
        repo,
        """\
        steps:
          left: {run: "echo L > left.txt"}
          right: {run: "echo R > right.txt"}
          join: {run: "cat left.txt right.txt > both.txt", needs: [left, right]}
        """,
        worktrees=True,
    )
    assert result.status is RunStatus.SUCCEEDED, result.steps["join"].error
    assert show(repo, result.steps["join"].branch or "?", "both.txt") == "L\nR"
    assert show(repo, result.result_branch or "?", "both.txt") == "L\nR"


async def test_a_conflicting_join_fails_before_running_and_names_files_and_steps(repo: Path) -> None:
    result = await run_workflow(
        repo,
        """\
        fail_fast: false
        steps:
          left: {run: "echo L > README.md"}
          right: {run: "echo R > README.md"}
          join: {run: "touch ran.txt", needs: [left, right]}
        """,
        worktrees=True,
    )
    join = result.steps["join"]
    assert join.status is StepStatus.FAILED
    assert join.error is not None
    assert "README.md" in join.error
    assert "`left`" in join.error
    assert "`right`" in join.error
    assert join.branch is None
    assert join.attempts == 0


async def test_setup_copies_ignored_files_without_committing_them(repo: Path) -> None:
    (repo / ".gitignore").write_text(".env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore .env")
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "local.cfg").write_text("untracked, not ignored\n")
    result = await run_workflow(
        repo,
        """\
        setup: {copy: [".env", "*.cfg"]}
        steps:
          uses: {run: "cat .env local.cfg > used.txt"}
        """,
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    uses = result.steps["uses"]
    assert uses.status is StepStatus.SUCCEEDED, uses.error
    assert show(repo, uses.branch or "?", "used.txt") == "SECRET=1\nuntracked, not ignored"
    files = git(repo, "ls-tree", "-r", "--name-only", uses.branch or "?").splitlines()
    assert ".env" not in files
    assert "local.cfg" not in files


@pytest.mark.parametrize("pattern", [".", "", "./", "../outside", "/etc", "a/***"])
async def test_setup_copy_refuses_at_run_time_what_validate_rejects(
    repo: Path, tmp_path: Path, pattern: str
) -> None:
    (repo / ".env").write_text("SECRET=1\n")
    repository = await open_repository(repo)
    path = tmp_path / "worktrees" / "step"
    with pytest.raises(StepSetupError, match=r"^setup\.copy: "):
        async with step_worktree(
            repository,
            RepoLock(repository),
            path=path,
            branch="treeflow/run/step",
            start=git(repo, "rev-parse", "HEAD"),
            copy=(".env", pattern),
            commit_message="work",
            identity={},
            warn=pytest.fail,
        ):
            pytest.fail("the step ran")
    assert treeflow_worktrees(repo) == []
    assert "treeflow/run/step" not in branches(repo)


async def test_setup_copy_of_everything_never_commits_a_copied_file(repo: Path) -> None:
    (repo / ".gitignore").write_text("cache/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore the cache")
    (repo / ".env").write_text("SECRET=1\n")  # untracked, and not ignored either
    (repo / "sub").mkdir()
    (repo / "sub" / "local.txt").write_text("untracked\n")
    (repo / "cache").mkdir()
    (repo / "cache" / "built.bin").write_text("ignored\n")
    result = await run_workflow(
        repo,
        """\
        setup: {copy: ["**"]}
        steps:
          s: {run: "cat .env cache/built.bin > seen.txt && echo new > sub/new.txt"}
        """,
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    branch = step.branch or "?"
    assert show(repo, branch, "seen.txt") == "SECRET=1\nignored"
    files = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert sorted(files) == [".gitignore", "README.md", "seen.txt", "sub/new.txt"]
    assert treeflow_worktrees(repo) == []


async def test_setup_copy_never_writes_through_a_link_the_start_commit_tracks(
    repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    git(repo, "switch", "-q", "-c", "linked")
    (repo / "cfg").symlink_to(outside)
    git(repo, "add", "cfg")
    git(repo, "commit", "-qm", "cfg is a link")
    git(repo, "switch", "-q", "main")
    (repo / "cfg").mkdir()
    (repo / "cfg" / "local.env").write_text("SECRET=1\n")
    (repo / "local.cfg").write_text("SECRET=2\n")  # copied before the refused one
    result = await run_workflow(
        repo,
        """\
        base: linked
        setup: {copy: ["local.cfg", "cfg/local.env"]}
        steps:
          s: {run: "echo ran > ran.txt"}
        """,
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    step = result.steps["s"]
    assert result.status is RunStatus.FAILED
    assert step.status is StepStatus.FAILED
    assert step.error is not None
    assert "cfg/local.env" in step.error and f"cfg is a symbolic link (to {outside})" in step.error
    assert list(outside.iterdir()) == []
    assert git(repo, "log", "--all", "--format=%H", "--", "local.cfg", "ran.txt") == ""
    assert treeflow_worktrees(repo) == []


async def test_setup_copy_of_a_virtualenv_keeps_its_links_as_links(repo: Path, tmp_path: Path) -> None:
    interpreter = tmp_path / "python3"
    interpreter.write_text("#!/bin/sh\necho interpreter\n")
    interpreter.chmod(0o755)
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "include").mkdir()
    (venv / "bin" / "python").symlink_to(interpreter)  # points outside, as in every venv
    (venv / "bin" / "python3").symlink_to("python")
    (venv / "lib64").symlink_to("lib")
    (venv / "lib" / "site-packages" / "mod.py").write_text("VALUE = 1\n")
    (venv / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (venv / "bin" / "tool").chmod(0o755)
    result = await run_workflow(
        repo,
        """\
        setup: {copy: [".venv/**", ".venv/lib64/site-packages/mod.py"]}
        steps:
          s: {run: "readlink .venv/bin/python .venv/bin/python3 .venv/lib64 > links.txt && .venv/bin/python3 > ran.txt && .venv/bin/tool >> ran.txt && cat .venv/lib64/site-packages/mod.py >> ran.txt && test -d .venv/include && echo new > .venv/lib/new.txt"}
        """,
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED, step.error
    branch = step.branch or "?"
    assert show(repo, branch, "links.txt").splitlines() == [str(interpreter), "python", "lib"]
    assert show(repo, branch, "ran.txt").splitlines() == ["interpreter", "tool", "VALUE = 1"]
    files = git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()
    assert sorted(files) == [".venv/lib/new.txt", "README.md", "links.txt", "ran.txt"]


async def test_setup_copy_refuses_a_relative_link_that_leaves_the_repository(
    repo: Path, tmp_path: Path
) -> None:
    (tmp_path / "shared").mkdir()
    (repo / "tools").mkdir()
    (repo / "tools" / "shared").symlink_to("../../shared")
    result = await run_workflow(repo, "setup: {copy: [tools]}\nsteps:\n  s: {run: 'true'}\n", worktrees=True)
    step = result.steps["s"]
    assert step.status is StepStatus.FAILED
    assert step.error is not None
    assert "tools/shared is a symbolic link to ../../shared, outside the repository" in step.error
    assert treeflow_worktrees(repo) == []


async def test_setup_run_failure_fails_the_step_with_its_log(repo: Path) -> None:
    result = await run_workflow(
        repo,
        "setup: {run: 'echo installing; exit 9'}\nsteps:\n  s: {run: 'touch never.txt'}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.FAILED
    assert step.error == "setup failed: exit status 9"
    assert step.log is not None
    assert "installing" in step.log.read_text()
    assert step.branch is None


async def test_treeflow_folder_is_never_committed(repo: Path) -> None:
    result = await run_workflow(
        repo,
        "steps:\n  s: {run: 'mkdir -p .treeflow && echo x > .treeflow/status.json && echo y > kept.txt'}\n",
        worktrees=True,
    )
    files = git(repo, "ls-tree", "-r", "--name-only", result.steps["s"].branch or "?").splitlines()
    assert "kept.txt" in files
    assert not any(name.startswith(".treeflow/") for name in files)


async def test_a_step_that_commits_by_itself_keeps_its_commits(repo: Path) -> None:
    result = await run_workflow(
        repo,
        "steps:\n  s: {run: 'echo a > a.txt && git add a.txt && git commit -qm own && echo b > b.txt'}\n",
        worktrees=True,
    )
    branch = result.steps["s"].branch or "?"
    log = git(repo, "log", "--format=%s", f"{result.base_commit}..{branch}").splitlines()
    assert len(log) == 2
    assert "own" in log
    assert show(repo, branch, "b.txt") == "b"


async def test_a_repository_without_commits_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(WorkspaceError, match="no commits yet"):
        await run_workflow(empty, "steps:\n  s: {run: 'true'}\n", worktrees=True)


async def test_a_worktree_that_cannot_be_removed_is_reported_not_ignored(repo: Path) -> None:
    # A locked worktree makes `git worktree remove --force` refuse, as a busy file system might.
    result = await run_workflow(
        repo,
        # Without the pool, whose worktrees are never removed at a step's end.
        "pool: false\nsteps:\n  s: {run: 'echo w > w.txt && git worktree lock \"$TREEFLOW_WORKTREE\"'}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.SUCCEEDED
    assert show(repo, step.branch or "?", "w.txt") == "w"
    left = treeflow_worktrees(repo)
    assert len(left) == 1
    assert len(result.warnings) == 1
    assert "could not remove worktree" in result.warnings[0]
    assert left[0] in result.warnings[0]


@pytest.mark.parametrize(
    ("moves", "where"),
    [
        ("git checkout -q --detach", "a detached HEAD"),
        ("git branch other && git checkout -q other", "other"),
    ],
)
async def test_a_step_that_leaves_its_branch_keeps_its_worktree_and_fails(
    repo: Path, moves: str, where: str
) -> None:
    result = await run_workflow(
        repo,
        f"steps:\n  s: {{run: '{moves} && echo w > w.txt'}}\n  after: {{run: 'true', needs: [s]}}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.FAILED
    assert f"the worktree is on {where}, not on its branch" in (step.error or "")
    assert result.steps["after"].status is StepStatus.SKIPPED
    left = treeflow_worktrees(repo)
    assert len(left) == 1
    assert (Path(left[0]) / "w.txt").read_text() == "w\n"
    assert git(repo, "log", "-1", "--format=%s", "main") == "initial"


async def test_a_step_that_deletes_its_own_worktree_fails_without_breaking_the_run(repo: Path) -> None:
    result = await run_workflow(
        repo,
        "fail_fast: false\nsteps:\n"
        "  gone: {run: 'rm -rf \"$TREEFLOW_WORKTREE\"'}\n"
        "  other: {run: 'sleep 0.3; echo o > o.txt'}\n",
        worktrees=True,
    )
    assert result.steps["gone"].status is StepStatus.FAILED
    assert "its work was not saved" in (result.steps["gone"].error or "")
    other = result.steps["other"]
    assert other.status is StepStatus.SUCCEEDED
    assert show(repo, other.branch or "?", "o.txt") == "o"


async def test_a_step_without_its_git_file_is_never_committed_to_an_enclosing_repository(
    repo: Path, worktree_root: Path
) -> None:
    # Worktrees inside another repository (a home folder under git, say): with the worktree's .git
    # file gone, git would take the enclosing repository for the step's own.
    worktree_root.mkdir(parents=True, exist_ok=True)
    git(worktree_root, "init", "-q")
    git(worktree_root, "commit", "-q", "--allow-empty", "-m", "enclosing")
    result = await run_workflow(repo, "steps:\n  s: {run: 'rm .git && echo w > w.txt'}\n", worktrees=True)
    step = result.steps["s"]
    assert step.status is StepStatus.FAILED
    assert ".git file is gone" in (step.error or "")
    assert git(worktree_root, "log", "--format=%s") == "enclosing"


async def test_edits_to_tracked_files_under_excluded_paths_are_kept(repo: Path) -> None:
    (repo / ".treeflow").mkdir()
    (repo / ".treeflow" / "notes.txt").write_text("tracked\n")
    (repo / "app.cfg").write_text("tracked: 1\n")
    git(repo, "add", ".treeflow", "app.cfg")
    git(repo, "commit", "-qm", "tracked files where treeflow also writes")
    result = await run_workflow(
        repo,
        """\
        setup: {copy: ["*.cfg"]}
        steps:
          s: {run: "echo edited >> .treeflow/notes.txt && echo 'tracked: 2' > app.cfg && echo x > .treeflow/status.json"}
        """,
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    branch = result.steps["s"].branch or "?"
    assert show(repo, branch, ".treeflow/notes.txt") == "tracked\nedited"
    assert show(repo, branch, "app.cfg") == "tracked: 2"
    assert ".treeflow/status.json" not in git(repo, "ls-tree", "-r", "--name-only", branch).splitlines()


async def test_files_copied_before_a_failing_copy_are_never_committed(repo: Path, tmp_path: Path) -> None:
    (repo / "local.cfg").write_text("SECRET=1\n")  # untracked, and not ignored either
    (tmp_path / "elsewhere").write_text("outside\n")
    (repo / "escape").symlink_to("../elsewhere")
    result = await run_workflow(
        repo,
        "setup: {copy: ['local.cfg', 'escape']}\nsteps:\n  s: {run: 'true'}\n",
        worktrees=True,
        workflow_path=repo.parent / "w.yml",
    )
    assert result.steps["s"].status is StepStatus.FAILED
    assert "outside the repository" in (result.steps["s"].error or "")
    assert git(repo, "log", "--all", "--format=%H", "--", "local.cfg") == ""


async def test_a_repository_cloned_inside_a_step_keeps_the_worktree_instead_of_losing_its_files(
    repo: Path,
) -> None:
    result = await run_workflow(
        repo,
        "steps:\n  s: {run: 'mkdir lib && cd lib && git init -q && echo c > code.c && git add . && git commit -qm x'}\n",
        worktrees=True,
    )
    step = result.steps["s"]
    assert step.status is StepStatus.FAILED
    assert "git repositories of its own" in (step.error or "") and "lib" in (step.error or "")
    left = treeflow_worktrees(repo)
    assert len(left) == 1
    assert (Path(left[0]) / "lib" / "code.c").read_text() == "c\n"


def hold_branch_locks(repo: Path, tmp_path: Path) -> Path:
    """Make git hold the locks of the branches it changes for a second; the folder returned gets a
    file each time it does.

    git runs its reference-transaction hook in the state `prepared` while it holds the locks of the
    refs the transaction changes; the hook leaves its file and then waits.
    """
    held = tmp_path / "held"
    held.mkdir()
    hook = repo / ".git" / "hooks" / "reference-transaction"
    hook.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = prepared ] && grep -q " refs/heads/"; then\n'
        f'  : > "{held}/$$"\n'
        "  sleep 1\n"
        "fi\n"
    )
    hook.chmod(0o755)
    return held


def leftover_locks(repo: Path) -> list[str]:
    git_dir = repo / ".git"
    return [str(path) for path in git_dir.rglob("*.lock") if git_dir / "treeflow" not in path.parents]


@pytest.mark.slow
async def test_a_cancel_while_a_step_worktree_is_made_leaves_no_ref_locked(
    repo: Path, tmp_path: Path
) -> None:
    held = hold_branch_locks(repo, tmp_path)
    repository = await open_repository(repo)
    branch = "treeflow/run/step"
    warnings: list[str] = []
    ready = anyio.Event()

    async def make_and_wait() -> None:
        async with step_worktree(
            repository,
            RepoLock(repository),
            path=tmp_path / "worktrees" / "step",
            branch=branch,
            start=git(repo, "rev-parse", "HEAD"),
            commit_message="work",
            identity={},
            warn=warnings.append,
        ):
            ready.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as group:
        group.start_soon(make_and_wait)
        # The first transaction creates the branch, in a registration that is never cancelled;
        # the cancel lands in whichever git command changes a branch next, if one does.
        while not ready.is_set() and len(list(held.iterdir())) < 2:
            await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert leftover_locks(repo) == []
    assert warnings == []
    assert branches(repo) == ["main"]
    assert treeflow_worktrees(repo) == []


@pytest.mark.slow
async def test_a_cancelled_git_command_that_changes_a_branch_runs_to_its_end(
    repo: Path, tmp_path: Path
) -> None:
    held = hold_branch_locks(repo, tmp_path)
    repository = await open_repository(repo)
    async with anyio.create_task_group() as group:
        group.start_soon(git_locked, RepoLock(repository), repo, "branch", "made", "HEAD")
        while not any(held.iterdir()):
            await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert leftover_locks(repo) == []
    assert git(repo, "rev-parse", "made") == git(repo, "rev-parse", "HEAD")
