"""`treeflow show` and `treeflow resume` as users name runs, and what `show` says of a run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.test_run import treeflow, write_workflow


def _run_id(done: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(done.stdout)["run_id"])


def test_show_and_resume_take_last_and_a_unique_prefix(repo: Path, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    write_workflow(repo, f'steps:\n  gate: {{run: "test -f {flag}"}}\n')
    older = _run_id(treeflow(repo, "run", "--json"))
    newer = _run_id(treeflow(repo, "run", "--json"))

    shown = treeflow(repo, "show", "last", "--json")
    assert shown.returncode == 0, shown.stderr
    assert _run_id(shown) == newer
    shown = treeflow(repo, "show", older[:-1], "--json")
    assert shown.returncode == 0, shown.stderr
    assert _run_id(shown) == older

    flag.touch()
    resumed = treeflow(repo, "resume", older[:-1], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert _run_id(resumed) == older
    assert json.loads(resumed.stdout)["status"] == "succeeded"


def test_an_ambiguous_prefix_is_refused_with_the_runs_it_fits(repo: Path) -> None:
    write_workflow(repo, 'steps:\n  hello: {run: "true"}\n')
    ids = [_run_id(treeflow(repo, "run", "--json")) for _ in range(2)]
    for command in ("show", "resume"):
        refused = treeflow(repo, command, "2")
        assert refused.returncode == 2
        assert all(run_id in refused.stderr for run_id in ids), refused.stderr
    unknown = treeflow(repo, "show", "1999")
    assert unknown.returncode == 2
    assert "no run 1999 in the journal of" in unknown.stderr


def test_conflicting_final_steps_are_named_and_show_prints_the_warning(repo: Path) -> None:
    write_workflow(
        repo,
        """\
        steps:
          left: {run: "echo L > README.md"}
          right: {run: "echo R > README.md && echo R > other.txt"}
        """,
    )
    done = treeflow(repo, "run", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["result_branch"] is None
    [warning] = result["warnings"]
    assert "`left`, `right` conflicts in README.md (changed by `left` and `right`)" in warning

    shown = treeflow(repo, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert f"warning: {warning}" in shown.stdout
