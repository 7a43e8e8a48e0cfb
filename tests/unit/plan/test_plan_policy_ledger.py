"""`docklock plan` runs the policy gate and records itself in the signed ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.cli import main
from docklock.ledger import Ledger, verify_ledger
from docklock.workspace import WorkspacePaths

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: pol}
spec:
  specs: [specs]
  securityLevel: hardened
  policies: [builtin:baseline]
"""

SERVICE = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: IMAGE
  command: [httpd, -f, -p, "8081"]
  user: "65534"
  healthcheck: {command: [wget, -q, -O-, "http://127.0.0.1:8081/"]}
  resources: {cpus: 0.5, memory: 64Mi}
"""


def workspace(tmp_path: Path, image: str) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "api.yaml").write_text(SERVICE.replace("IMAGE", image))
    return tmp_path


def test_deny_failure_stops_the_plan_naming_rule_resource_and_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, "localhost/demo/busybox:latest")
    code = main(["plan", "-C", str(ws), "--no-refresh"])
    err = capsys.readouterr().err
    assert code == 1
    assert "image-pinned" in err
    assert "Service/default/api" in err
    assert "specs/api.yaml:5" in err
    assert "CIS-Docker" in err
    # Nothing was planned, so nothing was recorded.
    assert not (ws / ".docklock" / "ledger").exists() or Ledger.open(
        WorkspacePaths(ws)).size == 0


def test_plan_records_policy_digest_warnings_and_a_ledger_entry(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace(tmp_path, "localhost/demo/busybox:1")
    # Without a healthcheck only the warn-level service-healthcheck rule fails.
    text = (ws / "specs" / "api.yaml").read_text()
    (ws / "specs" / "api.yaml").write_text(
        "\n".join(line for line in text.splitlines() if "healthcheck" not in line) + "\n")
    # plan records only where the signing key exists; it never creates one (#11 B8)
    assert main(["keys", "init", "-C", str(ws)]) == 0
    capsys.readouterr()
    code = main(["plan", "-C", str(ws), "--no-refresh", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    plan = json.loads(out)
    assert plan["policy"]["digest"].startswith("sha256:")
    assert any("service-healthcheck" in w for w in plan["policy"]["warnings"])
    paths = WorkspacePaths(ws)
    entries = list(Ledger.open(paths).entries())
    assert [e.type for e in entries] == ["plan"]
    assert entries[0].payload["policy_digest"] == plan["policy"]["digest"]
    assert verify_ledger(paths).ok
    # A second plan appends a second entry and the chain still verifies.
    assert main(["plan", "-C", str(ws), "--no-refresh"]) == 0
    capsys.readouterr()
    assert Ledger.open(paths).size == 2
    assert verify_ledger(paths).ok
