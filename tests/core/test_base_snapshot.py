"""The `working` base of a run: the checkout's uncommitted edits, as git itself would see them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import git
from tests.helpers import wait_until_async
from tests.review_helpers import run_workflow

pytestmark = pytest.mark.anyio


@pytest.mark.slow
async def test_an_edit_in_the_same_second_as_the_index_was_written_is_part_of_the_base(repo: Path) -> None:
    index = repo / ".git" / "index"
    # Same size, same second as the index entry and the index itself: only git's check for such
    # "racily clean" entries, which compares the entry with the index file's time, sees the edit.
    for _ in range(50):
        (repo / "a.txt").write_text("committed\n")
        git(repo, "add", "a.txt")
        (repo / "a.txt").write_text("edited!!!\n")
        second = int(index.stat().st_mtime)
        if int((repo / "a.txt").stat().st_ctime) == second:
            break
    await wait_until_async(lambda: int(time.time()) > second, "the next second")

    record = await run_workflow(repo, "steps:\n  look: {run: 'cp a.txt seen.txt'}\n")

    seen = git(repo, "show", f"treeflow/runs/{record.run.run_id}:seen.txt")
    assert seen == "edited!!!"
