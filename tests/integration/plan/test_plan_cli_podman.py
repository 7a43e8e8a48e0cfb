"""`docklock plan` as a user runs it, refreshing against the harness's real Podman."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import PodmanHarness, run_cli

CLUSTER_DOC = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: clitest}
spec:
  specs: [specs]
  securityLevel: standard
"""

WEB = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: IMAGE
  command: [sleep, "600"]
  replicas: 2
"""


def _workspace(tmp_path: Path, image: str) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER_DOC)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "web.yaml").write_text(WEB.replace("IMAGE", image))
    return tmp_path


def test_plan_refresh_adopts_a_matching_live_container(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    ws = _workspace(tmp_path, podman.image)
    env = podman.cli_env()
    first = run_cli(["plan", "-C", str(ws), "--format", "json", "--detailed-exitcode"],
                    env=env)
    assert first.returncode == 2, first.stderr
    plan = json.loads(first.stdout)
    assert plan["options"]["refresh"] is True
    assert [(c["name"], c["action"]) for c in plan["changes"]] == [
        ("clitest-default-web-1", "create"), ("clitest-default-web-2", "create")]

    # Start replica 1 by hand with exactly the labels DockLock would give it: the state
    # does not know it, so the next plan adopts it instead of creating a duplicate.
    labels = plan["changes"][0]["after"]["config"]["labels"]
    args = ["run", "-d", "--name", "clitest-default-web-1"]
    for k, v in sorted(labels.items()):
        args += ["--label", f"{k}={v}"]
    podman.podman(*args, podman.image, "sleep", "600")

    second = run_cli(["plan", "-C", str(ws), "--format", "json"], env=env)
    assert second.returncode == 0, second.stderr
    changes = {c["name"]: c for c in json.loads(second.stdout)["changes"]}
    web1 = changes["clitest-default-web-1"]
    assert (web1["action"], web1["reasons"]) == ("no-op", ["adopted"])
    assert web1["live"]["status"] == "running"
    assert web1["before"] is None
    assert changes["clitest-default-web-2"]["action"] == "create"

    text = run_cli(["plan", "-C", str(ws)], env=env)
    assert text.returncode == 0
    assert "will be adopted into state" in text.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in text.stdout
    assert "\x1b[" not in text.stdout  # NO_COLOR


def test_no_refresh_never_contacts_podman(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, "localhost/x:1")
    env = {"PATH": "/usr/bin:/bin", "NO_COLOR": "1",
           "DOCKLOCK_PODMAN_URL": "unix:///nonexistent/podman.sock"}
    done = run_cli(["plan", "-C", str(ws), "--no-refresh"], env=env)
    assert done.returncode == 0, done.stderr
    refreshed = run_cli(["plan", "-C", str(ws)], env=env)
    assert refreshed.returncode == 1
    assert "/nonexistent/podman.sock" in refreshed.stderr
