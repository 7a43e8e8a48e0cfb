"""`docklock policy check` end to end on a real workspace folder (no Podman needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.cli import main

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: demo}
spec:
  specs: [specs]
  securityLevel: standard
  policies: [builtin:baseline, builtin:soc2]
"""

GOOD_WEB = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/busybox:1
  user: "1000"
  cage: hardened
  resources: {cpus: 0.5, memory: 64Mi}
  healthcheck: {command: [wget, -q, -O-, "http://127.0.0.1:8080/"]}
"""

ROOT_API = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/busybox:1
  cage: hardened
  resources: {cpus: 0.5, memory: 64Mi}
  healthcheck: {command: ["true"]}
"""

POLICY = """\
apiVersion: docklock.io/v1
kind: Policy
metadata: {name: biso}
spec:
  rules:
    - id: team-label
      severity: low
      enforcement: warn
      message: every service names its owning team
      match: {kinds: [Service]}
      assert:
        properties:
          metadata: {required: [labels], properties: {labels: {required: [team]}}}
      controls: ["ISO27001:A.5.9"]
"""


def workspace(tmp_path: Path, *docs: tuple[str, str]) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, text in docs:
        (specs / name).write_text(text)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deny_failure_exits_1_and_names_rule_resource_and_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, ("web.yaml", GOOD_WEB), ("api.yaml", ROOT_API),
                   ("policy.yaml", POLICY))
    code, out, err = run(capsys, "policy", "check", "-C", str(ws), "--no-color")
    assert code == 1
    assert "  FAIL     Service/default/api  (specs/api.yaml:1" in out
    assert "run-as-non-root (high, deny)" in out
    assert "  WARN     Service/default/web" in out  # team-label
    assert "22 checks, 19 passed, 2 warnings, 1 failure, 0 exceptions" in out
    assert "deny-enforced policy check failed" in err


def test_passing_workspace_exits_0_and_json_is_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, ("web.yaml", GOOD_WEB))
    code, out, _ = run(capsys, "policy", "check", "-C", str(ws), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["summary"]["failures"] == 0
    assert data["digest"].startswith("sha256:")
    assert data["packs"] == ["builtin:baseline", "builtin:soc2"]
    code2, out2, _ = run(capsys, "policy", "check", "-C", str(ws), "--format", "json")
    assert code2 == 0
    assert json.loads(out2)["digest"] == data["digest"]


def test_sarif_and_framework_views(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, ("web.yaml", GOOD_WEB), ("api.yaml", ROOT_API))
    code, out, _ = run(capsys, "policy", "check", "-C", str(ws), "--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    [result] = sarif["runs"][0]["results"]
    assert result["ruleId"] == "run-as-non-root"
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "specs/api.yaml"
    assert loc["region"]["startLine"] == 1

    code, out, _ = run(capsys, "policy", "check", "-C", str(ws), "--framework", "soc2")
    assert code == 1
    assert "SOC 2 Trust Services Criteria (SOC2)" in out
    assert "CC6.3  FAIL" in out
    assert "CC6.6  EVIDENCED" in out

    code, out, _ = run(capsys, "policy", "check", "-C", str(ws), "--framework", "hipaa",
                       "--json")
    view = json.loads(out)
    assert view["framework"] == "HIPAA"
    assert view["counts"]["not-covered"] == 3


def test_unknown_framework_and_malformed_policy_are_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = POLICY.replace("properties:\n          metadata",
                         "type: strnig\n        properties:\n          metadata")
    ws = workspace(tmp_path, ("web.yaml", GOOD_WEB), ("policy.yaml", bad))
    code, _, err = run(capsys, "policy", "check", "-C", str(ws))
    assert code == 1
    assert "specs/policy.yaml" in err
    assert "rule team-label: assert is not a valid JSON Schema" in err

    ws2 = tmp_path / "other"
    ws2.mkdir()
    workspace(ws2, ("web.yaml", GOOD_WEB))
    code, _, err = run(capsys, "policy", "check", "-C", str(ws2), "--framework", "pci")
    assert code == 1
    assert "no compliance framework 'pci'" in err
