"""Which parts of an instance a JSON Schema can read, so equal parts share one verdict.

A rule's verdict on a resource depends only on the parts of the resource view its
`assert` schema reads. `read_set(schema)` computes a conservative tree of those parts;
`view_key(view, tree)` turns them into a hashable key and `project(view, tree)` into a
smaller instance. Invariant (tested with hypothesis): for every instance `x`,
`validate(schema, x)` and `validate(schema, project(x, read_set(schema)))` give the same
errors, and `view_key(x, t) == view_key(y, t)` implies `project(x, t) == project(y, t)`.
That lets the engine validate each distinct projection once, which is what keeps
10,000 resources against the baseline pack well inside its time budget.

Tree shape: `FULL` (None) means "the whole value at this location"; a dict maps
property names to subtrees and means "only these properties of an object, plus its
type". Any keyword this module does not understand makes its location FULL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ReadTree = dict[str, "ReadTree | None"] | None
FULL: ReadTree = None

# Keywords that read nothing beyond the instance's type at this location, or that only
# apply to arrays, strings and numbers (which `project` always keeps whole).
_TYPE_LEVEL = frozenset({
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs",
    "definitions", "title", "description", "default", "examples", "deprecated",
    "readOnly", "writeOnly", "format", "contentEncoding", "contentMediaType",
    "contentSchema", "type",
    # numbers
    "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    # strings
    "maxLength", "minLength", "pattern",
    # arrays
    "items", "prefixItems", "contains", "minContains", "maxContains", "maxItems",
    "minItems", "uniqueItems", "unevaluatedItems", "additionalItems",
})
# Keywords that apply a subschema to the same location.
_IN_PLACE = frozenset({"allOf", "anyOf", "oneOf", "not", "if", "then", "else"})
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"


def _merge(a: ReadTree, b: ReadTree) -> ReadTree:
    if a is None or b is None:
        return FULL
    out = dict(a)
    for key, sub in b.items():
        out[key] = _merge(out[key], sub) if key in out else sub
    return out


def read_set(schema: Any) -> ReadTree:
    """The conservative read tree of a Draft 2020-12 schema (FULL for other dialects)."""
    if isinstance(schema, Mapping) and schema.get("$schema", _DRAFT_2020_12) != _DRAFT_2020_12:
        return FULL
    return _walk(schema)


def _walk(schema: Any) -> ReadTree:
    if isinstance(schema, bool):
        return {}
    if not isinstance(schema, Mapping):
        return FULL
    tree: ReadTree = {}
    for keyword, value in schema.items():
        if keyword in _TYPE_LEVEL:
            continue
        if keyword == "properties" and isinstance(value, Mapping):
            for name, sub in value.items():
                tree = _merge(tree, {str(name): _walk(sub)})
        elif keyword == "required" and isinstance(value, list):
            for name in value:
                tree = _merge(tree, {str(name): {}})
        elif keyword in _IN_PLACE:
            subs = value if isinstance(value, list) else [value]
            for sub in subs:
                tree = _merge(tree, _walk(sub))
        else:
            # const, enum, $ref, additionalProperties, patternProperties, propertyNames,
            # unevaluatedProperties, min/maxProperties, dependent*, unknown keywords.
            return FULL
        if tree is None:
            return FULL
    return tree


def project(value: Any, tree: ReadTree) -> Any:
    """The part of `value` that `tree` says a schema can read."""
    if tree is None or not isinstance(value, dict):
        return value
    return {k: project(value[k], sub) for k, sub in tree.items() if k in value}


_MISSING = ("missing",)
KeyFunction = Callable[[Any], Any]


def _freeze(value: Any) -> Any:
    # Tagged so that values JSON Schema tells apart never share a key: true vs 1,
    # a list vs an object, "1" vs 1. Every result is a 2-tuple whose first item is
    # a tag (never a tuple), so it cannot equal a projection tuple from `key_function`.
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("a", tuple(_freeze(v) for v in value))
    return (type(value), value)


def key_function(tree: ReadTree) -> KeyFunction:
    """Compile `tree` into a function computing `view_key(value, tree)` quickly."""
    if tree is None:
        return _freeze
    items = [(name, key_function(sub)) for name, sub in tree.items()]

    def key(value: Any) -> Any:
        if type(value) is not dict:
            return _freeze(value)
        return tuple([f(value[k]) if k in value else _MISSING for k, f in items])

    return key


def view_key(value: Any, tree: ReadTree) -> Any:
    """A hashable key equal for two values exactly when their projections are equal."""
    return key_function(tree)(value)
