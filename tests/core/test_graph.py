"""The needs-graph (cycles, closure, dependents, leaves) and the retry delays of `RetryPolicy`."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence

import pytest

from treeflow.core.graph import closure, dependents, find_cycles, leaves
from treeflow.core.model import RetryPolicy

# find_cycles


def test_acyclic_graph_has_no_cycles() -> None:
    diamond = {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": []}
    assert find_cycles(diamond) == []


def test_simple_cycle_is_a_closed_path_from_its_first_declared_step() -> None:
    needs = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert find_cycles(needs) == [["a", "b", "c", "a"]]


def test_cycle_starts_at_the_first_declared_member_even_if_reached_later() -> None:
    # The walk enters the cycle at `z`, but the report starts where the file does.
    needs = {"entry": ["z"], "b": ["z"], "z": ["b"]}
    assert find_cycles(needs) == [["b", "z", "b"]]


def test_self_loop_is_a_cycle() -> None:
    assert find_cycles({"a": ["a"], "b": ["a"]}) == [["a", "a"]]


def test_two_separate_cycles_are_reported_in_file_order() -> None:
    needs = {
        "x": ["y"],
        "y": ["x"],
        "free": [],
        "a": ["b", "x"],
        "b": ["a"],
    }
    assert find_cycles(needs) == [["x", "y", "x"], ["a", "b", "a"]]


def test_cycle_behind_a_tail_excludes_the_tail() -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["b"]}) == [["b", "c", "b"]]


def test_unknown_ids_are_ignored() -> None:
    assert find_cycles({"a": ["ghost"], "b": ["a", "phantom"]}) == []


def test_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    chain = {f"s{i}": [f"s{i + 1}"] if i < n - 1 else [] for i in range(n)}
    assert find_cycles(chain) == []
    ring = {f"s{i}": [f"s{(i + 1) % n}"] for i in range(n)}
    (cycle,) = find_cycles(ring)
    assert cycle == [*ring, "s0"]


def _reachable(needs: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """Nodes reachable in one or more steps, by brute force (Floyd-Warshall on sets)."""
    reach = {node: {n for n in needs[node] if n in needs} for node in needs}
    for middle in needs:
        for node in needs:
            if middle in reach[node]:
                reach[node] |= reach[middle]
    return reach


def test_one_valid_cycle_per_cyclic_component_on_random_graphs() -> None:
    # Checked against a brute-force definition so that any graph shape, not just the ones above, is covered.
    rng = random.Random(20240601)
    for _ in range(300):
        nodes = [f"n{i}" for i in range(rng.randint(1, 9))]
        needs = {node: [other for other in [*nodes, "ghost"] if rng.random() < 0.2] for node in nodes}
        reach = _reachable(needs)
        component = {node: frozenset({node} | {o for o in reach[node] if node in reach[o]}) for node in nodes}
        cyclic = {component[node] for node in nodes if node in reach[node]}
        order = list(needs)

        cycles = find_cycles(needs)

        assert len(cycles) == len(cyclic), needs
        seen_components = set()
        for cycle in cycles:
            assert cycle[0] == cycle[-1], (needs, cycle)
            assert len(set(cycle[:-1])) == len(cycle) - 1, (needs, cycle)
            for step, need in itertools.pairwise(cycle):
                assert need in needs[step], (needs, cycle)
            members = component[cycle[0]]
            assert set(cycle) <= members
            assert members in cyclic
            seen_components.add(members)
        assert seen_components == cyclic
        assert [order.index(c[0]) for c in cycles] == sorted(order.index(c[0]) for c in cycles)


# closure, dependents, leaves

NEEDS = {
    "lint": [],
    "unit": [],
    "docs": [],
    "build": ["lint", "unit"],
    "package": ["build", "docs"],
    "deploy": ["package", "lint"],
}


def test_closure_of_a_step_is_itself_and_everything_it_needs() -> None:
    assert closure(["build"], NEEDS) == {"build", "lint", "unit"}
    assert closure(["deploy"], NEEDS) == set(NEEDS)


def test_closure_of_several_steps_and_of_none() -> None:
    assert closure(["unit", "docs"], NEEDS) == {"unit", "docs"}
    assert closure(["build", "package"], NEEDS) == {"build", "package", "lint", "unit", "docs"}
    assert closure([], NEEDS) == set()


def test_closure_terminates_on_a_cycle() -> None:
    assert closure(["a"], {"a": ["b"], "b": ["a"], "c": []}) == {"a", "b"}


def test_dependents_are_direct_only_in_file_order() -> None:
    assert dependents(NEEDS) == {
        "lint": ["build", "deploy"],
        "unit": ["build"],
        "docs": ["package"],
        "build": ["package"],
        "package": ["deploy"],
        "deploy": [],
    }


def test_leaves_are_the_steps_nothing_needs_in_file_order() -> None:
    assert leaves(NEEDS) == ["deploy"]
    assert leaves({"b": [], "a": [], "c": ["a"]}) == ["b", "c"]
    assert leaves({}) == []


# RetryPolicy.delay_before

DRAWS = 2000


@pytest.mark.parametrize("attempt", [0, 1])
def test_first_attempt_has_no_delay(attempt: int) -> None:
    policy = RetryPolicy(attempts=5, backoff_s=3.0, max_backoff_s=60.0, jitter=0.5)
    assert policy.delay_before(attempt, random.Random(1)) == 0.0


def test_base_doubles_per_attempt_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, backoff_s=1.5, max_backoff_s=20.0, jitter=0.0)
    rng = random.Random(7)
    delays = [policy.delay_before(attempt, rng) for attempt in range(2, 9)]
    assert delays == [1.5, 3.0, 6.0, 12.0, 20.0, 20.0, 20.0]


@pytest.mark.parametrize(
    ("policy", "attempt", "base"),
    [
        (RetryPolicy(attempts=9, backoff_s=1.0, max_backoff_s=30.0, jitter=0.1), 2, 1.0),
        (RetryPolicy(attempts=9, backoff_s=1.0, max_backoff_s=30.0, jitter=0.1), 4, 4.0),
        (RetryPolicy(attempts=9, backoff_s=1.0, max_backoff_s=30.0, jitter=0.1), 9, 30.0),
        (RetryPolicy(attempts=9, backoff_s=0.25, max_backoff_s=5.0, jitter=0.5), 3, 0.5),
        (RetryPolicy(attempts=9, backoff_s=2.0, max_backoff_s=5.0, jitter=0.5), 6, 5.0),
    ],
)
def test_jitter_stays_within_bounds_and_spreads_both_ways(
    policy: RetryPolicy, attempt: int, base: float
) -> None:
    rng = random.Random(12345)
    delays = [policy.delay_before(attempt, rng) for _ in range(DRAWS)]
    low, high = base * (1 - policy.jitter), base * (1 + policy.jitter)
    assert all(low <= delay <= high for delay in delays), (min(delays), max(delays), low, high)
    # Without real spread retries of parallel steps would still fire in lockstep.
    width = high - low
    assert min(delays) < low + 0.05 * width
    assert max(delays) > high - 0.05 * width
    assert sum(delay < base for delay in delays) > DRAWS // 3
    assert sum(delay > base for delay in delays) > DRAWS // 3


def test_full_jitter_never_goes_negative() -> None:
    policy = RetryPolicy(attempts=3, backoff_s=1.0, max_backoff_s=1.0, jitter=1.0)
    rng = random.Random(99)
    delays = [policy.delay_before(2, rng) for _ in range(DRAWS)]
    assert all(0.0 <= delay <= 2.0 for delay in delays)


def test_same_seed_gives_the_same_delays() -> None:
    policy = RetryPolicy(attempts=5, backoff_s=1.0, max_backoff_s=30.0, jitter=0.3)
    first, second = random.Random(42), random.Random(42)
    assert [policy.delay_before(a, first) for a in range(1, 6)] == [
        policy.delay_before(a, second) for a in range(1, 6)
    ]


def test_very_late_attempt_is_capped_not_an_overflow() -> None:
    # Reachable: `retry: 5000` with the default 30 s cap reaches attempt 1026 after about 8.5 hours.
    policy = RetryPolicy(attempts=5000, backoff_s=1.0, max_backoff_s=30.0, jitter=0.0)
    assert policy.delay_before(1026, random.Random(1)) == 30.0
