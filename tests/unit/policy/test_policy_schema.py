"""schemas/policy.schema.json: a full, described, closed Draft 2020-12 document schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing import Resource as SchemaResource
from ruamel.yaml import YAML

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"
PACKS = Path(__file__).resolve().parents[3] / "docklock" / "policy" / "packs"
POLICY = json.loads((SCHEMAS / "policy.schema.json").read_text())


def validator() -> Draft202012Validator:
    registry: Registry = Registry()
    for path in SCHEMAS.glob("*.schema.json"):
        doc = json.loads(path.read_text())
        registry = registry.with_resource(doc["$id"], SchemaResource.from_contents(doc))
    return Draft202012Validator(POLICY, registry=registry)


def _subschemas(node: Any, at: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    for key in ("properties", "$defs"):
        for name, sub in node.get(key, {}).items():
            yield f"{at}.{key}.{name}", sub
            yield from _subschemas(sub, f"{at}.{key}.{name}")
    for key in ("items", "additionalProperties"):
        sub = node.get(key)
        if isinstance(sub, dict):
            yield f"{at}.{key}", sub
            yield from _subschemas(sub, f"{at}.{key}")


def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(POLICY)
    assert POLICY["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert POLICY["$id"].endswith("/policy.schema.json")
    assert POLICY["properties"]["kind"]["const"] == "Policy"


def test_every_field_has_a_description() -> None:
    missing = [path for path, sub in _subschemas(POLICY, "$") if "description" not in sub]
    assert missing == []


def test_objects_are_closed() -> None:
    for path, sub in [("$", POLICY), *_subschemas(POLICY, "$")]:
        if sub.get("type") == "object" and "properties" in sub:
            assert sub.get("additionalProperties") is False, path


def test_builtin_baseline_pack_is_a_valid_policy_document() -> None:
    doc = YAML(typ="safe", pure=True).load((PACKS / "baseline.yaml").read_text())
    assert list(validator().iter_errors(doc)) == []


MINIMAL: dict[str, Any] = {"apiVersion": "docklock.io/v1", "kind": "Policy",
                           "metadata": {"name": "p"},
                           "spec": {"rules": [{"id": "r", "match": {"kinds": ["Service"]},
                                               "assert": {}}]}}


@pytest.mark.parametrize(("patch", "fragment"), [
    ({"extra": 1}, "Additional properties are not allowed"),
    ({"kind": "Service"}, "'Policy' was expected"),
    ({"metadata": {"name": "p", "owner": "x"}}, "Additional properties are not allowed"),
    ({"metadata": {"name": "Bad_Name"}}, "does not match"),
    ({"spec": {"rules": []}}, "should be non-empty"),
    ({"spec": {"rules": [{"id": "r", "match": {"kinds": ["Service"]}}]}},
     "'assert' is a required property"),
    ({"spec": {"rules": MINIMAL["spec"]["rules"], "waivers": []}},
     "Additional properties are not allowed"),
    ({"spec": {}}, "should be non-empty"),
    ({"spec": {"exceptions": []}}, "should be non-empty"),
    ({"spec": {"exceptions": [{"address": "web", "reason": "r"}]}},
     "'rule' is a required property"),
    ({"spec": {"exceptions": [{"rule": "r", "address": "web"}]}},
     "'reason' is a required property"),
    ({"spec": {"exceptions": [{"rule": "r", "address": "web", "reason": "x",
                               "owner": "ops"}]}},
     "Additional properties are not allowed"),
    ({"spec": {"exceptions": [{"rule": "r one", "address": "web", "reason": "x"}]}},
     "does not match"),
], ids=["top-level", "kind", "metadata-field", "name", "no-rules", "no-assert", "spec-field",
        "spec-empty", "exceptions-empty", "exception-no-rule", "exception-no-reason",
        "exception-extra-field", "exception-rule-pattern"])
def test_invalid_documents_are_rejected(patch: dict[str, Any], fragment: str) -> None:
    doc = {**MINIMAL, **patch}
    messages = [e.message for e in validator().iter_errors(doc)]
    assert any(fragment in m for m in messages), messages


def test_minimal_document_is_valid() -> None:
    assert list(validator().iter_errors(MINIMAL)) == []


@pytest.mark.parametrize("spec", [
    {"exceptions": [{"rule": "run-as-non-root", "address": "web", "reason": "r"}]},
    {"rules": MINIMAL["spec"]["rules"],
     "exceptions": [{"rule": "r", "address": "Service/*/tmp-*", "reason": "r",
                     "expires": "2030-01-31"}]},
], ids=["exceptions-only", "rules-and-exceptions"])
def test_documents_with_exceptions_are_valid(spec: dict[str, Any]) -> None:
    assert list(validator().iter_errors({**MINIMAL, "spec": spec})) == []
