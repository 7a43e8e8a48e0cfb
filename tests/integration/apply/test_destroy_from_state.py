"""Issue 11 C15 on real Podman: `destroy` works from the recorded state alone.

A workspace whose specs no longer validate (a typo, a half-edited file) must still be
destroyable: destroy removes what the state records (and what carries this cluster's
labels), whatever the specs say now. It still works when the specs are valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from applyhelp import apply_ok, cli, make_workspace, service, state, three_tier
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

NETWORK = """\
---
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend}
"""


def _podman_names(harness: PodmanHarness, cluster: str) -> tuple[list[str], list[str]]:
    containers = harness.containers(f"io.docklock.cluster={cluster}")
    nets = json.loads(harness.podman("network", "ls", "--format", "json").stdout or "[]")
    return containers, sorted(n["name"] for n in nets if n["name"].startswith(cluster))


@pytest.mark.parametrize("broken", [True, False])
def test_destroy_removes_everything_recorded_even_with_broken_specs(
        podman: PodmanHarness, tmp_path: Path, broken: bool) -> None:
    c = f"tc15{'b' if broken else 'v'}"
    specs = three_tier(podman.image).replace(
        "  stopTimeout: 0\n", "  stopTimeout: 0\n  networks: [backend]\n", 1) + NETWORK
    ws = make_workspace(tmp_path / "ws", c, specs)
    apply_ok(podman, ws)
    containers, nets = _podman_names(podman, c)
    assert len(containers) == 3
    assert nets == [f"{c}-default-backend"]

    if broken:
        # Invalid specs: an unknown field, a wrong type and a dangling dependency.
        (ws / "specs" / "app.yaml").write_text(
            service("db", podman.image, extra="  bogusField: 1\n  replicas: many\n"))
        (ws / "specs" / "more.yaml").write_text(
            service("web", podman.image, depends=["nowhere"]))
        check = cli(podman, ws, "validate")
        assert check.returncode == 1, check.stdout + check.stderr

    done = cli(podman, ws, "destroy", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Destroy complete: 0 added, 0 changed, 4 destroyed." in done.stdout, done.stdout
    assert _podman_names(podman, c) == ([], [])
    assert state(ws)["resources"] == {}
    verify = cli(podman, ws, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
