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
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio

from _common import percentile, print_header

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.agents.fake_cursor_cloud import VALID_KEY, FakeCursorCloud, Script, serving

from treeflow.core.cloud.cursor_api import ApiUnavailable, CloudAgent, CursorCloudApi
from treeflow.core.cloud.poller import AdaptivePoller, PollPolicy, PollTrouble, VirtualClock

DURATIONS_S = (10.0, 60.0, 600.0)
POLICIES = {
    "adaptive": PollPolicy(),
    "fixed 1s": PollPolicy(start_s=1.0, factor=1.0, cap_s=1.0, jitter=0.0),
    "fixed 5s": PollPolicy(start_s=5.0, factor=1.0, cap_s=5.0, jitter=0.0),
}
GOAL_FROM_S = 60.0
GOAL_DELAY_FRACTION = 0.10


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
        creating = min(rng.uniform(1.0, 5.0), length / 2)
        lives.append(Script(creating_s=creating, running_s=length - creating, push=False))
    return lives


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
    if failures:
        print("goal not met:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print(
        "goal met: for agents of 1 min and longer, fewer requests than fixed 5 s "
        "and a median delay under 10 %"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
