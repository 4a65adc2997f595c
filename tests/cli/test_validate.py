"""`treeflow validate`, and `treeflow run` refusing what it cannot run, as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env)


def write(directory: Path, text: str, name: str = "treeflow.yml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def assert_nothing_ran(repo: Path, marker: Path) -> None:
    assert not marker.exists(), "a step ran"
    assert git(repo, "branch", "--list", "treeflow/*") == ""
    assert git(repo, "worktree", "list").count("\n") == 0, "a worktree was left behind"


def test_valid_file_exits_0(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        steps:
          lint: {run: ruff check .}
          test: {run: pytest, needs: lint}
        """,
    )
    done = treeflow(tmp_path, "validate", "treeflow.yml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "treeflow.yml: ok (2 steps)"
    assert done.stderr == ""


def test_invalid_file_exits_2_and_lists_every_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        name: checks
        max_parallel: many
        steps:
          lint:
            run: ruff check .
            needs: [tset]
          test:
            run: pytest
            timout: 5m
        """,
    )
    done = treeflow(tmp_path, "validate", "treeflow.yml")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 4, done.stderr
    assert lines[0].startswith("treeflow.yml:2:15: max_parallel must be a whole number")
    assert lines[1].startswith("treeflow.yml:6:13: step `lint` needs unknown step `tset`")
    assert lines[2].startswith("treeflow.yml:9:5: unknown key `timout` in step `test`")
    assert lines[3] == "3 errors in the workflow"


def test_errors_name_the_file_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, "steps:\n  a: {run: x, timeout: 0s}\n", name="flows/nightly.yml")
    done = treeflow(tmp_path, "validate", str(path))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0].startswith(f"{path}:2:24: ")
    assert done.stderr.splitlines()[-1] == "1 error in the workflow"


def test_missing_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    done = treeflow(tmp_path, "validate", "nosuch.yml")
    assert done.returncode == 2
    assert done.stderr.strip() == "treeflow: nosuch.yml: no such workflow file"


def test_validate_without_a_file_finds_the_repository_workflow(tmp_path: Path) -> None:
    write(tmp_path, "steps:\n  a: {run: x}\n", name=".treeflow/checks.yml")
    done = treeflow(tmp_path, "validate")
    assert done.returncode == 0, done.stderr
    assert "checks.yml: ok (1 steps)" in done.stdout


def test_absurdly_nested_yaml_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "steps: " + "[" * 5000 + "]" * 5000 + "\n")
    done = treeflow(tmp_path, "validate", str(path))
    assert done.returncode == 2
    assert "1:1: YAML syntax: nested too deeply" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_in_a_subfolder_finds_the_workflow_at_the_repository_root(repo: Path) -> None:
    write(repo, "steps:\n  a: {run: x}\n")
    (repo / "sub" / "deeper").mkdir(parents=True)
    done = treeflow(repo / "sub" / "deeper", "validate")
    assert done.returncode == 0, done.stderr
    assert "treeflow.yml: ok (1 steps)" in done.stdout


def test_validate_without_a_file_refuses_to_guess(tmp_path: Path) -> None:
    write(tmp_path, "steps:\n  a: {run: x}\n", name=".treeflow/a.yml")
    write(tmp_path, "steps:\n  b: {run: x}\n", name=".treeflow/b.yml")
    done = treeflow(tmp_path, "validate")
    assert done.returncode == 2
    assert done.stderr.startswith("treeflow: several workflows")
    assert ".treeflow/a.yml" in done.stderr and ".treeflow/b.yml" in done.stderr


def test_run_of_an_invalid_workflow_exits_2_and_runs_nothing(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(
        repo,
        f"""\
        steps:
          ok: {{run: "touch {marker}"}}
          broken:
            needs: [missing]
            run: "touch {marker}"
        """,
    )
    done = treeflow(repo, "run")
    assert done.returncode == 2
    assert "treeflow.yml:4:13: step `broken` needs unknown step `missing`" in done.stderr
    assert done.stdout == ""
    assert_nothing_ran(repo, marker)
    assert not (repo / ".git" / "treeflow" / "logs").exists()


def test_a_setup_copy_of_the_repository_root_is_refused_before_anything_runs(
    repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    write(repo, f'setup:\n  copy: [".", ""]\nsteps:\n  a: {{run: "touch {marker}"}}\n')
    for command in ("validate", "run"):
        done = treeflow(repo, command)
        assert done.returncode == 2, done.stderr
        assert "treeflow.yml:2:10: setup.copy: '.' names the repository root" in done.stderr
        assert "treeflow.yml:2:15: setup.copy: '' is empty" in done.stderr
        assert "Traceback" not in done.stderr
    assert_nothing_ran(repo, marker)


def test_run_outside_a_git_repository_exits_2(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    marker = tmp_path / "ran"
    write(outside, f'steps:\n  a: {{run: "touch {marker}"}}\n')
    # Stop git from finding a repository above the temporary folder, wherever that lives.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    done = treeflow(outside, "run", env=env)
    assert done.returncode == 2
    assert "not inside a git repository" in done.stderr
    assert str(outside) in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_a_repository_without_commits_or_with_a_bad_base_exits_2_with_a_message(
    repo: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    write(empty, "steps:\n  a: {run: 'true'}\n")
    git(empty, "init", "-q")
    write(repo, "base: no-such-branch\nsteps:\n  a: {run: 'true'}\n")
    for folder, message in ((empty, "has no commits yet"), (repo, "base 'no-such-branch' is not a commit")):
        done = treeflow(folder, "run")
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_run_of_an_unknown_step_exits_2_naming_it(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(
        repo,
        f"""\
        steps:
          lint: {{run: "touch {marker}"}}
          test: {{run: "touch {marker}", needs: lint}}
        """,
    )
    done = treeflow(repo, "run", "--step", "test", "--step", "nosuch")
    assert done.returncode == 2
    message = done.stderr.strip()
    assert message.startswith("treeflow: unknown step nosuch")
    assert "lint" in message and "test" in message
    assert "Traceback" not in done.stderr
    assert_nothing_ran(repo, marker)


def test_inputs_that_would_crash_a_run_exit_2_at_their_place(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        steps:
          Build: {run: make}
          build: {run: "make\\0"}
          -rf: {run: x, retry: {backoff: 1.0e+300}}
        """,
    )
    done = treeflow(tmp_path, "validate", "treeflow.yml")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith("treeflow.yml:3:3: step id `build` differs from `Build` only in case")
    assert lines[1].startswith("treeflow.yml:3:16: step `build`: run contains a NUL byte")
    assert lines[2].startswith("treeflow.yml:4:3: bad step id '-rf': it cannot start with '-'")
    assert lines[3].startswith("treeflow.yml:4:34: step `-rf`: retry.backoff must be at most 720h")
    assert lines[4] == "4 errors in the workflow"
    assert "Traceback" not in done.stderr
