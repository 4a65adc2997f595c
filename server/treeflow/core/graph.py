"""The needs-graph of a workflow: cycles, selections and orderings. Pure and synchronous."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def find_cycles(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each as a closed path ``[a, b, a]``
    starting at the component's first-declared step.

    Edges to ids missing from ``needs`` are ignored: unknown ids are reported separately.
    """
    position = {step_id: i for i, step_id in enumerate(needs)}
    edges = {step_id: [n for n in wanted if n in position] for step_id, wanted in needs.items()}
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []

    # Iterative Tarjan, so that a long chain of steps cannot overflow Python's recursion limit.
    for root in needs:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, edge_pos = work.pop()
            if edge_pos == 0:
                index[node] = lowlink[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if edge_pos < len(edges[node]):
                work.append((node, edge_pos + 1))
                target = edges[node][edge_pos]
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
        if len(component) == 1 and component[0] not in edges[component[0]]:
            continue
        first = min(component, key=position.__getitem__)
        cycles.append(_cycle_through(first, set(component), edges))
    cycles.sort(key=lambda cycle: position[cycle[0]])
    return cycles


def _cycle_through(start: str, members: set[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """A shortest closed path from ``start`` back to itself inside one strongly connected component."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in edges[node]:
                if target not in members:
                    continue
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError("a strongly connected component always has a cycle through each member")


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
