"""Where treeflow may write in a step's place: only through real folders inside it.

A start commit can track a symbolic link where treeflow writes (`cfg -> /elsewhere`, `.treeflow ->
/elsewhere`); following it would put a file outside the worktree. So every folder on the way to a
file treeflow writes must be a real folder, never a link, wherever the link points.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath


class UnsafeWrite(Exception):
    """A file treeflow was to write would go through a symbolic link or where no folder can be."""


def writable_folder(root: Path, relative: PurePosixPath, like: Path | None = None) -> Path:
    """``root / relative``, its missing folders made; each folder already there must be a real folder.

    A folder made here takes the permissions of the same folder under ``like``, if it has one, so
    that a private folder copied from the checkout stays private. ``root`` itself is taken as it is:
    a worktree may live under a linked folder such as a linked cache.
    """
    folder = root
    for done, part in enumerate(relative.parts, start=1):
        folder = folder / part
        try:
            status = os.lstat(folder)
        except FileNotFoundError:
            os.mkdir(folder)
            _copy_mode(like / PurePosixPath(*relative.parts[:done]) if like else None, folder)
            continue
        shown = PurePosixPath(*relative.parts[:done])
        if stat.S_ISLNK(status.st_mode):
            raise UnsafeWrite(
                f"{shown} is a symbolic link (to {os.readlink(folder)}) in the step's worktree, "
                "and treeflow never writes through one"
            )
        if not stat.S_ISDIR(status.st_mode):
            raise UnsafeWrite(f"{shown} is a file in the step's worktree, where a folder was expected")
    return folder


def _copy_mode(model: Path | None, folder: Path) -> None:
    if model is None:
        return
    try:
        status = os.lstat(model)
    except OSError:
        return
    if stat.S_ISDIR(status.st_mode):
        # Never less than the owner's full access: treeflow still has to fill the folder.
        os.chmod(folder, stat.S_IMODE(status.st_mode) | stat.S_IRWXU)
