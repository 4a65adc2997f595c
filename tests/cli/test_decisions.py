"""Conditions and outputs through the command line, as real processes: `validate` locating problems
(and a `base:` the repository does not have), an agent's outputs from `treeflow agent report`,
and outputs in `treeflow show` and `--json`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git

TREEFLOW = [sys.executable, "-m", "treeflow.cli"]


def treeflow(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREEFLOW, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def write(directory: Path, text: str) -> None:
    (directory / "treeflow.yml").write_text(textwrap.dedent(text))


def test_validate_locates_problems_in_conditions_and_templates(repo: Path) -> None:
    write(
        repo,
        """\
        steps:
          build: {run: "true"}
          test:
            needs: build
            if: needs.biuld.status == 'succeeded' || nope()
            run: echo ${{ needs.build.outputs.v
        """,
    )
    done = treeflow(repo, "validate", "treeflow.yml")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "treeflow.yml:5:46: step `test`: if: unknown function `nope` (known: success(), failure(), always(), "
        "cancelled())",
        "treeflow.yml:6:15: step `test`: run: `${{` is not closed by `}}`",
        "2 errors in the workflow",
    ]
    # `run` refuses the same file before anything starts.
    refused = treeflow(repo, "run")
    assert refused.returncode == 2
    assert git(repo, "branch", "--list", "treeflow/*") == ""


def test_validate_refuses_a_base_the_repository_does_not_have(repo: Path, tmp_path: Path) -> None:
    write(repo, 'name: checks\nbase: "release-9"\nsteps: {a: {run: "true"}}\n')
    done = treeflow(repo, "validate", "treeflow.yml")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"treeflow.yml:2:7: base 'release-9' is not a commit in {repo}",
        "1 error in the workflow",
    ]
    git(repo, "tag", "release-9")
    assert treeflow(repo, "validate").returncode == 0
    # Outside a repository there is nothing to check the revision against.
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside, 'base: "release-9"\nsteps: {a: {run: "true"}}\n')
    assert treeflow(outside, "validate").returncode == 0


def test_an_agent_reports_outputs_that_later_steps_read_and_show_prints(repo: Path) -> None:
    report = f"{sys.executable} -m treeflow.cli agent report"
    write(
        repo,
        f"""\
        steps:
          agent:
            agent:
              prompt: pick a tag
              heartbeat: 30s
              command: {report} --state succeeded --output tag=v1.4 --output "note=two words"
          publish:
            needs: agent
            if: needs.agent.outputs.tag != ''
            run: echo "${{{{ needs.agent.outputs.tag }}}}/$TREEFLOW_NEEDS_AGENT_OUTPUTS_NOTE" > published.txt
        """,
    )
    done = treeflow(repo, "run", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["steps"]["agent"]["outputs"] == {"tag": "v1.4", "note": "two words"}
    assert result["steps"]["publish"]["outputs"] == {}
    branch = result["steps"]["publish"]["branch"]
    assert git(repo, "show", f"{branch}:published.txt") == "v1.4/two words"

    shown = treeflow(repo, "show", "last")
    assert shown.returncode == 0, shown.stderr
    assert "agent output tag=v1.4" in shown.stdout.splitlines()
    assert "agent output note=two words" in shown.stdout.splitlines()
    as_json = json.loads(treeflow(repo, "show", "last", "--json").stdout)
    assert as_json["steps"]["agent"]["outputs"] == {"tag": "v1.4", "note": "two words"}


def test_agent_report_refuses_a_bad_output(repo: Path) -> None:
    (repo / ".treeflow").mkdir()
    (repo / ".treeflow" / "task.json").write_text('{"nonce": "n"}')
    done = treeflow(repo, "agent", "report", "--state", "succeeded", "--output", "9lives")
    assert done.returncode == 2
    assert "--output '9lives': write NAME=VALUE" in done.stderr
    assert not (repo / ".treeflow" / "status.json").exists()
