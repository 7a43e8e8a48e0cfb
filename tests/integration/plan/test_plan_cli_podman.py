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


def _run_by_hand(podman: PodmanHarness, name: str, labels: dict[str, str]) -> None:
    args = ["run", "-d", "--name", name]
    for k, v in sorted(labels.items()):
        args += ["--label", f"{k}={v}"]
    podman.podman(*args, podman.image, "sleep", "600")


def test_plan_refresh_adopts_only_a_container_of_its_own_lineage(podman: PodmanHarness,
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

    # Replica 1 started by hand with the labels render gives it but no lineage (as an
    # older DockLock, or another workspace's, would leave it): this workspace cannot
    # tell it is its own, so plan stops, naming it, instead of adopting it.
    labels = plan["changes"][0]["after"]["config"]["labels"]
    assert "io.docklock.lineage" not in labels  # plan stamps nothing: apply does
    _run_by_hand(podman, "clitest-default-web-1", labels)
    clash = run_cli(["plan", "-C", str(ws)], env=env)
    assert clash.returncode == 1, clash.stdout
    assert "container clitest-default-web-1" in clash.stderr
    assert "no lineage label" in clash.stderr
    assert "podman rm -f clitest-default-web-1" in clash.stderr
    podman.podman("rm", "-f", "-t", "0", "clitest-default-web-1")

    # Apply replica 2 only: the state gets its lineage and the container carries it.
    applied = run_cli(["apply", "-C", str(ws), "--auto-approve",
                       "--target", "clitest-default-web-2"], env=env)
    assert applied.returncode == 0, applied.stderr + applied.stdout
    lineage = json.loads((ws / ".docklock" / "state.json").read_text())["lineage"]
    assert lineage
    inspect = podman.podman("inspect", "--format", "{{json .Config.Labels}}",
                            "clitest-default-web-2")
    got = json.loads(inspect.stdout)
    assert got["io.docklock.lineage"] == lineage
    assert got["io.docklock.workspace"] == str(ws)

    # Replica 1 by hand again, now with this workspace's lineage: adopted.
    _run_by_hand(podman, "clitest-default-web-1", {**labels, "io.docklock.lineage": lineage})
    second = run_cli(["plan", "-C", str(ws), "--format", "json"], env=env)
    assert second.returncode == 0, second.stderr
    changes = {c["name"]: c for c in json.loads(second.stdout)["changes"]}
    web1 = changes["clitest-default-web-1"]
    assert (web1["action"], web1["reasons"]) == ("no-op", ["adopted"])
    assert web1["live"]["status"] == "running"
    assert web1["before"] is None
    web2 = changes["clitest-default-web-2"]
    assert (web2["action"], web2["reasons"]) == ("no-op", [])

    text = run_cli(["plan", "-C", str(ws)], env=env)
    assert text.returncode == 0
    assert "will be adopted into state" in text.stdout
    assert "No changes." in text.stdout
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
