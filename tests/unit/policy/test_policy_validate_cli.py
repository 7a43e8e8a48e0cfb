"""`docklock validate` runs the BISO policies: deny failures are errors, warnings are shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.cli import main

REPO = Path(__file__).resolve().parents[3]

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: demo}
spec:
  specs: [specs]
  securityLevel: hardened
  policies: [builtin:baseline%s]
"""

# Line numbers matter: tests below point at keys of these documents.
SERVICES = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/busybox:1
  user: "1000"
  resources: {cpus: 0.5, memory: 64Mi}
  healthcheck: {command: ["true"]}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/busybox:latest
  user: "1000"
  resources: {cpus: 0.5, memory: 64Mi}
"""

PINNED = SERVICES.replace("busybox:latest", "busybox:2")

EXCEPTIONS = """\
apiVersion: docklock.io/v1
kind: Policy
metadata: {name: accepted}
spec:
  exceptions:
    - rule: image-pinned
      address: Service/default/api
      reason: vendor image only published as latest
      expires: "%s"
"""

BAD_ASSERT = """\
apiVersion: docklock.io/v1
kind: Policy
metadata: {name: mine}
spec:
  rules:
    - id: team-label
      match: {kinds: [Service]}
      assert:
        type: objekt
"""


def workspace(tmp_path: Path, files: dict[str, str], extra_packs: str = "") -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER % extra_packs)
    (tmp_path / "specs").mkdir()
    for name, text in files.items():
        (tmp_path / "specs" / name).write_text(text)
    return tmp_path


def validate(capsys: pytest.CaptureFixture[str], ws: Path,
             *extra: str) -> tuple[int, str, str]:
    code = main(["validate", "-C", str(ws), "--no-color", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_deny_failure_exits_1_naming_rule_resource_key_and_controls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": SERVICES})
    code, out, err = validate(capsys, ws)
    assert code == 1
    assert out == ""
    # effective.imagePinned failed: the error points at the api document's spec.image.
    line = next(ln for ln in err.splitlines() if "image-pinned" in ln)
    assert line.startswith("specs/services.yaml:14:3: policy image-pinned (medium, deny) "
                           "failed for Service/default/api: ")
    assert "CIS-Docker:4.2" in line
    assert "SOC2:CC7.1" in line
    assert "spec.exceptions: [{rule: image-pinned, address: Service/default/api" in line
    # the same run shows the warn-rule failure as a warning, not as a problem
    assert "specs/services.yaml:13:1: warning: policy service-healthcheck" in err
    assert "1 problem found" in err


def test_deny_failure_in_json_is_an_error_entry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": SERVICES})
    code, out, _ = validate(capsys, ws, "--json")
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"valid", "resources", "errors", "warnings"}
    assert data["valid"] is False
    [error] = data["errors"]
    assert set(error) == {"file", "line", "column", "path", "message", "hint"}
    assert (error["file"], error["line"], error["column"]) == ("specs/services.yaml", 14, 3)
    assert error["path"] == "effective.imagePinned"
    assert "image-pinned" in error["message"]
    [warning] = data["warnings"]
    assert "service-healthcheck" in warning["message"]


def test_only_warnings_exit_0_and_are_shown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": PINNED})
    code, out, err = validate(capsys, ws)
    assert code == 0
    assert out.strip() == "2 resources valid"
    assert ("specs/services.yaml:13:1: warning: policy service-healthcheck (low, warn) "
            "failed for Service/default/api") in err
    assert "SOC2:A1.2" in err

    code, out, _ = validate(capsys, ws, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True
    assert data["errors"] == []
    [warning] = data["warnings"]
    assert (warning["file"], warning["line"]) == ("specs/services.yaml", 13)
    assert "service-healthcheck" in warning["message"]


def test_exception_document_excepts_a_builtin_rule_until_it_expires(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": SERVICES,
                              "accepted.yaml": EXCEPTIONS % "2999-12-31"})
    code, out, _ = validate(capsys, ws)
    assert code == 0
    assert out.strip() == "3 resources valid"

    (ws / "specs" / "accepted.yaml").write_text(EXCEPTIONS % "2000-01-31")
    code, _, err = validate(capsys, ws)
    assert code == 1
    line = next(ln for ln in err.splitlines() if "image-pinned" in ln)
    assert line.startswith("specs/services.yaml:14:3: ")
    assert "(exception expired 2000-01-31)" in line
    assert "renew the exception" in line


def test_exception_naming_an_unknown_rule_points_at_its_rule_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (EXCEPTIONS % "2999-12-31").replace("rule: image-pinned", "rule: image-pined")
    ws = workspace(tmp_path, {"services.yaml": PINNED, "accepted.yaml": text})
    code, _, err = validate(capsys, ws)
    assert code == 1
    assert ("specs/accepted.yaml:6:7: Policy/default/accepted: exception for "
            "Service/default/api names rule image-pined, which is not an active rule") in err


def test_non_builtin_policies_entry_is_an_error_at_its_position(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": PINNED}, ", policies/extra.yaml")
    code, _, err = validate(capsys, ws)
    assert code == 1
    assert ("docklock.yaml:7:32: spec.policies entry 'policies/extra.yaml' is not a "
            "built-in pack") in err
    assert "Policy documents in the spec folders are always active" in err


def test_malformed_assert_is_an_error_at_the_assert_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, {"services.yaml": PINNED, "mine.yaml": BAD_ASSERT})
    code, _, err = validate(capsys, ws)
    assert code == 1
    assert ("specs/mine.yaml:9:9: Policy/default/mine: rule team-label: assert is not a "
            "valid JSON Schema") in err


def test_the_repository_workspace_still_validates(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = validate(capsys, REPO)
    assert code == 0, err
    assert out.strip().endswith("resources valid")
    code, out, _ = validate(capsys, REPO, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True
    assert data["errors"] == []
