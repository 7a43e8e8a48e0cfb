"""The shared deterministic topological sort."""

from __future__ import annotations

from docklock._toposort import stable_toposort


def test_dependencies_first_ties_by_key() -> None:
    deps = {"web": ["api"], "api": ["db"], "db": [], "cache": [], "worker": ["db"]}
    order, leftover = stable_toposort(deps, lambda n: n)
    assert order == ["cache", "db", "api", "web", "worker"]
    assert leftover == []


def test_sort_key_decides_among_ready_nodes() -> None:
    order, _ = stable_toposort({"a": [], "b": [], "c": []}, {"a": 3, "b": 1, "c": 2}.get)
    assert order == ["b", "c", "a"]


def test_cycles_and_missing_nodes_are_left_over_sorted() -> None:
    deps = {"a": ["b"], "b": ["a"], "c": [], "d": ["ghost"], "e": ["a"]}
    order, leftover = stable_toposort(deps, lambda n: n)
    assert order == ["c"]
    assert leftover == ["a", "b", "d", "e"]


def test_duplicate_edges_are_counted_and_released_together() -> None:
    order, leftover = stable_toposort({"x": ["y", "y"], "y": []}, lambda n: n)
    assert (order, leftover) == (["y", "x"], [])
