"""Bounded fix loops (`on_failure:`) run by the engine with real processes and git worktrees: a fixer
that fixes on its second round, one that never fixes, the failure it reads, the branch each round
leaves, and how a loop meets fail-fast."""

from __future__ import annotations

import textwrap
from pathlib import Path

import anyio
import pytest

from tests.conftest import git
from tests.helpers import Recorder, run_workflow
from treeflow.core.events import StepRound
from treeflow.core.locations import round_branch, run_of_branch
from treeflow.core.model import RunStatus, StepStatus
from treeflow.core.runner import UnknownStep, select_steps
from treeflow.core.spec import WorkflowError, parse_workflow

pytestmark = pytest.mark.anyio

# `test` passes once `fixed` says ok; its fixer notes each round and what it was told, and fixes
# from round FIXED_IN on.
LOOP = """\
    steps:
      test:
        run: 'echo "run $(cat rounds.txt 2>/dev/null | wc -l)" >> runs.txt; echo checking; test "$(cat fixed 2>/dev/null)" = ok || {{ echo "still broken"; exit 3; }}'
        on_failure: {{run_step: fix, then: retry, max_rounds: {max_rounds}}}
      fix:
        env:
          TAIL: "${{{{ failure.log_tail }}}}"
          CODE: "${{{{ failure.exit_code }}}}"
          FAILED: "${{{{ failure.step }}}}"
        run: 'echo "${{{{ failure.round }}}}" >> rounds.txt; printf "%s|%s|%s" "$FAILED" "$CODE" "$TAIL" > told-${{{{ failure.round }}}}.txt; if [ ${{{{ failure.round }}}} -ge {fixed_in} ]; then echo ok > fixed; fi'
      after:
        needs: [test]
        run: cat fixed > seen.txt
    """


def loop(max_rounds: int = 3, fixed_in: int = 2) -> str:
    return LOOP.format(max_rounds=max_rounds, fixed_in=fixed_in)


def show(repo: Path, branch: str, path: str) -> str:
    return git(repo, "show", f"{branch}:{path}")


async def test_a_fixer_that_fixes_on_its_second_round(repo: Path) -> None:
    recorder = Recorder()
    with anyio.fail_after(60):
        result = await run_workflow(repo, loop(), recorder, worktrees=True)
    assert result.status is RunStatus.SUCCEEDED
    test = result.steps["test"]
    assert test.status is StepStatus.SUCCEEDED
    run_id = result.run_id
    assert [(r.number, r.of, r.status, r.exit_code, r.fix_status) for r in test.rounds] == [
        (1, 3, StepStatus.FAILED, 3, StepStatus.SUCCEEDED),
        (2, 3, StepStatus.FAILED, 3, StepStatus.SUCCEEDED),
        (3, 3, StepStatus.SUCCEEDED, 0, None),
    ]
    assert [r.branch for r in test.rounds] == [round_branch(run_id, "test", n) for n in (1, 2, 3)]
    # The fixer read the failure of the round it fixed: the step, its exit code, its last lines.
    told = show(repo, round_branch(run_id, "test", 1), "told-1.txt")
    assert told.startswith("test|3|")
    assert told.endswith("checking\nstill broken")
    # Each round started on top of the one before: the fix included.
    assert show(repo, round_branch(run_id, "test", 2), "rounds.txt") == "1\n2"
    assert show(repo, round_branch(run_id, "test", 3), "runs.txt") == "run 0\nrun 1\nrun 2"
    assert show(repo, round_branch(run_id, "test", 3), "fixed") == "ok"
    # The step's work is its last round's, and the step after it starts from there.
    assert (test.branch, test.commit) == (test.rounds[-1].branch, test.rounds[-1].commit)
    assert show(repo, result.steps["after"].branch or "", "seen.txt") == "ok"
    assert all(run_of_branch(r.branch or "") == run_id for r in test.rounds)
    # The fixer is no step of the run: it ran only inside the loop.
    assert list(result.steps) == ["test", "after"]
    # Each moment of a round is told: begun, placed (its branch known), fixing, ended.
    moments = [
        (e.round.number, e.round.status, e.round.fix_status, e.round.branch, e.round.ended_at is not None)
        for e in recorder.of(StepRound)
    ]
    first = round_branch(run_id, "test", 1)
    assert moments[:5] == [
        (1, StepStatus.RUNNING, None, None, False),
        (1, StepStatus.RUNNING, None, first, False),
        (1, StepStatus.FAILED, StepStatus.RUNNING, first, False),
        (1, StepStatus.FAILED, StepStatus.SUCCEEDED, first, True),
        (2, StepStatus.RUNNING, None, None, False),
    ]
    log = (test.log or Path()).read_text()
    assert "--- treeflow: round 2 of 3 ---" in log
    assert "--- treeflow: round 1: fixer `fix` ---" in log


async def test_a_fixer_that_never_fixes_stops_after_max_rounds_with_every_round_kept(repo: Path) -> None:
    with anyio.fail_after(60):
        result = await run_workflow(repo, loop(max_rounds=3, fixed_in=99), worktrees=True)
    assert result.status is RunStatus.FAILED
    test = result.steps["test"]
    assert test.status is StepStatus.FAILED
    assert test.exit_code == 3
    assert [(r.number, r.status, r.fix_status) for r in test.rounds] == [
        (1, StepStatus.FAILED, StepStatus.SUCCEEDED),
        (2, StepStatus.FAILED, StepStatus.SUCCEEDED),
        (3, StepStatus.FAILED, None),
    ]
    branches = git(repo, "branch", "--list", f"treeflow/{result.run_id}/*", "--format=%(refname:short)")
    assert branches.splitlines() == [round_branch(result.run_id, "test", n) for n in (1, 2, 3)]
    # Nothing of any round is lost: the last holds every run of the step and both fixes.
    assert show(repo, round_branch(result.run_id, "test", 3), "runs.txt") == "run 0\nrun 1\nrun 2"
    assert show(repo, round_branch(result.run_id, "test", 3), "rounds.txt") == "1\n2"
    assert result.steps["after"].status is StepStatus.SKIPPED


async def test_a_failing_fixer_ends_the_loop_and_says_so(repo: Path) -> None:
    text = """\
        steps:
          test: {run: "echo work > w.txt; exit 1", on_failure: {run_step: fix}}
          fix: {run: "echo half > half.txt; exit 7"}
        """
    with anyio.fail_after(60):
        result = await run_workflow(repo, text, worktrees=True)
    test = result.steps["test"]
    assert test.status is StepStatus.FAILED
    assert [(r.number, r.fix_status) for r in test.rounds] == [(1, StepStatus.FAILED)]
    assert test.error is not None and "its fixer `fix` failed in round 1: exit status 7" in test.error
    # What the fixer did before it failed is kept with the round.
    assert show(repo, round_branch(result.run_id, "test", 1), "half.txt") == "half"


async def test_a_step_being_fixed_is_no_failure_for_fail_fast(repo: Path, tmp_path: Path) -> None:
    # `slow` ends only once the fixer has run: the failure of round 1 must not have cancelled it.
    marker = tmp_path / "fixer-ran"
    text = f"""\
        steps:
          test: {{run: 'test -f fixed', on_failure: {{run_step: fix, max_rounds: 2}}}}
          fix: {{run: 'touch fixed {marker}'}}
          slow: {{run: 'while [ ! -f {marker} ]; do sleep 0.05; done'}}
        """
    with anyio.fail_after(60):
        result = await run_workflow(repo, text, worktrees=True)
    assert result.status is RunStatus.SUCCEEDED
    assert {step_id: step.status for step_id, step in result.steps.items()} == {
        "test": StepStatus.SUCCEEDED,
        "slow": StepStatus.SUCCEEDED,
    }


async def test_a_fail_fast_during_a_fix_cancels_the_loop_and_keeps_the_rounds_work(
    repo: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "fixing"
    text = f"""\
        steps:
          test: {{run: 'echo tried > tried.txt; exit 1', on_failure: {{run_step: fix, max_rounds: 3}}}}
          fix: {{run: 'echo partial > partial.txt; touch {marker}; sleep 30'}}
          boom: {{run: 'while [ ! -f {marker} ]; do sleep 0.05; done; exit 1'}}
        """
    with anyio.fail_after(60):
        result = await run_workflow(repo, text, worktrees=True)
    assert result.status is RunStatus.FAILED
    test = result.steps["test"]
    assert test.status is StepStatus.CANCELLED
    assert [(r.number, r.status, r.fix_status) for r in test.rounds] == [
        (1, StepStatus.FAILED, StepStatus.CANCELLED)
    ]
    branch = round_branch(result.run_id, "test", 1)
    assert test.rounds[0].branch == branch
    assert show(repo, branch, "tried.txt") == "tried"
    assert show(repo, branch, "partial.txt") == "partial"


def test_a_fixer_is_not_a_step_of_its_own() -> None:
    workflow = parse_workflow(textwrap.dedent(loop()), Path("treeflow.yml"))
    assert select_steps(workflow, []) == ["test", "after"]
    assert select_steps(workflow, ["after"]) == ["test", "after"]
    with pytest.raises(UnknownStep, match="runs only as the fixer of test"):
        select_steps(workflow, ["fix"])


BROKEN = """\
steps:
  build: {run: "echo ${{ failure.step }}"}
  test:
    run: ./check
    on_failure: {run_step: fixx, then: again, max_rounds: 30}
  t2: {run: ./check, on_failure: {run_step: t2}}
  t3: {run: ./check, on_failure: {run_step: fix, max_rounds: 1}}
  fix:
    run: echo "${{ failure.nope }}"
    needs: [t3, build]
  other: {run: "true", needs: [fix]}
  t4: {run: ./check, on_failure: {run_step: gated}}
  gated: {run: "true", if: always()}
"""


def test_validate_names_each_problem_of_a_fix_loop() -> None:
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(BROKEN, Path("treeflow.yml"))
    assert [f"{e.line}:{e.column}: {e.message}" for e in caught.value.errors] == [
        "2:26: step `build`: run: `failure.step`: only a fixer (a step named by an `on_failure.run_step`) "
        "reads `failure.*`",
        "5:28: step `test`: on_failure.run_step: unknown step `fixx`; did you mean `fix`?",
        "5:40: step `test`: on_failure.then: unknown 'again'; `retry` (run the step again on top of the "
        "fix) is the one choice",
        "5:59: step `test`: on_failure.max_rounds: at most 20, not 30",
        "6:45: step `t2`: on_failure.run_step: a step cannot fix itself; name another step",
        "7:62: step `t3`: on_failure.max_rounds must be at least 2, not 1",
        "9:20: step `fix`: run: `failure.nope`: a fixer reads `failure.step`, `failure.exit_code`, "
        "`failure.error`, `failure.log_tail`, `failure.round`",
        "10:13: fix loop cycle: `fix` fixes `t3` and needs it; a fixer runs inside the step it fixes, so it "
        "cannot wait for it",
        "10:17: fixer `fix` needs `build`, which `t3` does not need: a fixer runs in the middle of `t3`, so "
        "what it needs must end before `t3` starts; add `build` to the needs of `t3`",
        "11:32: step `other` needs `fix`, which runs only as the fixer of `t3` (their `on_failure`), never "
        "on its own",
        "12:45: step `t4`: on_failure.run_step: `gated` has an `if:`, which would never be read: a fixer "
        "runs when the step it fixes fails",
    ]


def test_a_fix_loop_is_not_cached() -> None:
    text = "steps:\n  test: {run: x, cache: true, on_failure: {run_step: fix}}\n  fix: {run: 'true'}\n"
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, Path("treeflow.yml"))
    assert [f"{e.line}:{e.column}: {e.message}" for e in caught.value.errors] == [
        "2:43: step `test`: on_failure and cache do not go together: the work of a fix loop depends on its "
        "fixer too, which no cache key holds"
    ]
