"""Reading what a commit changed, and files at a revision, through GitPython."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git
from treeflow.core.changes import ChangeStatus, FileChange, read_changes, read_file_at

pytestmark = pytest.mark.anyio


async def test_changes_and_file_contents_at_both_ends(repo: Path) -> None:
    (repo / "a.txt").write_text("one\ntwo\n")
    (repo / "moved.txt").write_text("".join(f"line {n}\n" for n in range(20)))
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "a.txt").write_text("one\n2\nthree\n")
    (repo / "dir").mkdir()
    git(repo, "mv", "moved.txt", "dir/moved.txt")
    (repo / "data.bin").write_bytes(b"\x00\x01")
    (repo / "README.md").unlink()
    (repo / "link").symlink_to("a.txt")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "work")

    changes = await read_changes(repo, base, "HEAD")

    assert changes.base == base
    assert changes.files == (
        FileChange("README.md", None, ChangeStatus.DELETED, 0, 1, False),
        FileChange("a.txt", None, ChangeStatus.MODIFIED, 2, 1, False),
        FileChange("data.bin", None, ChangeStatus.ADDED, 0, 0, True),
        FileChange("dir/moved.txt", "moved.txt", ChangeStatus.RENAMED, 0, 0, False),
        FileChange("link", None, ChangeStatus.ADDED, 1, 0, False),
    )
    assert (changes.additions, changes.deletions) == (3, 2)
    assert await read_file_at(repo, base, "a.txt") == b"one\ntwo\n"
    assert await read_file_at(repo, "HEAD", "data.bin") == b"\x00\x01"
    assert await read_file_at(repo, "HEAD", "link") == b"a.txt"
    assert await read_file_at(repo, "HEAD", "README.md") is None
    assert await read_file_at(repo, "no-such-rev", "a.txt") is None
