"""What the CLI prints of steps, agents and runs: plain tables when piped, control characters shown
as escapes, agent messages cut to a line."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.cli.test_run import run_in_terminal, treeflow, write_workflow
from treeflow.cli.terminal_text import shown, shown_line, shown_lines

BOX_DRAWING = re.compile("[\u2500-\u257f]")
# What a terminal would obey: every C0 control but tab and newline, DEL, and C1.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TITLE_SEQUENCE = "\x1b]0;pwned\x07"


def test_tables_piped_are_plain_columns_without_box_lines(repo: Path) -> None:
    write_workflow(repo, "name: checks\nsteps:\n  one: {run: 'echo hi'}\n  two: {run: 'exit 3'}\n")
    assert treeflow(repo, "run").returncode == 1
    run_id = json.loads(treeflow(repo, "runs", "--json").stdout)[0]["run_id"]

    runs = treeflow(repo, "runs")
    show = treeflow(repo, "show", "last")

    for done in (runs, show):
        assert done.returncode == 0, done.stderr
        assert not BOX_DRAWING.search(done.stdout), done.stdout
        assert all(line == line.rstrip() for line in done.stdout.splitlines()), done.stdout
    header, row = runs.stdout.splitlines()
    assert header.split() == ["run", "workflow", "status", "steps", "started", "time", "result", "branch"]
    assert row.split()[:4] == [run_id, "checks", "failed", "1/2"]
    lines = show.stdout.splitlines()
    assert lines[0] == f"run {run_id} of checks"
    assert lines[1].split() == ["step", "status", "tries", "time", "branch", "log"]
    assert lines[2].split()[:3] == ["one", "succeeded", "1"]
    assert lines[3].split()[:3] == ["two", "failed", "1"]
    assert lines[2].split()[-1].endswith(f"{run_id}/one.log")


def test_tables_in_a_terminal_keep_their_box(repo: Path) -> None:
    write_workflow(repo, "steps:\n  one: {run: 'echo hi'}\n")
    assert treeflow(repo, "run").returncode == 0
    status, output = run_in_terminal(repo, "show", "last")
    assert status == 0
    assert BOX_DRAWING.search(output), output


CONTROL_STEP = r"""printf '\033]0;pwned\007title\n'; printf 'progress 1\rprogress 2\n'; printf 'a\tb\n'; printf 'bell\007 and C1 \302\233 end\n'; exit 1"""


def test_step_output_shows_control_characters_as_escapes(repo: Path) -> None:
    write_workflow(repo, f"steps:\n  noisy: {{run: {json.dumps(CONTROL_STEP)}}}\n")
    done = treeflow(repo, "run")
    assert done.returncode == 1
    assert not RAW_CONTROL.search(done.stdout), repr(done.stdout)
    assert "[noisy] | \\x1b]0;pwned\\x07title" in done.stdout
    assert "[noisy] | progress 1\\rprogress 2" in done.stdout
    assert "[noisy] | a\tb" in done.stdout
    assert "[noisy] | bell\\x07 and C1 \\x9b end" in done.stdout
    # The log keeps what the step printed, byte for byte.
    log = next((repo / ".git" / "treeflow" / "logs").glob("*/noisy.log")).read_bytes()
    assert b"\x1b]0;pwned\x07title" in log


def test_the_live_display_shows_control_characters_as_escapes(repo: Path) -> None:
    write_workflow(repo, f'name: "live\\e]0;name\\a"\nsteps:\n  noisy: {{run: {json.dumps(CONTROL_STEP)}}}\n')
    status, output = run_in_terminal(repo, "run")
    assert status == 1
    assert TITLE_SEQUENCE not in output
    assert "\x1b]0;name" not in output
    # The failed step's last lines, printed after the display.
    assert "\\x1b]0;pwned\\x07title" in output
    assert "progress 1\\rprogress 2" in output


AGENT = """\
import json, pathlib
task = json.loads(pathlib.Path(".treeflow/task.json").read_text())
status = {
    "protocol": 1,
    "nonce": task["nonce"],
    "state": "failed",
    "message": "working \\x1b]0;pwned\\x07 on it\\r\\nnext line " + "m" * 1_000_000,
    "error": "gave up \\x1b[2J" + "e" * 20_000,
}
pathlib.Path(".treeflow/status.tmp").write_text(json.dumps(status))
pathlib.Path(".treeflow/status.tmp").rename(".treeflow/status.json")
"""


def test_an_agents_huge_message_with_escapes_is_cut_to_a_line_and_kept_bounded(repo: Path) -> None:
    script = repo.parent / "agent.py"
    script.write_text(AGENT)
    command = f"{sys.executable} {script}"
    write_workflow(repo, f"steps:\n  agent:\n    agent: {{prompt: work, command: {json.dumps(command)}}}\n")
    done = treeflow(repo, "run")
    assert done.returncode == 1, done.stderr
    assert not RAW_CONTROL.search(done.stdout + done.stderr), repr(done.stdout[:2000])
    assert len(done.stdout) < 5000, done.stdout[:2000]
    progress = next(line for line in done.stdout.splitlines() if line.startswith("[agent] agent:"))
    assert progress.startswith("[agent] agent: working \\x1b]0;pwned\\x07 on it\\r\\nnext line mmm")
    assert progress.endswith("m…")
    failed = next(line for line in done.stdout.splitlines() if line.startswith("[agent] failed"))
    assert "the agent reported failure: gave up \\x1b[2Jeee" in failed
    # The journal keeps a bounded part of what the agent said.
    shown = json.loads(treeflow(repo, "show", "last", "--json").stdout)
    error = shown["steps"]["agent"]["error"]
    assert error.startswith("the agent reported failure: gave up \x1b[2Jeee")
    assert len(error) < 4200


def test_validation_errors_show_control_characters_of_the_file_as_escapes(repo: Path) -> None:
    write_workflow(repo, 'steps:\n  a: {run: x, "bad\\e]0;pwned\\a": 1}\n')
    done = treeflow(repo, "validate")
    assert done.returncode == 2
    assert not RAW_CONTROL.search(done.stderr), repr(done.stderr)
    assert "unknown key `bad\\x1b]0;pwned\\x07`" in done.stderr


def test_terminal_text_keeps_tabs_and_shows_every_other_control_character() -> None:
    assert shown("a\tb\x1b[31m\r\x00\x7f\x85é") == "a\tb\\x1b[31m\\r\\x00\\x7f\\x85é"
    assert shown("two\nlines") == "two\nlines"
    assert shown_line("two\nlines\x1b") == "two\\nlines\\x1b"
    assert shown_line("x" * 1_000_000) == "x" * 200 + "…"
    assert shown_line("\x1b" * 300) == "\\x1b" * 50 + "…"
    many = shown_lines("\n".join(f"line {n}\x07" for n in range(1000)))
    assert many.splitlines()[0] == "… (981 earlier lines left out)"
    assert many.splitlines()[-1] == "line 999\\x07"
