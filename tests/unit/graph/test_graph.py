"""The dependency graph: edges, waves, order, cycles and the three renderers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docklock.errors import GraphError
from docklock.graph import analyse, build_graph, format_cycle
from docklock.model import Address, Resource


def res(kind: str, name: str, ns: str = "default", **spec: Any) -> Resource:
    return Resource.from_dict({"kind": kind, "metadata": {"name": name, "namespace": ns},
                               "spec": spec})


def svc(name: str, *deps: str, **spec: Any) -> Resource:
    spec.setdefault("image", "busybox")
    return res("Service", name, dependsOn=[{"name": d} for d in deps], **spec)


def a(text: str) -> Address:
    return Address.parse(text)


STACK = [
    svc("web", "api", networks=["backend"], image="localhost/web:1", cage="tight"),
    svc("api", "db", volumes=[{"name": "data", "path": "/d"}]),
    svc("db"),
    res("Job", "migrate", image="busybox",
        dependsOn=[{"name": "db", "condition": "started"}]),
    res("Network", "backend"),
    res("Volume", "data"),
    res("Image", "web-image", ref="localhost/web:1", context="web"),
    res("CageProfile", "tight"),
    res("Policy", "p", rules=[]),
]


def test_edges_point_from_dependency_to_dependent() -> None:
    g = build_graph(STACK)
    assert g.dependencies_of(a("web")) == [
        a("CageProfile/tight"), a("Image/web-image"), a("Network/backend"), a("api")]
    assert g.dependents_of(a("db")) == [a("Job/migrate"), a("api")]
    assert g.dependencies_of(a("web"), transitive=True) == [
        a("CageProfile/tight"), a("Image/web-image"), a("Network/backend"), a("api"),
        a("db"), a("Volume/data")]
    assert g.dependents_of(a("Volume/data"), transitive=True) == [a("api"), a("web")]
    assert a("Policy/p") not in g


def test_waves_and_order_are_topological_and_sorted() -> None:
    g = build_graph(STACK)
    assert g.waves() == [
        [a("CageProfile/tight"), a("Image/web-image"), a("Network/backend"), a("db"),
         a("Volume/data")],
        [a("Job/migrate"), a("api")],
        [a("web")],
    ]
    assert g.order() == [x for wave in g.waves() for x in wave]
    position = {x: i for i, x in enumerate(g.order())}
    for e in g.edges():
        assert position[e.dependency] < position[e.dependent]


def test_image_by_name_and_namespaces() -> None:
    g = build_graph([svc("web", image="builder", ns="prod"),
                     res("Image", "builder", "prod", ref="localhost/b:1", context="b"),
                     svc("other", image="builder")])
    assert g.dependencies_of(a("Service/prod/web")) == [a("Image/prod/builder")]
    assert g.dependencies_of(a("other")) == []  # the Image lives in another namespace


def test_cycle_is_printed_in_depends_on_order() -> None:
    with pytest.raises(GraphError) as info:
        build_graph([svc("a", "b"), svc("b", "c"), svc("c", "a"), svc("d", "a")])
    assert info.value.message == ("dependency cycle: Service/default/a -> Service/default/b "
                                  "-> Service/default/c -> Service/default/a")


def test_every_cycle_is_found() -> None:
    _g, cycles, _d = analyse([svc("a", "b"), svc("b", "a"), svc("x", "x"), svc("ok")])
    assert [format_cycle(c) for c in cycles] == [
        "Service/default/a -> Service/default/b -> Service/default/a",
        "Service/default/x -> Service/default/x"]


def test_dangling_reference() -> None:
    with pytest.raises(GraphError) as info:
        build_graph([svc("a", "ghost")])
    assert "Service/default/ghost" in info.value.message
    g = build_graph([svc("a", "ghost")], strict=False)
    assert g.nodes == [a("a")]


def test_job_dependency_kind() -> None:
    g = build_graph([res("Service", "web", image="x",
                         dependsOn=[{"name": "seed", "kind": "Job", "condition": "completed"}]),
                     res("Job", "seed", image="x")])
    (edge,) = g.edges()
    assert (edge.dependency, edge.dependent, edge.reason, edge.condition) == (
        a("Job/seed"), a("web"), "dependsOn", "completed")


def test_renderers() -> None:
    g = build_graph([svc("web", "api"), svc("api", "db"), svc("db")])
    data = g.to_json()
    assert json.loads(g.to_json_text()) == data
    assert data["waves"] == [["Service/default/db"], ["Service/default/api"],
                             ["Service/default/web"]]
    assert {"from": "Service/default/db", "to": "Service/default/api", "reason": "dependsOn",
            "condition": "started"} in data["edges"]
    assert data["nodes"][0] == {"address": "Service/default/api", "kind": "Service",
                                "namespace": "default", "name": "api", "wave": 1}
    dot = g.to_dot()
    assert dot.startswith("digraph docklock {")
    assert '"Service/default/db" -> "Service/default/api" [label="dependsOn (started)"];' in dot
    mermaid = g.to_mermaid()
    assert mermaid.splitlines()[0] == "flowchart LR"
    assert "  n1 -->|dependsOn started| n0" in mermaid  # db (n1) before api (n0)


def test_unknown_address_is_an_error() -> None:
    with pytest.raises(GraphError):
        build_graph(STACK).dependencies_of(a("nope"))
