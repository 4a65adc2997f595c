"""`setup.copy`: the files of the main checkout each fresh worktree gets (`.env`, a `.venv`), never
committed.

A pattern is a glob relative to the checkout; a folder it matches brings everything under it, the
checkout's root included (`**` matches it), git's own `.git` excluded at any depth. Each file is
copied once, however many patterns reach it. A symbolic link is copied as a link with its target
unchanged and is never followed, so a `.venv` whose `bin/python` points to /usr/bin/python3 keeps
working; only a relative link that leaves the checkout is refused, since from the worktree it would
name some other file. Files are written only through real folders of the worktree (see
`worktree_writes`), never through a link the start commit tracks.

Before anything is copied, the list of files to copy is recorded in the worktree's own git folder,
so that whoever saves the worktree's work (the step, recovery after a crash, `treeflow clean`) holds
them back even when the workflow has changed since.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from enum import Enum
from pathlib import Path, PurePosixPath

import anyio

from treeflow.core.git import run_git
from treeflow.core.workspace import StepSetupError
from treeflow.core.worktree_writes import UnsafeWrite, writable_folder
from treeflow.quoting import quoted

RECORD_NAME = "treeflow-copied"
_CHUNK = 1024 * 1024


class CopyRefused(StepSetupError):
    """A `setup.copy` pattern or file that cannot be copied safely; nothing more is copied."""


class _Kind(Enum):
    FILE = "file"
    LINK = "link"
    FOLDER = "folder"


Plan = dict[PurePosixPath, _Kind]
"""What to copy, by path relative to the checkout, in the order to copy it."""


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be a `setup.copy` pattern, if it cannot."""
    path = PurePosixPath(pattern)
    if not pattern:
        return "is empty; name the files to copy, such as `.env`"
    if path.is_absolute():
        return "is an absolute path; patterns are relative to the repository root"
    if ".." in path.parts:
        return "points outside the repository (`..`)"
    if not path.parts:
        return "names the repository root itself; name the files to copy, such as `.env`"
    if any("**" in part and part != "**" for part in path.parts):
        return "uses `**` inside a name; `**` must be a whole path component, as in `config/**`"
    return None


def copy_setup_files(
    source: Path, target: Path, patterns: tuple[str, ...], record: Path, copied: list[str]
) -> None:
    """Copy what ``patterns`` match in the checkout ``source`` into the fresh worktree ``target``.

    The paths of the files copied are added to ``copied`` and written to ``record`` before the
    first one is copied, so that none is ever committed, even if a later one fails. Raises
    CopyRefused, naming the pattern or the file, for anything that cannot be copied safely.
    """
    plan = plan_copy(source, patterns, skip=target)
    files = [path.as_posix() for path, kind in plan.items() if kind is not _Kind.FOLDER]
    copied.extend(files)
    try:
        record.write_bytes(b"".join(os.fsencode(path) + b"\0" for path in files))
    except OSError as exc:
        raise CopyRefused(f"setup.copy: could not record what it copies in {record}: {exc}") from exc
    source = source.resolve()
    for path, kind in plan.items():
        try:
            _copy_one(source, target, path, kind)
        except UnsafeWrite as exc:
            raise CopyRefused(f"setup.copy: cannot copy {path}: {exc}") from exc
        except OSError as exc:
            raise CopyRefused(f"setup.copy: could not copy {path}: {exc.strerror or exc}") from exc


def plan_copy(source: Path, patterns: Iterable[str], *, skip: Path | None = None) -> Plan:
    """Every file, link and folder ``patterns`` bring from ``source`` (nothing under ``skip``)."""
    root = source.resolve()
    plan: Plan = {}
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            raise CopyRefused(f"setup.copy: {quoted(pattern)!r} {problem}")
        try:
            matches = sorted(root.glob("/".join(PurePosixPath(pattern).parts)))
        except (OSError, ValueError) as exc:
            raise CopyRefused(f"setup.copy: {quoted(pattern)!r} cannot be matched: {exc}") from exc
        for match in matches:
            relative = _relative_inside(root, match, pattern)
            if ".git" not in relative.parts:
                _add(plan, root, relative, skip.resolve() if skip else None)
    return plan


def copies_expected(source: Path, patterns: Iterable[str]) -> list[str]:
    """The files ``patterns`` would copy from ``source`` now; patterns that cannot be copied add none."""
    files: list[str] = []
    for pattern in patterns:
        try:
            plan = plan_copy(source, [pattern])
        except (CopyRefused, OSError):
            continue
        files.extend(path.as_posix() for path, kind in plan.items() if kind is not _Kind.FOLDER)
    return files


async def copied_files(worktree: Path, source: Path | None = None, patterns: Iterable[str] = ()) -> list[str]:
    """The files `setup.copy` put into ``worktree``, as recorded when they were copied; for a worktree
    without a record, those ``patterns`` would copy from ``source`` now."""
    code, git_dir, _ = await run_git(worktree, "rev-parse", "--absolute-git-dir")
    record = Path(git_dir.strip()) / RECORD_NAME if code == 0 else None
    recorded = await anyio.to_thread.run_sync(_read_record, record) if record else None
    if recorded is not None:
        return recorded
    if source is None:
        return []
    return await anyio.to_thread.run_sync(copies_expected, source, patterns)


def _read_record(record: Path) -> list[str] | None:
    try:
        data = record.read_bytes()
    except OSError:
        return None
    return [os.fsdecode(path) for path in data.split(b"\0") if path]


def _relative_inside(root: Path, match: Path, pattern: str) -> PurePosixPath:
    """``match`` relative to ``root``, through the real folders that hold it (the match itself, if a
    link, is not followed)."""
    if match == root:
        return PurePosixPath()
    folder = match.parent.resolve()
    if not folder.is_relative_to(root):
        raise CopyRefused(
            f"setup.copy: {quoted(pattern)!r} matches {match.relative_to(root)}, "
            "which resolves outside the repository"
        )
    return PurePosixPath(folder.relative_to(root).as_posix()) / match.name


def _add(plan: Plan, root: Path, relative: PurePosixPath, skip: Path | None) -> None:
    status = os.lstat(root / relative)
    if stat.S_ISLNK(status.st_mode):
        _check_link(root, relative)
        plan[relative] = _Kind.LINK
    elif stat.S_ISREG(status.st_mode):
        plan[relative] = _Kind.FILE
    elif stat.S_ISDIR(status.st_mode):
        _add_folder(plan, root, relative, skip)
    # Sockets, FIFOs and devices have no content to copy; opening a FIFO would even block.


def _add_folder(plan: Plan, root: Path, folder: PurePosixPath, skip: Path | None) -> None:
    if plan.get(folder) is _Kind.FOLDER or PurePosixPath() in plan:
        return  # walked already: `a/**` matches `a` first, then each folder under it
    for where, folders, files in os.walk(root / folder):
        here = Path(where)
        if here == skip:
            folders.clear()
            continue
        relative = PurePosixPath(here.relative_to(root).as_posix())
        plan.setdefault(relative, _Kind.FOLDER)
        folders[:] = sorted(name for name in folders if name != ".git")
        # os.walk lists a link to a folder among the folders and does not enter it: it is a link.
        for name in [*(name for name in folders if (here / name).is_symlink()), *sorted(files)]:
            if name != ".git":
                _add(plan, root, relative / name, skip)


def _check_link(root: Path, relative: PurePosixPath) -> None:
    target = os.readlink(root / relative)
    if os.path.isabs(target):
        return
    lands = os.path.normpath(os.path.join(relative.parent, target))
    if lands == ".." or lands.startswith("../"):
        raise CopyRefused(
            f"setup.copy: {relative} is a symbolic link to {target}, outside the repository; from the "
            "step's worktree it would point somewhere else, so it is not copied (make it absolute, "
            "or leave it out of setup.copy)"
        )


def _copy_one(source: Path, target: Path, path: PurePosixPath, kind: _Kind) -> None:
    if kind is _Kind.FOLDER:
        writable_folder(target, path, like=source)
        return
    destination = writable_folder(target, path.parent, like=source) / path.name
    origin = source / path
    try:
        there = os.lstat(destination)
    except FileNotFoundError:
        there = None
    if there is not None and stat.S_ISLNK(there.st_mode):
        if kind is _Kind.LINK and os.readlink(destination) == os.readlink(origin):
            return
        raise UnsafeWrite(
            f"it is a symbolic link (to {os.readlink(destination)}) in the step's worktree, "
            "and treeflow never writes through one"
        )
    if there is not None and stat.S_ISDIR(there.st_mode):
        raise UnsafeWrite("it is a folder in the step's worktree, and a file in the checkout")
    if kind is _Kind.LINK:
        if there is not None:
            os.unlink(destination)
        os.symlink(os.readlink(origin), destination)
    else:
        _copy_file(origin, destination)


def _copy_file(origin: Path, destination: Path) -> None:
    """Copy content, permissions and times; neither end is followed if it is a link."""
    reading = os.open(origin, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(reading)
        if not stat.S_ISREG(status.st_mode):
            return  # replaced since it was listed; there is nothing to copy
        writing = os.open(
            destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            while chunk := os.read(reading, _CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(writing, view) :]
            os.fchmod(writing, stat.S_IMODE(status.st_mode))
            os.utime(writing, ns=(status.st_atime_ns, status.st_mtime_ns))
        finally:
            os.close(writing)
    finally:
        os.close(reading)
