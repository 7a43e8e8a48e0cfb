"""Every built-in baseline check, proven by named passing and failing fixtures."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from docklock.model import ClusterSpec, Resource
from docklock.policy import Status, evaluate
from docklock.policy.catalog import rule_pack
from docklock.policy.engine import policy_rules

FIXTURES = Path(__file__).parent / "fixtures"
CASES: list[dict[str, Any]] = YAML(typ="safe", pure=True).load(
    (FIXTURES / "baseline_cases.yaml").read_text())
BASELINE = {r.id: r for r in policy_rules(rule_pack("baseline"))}
TODAY = date(2025, 6, 1)


def test_baseline_has_the_ten_checks() -> None:
    assert sorted(BASELINE) == sorted([
        "restricted-capabilities", "no-new-privileges", "run-as-non-root",
        "read-only-root", "cpu-memory-limits", "image-pinned", "seccomp-profile",
        "no-host-namespaces", "service-healthcheck", "cage-hardened",
    ])


def test_every_check_has_a_passing_and_a_failing_fixture() -> None:
    for check in BASELINE:
        outcomes = {c["expect"] for c in CASES if c["check"] == check}
        assert "PASS" in outcomes, f"{check} has no passing fixture"
        assert outcomes & {"FAIL", "WARN"}, f"{check} has no failing fixture"


def test_every_fixture_names_a_real_check_and_a_consistent_outcome() -> None:
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        rule = BASELINE[case["check"]]
        if case["expect"] != "PASS":
            wanted = "FAIL" if rule.enforcement == "deny" else "WARN"
            assert case["expect"] == wanted, case["name"]


def test_every_check_lists_controls_in_all_the_frameworks_it_can_evidence() -> None:
    for rule in BASELINE.values():
        frameworks = rule.frameworks()
        assert {"SOC2", "ISO27001", "CIS-Docker"} <= frameworks, rule.id
        assert rule.title, rule.id
        assert rule.message, rule.id
        assert rule.severity in ("low", "medium", "high", "critical")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_baseline_case(case: dict[str, Any]) -> None:
    rule = BASELINE[case["check"]]
    if "view" in case:
        valid = Draft202012Validator(rule.assert_schema).is_valid(case["view"])
        assert valid == (case["expect"] == "PASS")
        return
    docs = [Resource.from_dict(d) for d in case["resources"]]
    cluster = ClusterSpec(securityLevel=case.get("securityLevel", "standard"))
    report = evaluate(docs, cluster=cluster, packs=["builtin:baseline"], policies=[],
                      today=TODAY)
    subject = str(docs[0].address)
    [result] = [r for r in report.results if r.rule == rule.id and r.address == subject]
    assert result.status is Status(case["expect"]), (result.message, result.detail)
    if result.status is not Status.PASS:
        assert result.message == rule.message
        assert result.detail


def test_healthcheck_rule_does_not_target_jobs() -> None:
    job = Resource.from_dict({"kind": "Job", "metadata": {"name": "j"},
                              "spec": {"image": "localhost/app:1"}})
    report = evaluate([job], cluster=ClusterSpec(), packs=["builtin:baseline"],
                      policies=[], today=TODAY)
    assert not [r for r in report.results if r.rule == "service-healthcheck"]
    assert {r.rule for r in report.results} == set(BASELINE) - {"service-healthcheck"}
