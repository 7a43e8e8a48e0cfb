"""A missing image is a plan-time error at the spec's `image:` (issue 11 C13), on real Podman.

Before, plan never looked at images: apply created the network and the other services
first and failed on the missing image mid-way. Now the refresh lists the local images
(one call) and reports every image that is neither local nor built by an Image resource,
at file:line:col; apply, which plans first, changes nothing. `--no-refresh` skips it.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import PodmanHarness, run_cli

CLUSTER_DOC = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: imgtest}
spec:
  specs: [specs]
  securityLevel: standard
"""

STACK = """\
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: GOOD
  command: [sleep, "600"]
  networks: [backend]
"""

API = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  command: [sleep, "600"]
  replicas: 2
  image: localhost/nowhere/missing:1
"""

BUILT = """\
apiVersion: docklock.io/v1
kind: Image
metadata: {name: app}
spec:
  ref: localhost/imgtest/app:1
  context: app
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: app}
spec:
  image: localhost/imgtest/app:1
  command: [sleep, "600"]
"""


def _workspace(tmp_path: Path, image: str) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER_DOC)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "stack.yaml").write_text(STACK.replace("GOOD", image))
    (tmp_path / "specs" / "api.yaml").write_text(API)
    return tmp_path


def test_missing_image_fails_plan_and_apply_before_any_change(podman: PodmanHarness,
                                                              tmp_path: Path) -> None:
    ws = _workspace(tmp_path, podman.image)
    env = podman.cli_env()

    plan = run_cli(["plan", "-C", str(ws)], env=env)
    assert plan.returncode == 1, plan.stdout
    # Line 7, column 3 of specs/api.yaml is where `image:` is written; reported once for
    # the two replicas.
    assert plan.stderr.count("specs/api.yaml:7:3:") == 1, plan.stderr
    assert plan.stderr.splitlines()[-1] == "1 problem found", plan.stderr
    assert "image 'localhost/nowhere/missing:1' is not in Podman's local images" in plan.stderr
    assert "specs/api.yaml:7:3" in plan.stderr, plan.stderr
    assert "Service/default/api" in plan.stderr
    assert "podman build" in plan.stderr  # the hint
    assert "Service/default/web" not in plan.stderr  # its image is there

    listed = run_cli(["plan", "-C", str(ws), "--format", "json"], env=env)
    assert listed.returncode == 1
    assert "specs/api.yaml" in listed.stdout + listed.stderr

    apply = run_cli(["apply", "-C", str(ws), "--auto-approve"], env=env)
    assert apply.returncode == 1, apply.stdout
    assert "specs/api.yaml:7:3" in apply.stderr
    # Nothing was created: no container, no network (before, the network and web were).
    assert podman.containers("io.docklock.cluster=imgtest") == []
    nets = podman.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "imgtest-default-backend" not in nets
    state = ws / ".docklock" / "state.json"
    assert not state.exists() or not json.loads(state.read_text())["resources"]

    # --no-refresh does not look at Podman at all, so it cannot know.
    blind = run_cli(["plan", "-C", str(ws), "--no-refresh", "--detailed-exitcode"], env=env)
    assert blind.returncode == 2, blind.stderr

    # With the image present (tagged by hand), the same specs plan fine.
    podman.podman("tag", podman.image, "localhost/nowhere/missing:1")
    try:
        fixed = run_cli(["plan", "-C", str(ws), "--detailed-exitcode"], env=env)
        assert fixed.returncode == 2, fixed.stderr
    finally:
        podman.podman("rmi", "localhost/nowhere/missing:1")


def test_an_image_built_by_an_image_resource_is_not_required_yet(podman: PodmanHarness,
                                                                 tmp_path: Path) -> None:
    ws = _workspace(tmp_path, podman.image)
    (ws / "specs" / "api.yaml").unlink()
    (ws / "specs" / "app.yaml").write_text(BUILT)
    (ws / "app").mkdir()
    (ws / "app" / "Containerfile").write_text(f"FROM {podman.image}\n")
    plan = run_cli(["plan", "-C", str(ws), "--format", "json", "--detailed-exitcode"],
                   env=podman.cli_env())
    assert plan.returncode == 2, plan.stderr
    actions = {c["key"]: c["action"] for c in json.loads(plan.stdout)["changes"]}
    assert actions["image:localhost/imgtest/app:1"] == "create"
    assert actions["container:imgtest-default-app-1"] == "create"
