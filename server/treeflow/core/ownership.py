"""Which treeflow process a git command or a scratch index belongs to, and whether that process lives.

Every git command treeflow runs carries ``TREEFLOW_GIT_OWNER=<pid>-<start ticks>`` in its
environment, and every scratch index it writes names the same owner. Git runs in a session of its
own, so a `kill -9` of treeflow leaves its git running (a `read-tree` filling a worktree, an `add`
writing an index copy); the mark tells such orphans apart from git run by the user, by steps or by
a treeflow that still lives. A pid and its start time name one process for good.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from treeflow.core.process import (
    end_process_group,
    process_environ,
    process_ids,
    process_start_ticks,
    process_state,
)

OWNER_VARIABLE = "TREEFLOW_GIT_OWNER"

# snapshot-<pid>-<start ticks>-<random>.index, and its `.lock` while git writes it; indexes from
# before the start ticks were part of the name have only the pid.
_SCRATCH_INDEX = re.compile(r"snapshot-([0-9]+)(?:-([0-9]+))?-[0-9a-f]+\.index(?:\.lock)?")

_mark: tuple[int, str] | None = None
_HAS_PROC = os.path.isdir("/proc/self")


def owner_mark() -> str:
    """``<pid>-<start ticks>`` of this process."""
    global _mark
    pid = os.getpid()
    if _mark is None or _mark[0] != pid:  # a forked child is another owner
        _mark = (pid, f"{pid}-{process_start_ticks(pid) or 0}")
    return _mark[1]


def scratch_index_name() -> str:
    """A file name for an index copy of this process's own, in treeflow's state folder."""
    return f"snapshot-{owner_mark()}-{os.urandom(4).hex()}.index"


def stale_scratch_indexes(folder: Path) -> list[Path]:
    """Index copies (and their git lock files) in ``folder`` whose owning process is gone."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    stale = []
    for name in sorted(names):
        match = _SCRATCH_INDEX.fullmatch(name)
        if match is None:
            continue
        pid, ticks = int(match.group(1)), match.group(2)
        if not _alive(pid, None if ticks is None else int(ticks)):
            stale.append(folder / name)
    return stale


def orphaned_git_groups(places: tuple[Path, ...]) -> set[int]:
    """Process groups of git commands whose treeflow is gone, working in one of ``places``
    (blocking; reads /proc). Only treeflow's own git carries the mark, so nothing else is found."""
    wanted = f"{OWNER_VARIABLE}=".encode()
    roots = {place.resolve() for place in places} | set(places)
    groups: set[int] = set()
    for pid in process_ids():
        environ = process_environ(pid)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue  # gone, or someone else's
        if environ is None:
            continue
        mark = next((item[len(wanted) :] for item in environ if item.startswith(wanted)), None)
        if mark is None or _mark_alive(mark.decode(errors="replace")):
            continue
        # A folder removed under a process still shows as its current directory, so marked.
        folder = Path(cwd.removesuffix(" (deleted)"))
        if not any(folder.is_relative_to(root) for root in roots):
            continue
        state = process_state(pid)
        if state is not None and state.live:
            groups.add(state.group)
    return groups


async def end_orphaned_git(places: tuple[Path, ...]) -> list[int]:
    """End the process groups `orphaned_git_groups` finds, and wait until they are gone."""
    groups = sorted(orphaned_git_groups(places) - {os.getpgrp()})
    for group in groups:
        await end_process_group(group)
    return groups


def _mark_alive(mark: str) -> bool:
    pid, _, ticks = mark.partition("-")
    if not pid.isdigit() or not ticks.isdigit():
        return True  # not a mark treeflow wrote: not for treeflow to end
    return _alive(int(pid), int(ticks))


def _alive(pid: int, ticks: int | None) -> bool:
    """Whether the process ``pid`` that started at ``ticks`` (any, if None) still runs."""
    if not _HAS_PROC:
        return True  # no way to tell: whatever it owns stays
    state = process_state(pid)
    if state is None or state.letter in ("Z", "X"):
        return False
    return ticks is None or state.start_ticks == ticks
