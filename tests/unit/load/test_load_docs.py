"""docs/specs.md is generated from the schemas, and the schemas' defaults are the model's."""

from __future__ import annotations

from typing import Any

import pytest

from docklock.load.docs import DOCS_PATH, render_specs
from docklock.load.schema import load_schemas
from docklock.model import Resource


def test_specs_md_is_up_to_date() -> None:
    assert DOCS_PATH.read_text(encoding="utf-8") == render_specs(), (
        "docs/specs.md is stale: run `doit docs` (or python -m docklock.load.docs)")


def test_docs_cover_every_field_of_every_kind() -> None:
    text = render_specs()
    for needle in ("## Service", "`spec.ports[].hostIp`", "`spec.env.<NAME>`",
                   "`spec.healthcheck.retries`", "## CageProfile", "`spec.securityLevel`",
                   "## Policy", "`spec.rules[].assert`"):
        assert needle in text


MINIMAL: dict[str, dict[str, Any]] = {
    "Service": {"image": "x"}, "Job": {"image": "x"}, "Image": {"ref": "r", "context": "c"},
    "Network": {}, "Volume": {}, "CageProfile": {}, "Cluster": {},
}


def _resolve(node: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node and node["$ref"].startswith("common.schema.json"):
        target = dict(common["$defs"][node["$ref"].rsplit("/", 1)[-1]])
        target.update({k: v for k, v in node.items() if k != "$ref"})
        return target
    return node


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_schema_defaults_are_the_model_defaults(kind: str) -> None:
    schemas = load_schemas()
    common = schemas.documents["common.schema.json"]
    spec_schema = _resolve(schemas.schema(kind)["properties"]["spec"], common)
    resource = Resource.from_dict({"kind": kind, "metadata": {"name": "x"},
                                   "spec": MINIMAL[kind]})
    checked = 0
    for name, raw in spec_schema["properties"].items():
        prop = _resolve(raw, common)
        if "default" not in prop:
            assert name in MINIMAL[kind] or getattr(resource.spec, name) in (None, (), {}), name
            continue
        value = getattr(resource.spec, name)
        plain = value.to_dict() if hasattr(value, "to_dict") else value
        if isinstance(plain, tuple):
            plain = list(plain)
        assert plain == prop["default"] or (plain in ((), [], {}) and prop["default"] in
                                            ([], {})), (kind, name, plain, prop["default"])
        checked += 1
    meta = resource.metadata
    assert meta.namespace == common["$defs"]["metadata"]["properties"]["namespace"]["default"]
    assert checked
