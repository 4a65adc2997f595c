"""The file watcher: kernel events, adaptive polling, and the policy that drives polling."""

from __future__ import annotations

import os
import random
import select
import shutil
from pathlib import Path

import anyio
import pytest

from tests.helpers import wait_until_async
from treeflow.core.watch import InotifyWatcher, PollingWatcher, PollPolicy, process_watcher

pytestmark = pytest.mark.anyio


def replace(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def test_poll_intervals_grow_by_the_factor_up_to_the_cap() -> None:
    policy = PollPolicy(start_s=0.1, factor=2.0, cap_s=1.0, jitter=0.1)
    intervals = [policy.start_s]
    for _ in range(6):
        intervals.append(policy.next_interval(intervals[-1]))
    assert intervals == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


def test_poll_jitter_only_shortens_and_stays_within_bounds() -> None:
    policy = PollPolicy(jitter=0.2)
    rng = random.Random(7)
    spreads = [policy.spread(1.0, rng) for _ in range(2000)]
    assert min(spreads) >= 0.8
    assert max(spreads) <= 1.0
    assert max(spreads) - min(spreads) > 0.15


def test_the_process_has_one_watcher_per_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TREEFLOW_WATCH", raising=False)
    first = process_watcher()
    assert first is process_watcher()
    assert first.mode == "events"
    monkeypatch.setenv("TREEFLOW_WATCH", "poll")
    assert process_watcher().mode == "poll"


async def test_inotify_notices_a_replace_of_the_watched_file_only(tmp_path: Path) -> None:
    watcher = InotifyWatcher()
    target = tmp_path / "status.json"
    with watcher.watch(target) as subscription:
        (tmp_path / "other.json").write_text("{}")
        assert not await subscription.wait_changed(0.2)
        replace(target, "{}")
        with anyio.fail_after(5):
            assert await subscription.wait_changed(None)


def has_queued_events(watcher: InotifyWatcher) -> bool:
    # The kernel queues an event within the system call that causes it, so a change in a watched
    # folder shows here the moment it is made, before the event loop has had a turn.
    readable, _, _ = select.select([watcher._fd], [], [], 0)  # type: ignore[attr-defined]
    return bool(readable)


async def test_inotify_serves_several_subscribers_of_one_folder(tmp_path: Path) -> None:
    watcher = InotifyWatcher()
    with watcher.watch(tmp_path / "a") as first, watcher.watch(tmp_path / "b") as second:
        replace(tmp_path / "b", "x")
        assert has_queued_events(watcher)
        with anyio.fail_after(5):
            assert await second.wait_changed(None)
        assert not await first.wait_changed(0.1)
    # Removing the watch makes the kernel send one last event; after that the folder is not watched.
    await wait_until_async(lambda: not has_queued_events(watcher), "the watcher to read the last event")
    idle = watcher.wakeups
    replace(tmp_path / "b", "y")
    assert not has_queued_events(watcher)
    assert watcher.wakeups == idle


async def test_inotify_survives_its_folder_being_deleted(tmp_path: Path) -> None:
    watcher = InotifyWatcher()
    folder = tmp_path / "worktree"
    folder.mkdir()
    with watcher.watch(folder / "status.json") as subscription:
        shutil.rmtree(folder)
        with anyio.fail_after(5):
            assert await subscription.wait_changed(None)


async def test_polling_notices_changes_and_resets_its_interval(tmp_path: Path) -> None:
    watcher = PollingWatcher(PollPolicy(start_s=0.01, factor=2.0, cap_s=0.1, jitter=0.0))
    target = tmp_path / "status.json"
    with watcher.watch(target) as subscription:
        with anyio.fail_after(5):
            while subscription._interval < 0.1:  # type: ignore[attr-defined]
                assert not await subscription.wait_changed(0.05)
        assert subscription._interval == 0.1  # type: ignore[attr-defined]
        replace(target, "{}")
        with anyio.fail_after(5):
            assert await subscription.wait_changed(None)
        assert subscription._interval == 0.01  # type: ignore[attr-defined]
    assert watcher.wakeups >= 4
