"""Agent transcripts: each adapter's recorded stream (tests/agents/fake_clis/streams) rendered as
Markdown shows what the agent said, each tool call and what it returned, and no raw JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from treeflow.core.agents import ADAPTERS
from treeflow.core.agents.cli_agent import CliAgent
from treeflow.core.agents.transcript import render_transcript

STREAMS = Path(__file__).parent / "fake_clis" / "streams"


def recorded_log(cli: CliAgent, scenario: str) -> str:
    """The step log a run of the recorded stream leaves: treeflow's header, then the CLI's events."""
    lines = (STREAMS / cli.program / f"{scenario}.jsonl").read_text().splitlines()
    events = [line.replace("{session}", "s-1") for line in lines if line and not line.startswith(("#", "!"))]
    return f"--- treeflow: {cli.program} -p go ---\n" + "\n".join(events) + "\n"


def transcript(use: str, scenario: str = "success") -> str:
    cli = ADAPTERS[use]
    assert isinstance(cli, CliAgent)
    return render_transcript(cli, "job", recorded_log(cli, scenario))


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        (
            "claude",
            [
                "**→ Bash: pytest \\-q tests/test\\_api.py**",
                "Result:\n\n```\nF\n1 failed in 0.02s\n```",
                "**→ Edit: /home/dev/project/src/api.py**",
                "Result:\n\n```\nThe file /home/dev/project/src/api.py has been updated.\n```",
            ],
        ),
        (
            "codex",
            [
                "> **Running the failing test**",
                "**→ command: bash \\-lc 'pytest \\-q tests/test\\_api.py'**",
                "Result (exit 1, error):\n\n```\nF\n1 failed in 0.02s\n```",
                "**→ edit: update src/api.py**",
                "Fixed src/api.py; the test passes.",
            ],
        ),
        (
            "gemini",
            [
                "**Prompt:**\n\n> Review this branch; write REVIEW.md",
                "**→ run\\_shell\\_command: git log \\-\\-oneline \\-5**",
                "Result:\n\n```\nabc1234 Fix the API\n```",
                "**→ write\\_file: REVIEW.md**",
                "Result:\n\n```\nSuccessfully created REVIEW.md\n```",
                "\n\nI wrote REVIEW.md with my notes.\n\n",
            ],
        ),
        (
            "cursor",
            [
                "Let me read the module first.",
                "**→ Read: src/api.py**",
                "Result:\n\n```\ndef answer():\n    return 1\n```",
                "**→ Write: src/api.py**",
                "Result:\n\n```\npath: /home/dev/project/src/api.py\nlinesCreated: 2\nfileSize: 28\n```",
            ],
        ),
        (
            "opencode",
            [
                "**→ bash: pytest \\-q**",
                "Result:\n\n```\n1 failed\n```",
                "The test passes now.",
            ],
        ),
    ],
)
def test_each_tool_call_is_shown_with_what_it_returned(use: str, expected: list[str]) -> None:
    markdown = transcript(use)
    assert markdown.startswith(f"# job: {ADAPTERS[use].title}\n")
    position = 0
    for block in expected:
        found = markdown.find(block, position)
        assert found >= 0, f"{block!r} not after position {position} in:\n{markdown}"
        position = found + len(block)
    assert '"type"' not in markdown


@pytest.mark.parametrize(
    ("use", "expected"),
    [
        ("codex", "**Error:** stream disconnected before completion: response.failed event received"),
        ("gemini", "**Warning:** Loop detected, stopping execution"),
        ("opencode", "**Error:** Authentication failed: run opencode auth login"),
    ],
)
def test_errors_the_stream_reports_are_shown(use: str, expected: str) -> None:
    assert expected in transcript(use, "error")


def test_a_failed_tool_call_is_marked_as_one() -> None:
    log = (
        "--- treeflow: opencode run ---\n"
        '{"type":"tool_use","sessionID":"s","part":{"tool":"read","state":{"status":"error",'
        '"input":{"filePath":"missing.py"},"error":"File not found: missing.py"}}}\n'
    )
    markdown = render_transcript(ADAPTERS["opencode"], "job", log)  # type: ignore[arg-type]
    assert "**→ read: missing.py**\n\nResult (error):\n\n```\nFile not found: missing.py\n```" in markdown


def test_one_turn_is_one_turn() -> None:
    assert "**Totals:** 1 turn · 24,567 tokens in" in transcript("codex")
