"""Schema checks: table of invalid documents → message, path and hint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docklock.load.schema import KINDS, format_path, load_schemas, schema_file
from docklock.workspace import package_data

SVC: dict[str, Any] = {"apiVersion": "docklock.io/v1", "kind": "Service",
                       "metadata": {"name": "web"}, "spec": {"image": "x"}}


def svc(**spec: Any) -> dict[str, Any]:
    return {**SVC, "spec": {"image": "x", **spec}}


def test_every_kind_has_a_draft_2020_12_schema_with_descriptions() -> None:
    schemas = load_schemas()
    for kind in KINDS:
        doc = schemas.schema(kind)
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["additionalProperties"] is False
        assert doc["description"]


def _walk(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        if "properties" in node:
            for name, sub in node["properties"].items():
                if "description" not in sub:
                    out.append(f"{path}.{name}")
                _walk(sub, f"{path}.{name}", out)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                _walk(node[key], f"{path}.{key}", out)
        for key in ("$defs", "oneOf"):
            for name, sub in (node.get(key) or {}).items() if key == "$defs" \
                    else enumerate(node.get(key) or []):
                _walk(sub, f"{path}.{key}.{name}", out)


@pytest.mark.parametrize("name", ["common", *[k.lower() for k in KINDS if k != "Policy"]])
def test_every_field_is_described_and_closed(name: str) -> None:
    doc = json.loads((package_data("schemas") / f"{name}.schema.json").read_text())
    missing: list[str] = []
    _walk(doc, name, missing)
    assert missing == []
    text = json.dumps(_without_conditions(doc))
    # every object that lists properties rejects unknown ones (an if/then branch is a
    # condition on an object defined beside it, not an object definition of its own)
    assert text.count('"properties"') == text.count('"additionalProperties": false')


def _without_conditions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_conditions(v) for k, v in node.items()
                if k not in ("if", "then", "else")}
    if isinstance(node, list):
        return [_without_conditions(v) for v in node]
    return node


CASES: list[tuple[str, Any, str, str, str]] = [
    # name, document, path, message, hint fragment
    ("not-mapping", ["a"], "", "a document must be a mapping, not a list", "apiVersion"),
    ("no-kind", {"metadata": {"name": "x"}}, "", "missing required field 'kind'", "Service"),
    ("typo-kind", {**SVC, "kind": "Servce"}, "kind", "unknown kind 'Servce'",
     "did you mean 'Service'?"),
    ("unknown-field", svc(replica=2), "spec.replica", "unknown field 'replica'",
     "did you mean 'replicas'?"),
    ("missing-image", {**SVC, "spec": {}}, "spec", "missing required field 'image'",
     "Image reference"),
    ("wrong-type", svc(replicas="2"), "spec.replicas",
     'expected an integer, got a string "2"', "remove the quotes: 2"),
    # A wrong type always comes with a hint: the field's description when no quick fix.
    ("wrong-type-word", svc(stopTimeout="ten"), "spec.stopTimeout",
     'expected an integer, got a string "ten"', "Seconds to wait after SIGTERM"),
    ("wrong-type-list", svc(networks="x"), "spec.networks",
     'expected a list, got a string "x"', "Names of Network resources"),
    ("float-int", svc(replicas=1.0), "spec.replicas", "expected an integer, got a number 1.0",
     "whole number"),
    ("env-number", svc(env={"PORT": 8080}), "spec.env.PORT", "8080 is not valid here",
     "quote numbers"),
    ("enum", svc(restart="sometimes"), "spec.restart",
     '"sometimes" is not one of: no, on-failure, always, unless-stopped', ""),
    ("pattern", {**SVC, "metadata": {"name": "Web"}}, "metadata.name",
     '"Web" is not valid here', "DNS label"),
    ("trailing-newline", {**SVC, "metadata": {"name": "web\n"}}, "metadata.name",
     '"web\\n" is not valid here', "DNS label"),
    ("minimum", svc(replicas=-1), "spec.replicas", "-1 is less than the minimum of 0", ""),
    ("unique", svc(networks=["a", "a"]), "spec.networks", "the list has duplicate items", ""),
    ("empty", svc(healthcheck={"command": []}), "spec.healthcheck.command",
     "must not be empty", ""),
    ("env-name", svc(env={"1A": "x"}), "spec.env.1A", "invalid name '1A'",
     "Environment variable name"),
    ("nested-item", svc(ports=[{"container": 80}, {"container": 0}]),
     "spec.ports[1].container", "0 is less than the minimum of 1", ""),
    ("quote-hint", svc(user=65534), "spec.user", "expected a string, got an integer 65534",
     'quote it: "65534"'),
]


@pytest.mark.parametrize(("doc", "path", "message", "hint"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_messages(doc: Any, path: str, message: str, hint: str) -> None:
    problems = load_schemas().check(doc)
    found = [(format_path(p.path), p.message, p.hint) for p in problems]
    assert any(fp == path and m.startswith(message) and hint in h for fp, m, h in found), found


def test_all_problems_of_a_document_are_reported() -> None:
    problems = load_schemas().check(svc(replicas=-1, bogus=1, restart="x"))
    assert sorted(format_path(p.path) for p in problems) == [
        "spec.bogus", "spec.replicas", "spec.restart"]


def test_valid_documents_have_no_problems() -> None:
    assert load_schemas().check(svc(replicas=3, env={"A": "1", "B": {"value": "2",
                                                                      "sensitive": True}})) == []


def test_schemas_are_compiled_once_per_process() -> None:
    assert load_schemas() is load_schemas()


def test_schema_files_are_named_after_their_kind() -> None:
    assert schema_file("CageProfile") == "cageprofile.schema.json"
