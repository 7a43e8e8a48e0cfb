"""Renderers: summary line, text, JSON, per-framework view and SARIF 2.1.0."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from docklock.errors import Location
from docklock.model import ClusterSpec, Resource
from docklock.policy import (
    PolicyReport,
    Summary,
    evaluate,
    render_framework,
    render_json,
    render_sarif,
    render_text,
)

SARIF_SUBSET = json.loads(
    (Path(__file__).parent / "fixtures" / "sarif-2.1.0-subset.schema.json").read_text())


def svc(name: str, **spec: Any) -> Resource:
    spec.setdefault("image", "localhost/app:1")
    return Resource.from_dict({"kind": "Service", "metadata": {"name": name}, "spec": spec},
                              Location(f"/ws/specs/{name}.yaml", 4, 1))


def report() -> PolicyReport:
    pol = Resource.from_dict({"kind": "Policy", "metadata": {"name": "biso"}, "spec": {
        "rules": [{
            "id": "needs-user", "title": "Set a user", "severity": "high",
            "message": "set spec.user", "match": {"kinds": ["Service"]},
            "assert": {"properties": {"spec": {"required": ["user"]}}},
            "controls": ["SOC2:CC6.3"],
            "exceptions": [{"address": "legacy", "reason": "vendor image",
                            "expires": "2030-01-01"}],
        }]}}, Location("/ws/specs/biso.yaml", 1, 1))
    resources = [svc("ok", user="1000", healthcheck={"command": ["true"]}, cage="hardened",
                     resources={"cpus": 1}),
                 svc("bad"), svc("legacy")]
    return evaluate(resources, cluster=ClusterSpec(), packs=["builtin:baseline"],
                    policies=[pol], today=date(2025, 6, 1))


def test_summary_line_matches_the_documented_shape() -> None:
    assert Summary(checks=12, passed=10, warnings=1, failures=1, exceptions=0).line() == \
        "12 checks, 10 passed, 1 warning, 1 failure, 0 exceptions"
    assert Summary(checks=3, passed=0, warnings=2, failures=0, exceptions=1,
                   skipped=4).line() == \
        "3 checks, 0 passed, 2 warnings, 0 failures, 1 exception, 4 skipped"


def test_text_lists_every_result_per_rule_then_the_summary() -> None:
    rep = report()
    text = render_text(rep, root=Path("/ws"))
    assert "needs-user (high, deny) Set a user  [SOC2:CC6.3]" in text
    assert "  FAIL     Service/default/bad  (specs/bad.yaml:4:1)" in text
    assert "  EXCEPTED Service/default/legacy" in text
    assert "exception accepted until 2030-01-01: vendor image" in text
    assert "  PASS     Service/default/ok" in text
    assert text.rstrip().splitlines()[-2] == rep.summary.line()
    assert text.rstrip().endswith(rep.digest)
    quiet = render_text(rep, quiet=True)
    assert "PASS     Service" not in quiet
    assert "FAIL     Service/default/bad" in quiet


def test_text_when_nothing_is_active() -> None:
    empty = evaluate([svc("a")], cluster=ClusterSpec(), packs=[], policies=[],
                     today=date(2025, 1, 1))
    text = render_text(empty)
    assert "no policy rules are active" in text
    assert "0 checks, 0 passed, 0 warnings, 0 failures, 0 exceptions" in text


def test_json_is_the_report_dict_and_stable() -> None:
    rep = report()
    data = json.loads(render_json(rep))
    assert data == json.loads(json.dumps(rep.to_dict()))
    assert data["format"] == "docklock.policy-report/v1"
    assert data["digest"] == rep.digest
    assert data["summary"]["failures"] == rep.summary.failures
    bad = [r for r in data["results"] if r["address"] == "Service/default/bad"
           and r["rule"] == "needs-user"]
    assert bad[0]["status"] == "FAIL"
    assert bad[0]["location"] == {"file": "/ws/specs/bad.yaml", "line": 4, "column": 1}
    assert {r["id"] for r in data["rules"]} >= {"needs-user", "run-as-non-root"}
    assert all(r["digest"].startswith("sha256:") for r in data["rules"])
    assert set(data["frameworks"]) == {"SOC2", "ISO27001", "HIPAA", "CIS-Docker"}
    assert render_json(rep) == render_json(report())


def test_framework_view_text() -> None:
    text = render_framework(report().framework("soc2"))
    first = text.splitlines()[0]
    assert first.startswith("SOC 2 Trust Services Criteria (SOC2) — 9 controls:")
    assert "CC6.3  FAIL" in text
    assert "failing: needs-user Service/default/bad" in text
    assert "checks: needs-user, restricted-capabilities, run-as-non-root" in text
    hipaa = render_framework(report().framework("hipaa"))
    assert "164.312(b)" in hipaa
    assert "NOT COVERED" in hipaa


def test_sarif_has_the_2_1_0_structure() -> None:
    rep = report()
    sarif = json.loads(render_sarif(rep, root=Path("/ws")))
    Draft202012Validator(SARIF_SUBSET).validate(sarif)
    assert sarif["version"] == "2.1.0"
    [run] = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "docklock"
    assert [r["id"] for r in driver["rules"]] == [r.id for r in rep.rules]
    results = run["results"]
    assert len(results) == rep.summary.failures + rep.summary.warnings + \
        rep.summary.exceptions
    bad = next(r for r in results if r["ruleId"] == "needs-user"
               and "Service/default/bad" in r["message"]["text"])
    assert bad["level"] == "error"
    assert driver["rules"][bad["ruleIndex"]]["id"] == "needs-user"
    physical = bad["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "specs/bad.yaml"
    assert physical["region"] == {"startLine": 4, "startColumn": 1}
    excepted = next(r for r in results if "Service/default/legacy" in r["message"]["text"]
                    and r["ruleId"] == "needs-user")
    assert excepted["suppressions"][0]["justification"] == "vendor image"
    warn = next(r for r in results if r["ruleId"] == "service-healthcheck")
    assert warn["level"] == "warning"
    assert run["properties"]["policyDigest"] == rep.digest


def test_sarif_without_root_uses_file_uris_and_omits_unknown_regions() -> None:
    res = Resource.from_dict({"kind": "Service", "metadata": {"name": "x"},
                              "spec": {"image": "app:latest"}}, Location("/ws/a b.yaml"))
    rep = evaluate([res], cluster=ClusterSpec(), packs=["builtin:baseline"], policies=[],
                   today=date(2025, 1, 1))
    sarif = json.loads(render_sarif(rep))
    Draft202012Validator(SARIF_SUBSET).validate(sarif)
    physical = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "file:///ws/a%20b.yaml"
    assert "region" not in physical
