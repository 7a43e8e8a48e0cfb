"""A deterministic topological order shared by the plan (change order) and apply (steps).

Kahn's algorithm with a heap: among the nodes that are ready, the one with the smallest
sort key goes first, so the same input always gives the same order. Nodes left over —
on a cycle, behind one, or waiting for a node that is not in the input — are returned
separately, sorted by key, and each caller decides what a leftover means.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

N = TypeVar("N", bound=Hashable)


def stable_toposort(deps: Mapping[N, Sequence[N]],
                    sort_key: Callable[[N], Any]) -> tuple[list[N], list[N]]:
    """(order, leftover) for `deps` (node → the nodes it waits for)."""
    indegree: dict[N, int] = dict.fromkeys(deps, 0)
    dependents: dict[N, list[N]] = {}
    for node, waits in deps.items():
        for dep in waits:
            indegree[node] += 1
            dependents.setdefault(dep, []).append(node)
    heap = [(sort_key(n), i, n) for i, n in enumerate(deps) if indegree[n] == 0]
    heapq.heapify(heap)
    position = {n: i for i, n in enumerate(deps)}
    order: list[N] = []
    while heap:
        _, _, node = heapq.heappop(heap)
        order.append(node)
        for nxt in dependents.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, (sort_key(nxt), position[nxt], nxt))
    leftover = sorted((n for n, d in indegree.items() if d > 0), key=sort_key)
    return order, leftover
