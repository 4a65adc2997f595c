"""`matrix:` on a step: its combinations (GitHub Actions' include and exclude), the ids and branch
names they get, and runs of them by the engine with real processes and git worktrees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import run_workflow
from treeflow.core.locations import run_of_branch
from treeflow.core.matrix import Matrix, combinations, combined_result, safe_name
from treeflow.core.model import RunStatus, StepResult, StepStatus
from treeflow.core.runner import UnknownStep, select_steps
from treeflow.core.spec import WorkflowError, parse_workflow

SHARDS = """\
    steps:
      test:
        matrix: {shard: [1, 2, 3]}
        env: {SHARD: "${{ matrix.shard }}"}
        run: 'echo "shard $SHARD" > "shard-${{ matrix.shard }}.txt"; echo "count_${{ matrix.shard }}=${{ matrix.shard }}0" >> "$TREEFLOW_OUTPUT"'
      join:
        needs: [test]
        run: 'cat shard-*.txt > joined.txt; echo "${{ needs.test.status }} ${{ needs.test.outputs.count_2 }}" > seen.txt'
    """


def test_exclude_removes_and_include_extends_or_adds_as_github_actions_does() -> None:
    matrix = Matrix(
        {"fruit": ("apple", "pear"), "animal": ("cat", "dog")},
        include=(
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ),
    )
    assert combinations(matrix) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    excluding = Matrix(
        {"os": ("linux", "mac"), "python": ("3.11", "3.12")},
        include=({"os": "mac", "python": "3.11"},),
        exclude=({"os": "mac"},),
    )
    # Exclude comes first, so an include can bring back one combination it removed.
    assert combinations(excluding) == [
        {"os": "linux", "python": "3.11"},
        {"os": "linux", "python": "3.12"},
        {"os": "mac", "python": "3.11"},
    ]
    assert combinations(Matrix({}, include=({"a": "1"}, {"a": "2"}))) == [{"a": "1"}, {"a": "2"}]


def test_each_combination_is_a_step_with_a_branch_safe_name() -> None:
    workflow = parse_workflow(
        textwrap.dedent(
            """\
            steps:
              lint: {run: "true"}
              test:
                needs: lint
                matrix: {python: ["3.11", 3.10], shard: [1, 2]}
                run: pytest
              join: {needs: [test, lint], run: "true"}
            """
        ),
        Path("treeflow.yml"),
    )
    ids = [
        "test[python=3.11,shard=1]",
        "test[python=3.11,shard=2]",
        "test[python=3.10,shard=1]",
        "test[python=3.10,shard=2]",
    ]
    assert list(workflow.steps) == ["lint", *ids, "join"]
    assert workflow.steps["join"].needs == (*ids, "lint")
    first = workflow.steps[ids[0]]
    assert first.needs == ("lint",)
    assert first.line == 3
    assert first.matrix is not None
    assert (first.matrix.of, dict(first.matrix.values)) == ("test", {"python": "3.11", "shard": "1"})
    # The value as written: YAML would read 3.10 as the number 3.1.
    assert [safe_name(step_id) for step_id in ids] == [
        "test.python-3.11.shard-1",
        "test.python-3.11.shard-2",
        "test.python-3.10.shard-1",
        "test.python-3.10.shard-2",
    ]
    assert safe_name("lint") == "lint"
    odd = "deploy[target=eu west/1..2,tag=@{x},n=a.lock]"
    assert safe_name(odd) == "deploy.target-eu_west_1.2.tag-__x_.n-a.lock_"
    assert safe_name(safe_name(odd)) == safe_name(odd)
    branch = f"treeflow/20260101-093000-ab12/{safe_name(odd)}"
    assert git_accepts_branch(branch)
    # `treeflow clean` and recovery know the branch as treeflow's own.
    assert run_of_branch(branch) == run_of_branch(f"{branch}.interrupted-2") == "20260101-093000-ab12"

    assert select_steps(workflow, ["test"]) == ["lint", *ids]
    assert select_steps(workflow, ["test[python=3.10,shard=2]"]) == ["lint", ids[3]]
    assert select_steps(workflow, ["test.python-3.11.shard-2"]) == ["lint", ids[1]]
    with pytest.raises(UnknownStep, match=r"\(steps: lint, test, join\)"):
        select_steps(workflow, ["tests"])


def git_accepts_branch(name: str) -> bool:
    try:
        git(Path.cwd(), "check-ref-format", "--branch", name)
    except Exception:
        return False
    return True


def test_a_matrix_step_reads_as_its_worst_combination_with_every_output() -> None:
    def result(status: StepStatus, **outputs: str) -> StepResult:
        return StepResult(status=status, outputs=outputs)

    succeeded = combined_result(
        [result(StepStatus.SUCCEEDED, a="1"), result(StepStatus.SUCCEEDED, a="2", b="x")]
    )
    assert succeeded.status is StepStatus.SUCCEEDED
    assert succeeded.outputs == {"a": "2", "b": "x"}
    mixed = [StepStatus.SUCCEEDED, StepStatus.SKIPPED, StepStatus.CANCELLED, StepStatus.FAILED]
    assert combined_result([result(status) for status in mixed]).status is StepStatus.FAILED
    assert combined_result([result(status) for status in mixed[:3]]).status is StepStatus.CANCELLED
    assert combined_result([result(status) for status in mixed[:2]]).status is StepStatus.SKIPPED


@pytest.mark.anyio
@pytest.mark.slow
async def test_three_shards_run_in_worktrees_of_their_own_and_the_join_sees_all_of_them(repo: Path) -> None:
    with anyio.fail_after(60):
        result = await run_workflow(repo, SHARDS, worktrees=True)
    assert result.status is RunStatus.SUCCEEDED
    shards = [f"test[shard={n}]" for n in (1, 2, 3)]
    assert list(result.steps) == [*shards, "join"]
    for n, step_id in enumerate(shards, 1):
        step = result.steps[step_id]
        assert step.status is StepStatus.SUCCEEDED
        assert step.branch == f"treeflow/{result.run_id}/test.shard-{n}"
        assert git(repo, "show", f"{step.branch}:shard-{n}.txt") == f"shard {n}"
        assert step.outputs == {f"count_{n}": f"{n}0"}
        assert step.log is None or step.log.name == f"test.shard-{n}.log"
    join = result.steps["join"]
    assert join.branch is not None
    assert git(repo, "show", f"{join.branch}:joined.txt") == "shard 1\nshard 2\nshard 3"
    assert git(repo, "show", f"{join.branch}:seen.txt") == "succeeded 20"


@pytest.mark.anyio
async def test_a_combination_skipped_by_its_condition_and_a_failed_one_under_fail_fast_false(
    repo: Path,
) -> None:
    workflow = """\
        fail_fast: false
        steps:
          test:
            matrix: {shard: [1, 2, 3], include: [{shard: 3, flaky: "yes"}]}
            if: matrix.shard != 2
            run: 'test "${{ matrix.flaky }}" != yes && touch "passed-${{ matrix.shard }}"'
          build: {needs: test, run: touch built}
          report:
            needs: test
            if: always()
            run: echo "${{ needs.test.status }}" > report.txt
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    steps = result.steps
    assert steps["test[shard=1]"].status is StepStatus.SUCCEEDED
    assert steps["test[shard=2]"].status is StepStatus.SKIPPED
    assert steps["test[shard=2]"].error == "its condition is false: `if: matrix.shard != 2`"
    assert steps["test[shard=3,flaky=yes]"].status is StepStatus.FAILED
    assert steps["build"].status is StepStatus.SKIPPED
    assert steps["build"].error == "needs `test[shard=2]`, which was skipped"
    assert (repo / "report.txt").read_text() == "failed\n"
    assert (repo / "passed-1").exists()
    assert not (repo / "passed-3").exists()
    assert result.status is RunStatus.FAILED


@pytest.mark.anyio
async def test_fail_fast_stops_the_other_combinations(repo: Path) -> None:
    workflow = """\
        steps:
          test:
            matrix: {shard: [1, 2]}
            run: 'if [ ${{ matrix.shard }} = 1 ]; then touch started; sleep 60; else while [ ! -e started ]; do sleep 0.01; done; exit 1; fi'
        """
    with anyio.fail_after(30):
        result = await run_workflow(repo, workflow)
    assert result.steps["test[shard=2]"].status is StepStatus.FAILED
    assert result.steps["test[shard=1]"].status is StepStatus.CANCELLED
    assert result.steps["test[shard=1]"].error == "`test[shard=2]` failed (fail_fast)"


def errors_of(text: str) -> list[str]:
    try:
        parse_workflow(textwrap.dedent(text), Path("flow.yml"))
    except WorkflowError as exc:
        return [str(error) for error in exc.errors]
    raise AssertionError("the workflow was accepted")


def test_matrix_problems_are_reported_where_they_are() -> None:
    values = ", ".join(str(n) for n in range(17))
    assert errors_of(
        f"""\
        steps:
          empty: {{run: "true", matrix: {{}}}}
          none: {{run: "true", matrix: {{shard: []}}}}
          nested: {{run: "true", matrix: {{os: [[linux]], python: "3.12", "a b": [1]}}}}
          huge:
            run: "true"
            matrix: {{a: [{values}], b: [{values}]}}
          gone: {{run: "true", matrix: {{x: [1], exclude: [{{x: 1}}]}}}}
          twice: {{run: "true", matrix: {{x: [1, 1], exclude: [{{y: 1}}]}}}}
          cased: {{run: "true", matrix: {{os: [Linux, linux]}}}}
          keys:
            matrix: {{python: ["3.12"], include: [{{extra: 1}}]}}
            if: matrix.pyton == '3.12' && matrix.extra
            run: echo ${{{{ matrix.python.minor }}}}
          plain: {{run: "echo ${{{{ matrix.os }}}}"}}
        """
    ) == [
        "flow.yml:2:32: step `empty`: matrix is empty: give it a key with a list of values, or `include` entries",
        "flow.yml:3:39: step `none`: matrix.shard is an empty list: give it at least one value",
        "flow.yml:4:39: step `nested`: matrix.os: each value must be a string, a number or true or false, "
        "not a list",
        "flow.yml:4:57: step `nested`: matrix.python must be a list of values such as ['3.11', '3.12'], "
        "not the string '3.12'",
        "flow.yml:4:65: step `nested`: matrix: bad key 'a b': use 1 to 64 letters, digits, '-' or '_', "
        "starting with a letter or '_'",
        "flow.yml:7:13: step `huge`: matrix makes 289 combinations, more than 256; use fewer values, or split "
        "the step",
        "flow.yml:8:49: step `gone`: matrix: `exclude` removes every combination",
        "flow.yml:9:40: step `twice`: matrix.x: '1' is listed twice",
        "flow.yml:9:55: step `twice`: matrix.exclude: unknown matrix key `y` (keys: x)",
        "flow.yml:10:32: step `cased`: matrix: combinations `cased[os=Linux]` and `cased[os=linux]` would "
        "share the branch name `cased.os-linux`; make their values differ in more than case or punctuation",
        "flow.yml:13:9: step `keys`: if: unknown matrix key `pyton` (keys: python, extra); did you mean "
        "`python`?",
        "flow.yml:14:19: step `keys`: run: write `matrix.<key>` to read a value of the step's matrix",
        "flow.yml:15:26: step `plain`: run: `matrix.os`: step `plain` has no `matrix:`",
    ]
