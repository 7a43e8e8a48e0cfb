"""D23/D24 in the engine: policy regexes run on RE2 (linear time), RE2-refused regexes and
`$ref` loops that never move into the resource are validation errors, and legitimate
recursion (through properties/items) still works."""

from __future__ import annotations

import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from docklock.policy._regex import pattern_problem, policy_validator_class
from docklock.policy.engine import _assert_problems, _Compiled

EVIL = "^(a|a)*$"


def test_a_backtracking_pattern_runs_in_linear_time() -> None:
    compiled = _Compiled({"type": "object", "properties": {"name": {"pattern": EVIL}},
                          "patternProperties": {EVIL: {"type": "integer"}}})
    start = time.monotonic()
    for n in (30, 1_000, 100_000):
        bad = "a" * n + "b"
        passed, _detail, path = compiled.check({"name": bad, bad: "not an int"})
        assert not passed
        assert path in ("name", bad)
    assert time.monotonic() - start < 2.0  # Python's re would not finish n=30


def test_additional_properties_consults_pattern_properties_with_re2() -> None:
    schema = {"type": "object", "patternProperties": {EVIL: {}},
              "additionalProperties": False}
    compiled = _Compiled(schema)
    assert compiled.check({"aaaa": 1})[0]
    passed, detail, _path = compiled.check({"a" * 50 + "b": 1})
    assert not passed
    assert "do" in detail  # jsonschema's wording kept


@pytest.mark.parametrize(("pattern", "ok"), [
    ("^[a-z]+$", True), (EVIL, True), (r"^\d{1,3}$", True),
    ("^(?=a)b", False), (r"(a)\1", False), ("a{2000}", False), ("(?<!x)y", False),
])
def test_pattern_problem(pattern: str, ok: bool) -> None:
    assert (pattern_problem(pattern) is None) == ok


def test_dollar_means_end_of_input_as_in_ecma_262() -> None:
    v = policy_validator_class(Draft202012Validator)({"pattern": "^web$"})
    assert v.is_valid("web")
    assert not v.is_valid("web\n")


@pytest.mark.parametrize(("schema", "loops"), [
    ({"$ref": "#"}, True),
    ({"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/a"}}}, True),
    ({"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"not": {"$ref": "#/$defs/a"}}},
      "anyOf": [{"$ref": "#/$defs/a"}]}, True),
    ({"if": {"$ref": "#/$defs/x"}, "$defs": {"x": {"oneOf": [{"$ref": "#"}]}}}, True),
    # recursion that moves into the instance ends with the (bounded) resource
    ({"$defs": {"node": {"type": "object",
                         "properties": {"child": {"$ref": "#/$defs/node"}}}},
      "$ref": "#/$defs/node"}, False),
    ({"type": "array", "items": {"$ref": "#"}}, False),
    ({"$ref": "#/$defs/a", "$defs": {"a": {"type": "object"}}}, False),
])
def test_ref_loops_are_validation_errors(schema: dict[str, Any], loops: bool) -> None:
    problems = [p for p in _assert_problems(schema) if "itself without end" in p[1]]
    assert bool(problems) == loops, problems
    if not loops:
        _Compiled(schema).check({"child": {"child": {}}})  # evaluates without recursion


def test_unevaluated_with_pattern_properties_is_refused() -> None:
    problems = _assert_problems({"patternProperties": {"^a": {}},
                                 "unevaluatedProperties": False})
    assert any("unevaluatedProperties" in m for _p, m, _h in problems)
