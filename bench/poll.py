"""Following Cloud Agents: requests per agent and how late their end is noticed, adaptive vs fixed polling.

For agents lasting about 10 s, 1 min and 10 min, the benchmark launches N agents (default 20) on the
fake Cloud Agents API of the tests (tests/agents/fake_cursor_cloud.py, real HTTP on 127.0.0.1) and
follows them until they end with treeflow's own poller and API client, under three policies:

- `adaptive`: treeflow's (1 s, 1.5 times longer after each unchanged answer up to 30 s, ±10 % jitter, back to
  1 s when the status changes);
- `fixed 1s` and `fixed 5s`: the same poller with a constant interval and no jitter.

Time is virtual: the fake server and the poller share a clock that moves only when the poller's one
timer sleeps, so a 10-minute agent takes milliseconds of waiting and the figures do not depend on
the machine's load. Each agent's life is drawn from a seeded generator: its length within ±10 % of
the nominal one (so that fixed intervals do not line up with it), of which the first 1 to 5 s are
CREATING and the rest RUNNING, then FINISHED. "Requests" counts the status polls of one agent (its
launch not included); "delay" is the virtual time from its FINISHED to the poll that saw it.

    .venv/bin/python bench/poll.py [--agents 20] [--seed 1]

Exits 0 when the goal is met, 1 when it is not. The goal: for agents of 1 min and longer, adaptive
polling makes fewer requests per agent than fixed 5 s polling (median), with a median delay under
10 % of the agent's length.

The goal cannot be met at 1 min by the schedule it prescribes itself, and the benchmark says why,
from the policy alone (its waits without jitter, as `PollSchedule` makes them):

- the delay floor: an agent's end falls somewhere within the wait in effect at that moment, so the
  median delay of agents ending then is about half that wait. An agent's last change before it
  ends is its start running, seen by one of the first polls (the CREATING phase lasts 1 to 5 s), so
  when an agent of length L ends the schedule has been growing since then; the floor is half the
  shortest wait that can be in effect at that moment (any such start, any one jitter for every wait);
- the request floor: schedules that start at 1 s and grow 1.5 times per unchanged answer differ
  only in their cap. The same agents are followed (in a model of the poller without HTTP) under
  every cap from 1 s to 30 s; of the caps whose median delay is under 10 %, the one needing the
  fewest requests is printed beside fixed 5 s polling in the same model.

If the floor is 10 % or more, or the fewest requests are not fewer than fixed 5 s polling's, no
agent follower using the prescribed start and growth can meet the goal at that length: the goal is
blocked by the prescribed schedule, not by the poller.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import anyio

from _common import percentile, print_header

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.agents.fake_cursor_cloud import VALID_KEY, FakeCursorCloud, Script, serving

from treeflow.core.cloud.cursor_api import ApiUnavailable, CloudAgent, CursorCloudApi
from treeflow.core.cloud.poller import AdaptivePoller, PollPolicy, PollSchedule, PollTrouble, VirtualClock

DURATIONS_S = (10.0, 60.0, 600.0)
POLICIES = {
    "adaptive": PollPolicy(),
    "fixed 1s": PollPolicy(start_s=1.0, factor=1.0, cap_s=1.0, jitter=0.0),
    "fixed 5s": PollPolicy(start_s=5.0, factor=1.0, cap_s=5.0, jitter=0.0),
}
GOAL_FROM_S = 60.0
GOAL_DELAY_FRACTION = 0.10
CREATING_S = (1.0, 5.0)  # how long each agent is CREATING before it runs, drawn in this range
CAPS_S = [cap / 2 for cap in range(2, 61)]  # the caps the request floor tries: 1 s to 30 s


@dataclass(frozen=True)
class Figures:
    requests: list[int]
    delays_s: list[float]


async def follow_agents(
    fake: FakeCursorCloud, clock: VirtualClock, policy: PollPolicy, lives: list[Script]
) -> Figures:
    poller = AdaptivePoller(policy, clock, random.Random(0))
    api = CursorCloudApi(VALID_KEY, fake.url)
    requests: list[int] = []
    delays: list[float] = []

    all_followed = anyio.Event()
    following_now = [0]

    async def follow(agent: CloudAgent, ends_at: float) -> None:
        noticed: list[float] = []

        async def fetch() -> CloudAgent:
            try:
                answer = await api.agent(agent.id)
            except ApiUnavailable as exc:
                raise PollTrouble(exc.reason, exc.retry_after_s) from None
            if answer.status == "FINISHED" and not noticed:
                noticed.append(clock.now())  # the poll's own time: the clock moves on for the others
            return answer

        async with poller.follow(fetch, agent, key=lambda answer: answer.status) as following:
            # Virtual time would run ahead while the other followers are still being set up.
            following_now[0] += 1
            if following_now[0] == len(lives):
                all_followed.set()
            await all_followed.wait()
            current = agent
            while current.status != "FINISHED":
                current = await following.next_change()
            requests.append(following.polls)
        delays.append(noticed[0] - ends_at)

    launched = []
    for life in lives:  # one at a time: each launch takes the script the server holds
        fake.script = life
        agent = await api.launch("bench", repository="bench", ref="main", branch="bench", model=None)
        launched.append((agent, fake.agents[agent.id].launched_at + life.creating_s + life.running_s))
    async with anyio.create_task_group() as group:
        for agent, ends_at in launched:
            group.start_soon(follow, agent, ends_at)
    return Figures(requests, delays)


def lives_of(duration_s: float, agents: int, seed: int) -> list[Script]:
    rng = random.Random(seed)
    lives = []
    for _ in range(agents):
        length = duration_s * rng.uniform(0.9, 1.1)
        creating = min(rng.uniform(*CREATING_S), length / 2)
        lives.append(Script(creating_s=creating, running_s=length - creating, push=False))
    return lives


def waits(policy: PollPolicy) -> Iterator[tuple[float, float]]:
    """Each wait of the schedule after a change, without jitter: (when it starts, how long it is)."""
    schedule = PollSchedule(replace(policy, jitter=0.0, scale=1.0), random.Random(0))
    start, wait = 0.0, schedule.first()
    while True:
        yield start, wait
        start += wait
        wait = schedule.answered(changed=False)


def wait_in_effect(policy: PollPolicy, elapsed_s: float) -> float:
    """The wait the schedule is in, ``elapsed_s`` after a change that was followed by no other."""
    for start, wait in waits(policy):
        if start + wait > elapsed_s:
            return wait
    raise AssertionError("unreachable: the schedule never ends")


def delay_floor(policy: PollPolicy, length_s: float) -> float:
    """Half the shortest wait that can be in effect when an agent of ``length_s`` ends.

    Its last change (it runs) is seen by one of the launch schedule's polls within the CREATING
    phase; every wait may be stretched by one factor within the jitter, which shifts the moments
    the waits change."""
    latest_start = next(start + wait for start, wait in waits(policy) if start + wait >= CREATING_S[1])
    steps = 40
    shortest = min(
        stretch * wait_in_effect(policy, max(0.0, length_s - seen) / stretch)
        for seen in (CREATING_S[0] + (latest_start - CREATING_S[0]) * i / steps for i in range(steps + 1))
        for stretch in (1 - policy.jitter + 2 * policy.jitter * i / steps for i in range(steps + 1))
    )
    return shortest / 2


def modelled(policy: PollPolicy, lives: list[Script], seed: int) -> Figures:
    """The poller's schedule for each agent, without HTTP: requests and delays as `follow_agents`
    measures them, fast enough to try many policies."""
    rng = random.Random(seed)
    requests, delays = [], []
    for life in lives:
        schedule = PollSchedule(policy, rng)
        ends_at = life.creating_s + life.running_s
        now, seen, polls = schedule.first(), "CREATING", 0
        while True:
            polls += 1
            status = "CREATING" if now < life.creating_s else "RUNNING" if now < ends_at else "FINISHED"
            if status == "FINISHED":
                break
            now += schedule.answered(status != seen)
            seen = status
        requests.append(polls)
        delays.append(now - ends_at)
    return Figures(requests, delays)


@dataclass(frozen=True)
class Floor:
    delay_s: float  # the smallest median delay the prescribed schedule allows
    fewest_requests: float | None  # fewest median requests with a median delay under the goal
    fewest_cap_s: float | None  # the cap that needs them
    fixed_5s_requests: float  # fixed 5 s polling in the same model

    def obstacles(self, length_s: float) -> list[str]:
        """Why no follower keeping to the prescribed schedule meets the goal at ``length_s``, if so."""
        found = []
        if self.delay_s >= GOAL_DELAY_FRACTION * length_s:
            found.append(
                f"its waits allow no median delay under {self.delay_s / length_s:.1%} "
                f"(goal: under {GOAL_DELAY_FRACTION:.0%})"
            )
        if self.fewest_requests is None:
            found.append(f"no cap gets the median delay under {GOAL_DELAY_FRACTION:.0%}")
        elif self.fewest_requests >= self.fixed_5s_requests:
            found.append(
                f"with any cap, a median delay under {GOAL_DELAY_FRACTION:.0%} takes "
                f"{self.fewest_requests:g} requests, not fewer than fixed 5 s polling's "
                f"{self.fixed_5s_requests:g}"
            )
        return found


def floor_of(policy: PollPolicy, length_s: float, lives: list[Script], seed: int) -> Floor:
    fewest: tuple[float, float] | None = None
    for cap in CAPS_S:
        figures = modelled(replace(policy, cap_s=cap), lives, seed)
        if statistics.median(figures.delays_s) < GOAL_DELAY_FRACTION * length_s:
            requests = statistics.median(figures.requests)
            if fewest is None or requests < fewest[0]:
                fewest = (requests, cap)
    fixed_5 = statistics.median(modelled(POLICIES["fixed 5s"], lives, seed).requests)
    return Floor(
        delay_s=delay_floor(policy, length_s),
        fewest_requests=fewest[0] if fewest else None,
        fewest_cap_s=fewest[1] if fewest else None,
        fixed_5s_requests=fixed_5,
    )


async def measure(agents: int, seed: int) -> dict[tuple[float, str], Figures]:
    results = {}
    for duration in DURATIONS_S:
        for name, policy in POLICIES.items():
            clock = VirtualClock()
            with serving(FakeCursorCloud(clock=clock.now)) as fake:
                results[duration, name] = await follow_agents(
                    fake, clock, policy, lives_of(duration, agents, seed)
                )
    return results


def label(duration_s: float) -> str:
    return f"{duration_s:g} s" if duration_s < 60 else f"{duration_s / 60:g} min"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    print_header(
        "poll: following Cloud Agents",
        [f"agents   : {options.agents} per case", f"seed     : {options.seed}"],
    )
    results = anyio.run(measure, options.agents, options.seed)
    print(
        f"{'agents':>8}  {'policy':<9} {'requests':>9} {'delay median':>13} {'delay p95':>10}"
        f" {'median/length':>14}"
    )
    for (duration, name), figures in results.items():
        median_delay = statistics.median(figures.delays_s)
        print(
            f"{label(duration):>8}  {name:<9} {statistics.median(figures.requests):>9g} "
            f"{median_delay:>12.1f}s {percentile(figures.delays_s, 0.95):>9.1f}s "
            f"{median_delay / duration:>13.1%}"
        )
    failures = []
    for duration in DURATIONS_S:
        if duration < GOAL_FROM_S:
            continue
        adaptive, fixed_5 = results[duration, "adaptive"], results[duration, "fixed 5s"]
        requests, baseline = statistics.median(adaptive.requests), statistics.median(fixed_5.requests)
        delay = statistics.median(adaptive.delays_s)
        if requests >= baseline:
            failures.append(
                f"{label(duration)}: {requests:g} requests per agent, not fewer than fixed 5 s ({baseline:g})"
            )
        if delay >= GOAL_DELAY_FRACTION * duration:
            failures.append(
                f"{label(duration)}: median delay {delay:.1f} s, "
                f"not under {GOAL_DELAY_FRACTION:.0%} of {label(duration)}"
            )
    print()
    adaptive = POLICIES["adaptive"]
    print(
        f"floor of the prescribed schedule ({adaptive.start_s:g} s, x{adaptive.factor:g} per unchanged "
        f"answer, cap {adaptive.cap_s:g} s, ±{adaptive.jitter:.0%}):"
    )
    blocked = []
    for duration in DURATIONS_S:
        if duration < GOAL_FROM_S:
            continue
        floor = floor_of(adaptive, duration, lives_of(duration, options.agents, options.seed), options.seed)
        fewest = (
            f"{floor.fewest_requests:g} requests (cap {floor.fewest_cap_s:g} s)"
            if floor.fewest_requests is not None
            else "no cap from 1 to 30 s gets there"
        )
        print(
            f"  {label(duration)}: median delay at least {floor.delay_s:.1f} s "
            f"({floor.delay_s / duration:.1%}); a median delay under {GOAL_DELAY_FRACTION:.0%} with a "
            f"{adaptive.start_s:g} s start and x{adaptive.factor:g} growth takes at least {fewest}, "
            f"fixed 5 s {floor.fixed_5s_requests:g}"
        )
        blocked += [f"{label(duration)}: {obstacle}" for obstacle in floor.obstacles(duration)]
    print()
    if failures:
        print("goal not met:")
        for failure in failures:
            print(f"  - {failure}")
        if blocked:
            print("the goal is blocked by the polling schedule it prescribes itself:")
            for obstacle in blocked:
                print(f"  - {obstacle}")
        return 1
    print(
        "goal met: for agents of 1 min and longer, fewer requests than fixed 5 s "
        "and a median delay under 10 %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
