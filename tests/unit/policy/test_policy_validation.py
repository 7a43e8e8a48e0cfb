"""Malformed policies are clear validation errors naming the rule and where it is."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from docklock.errors import Location, ValidationError
from docklock.model import ClusterSpec, Resource
from docklock.policy import check_policies_valid, evaluate
from docklock.policy.catalog import rule_pack


def policy(*rules: Any, name: str = "biso", line: int = 3) -> Resource:
    return Resource.from_dict({"kind": "Policy", "metadata": {"name": name},
                               "spec": {"rules": list(rules)}},
                              Location(f"specs/{name}.yaml", line, 1))


def rule(**fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "r1", "match": {"kinds": ["Service"]}, "assert": True}
    out.update(fields)
    return out


BAD_RULES: list[tuple[str, Any, str, str]] = [
    # (case name, rule, expected message fragment, expected JSON path)
    ("assert-unknown-type", rule(**{"assert": {"type": "strnig"}}),
     "assert is not a valid JSON Schema", "spec.rules[0].assert.type"),
    ("assert-minimum-not-number", rule(**{"assert": {"properties": {"spec": {"minimum": "x"}}}}),
     "assert is not a valid JSON Schema", "spec.rules[0].assert.properties.spec.minimum"),
    ("assert-required-not-list", rule(**{"assert": {"required": "user"}}),
     "assert is not a valid JSON Schema", "spec.rules[0].assert.required"),
    ("assert-not-a-schema", rule(**{"assert": "yes"}),
     "is not of type 'object', 'boolean'", "spec.rules[0].assert"),
    ("assert-remote-ref", rule(**{"assert": {"$ref": "https://example.com/s.json"}}),
     "only local references", "spec.rules[0].assert.$ref"),
    ("assert-missing-local-ref", rule(**{"assert": {"$ref": "#/$defs/nope"}}),
     "does not exist", "spec.rules[0].assert.$ref"),
    ("assert-unknown-dialect", rule(**{"assert": {"$schema": "https://example.com/x"}}),
     "unknown JSON Schema dialect", "spec.rules[0].assert.$schema"),
    ("missing-assert", {"id": "r1", "match": {"kinds": ["Service"]}},
     "'assert' is a required property", "spec.rules[0]"),
    ("missing-match", {"id": "r1", "assert": True},
     "'match' is a required property", "spec.rules[0]"),
    ("missing-id", {"match": {"kinds": ["Service"]}, "assert": True},
     "'id' is a required property", "spec.rules[0]"),
    ("unknown-field", rule(enforce="deny"),
     "Additional properties are not allowed ('enforce' was unexpected)", "spec.rules[0]"),
    ("bad-enforcement", rule(enforcement="audit"),
     "'audit' is not one of ['deny', 'warn']", "spec.rules[0].enforcement"),
    ("bad-severity", rule(severity="urgent"),
     "'urgent' is not one of", "spec.rules[0].severity"),
    ("bad-kind", rule(match={"kinds": ["Pod"]}),
     "'Pod' is not one of", "spec.rules[0].match.kinds[0]"),
    ("match-without-kinds", rule(match={"namespaces": ["prod"]}),
     "'kinds' is a required property", "spec.rules[0].match"),
    ("bad-control", rule(controls=["CC6.1"]),
     "does not match", "spec.rules[0].controls[0]"),
    ("in-without-values", rule(match={"kinds": ["Service"], "labels": {
        "matchExpressions": [{"key": "a", "operator": "In"}]}}),
     "operator In needs a non-empty `values` list",
     "spec.rules[0].match.labels.matchExpressions[0]"),
    ("exists-with-values", rule(exclude={"kinds": ["Service"], "labels": {
        "matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
     "operator Exists takes no `values`", "spec.rules[0].exclude.labels.matchExpressions[0]"),
    ("exception-impossible-date", rule(exceptions=[
        {"address": "web", "reason": "r", "expires": "2025-02-30"}]),
     "'2025-02-30' is not a date", "spec.rules[0].exceptions[0].expires"),
    ("exception-bad-address", rule(exceptions=[
        {"address": "a/b/c/d", "reason": "r"}]),
     "not an address", "spec.rules[0].exceptions[0].address"),
    ("exception-without-reason", rule(exceptions=[{"address": "web"}]),
     "'reason' is a required property", "spec.rules[0].exceptions[0]"),
]


@pytest.mark.parametrize(("bad", "fragment", "path"), [c[1:] for c in BAD_RULES],
                         ids=[c[0] for c in BAD_RULES])
def test_malformed_rule_is_a_located_error(bad: Any, fragment: str, path: str) -> None:
    diags = check_policies_valid([policy(bad)])
    assert diags, "expected a diagnostic"
    match = [d for d in diags if fragment in d.message]
    assert match, [d.message for d in diags]
    diag = match[0]
    assert diag.severity == "error"
    assert diag.path == path
    assert str(diag.location) == "specs/biso.yaml:3:1"
    assert diag.message.startswith("Policy/default/biso:")
    assert diag.hint


def test_malformed_assert_names_the_rule_and_stops_evaluate() -> None:
    bad = policy(rule(id="needs-user", **{"assert": {"type": "strnig"}}))
    with pytest.raises(ValidationError) as err:
        evaluate([], cluster=ClusterSpec(), packs=[], policies=[bad], today=date(2025, 1, 1))
    text = err.value.explain()
    assert "specs/biso.yaml:3:1: Policy/default/biso: rule needs-user: assert is " \
           "not a valid JSON Schema" in text
    assert err.value.diagnostics[0].path == "spec.rules[0].assert.type"


def test_every_problem_is_collected_in_one_run() -> None:
    diags = check_policies_valid([
        policy(rule(severity="urgent"), rule(id="r2", **{"assert": {"type": 1}})),
        policy(rule(), name="other"),
    ])
    messages = " | ".join(d.message for d in diags)
    assert "'urgent' is not one of" in messages
    assert "rule r2: assert is not a valid JSON Schema" in messages
    assert "rule id r1 is already defined in Policy/default/biso" in messages
    assert len(diags) == 3


def test_locate_hook_points_at_the_offending_key() -> None:
    def locate(res: Resource, path: str) -> Location | None:
        return Location("specs/biso.yaml", 10 + path.count("."), 7)

    [diag] = check_policies_valid([policy(rule(severity="urgent"))], locate=locate)
    assert str(diag.location) == "specs/biso.yaml:12:7"


def test_valid_policies_and_builtin_packs_have_no_problems() -> None:
    good = policy(rule(
        title="t", severity="high", message="m", enforcement="warn",
        match={"kinds": ["Service", "Job"], "namespaces": ["prod-*"], "names": ["web"],
               "labels": {"matchLabels": {"a": "b"},
                          "matchExpressions": [{"key": "c", "operator": "NotIn",
                                                "values": ["d"]}]}},
        exclude={"kinds": ["*"]},
        controls=["SOC2:CC6.1", "HIPAA:164.312(a)(1)", "CIS-Docker:5.4"],
        exceptions=[{"address": "Service/prod/web", "reason": "r", "expires": "2030-12-31"}],
        **{"assert": {"$defs": {"u": {"required": ["user"]}},
                      "properties": {"spec": {"$ref": "#/$defs/u"}}}}))
    assert check_policies_valid([good]) == []
    assert check_policies_valid([rule_pack("baseline")]) == []


def test_a_non_policy_resource_is_rejected() -> None:
    svc = Resource.from_dict({"kind": "Service", "metadata": {"name": "a"},
                              "spec": {"image": "x:1"}})
    [diag] = check_policies_valid([svc])
    assert "is not a Policy document" in diag.message
