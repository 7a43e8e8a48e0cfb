"""The verdict cache is sound: a schema judges a view and its projection alike."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from docklock.policy._projection import FULL, project, read_set, view_key
from docklock.policy.catalog import rule_pack
from docklock.policy.engine import policy_rules

KEYS = ["spec", "effective", "user", "capAdd", "a", "b"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(
    [0.0, 1.0, "", "ALL", "root", "1000", "hardened", "standard", "NET_BIND_SERVICE"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)
instances = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)

EXTRA_SCHEMAS: list[Any] = [
    True,
    False,
    {"type": "object"},
    {"required": ["spec"], "properties": {"spec": {"required": ["user"],
                                                   "properties": {"user": {"const": "1000"}}}}},
    {"properties": {"spec": {"type": "object", "not": {"required": ["a"]}}}},
    {"anyOf": [{"properties": {"a": {"const": True}}}, {"required": ["b"]}]},
    {"if": {"required": ["a"]}, "then": {"properties": {"b": {"type": "integer"}}},
     "else": {"properties": {"user": {"enum": ["root", None]}}}},
    {"properties": {"effective": {"additionalProperties": {"type": "boolean"}}}},
    {"properties": {"spec": {"minProperties": 2}}},
    {"$defs": {"x": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/x"}}},
    {"properties": {"capAdd": {"items": {"enum": ["NET_BIND_SERVICE"]}, "minItems": 1}}},
    {"properties": {"a": {"properties": {"b": {"maximum": 1}}}, "b": {"pattern": "^1"}}},
    {"oneOf": [{"properties": {"a": {"type": "array"}}}, {"properties": {"a": {"type": "null"}}}]},
]
SCHEMAS = [r.assert_schema for r in policy_rules(rule_pack("baseline"))] + EXTRA_SCHEMAS


def _errors(validator: Draft202012Validator, instance: Any) -> list[tuple[str, str]]:
    return sorted((e.json_path, e.validator) for e in validator.iter_errors(instance))


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=60, deadline=None)
@given(instance=instances)
def test_projection_gives_the_same_verdict_and_errors(schema: Any, instance: Any) -> None:
    tree = read_set(schema)
    validator = Draft202012Validator(schema)
    projected = project(instance, tree)
    assert validator.is_valid(instance) == validator.is_valid(projected)
    assert _errors(validator, instance) == _errors(validator, projected)


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
@settings(max_examples=40, deadline=None)
@given(a=instances, b=instances)
def test_equal_keys_mean_equal_projections(schema: Any, a: Any, b: Any) -> None:
    tree = read_set(schema)
    if view_key(a, tree) == view_key(b, tree):
        assert project(a, tree) == project(b, tree)
    if project(a, tree) == project(b, tree) and _same_types(project(a, tree), project(b, tree)):
        assert view_key(a, tree) == view_key(b, tree)


def _same_types(x: Any, y: Any) -> bool:
    if type(x) is not type(y):
        return False
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same_types(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_same_types(p, q) for p, q in zip(x, y, strict=True))
    return True


def test_keys_tell_true_from_one_and_lists_from_objects() -> None:
    tree = read_set({"properties": {"a": {"const": 1}}})
    assert view_key({"a": True}, tree) != view_key({"a": 1}, tree)
    assert view_key({"a": ["b"]}, tree) != view_key({"a": {"b": None}}, tree)


def test_read_sets_of_the_baseline_are_narrow() -> None:
    for rule in policy_rules(rule_pack("baseline")):
        tree = read_set(rule.assert_schema)
        assert tree is not None, rule.id  # None is FULL
        assert set(tree) <= {"effective", "spec"}, rule.id


def test_keywords_reading_whole_objects_widen_the_read_set() -> None:
    assert read_set({"properties": {"a": {"enum": [{"x": 1}]}}}) == {"a": FULL}
    assert read_set({"additionalProperties": False}) is FULL
    assert read_set({"$ref": "#"}) is FULL
    assert read_set({"$schema": "http://json-schema.org/draft-07/schema#"}) is FULL
    assert read_set({"required": ["a"], "properties": {"a": {"properties": {"b": True}}}}) \
        == {"a": {"b": {}}}
