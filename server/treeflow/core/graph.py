"""The needs-graph of a workflow: cycles, selections and orderings. Pure and synchronous."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycles(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each as a closed path ``[a, b, a]``.

    Edges to ids missing from ``needs`` are ignored: unknown ids are reported separately.
    """
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0

    # Iterative Tarjan, so that a long chain of steps cannot overflow Python's recursion limit.
    for root in needs:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, edge_pos = work.pop()
            if edge_pos == 0:
                index[node] = lowlink[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = [n for n in needs[node] if n in needs]
            if edge_pos < len(edges):
                work.append((node, edge_pos + 1))
                target = edges[edge_pos]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    lowlink[node] = min(lowlink[node], index[target])
                continue
            if lowlink[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                lowlink[parent] = min(lowlink[parent], lowlink[node])

    cycles = []
    for component in components:
        members = set(component)
        if len(component) == 1 and component[0] not in needs[component[0]]:
            continue
        cycles.append(_cycle_within(min(component, key=list(needs).index), members, needs))
    cycles.sort(key=lambda cycle: list(needs).index(cycle[0]))
    return cycles


def _cycle_within(start: str, members: set[str], needs: Mapping[str, Sequence[str]]) -> list[str]:
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        node = next(n for n in needs[node] if n in members)
        if node in seen:
            return [*path[seen[node] :], node]
        seen[node] = len(path)
        path.append(node)


def closure(selected: Iterable[str], needs: Mapping[str, Sequence[str]]) -> set[str]:
    """The selected steps and every step they need, directly or not."""
    result: set[str] = set()
    pending = list(selected)
    while pending:
        step_id = pending.pop()
        if step_id in result:
            continue
        result.add(step_id)
        pending.extend(needs[step_id])
    return result


def dependents(needs: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each step, the steps that need it directly."""
    result: dict[str, list[str]] = {step_id: [] for step_id in needs}
    for step_id, wanted in needs.items():
        for need in wanted:
            result[need].append(step_id)
    return result


def leaves(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps no other step needs, in declaration order."""
    needed = {need for wanted in needs.values() for need in wanted}
    return [step_id for step_id in needs if step_id not in needed]
