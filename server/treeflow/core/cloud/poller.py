"""Follow remote jobs by adaptive polling, every job of the process on one timer.

Each followed job has its own schedule: the first poll 1 s after it is watched, then 1.5 times
longer after each answer that did not change, up to 30 s, each wait spread by ±10 % so that many
jobs do not poll in step, and back to 1 s whenever the answer changes. A busy job is followed
closely and a quiet one costs a request every half minute. A poll that gets no answer (a network
error, a 429 or a 5xx: `PollTrouble`) is retried after a wait that doubles each time, never sooner
than the server's ``Retry-After``; it is never a failure: the step's timeout is what gives up.

One `AdaptivePoller` serves the process (`process_poller`), with one timer: whichever follower is
waiting drives it, sleeping until the earliest due poll and making every poll that is due, and hands
it on to another waiting follower when its own answer has come or it is cancelled. No task runs
without an owner, and a thousand followed jobs cost one sleeping timer.

The clock is injectable (`Clock`): tests and the polling benchmark run the real poller on a virtual
clock. ``TREEFLOW_CLOUD_POLL_SCALE`` (a positive number, default 1) multiplies every wait,
``Retry-After`` included, so that tests follow fake agents in milliseconds.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio

T = TypeVar("T")

SCALE_VARIABLE = "TREEFLOW_CLOUD_POLL_SCALE"
# A server asking for more than this is taken to mean "later", not literally an hour from now.
_MAX_RETRY_AFTER_S = 600.0


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class VirtualClock:
    """Time that passes only when the poller sleeps, at once: right for one timer, which is what
    `AdaptivePoller` has."""

    def __init__(self, start: float = 0.0) -> None:
        self.time = start

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


class PollTrouble(Exception):
    """No answer this time (the network, a rate limit, a server error): poll again later, no sooner
    than ``retry_after_s`` when the server said so."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class PollPolicy:
    start_s: float = 1.0
    factor: float = 1.5
    cap_s: float = 30.0
    jitter: float = 0.1
    scale: float = 1.0  # multiplies every wait; for tests

    @classmethod
    def from_environment(cls) -> PollPolicy:
        return cls(scale=_scale_from(os.environ.get(SCALE_VARIABLE)))


def _scale_from(text: str | None) -> float:
    if not text:
        return 1.0
    try:
        value = float(text)
    except ValueError:
        return 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


class PollSchedule:
    """When one job is polled next, from what its polls found so far (pure; no clock)."""

    def __init__(self, policy: PollPolicy, rng: random.Random) -> None:
        self._policy = policy
        self._rng = rng
        self.interval_s = policy.start_s

    def first(self) -> float:
        return self._spread(self.interval_s)

    def answered(self, changed: bool) -> float:
        policy = self._policy
        self.interval_s = policy.start_s if changed else min(policy.cap_s, self.interval_s * policy.factor)
        return self._spread(self.interval_s)

    def troubled(self, retry_after_s: float | None) -> float:
        policy = self._policy
        self.interval_s = min(policy.cap_s, max(policy.start_s, self.interval_s) * 2)
        wait = self._spread(self.interval_s)
        if retry_after_s is not None:
            wait = max(wait, min(_MAX_RETRY_AFTER_S, retry_after_s) * policy.scale)
        return wait

    def _spread(self, interval_s: float) -> float:
        jitter = self._policy.jitter
        return interval_s * self._policy.scale * self._rng.uniform(1.0 - jitter, 1.0 + jitter)


class Follow(Generic[T]):
    """One followed job: `next_change` waits for an answer that differs from the last one."""

    def __init__(
        self,
        poller: AdaptivePoller,
        fetch: Callable[[], Awaitable[T]],
        last: T,
        key: Callable[[T], Hashable],
        on_trouble: Callable[[PollTrouble, float], None],
        schedule: PollSchedule,
    ) -> None:
        self._poller = poller
        self._fetch = fetch
        self._key = key
        self._on_trouble = on_trouble
        self.schedule = schedule
        self.last = last
        self.due = poller.clock.now() + schedule.first()
        self.polls = 0
        self._news: list[T] = []  # the latest change not yet taken, if any
        self._error: Exception | None = None
        self._event = anyio.Event()

    @property
    def has_news(self) -> bool:
        return bool(self._news) or self._error is not None

    async def next_change(self) -> T:
        """The next answer whose key differs from the last one's. Raises what the fetch raised,
        other than `PollTrouble`, which is retried."""
        while True:
            self._event = anyio.Event()
            if self._error is not None:
                raise self._error
            if self._news:
                return self._news.pop()
            if not self._poller.driving:
                await self._poller.drive(self)
                continue
            await self._event.wait()

    def wake(self) -> None:
        self._event.set()

    async def poll(self) -> None:
        """Poll once now and schedule the next poll; what it finds is kept for `next_change`."""
        clock = self._poller.clock
        self.polls += 1
        self._poller.requests += 1
        try:
            answer = await self._fetch()
        except PollTrouble as trouble:
            wait = self.schedule.troubled(trouble.retry_after_s)
            self.due = clock.now() + wait
            self._on_trouble(trouble, wait)
            return
        except Exception as exc:
            self._error = exc
            self.wake()
            return
        changed = self._key(answer) != self._key(self.last)
        self.due = clock.now() + self.schedule.answered(changed)
        if changed:
            self.last = answer
            self._news[:] = [answer]
            self.wake()


class AdaptivePoller:
    """Polls every followed job when it is due, on one timer driven by a waiting follower."""

    def __init__(
        self, policy: PollPolicy | None = None, clock: Clock | None = None, rng: random.Random | None = None
    ) -> None:
        self._policy = policy
        self.clock: Clock = clock or MonotonicClock()
        self._rng = rng or random.Random()
        self._follows: list[Follow[object]] = []
        self.driving = False
        self._timer: anyio.CancelScope | None = None
        self.requests = 0
        self._sleeping = 0
        self.most_timers = 0  # the most timers ever sleeping at once: one, by design

    @property
    def policy(self) -> PollPolicy:
        """The policy given, or else the default one with the environment's scale as it is now."""
        return self._policy or PollPolicy.from_environment()

    @asynccontextmanager
    async def follow(
        self,
        fetch: Callable[[], Awaitable[T]],
        last: T,
        *,
        key: Callable[[T], Hashable] | None = None,
        on_trouble: Callable[[PollTrouble, float], None] | None = None,
    ) -> AsyncIterator[Follow[T]]:
        """Follow the job that ``fetch`` asks about, whose answer is ``last`` now; ``key`` is the
        part of an answer whose change counts (all of it by default); ``on_trouble`` hears of each
        poll without an answer and the wait before the next."""
        follow = Follow(
            self,
            fetch,
            last,
            key or _whole,
            on_trouble or _ignore_trouble,
            PollSchedule(self.policy, self._rng),
        )
        self._follows.append(follow)  # type: ignore[arg-type]
        self._rearm()
        try:
            yield follow
        finally:
            self._follows.remove(follow)  # type: ignore[arg-type]

    def _rearm(self) -> None:
        """A new job may be due before the timer rings: let the driver look again."""
        if self._timer is not None:
            self._timer.cancel()

    async def drive(self, target: Follow[T]) -> None:
        """Run the timer until ``target`` has news, then hand it on to the other followers."""
        self.driving = True
        try:
            while not target.has_news:
                now = self.clock.now()
                due = [follow for follow in self._follows if follow.due <= now]
                if due:
                    async with anyio.create_task_group() as group:
                        for follow in due:
                            group.start_soon(follow.poll)
                    continue
                wait = min(follow.due for follow in self._follows) - now
                self._sleeping += 1
                self.most_timers = max(self.most_timers, self._sleeping)
                try:
                    with anyio.CancelScope() as self._timer:
                        await self.clock.sleep(wait)
                finally:
                    self._sleeping -= 1
                    self._timer = None
        finally:
            self._timer = None
            self.driving = False
            for follow in self._follows:
                if follow is not target:
                    follow.wake()


def _whole(answer: object) -> Hashable:
    return answer


def _ignore_trouble(trouble: PollTrouble, wait_s: float) -> None:
    pass


_shared: dict[str, AdaptivePoller] = {}


def process_poller() -> AdaptivePoller:
    """The poller of this process, made on first use."""
    if "poller" not in _shared:
        _shared["poller"] = AdaptivePoller()
    return _shared["poller"]
