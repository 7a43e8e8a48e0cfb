"""The compiled predicate must judge every document exactly as jsonschema does."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docklock.load._fastschema import ecma_pattern, json_equal, unique
from docklock.load.schema import KINDS, load_schemas

SEEDS: dict[str, dict[str, Any]] = {
    "Service": {"kind": "Service", "metadata": {"name": "web", "labels": {"a": "b"}},
                "spec": {"image": "x", "replicas": 2, "ports": [{"container": 80, "host": 8080}],
                         "env": {"A": "1", "B": {"value": "s", "sensitive": True}},
                         "capAdd": ["NET_ADMIN", {"name": "CHOWN"}], "networks": ["n"],
                         "volumes": [{"name": "v", "path": "/d"}],
                         "healthcheck": {"command": ["true"], "interval": "2s"},
                         "resources": {"cpus": 0.5, "memory": "64Mi", "pids": 9},
                         "dependsOn": [{"name": "api", "condition": "healthy"}]}},
    "Job": {"kind": "Job", "metadata": {"name": "j"},
            "spec": {"image": "x", "seed": 3, "inputs": [{"path": "a", "mount": "/a"}],
                     "outputs": "/out"}},
    "Image": {"kind": "Image", "metadata": {"name": "i"},
              "spec": {"ref": "r", "context": "c", "buildArgs": {"A": "1"}}},
    "Network": {"kind": "Network", "metadata": {"name": "n"}, "spec": {"subnet": "10.0.0.0/8"}},
    "Volume": {"kind": "Volume", "metadata": {"name": "v"}},
    "CageProfile": {"kind": "CageProfile", "metadata": {"name": "c"},
                    "spec": {"extends": "standard", "denySyscalls": ["ptrace"]}},
    "Cluster": {"kind": "Cluster", "metadata": {"name": "c"},
                "spec": {"specs": ["specs"], "nodes": [{"name": "a", "url": "unix:///x"}],
                         "backend": {"type": "postgres", "connectionEnv": "DOCKLOCK_PG"}}},
    "Policy": {"apiVersion": "docklock.io/v1", "kind": "Policy", "metadata": {"name": "p"},
               "spec": {"rules": [{"id": "r", "match": {"kinds": ["Service"]},
                                   "assert": {"type": "object"},
                                   "exceptions": [{"address": "a", "reason": "r",
                                                   "expires": "2030-01-01"}]}]}},
}

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70000), st.floats(-2, 2, allow_nan=False),
    st.sampled_from(["", "x", "web", "Web", "web\n", "/abs", "rel", "64Mi", "2s", "no",
                     "tcp", "0.0.0.0", "a b", "healthy", "Service", "hardened", "CAP_X"]),
    st.lists(st.sampled_from(["a", "a", "/b", "X"]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "value", "1x", "path"]),
                    st.sampled_from(["a", "/p", 1]), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        if action == "replace":
            parent[path[-1]] = draw(VALUES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["extra", "name", "image", "A"]))] = \
                draw(VALUES)
    return doc


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated())
def test_compiled_predicate_agrees_with_jsonschema(doc: Any) -> None:
    schemas = load_schemas()
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in KINDS:
        return
    entry = schemas.kinds[kind]
    assert entry.predicate(doc) == entry.validator.is_valid(doc)


def test_if_then_is_compiled_not_left_to_jsonschema() -> None:
    # spec.backend: `type: postgres` requires connectionEnv (an if/then in the schema).
    entry = load_schemas().kinds["Cluster"]
    base = copy.deepcopy(SEEDS["Cluster"])
    for backend, valid in (({"type": "postgres", "connectionEnv": "X"}, True),
                           ({"type": "postgres"}, False), ({"type": "local"}, True),
                           ({}, True), ({"connectionEnv": "X"}, True)):
        base["spec"]["backend"] = backend
        assert entry.predicate(base) is valid, backend
        assert entry.validator.is_valid(base) is valid, backend
    assert "lambda" not in repr(entry.predicate)  # compiled, not the jsonschema fallback


def test_seeds_are_valid() -> None:
    for doc in SEEDS.values():
        assert load_schemas().check(doc) == []


def test_ecma_dollar_means_end_of_text() -> None:
    assert ecma_pattern("^a$") == r"^a\Z"
    assert ecma_pattern(r"^[$]\$$") == r"^[$]\$\Z"


def test_json_equality_distinguishes_booleans_from_numbers() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert unique([1, True, "1"])
    assert not unique([{"a": [1]}, {"a": [1.0]}])
