"""docs/specs.md, the reference of every kind, generated from the JSON Schemas' descriptions.

`render_specs()` returns the Markdown; `write_docs()` writes it (the `docs` task in
dodo.py calls it); tests/unit/load/test_load_docs.py fails when the file is stale. Each
kind gets its description and one table row per field (nested fields as dotted paths,
list items as `[]`, map entries as `<NAME>`), with type, constraints, default and
description.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docklock.load.schema import SchemaSet, load_schemas, schema_file
from docklock.model import Kind

ORDER = (Kind.CLUSTER, Kind.SERVICE, Kind.JOB, Kind.IMAGE, Kind.NETWORK, Kind.VOLUME,
         Kind.CAGE_PROFILE, Kind.POLICY)
DOCS_PATH = Path(__file__).resolve().parent.parent.parent / "docs" / "specs.md"

HEADER = """# Spec reference

<!-- Generated from schemas/*.schema.json by `doit docs` (docklock.load.docs).
     Do not edit by hand: a test fails when this file is out of date. -->

Every document has the same envelope: `apiVersion: docklock.io/v1`, `kind`, `metadata`
(`name`, `namespace` — default `default` —, `labels`, `annotations`) and `spec`. A
resource's address is `Kind/namespace/name`, e.g. `Service/default/web`. Documents live
in YAML files (many per file, separated by `---`) or in CUE agreements (`*.cue`, a
top-level `resources` list or map checked against schemas/docklock.cue). Unknown fields
are errors. Check a workspace with `docklock validate`.

Kinds: {kinds}.
"""

Schema = Mapping[str, Any]


class _Resolver:
    def __init__(self, schemas: SchemaSet) -> None:
        self.docs = schemas.documents

    def resolve(self, node: Schema, doc: Schema) -> tuple[Schema, Schema]:
        """Follow `$ref`s (merging the referring node's own keywords over the target)."""
        seen = 0
        while "$ref" in node and seen < 20:
            seen += 1
            ref = str(node["$ref"])
            file, _, pointer = ref.partition("#")
            if file:
                doc = self.docs[file.rsplit("/", 1)[-1]]
            target: Any = doc
            for part in filter(None, pointer.split("/")):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            merged = dict(target)
            merged.update({k: v for k, v in node.items() if k != "$ref"})
            node = merged
        return node, doc


def _md(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _type(node: Schema) -> str:
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    types = node.get("type")
    text: str
    if isinstance(types, list):
        text = " or ".join(types)
    elif types:
        text = {"object": "mapping", "array": "list"}.get(str(types), str(types))
    elif "oneOf" in node or "anyOf" in node:
        return "see description"
    else:
        text = "any"
    if types == "array":
        items = node.get("items")
        if isinstance(items, Mapping) and items.get("type") in ("string", "integer"):
            text = f"list of {items['type']}s"
    bounds = []
    lo = node.get("minimum", node.get("exclusiveMinimum"))
    hi = node.get("maximum")
    if lo is not None or hi is not None:
        left = ">" if "exclusiveMinimum" in node else ""
        bounds.append(f"{left}{lo if lo is not None else ''} to {hi if hi is not None else ''}"
                      .strip())
    if "minItems" in node:
        bounds.append(f"at least {node['minItems']}")
    if node.get("uniqueItems"):
        bounds.append("unique")
    if "pattern" in node:
        bounds.append(f"pattern `{node['pattern']}`")
    return text + (f" ({'; '.join(bounds)})" if bounds else "")


def _rows(res: _Resolver, node: Schema, doc: Schema, prefix: str, *, required: bool,
          rows: list[tuple[str, str, str, str, str]], depth: int = 0) -> None:
    node, doc = res.resolve(node, doc)
    if depth > 8:
        return
    default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
    if prefix:
        rows.append((f"`{prefix}`", _md(_type(node)), "yes" if required else "", default,
                     _md(str(node.get("description", "")))))
    variants = [res.resolve(v, doc) for v in node.get("oneOf", [])]
    objects = [(v, d) for v, d in [(node, doc), *variants] if "properties" in v]
    for obj, odoc in objects:
        req = set(obj.get("required", ()))
        for name, sub in obj["properties"].items():
            path = f"{prefix}.{name}" if prefix else name
            _rows(res, sub, odoc, path, required=name in req, rows=rows, depth=depth + 1)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping) and "properties" not in node:
        _rows(res, extra, doc, f"{prefix}.<NAME>", required=False, rows=rows, depth=depth + 1)
    items = node.get("items")
    if isinstance(items, Mapping):
        inner, idoc = res.resolve(items, doc)
        if "properties" in inner or any("properties" in res.resolve(v, idoc)[0]
                                        for v in inner.get("oneOf", [])):
            _rows(res, inner, idoc, f"{prefix}[]", required=False, rows=rows, depth=depth + 1)


def render_specs(schemas: SchemaSet | None = None) -> str:
    schemas = schemas or load_schemas()
    res = _Resolver(schemas)
    kinds = [k.value for k in ORDER if schema_file(k.value) in schemas.documents]
    out = [HEADER.format(kinds=", ".join(f"[{k}](#{k.lower()})" for k in kinds))]
    for kind in kinds:
        doc = schemas.documents[schema_file(kind)]
        out.append(f"## {kind}\n")
        out.append(_md(str(doc.get("description", ""))) + "\n")
        out.append(f"Schema: `schemas/{schema_file(kind)}`.\n")
        rows: list[tuple[str, str, str, str, str]] = []
        _rows(res, doc, doc, "", required=True, rows=rows)
        out.append("| Field | Type | Required | Default | Description |")
        out.append("|---|---|---|---|---|")
        out.extend(f"| {' | '.join(r)} |" for r in rows)
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def write_docs(path: Path | None = None) -> bool:
    """Write docs/specs.md; True when its content changed."""
    target = path or DOCS_PATH
    text = render_specs()
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    write_docs()
