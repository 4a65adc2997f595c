"""The adaptive poller of remote agents, on a virtual clock: its schedule, its one timer, its retries."""

from __future__ import annotations

import random

import anyio
import pytest

from treeflow.core.cloud.poller import (
    AdaptivePoller,
    PollPolicy,
    PollSchedule,
    PollTrouble,
    VirtualClock,
)

pytestmark = pytest.mark.anyio

EXACT = PollPolicy(jitter=0.0)


def test_waits_grow_by_half_up_to_30_s_and_start_again_on_a_change() -> None:
    schedule = PollSchedule(EXACT, random.Random(1))
    waits = [schedule.first()] + [schedule.answered(changed=False) for _ in range(10)]
    assert waits[:5] == pytest.approx([1.0, 1.5, 2.25, 3.375, 5.0625])
    assert waits[-1] == 30.0
    assert max(waits) == 30.0
    assert schedule.answered(changed=True) == 1.0


def test_jitter_spreads_each_wait_by_at_most_a_tenth_either_way() -> None:
    schedule = PollSchedule(PollPolicy(), random.Random(7))
    waits = [schedule.first() for _ in range(2000)]
    assert min(waits) >= 0.9 and max(waits) <= 1.1
    assert min(waits) < 0.92 and max(waits) > 1.08


def test_trouble_backs_off_and_never_comes_before_retry_after() -> None:
    schedule = PollSchedule(EXACT, random.Random(1))
    assert [schedule.troubled(None) for _ in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert schedule.troubled(45.0) == 45.0
    assert schedule.troubled(0.5) == 30.0


def test_the_scale_shortens_every_wait_retry_after_included() -> None:
    schedule = PollSchedule(PollPolicy(jitter=0.0, scale=0.01), random.Random(1))
    assert schedule.first() == pytest.approx(0.01)
    assert schedule.troubled(20.0) == pytest.approx(0.2)


class Job:
    """A remote job whose state the test sets; each fetch is recorded at the virtual time it ran."""

    def __init__(self, clock: VirtualClock, state: str = "CREATING") -> None:
        self.clock = clock
        self.state = state
        self.polled_at: list[float] = []
        self.script: dict[int, str] = {}  # poll number -> state from then on
        self.troubles: list[PollTrouble] = []

    async def fetch(self) -> str:
        self.polled_at.append(self.clock.now())
        self.state = self.script.get(len(self.polled_at), self.state)
        if self.troubles:
            raise self.troubles.pop(0)
        return self.state


async def test_a_follower_hears_each_change_polled_on_the_schedule() -> None:
    clock = VirtualClock()
    poller = AdaptivePoller(EXACT, clock, random.Random(1))
    job = Job(clock)
    job.script = {4: "RUNNING", 9: "FINISHED"}
    heard = []
    async with poller.follow(job.fetch, "CREATING") as follow:
        while not heard or heard[-1] != "FINISHED":
            heard.append(await follow.next_change())
    assert heard == ["RUNNING", "FINISHED"]
    gaps = [b - a for a, b in zip([0.0, *job.polled_at], job.polled_at, strict=False)]
    # 1, 1.5, 2.25, 3.375 then RUNNING: back to 1, 1.5, ...
    assert gaps == pytest.approx([1.0, 1.5, 2.25, 3.375, 1.0, 1.5, 2.25, 3.375, 5.0625])


async def test_many_followers_share_one_timer() -> None:
    clock = VirtualClock()
    poller = AdaptivePoller(PollPolicy(), clock, random.Random(3))
    jobs = [Job(clock) for _ in range(20)]
    for number, job in enumerate(jobs):
        job.script = {3 + number % 5: "FINISHED"}
    ended: list[int] = []

    async def follow_one(number: int, job: Job) -> None:
        async with poller.follow(job.fetch, "CREATING") as follow:
            while await follow.next_change() != "FINISHED":
                pass
        ended.append(number)

    async with anyio.create_task_group() as group:
        for number, job in enumerate(jobs):
            group.start_soon(follow_one, number, job)
    assert sorted(ended) == list(range(20))
    assert poller.most_timers == 1
    assert poller.requests == sum(len(job.polled_at) for job in jobs)


async def test_a_cancelled_driver_hands_the_timer_on() -> None:
    clock = VirtualClock()
    poller = AdaptivePoller(EXACT, clock, random.Random(1))
    quiet, busy = Job(clock), Job(clock)
    busy.script = {6: "FINISHED"}
    heard = []

    async def follow_quiet(scope: anyio.CancelScope) -> None:
        with scope:
            async with poller.follow(quiet.fetch, "CREATING") as follow:
                await follow.next_change()

    async def follow_busy() -> None:
        async with poller.follow(busy.fetch, "CREATING") as follow:
            heard.append(await follow.next_change())

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as group:
        group.start_soon(follow_quiet, scope)
        await anyio.lowlevel.checkpoint()
        group.start_soon(follow_busy)
        while len(busy.polled_at) < 2:
            await anyio.lowlevel.checkpoint()
        scope.cancel()
    assert heard == ["FINISHED"]
    assert scope.cancelled_caught


async def test_troubles_are_retried_with_backoff_and_retry_after() -> None:
    clock = VirtualClock()
    poller = AdaptivePoller(EXACT, clock, random.Random(1))
    job = Job(clock)
    job.script = {4: "FINISHED"}
    job.troubles = [PollTrouble("HTTP 500"), PollTrouble("HTTP 429", retry_after_s=12.0)]
    troubles = []
    async with poller.follow(
        job.fetch, "CREATING", on_trouble=lambda trouble, wait: troubles.append((trouble.reason, wait))
    ) as follow:
        assert await follow.next_change() == "FINISHED"
    assert troubles == [("HTTP 500", 2.0), ("HTTP 429", 12.0)]
    # After the troubles the interval is 4 s; an unchanged answer makes it 6 s.
    assert job.polled_at == pytest.approx([1.0, 3.0, 15.0, 21.0])


async def test_a_failing_fetch_reaches_its_follower() -> None:
    clock = VirtualClock()
    poller = AdaptivePoller(EXACT, clock, random.Random(1))

    async def refuse() -> str:
        raise PermissionError("bad key")

    async with poller.follow(refuse, "CREATING") as follow:
        with pytest.raises(PermissionError, match="bad key"):
            await follow.next_change()
