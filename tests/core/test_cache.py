"""`cache:` as the parser reads it, which files its inputs take, what the key covers, and a cached
step in the engine and on the editor's wire."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import Recorder
from treeflow.core.cache_key import _matches, inputs_digest, step_key
from treeflow.core.executor import LocalExecutor
from treeflow.core.git import open_repository
from treeflow.core.git_workspace import GitWorkspace
from treeflow.core.model import CacheSpec, RunResult, RunStatus, StepResult, StepStatus
from treeflow.core.runner import Run, RunOptions
from treeflow.core.spec import WorkflowError, parse_workflow
from treeflow.core.step_cache import StepCache
from treeflow.lsp.protocol import run_payload


def parsed(text: str) -> dict[str, CacheSpec | None]:
    workflow = parse_workflow(textwrap.dedent(text), Path("treeflow.yml"))
    return {step_id: step.cache for step_id, step in workflow.steps.items()}


def problems(text: str) -> list[str]:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(textwrap.dedent(text), Path("treeflow.yml"))
    return [str(error) for error in caught.value.errors]


def test_cache_takes_true_false_or_inputs() -> None:
    assert parsed(
        """\
        steps:
          whole: {run: x, cache: true}
          never: {run: x, cache: false}
          plain: {run: x}
          some: {run: x, cache: {inputs: ["src/**", package.json]}}
          one: {run: x, cache: {inputs: Makefile}}
        """
    ) == {
        "whole": CacheSpec(None),
        "never": None,
        "plain": None,
        "some": CacheSpec(("src/**", "package.json")),
        "one": CacheSpec(("Makefile",)),
    }


@pytest.mark.parametrize(
    ("step", "words"),
    [
        ("{run: x, cache: {}}", "treeflow.yml:2:22: step `a`: cache needs `inputs`"),
        ("{run: x, cache: {input: [a]}}", "unknown key `input`"),
        ("{run: x, cache: yes please}", "must be a mapping"),
        ("{run: x, cache: {inputs: [../up]}}", "cache.inputs: '../up'"),
        ("{run: x, worktree: false, cache: true}", "treeflow.yml:2:39: step `a`: cache needs a worktree"),
    ],
)
def test_cache_mistakes_are_located(step: str, words: str) -> None:
    found = problems(f"steps:\n  a: {step}\n")
    assert any(words in problem for problem in found), found


def test_defaults_without_a_worktree_refuse_a_cached_step() -> None:
    found = problems("defaults: {worktree: false}\nsteps:\n  a: {run: x, cache: true}\n")
    assert any("cache needs a worktree of its own" in problem for problem in found), found


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("src/a.py", "src/**", True),
        ("src/deep/er/a.py", "src/**", True),
        ("srcs/a.py", "src/**", False),
        ("src/a.py", "src", True),
        ("package.json", "package.json", True),
        ("web/package.json", "package.json", False),
        ("web/package.json", "**/package.json", True),
        ("package.json", "**/package.json", True),
        ("lib/x.rs", "*/*.rs", True),
        ("lib/x.py", "*/*.rs", False),
        (".env.example", "*", True),
    ],
)
def test_inputs_match_as_setup_copy_patterns_do(path: str, pattern: str, expected: bool) -> None:
    assert _matches(tuple(path.split("/")), tuple(pattern.split("/"))) is expected


@pytest.mark.anyio
async def test_the_inputs_digest_changes_only_with_the_matched_files(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "a.txt").write_text("a\n")
    (repo / "other.txt").write_text("other\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "other.txt").write_text("changed\n")
    git(repo, "commit", "-qam", "other")
    second = git(repo, "rev-parse", "HEAD")
    (repo / "src" / "a.txt").write_text("changed\n")
    git(repo, "commit", "-qam", "src")
    third = git(repo, "rev-parse", "HEAD")

    digests = [await inputs_digest(repo, commit, ("src/**",)) for commit in (first, second, third)]
    assert digests[0] == digests[1] != digests[2]
    wholes = [await inputs_digest(repo, commit, None) for commit in (first, second)]
    assert wholes[0] != wholes[1]
    # A pattern starting with a glob lists the whole tree, and finds the same files.
    assert await inputs_digest(repo, first, ("*/a.txt",)) != await inputs_digest(repo, first, ("nothing",))


def test_each_part_of_the_key_counts() -> None:
    parts: dict[str, object] = {
        "kind": "run",
        "spec": ("make",),
        "env": {"A": "1"},
        "setup": None,
        "inputs": "tree abc",
        "needs": {"build": "k1"},
    }
    base = step_key(**parts)  # type: ignore[arg-type]
    changes = {
        "kind": "agent",
        "spec": ("make all",),
        "env": {"A": "2"},
        "setup": "npm ci",
        "inputs": "tree abd",
        "needs": {"build": "k2"},
    }
    for name, value in changes.items():
        assert step_key(**{**parts, name: value}) != base, name  # type: ignore[arg-type]
    assert step_key(**{**parts, "env": {"A": "1"}}) == base  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_cached_step_in_the_engine_counts_as_a_success_for_the_steps_after_it(repo: Path) -> None:
    path = repo / "treeflow.yml"
    path.write_text(
        textwrap.dedent(
            """\
            steps:
              make: {run: echo made > made.txt, cache: true}
              after:
                needs: [make]
                if: needs.make.status == 'succeeded' && success()
                run: cat made.txt
            """
        )
    )
    workflow = parse_workflow(path.read_text(), path)
    repository = await open_repository(repo)
    for expected in (StepStatus.SUCCEEDED, StepStatus.CACHED):
        workspace = GitWorkspace(repository, workflow)
        options = RunOptions(cache=StepCache(repository, workspace))
        result = await Run(workflow, repository, Recorder(), options, LocalExecutor(workspace)).execute()
        assert result.steps["make"].status is expected
        assert result.steps["after"].status is StepStatus.SUCCEEDED, result.steps["after"].error
        assert result.status is RunStatus.SUCCEEDED


def test_the_editor_gets_the_cached_state_and_where_from() -> None:
    run = RunResult(
        run_id="r2",
        workflow="w",
        workflow_path=Path("treeflow.yml"),
        steps={"a": StepResult(status=StepStatus.CACHED, cached_from="r1/a")},
    )
    payload = run_payload(run)
    assert payload.steps["a"].status is StepStatus.CACHED
    assert payload.steps["a"].cached_from == "r1/a"
    assert payload.done == 1
