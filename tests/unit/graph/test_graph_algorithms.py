"""The graph's own algorithms (waves, reachability, cycles) against brute-force references.

docklock.graph does its topological generations, reachability and strongly connected
components itself (no graph library on the import path, house rule 12); here random
dependsOn graphs are checked against definitions computed the slow, obvious way:
transitive closure by Floyd-Warshall, waves as longest-path levels, components as
classes of mutual reachability, shortest cycles from the distance matrix.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docklock.errors import GraphError
from docklock.graph import analyse, build_graph
from docklock.model import Address, Resource

INF = 10**9


def svc(name: str, deps: list[str]) -> Resource:
    spec: dict[str, Any] = {"image": "busybox", "dependsOn": [{"name": d} for d in deps]}
    return Resource.from_dict({"kind": "Service", "metadata": {"name": name}, "spec": spec})


def name(i: int) -> str:
    return f"s{i:02d}"


def addr(i: int) -> Address:
    return Address("Service", "default", name(i))


@st.composite
def dep_graphs(draw: st.DrawFn, acyclic: bool) -> dict[int, set[int]]:
    n = draw(st.integers(min_value=1, max_value=9))
    deps: dict[int, set[int]] = {}
    for i in range(n):
        pool = list(range(i)) if acyclic else list(range(n))
        deps[i] = set(draw(st.lists(st.sampled_from(pool), max_size=3))) if pool else set()
    return deps


def distances(deps: dict[int, set[int]]) -> list[list[int]]:
    """dist[a][b]: fewest dependsOn hops from a to b (a depends on ... on b); INF if none."""
    n = len(deps)
    dist = [[INF] * n for _ in range(n)]
    for a, targets in deps.items():
        for b in targets:
            dist[a][b] = 1
    for k in range(n):
        for a in range(n):
            for b in range(n):
                if dist[a][k] + dist[k][b] < dist[a][b]:
                    dist[a][b] = dist[a][k] + dist[k][b]
    return dist


@settings(max_examples=150, deadline=None)
@given(dep_graphs(acyclic=True))
def test_waves_and_reachability_match_the_definitions(deps: dict[int, set[int]]) -> None:
    g = build_graph([svc(name(i), [name(d) for d in sorted(ds)]) for i, ds in deps.items()])
    dist = distances(deps)
    level: dict[int, int] = {}
    for i in sorted(deps):  # acyclic by construction: dependencies have smaller numbers
        level[i] = 1 + max((level[d] for d in deps[i]), default=-1)
    expected = [[addr(i) for i in sorted(deps) if level[i] == w]
                for w in range(max(level.values()) + 1)]
    assert g.waves() == expected
    for i, direct in deps.items():
        assert g.dependencies_of(addr(i)) == sorted(map(addr, direct), key=str)
        assert g.dependencies_of(addr(i), transitive=True) == [
            addr(j) for j in sorted(deps) if dist[i][j] < INF]
        assert g.dependents_of(addr(i), transitive=True) == [
            addr(j) for j in sorted(deps) if dist[j][i] < INF]
    assert g.cycles() == []


@settings(max_examples=150, deadline=None)
@given(dep_graphs(acyclic=False))
def test_cycles_one_shortest_per_component(deps: dict[int, set[int]]) -> None:
    resources = [svc(name(i), [name(d) for d in sorted(ds)]) for i, ds in deps.items()]
    _g, cycles, dangling = analyse(resources)
    assert dangling == []
    dist = distances(deps)
    cyclic = [i for i in deps if dist[i][i] < INF]
    components = {frozenset(j for j in cyclic if dist[i][j] < INF and dist[j][i] < INF)
                  for i in cyclic}
    assert len(cycles) == len(components)
    starts = sorted(min(c) for c in components)
    assert [c[0] for c in cycles] == [addr(s) for s in starts]
    for cycle, start in zip(cycles, starts, strict=True):
        ids = [int(a.name[1:]) for a in cycle]
        assert ids[0] == ids[-1] == start
        for a, b in itertools.pairwise(ids):
            assert b in deps[a], f"{a} does not depend on {b}"
        assert len(ids) - 1 == dist[start][start]  # the shortest cycle through start
    if cycles:
        with pytest.raises(GraphError, match="dependency cycle"):
            build_graph(resources)
    else:
        assert sum(len(w) for w in build_graph(resources).waves()) == len(deps)


def test_deep_chain_needs_no_recursion() -> None:
    n = 3000  # deeper than Python's default recursion limit
    chain = [svc(f"c{i:04d}", [f"c{i - 1:04d}"] if i else []) for i in range(n)]
    g = build_graph(chain)
    assert len(g.waves()) == n
    ring = [svc(f"c{i:04d}", [f"c{(i - 1) % n:04d}"]) for i in range(n)]
    _g, cycles, _d = analyse(ring)
    assert len(cycles) == 1
    assert len(cycles[0]) == n + 1
