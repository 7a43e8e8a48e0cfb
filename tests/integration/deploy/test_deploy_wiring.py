"""After `docklock deploy --replicas 3`, plain plan, apply, cluster health and drift keep
the deployed replicas (the overrides wired into the engine, ADR 0014); --reset goes back.
Goes to tests/integration/deploy/test_deploy_wiring.py once cluster-wiring.diff is applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PodmanHarness
from test_deploy_podman import CLUSTER, _cli, _running, _workspace

pytestmark = pytest.mark.podman


def test_plain_commands_honour_the_override(podman: PodmanHarness, tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", podman.image)
    (ws / "specs" / "fixed.yaml").unlink()
    first = _cli(podman, ws, "deploy", "--file", "specs/api.yaml", "--replicas", "3",
                 "--auto-approve")
    assert first.returncode == 0, first.stderr
    plan = _cli(podman, ws, "plan")
    assert plan.returncode == 0, plan.stderr
    assert "deploy override in effect: Service/default/api replicas 3 (spec: 2" in plan.stdout
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in plan.stdout  # other + network
    apply = _cli(podman, ws, "apply", "--auto-approve")
    assert apply.returncode == 0, apply.stderr
    assert _running(podman, "api") == [f"{CLUSTER}-default-api-{i}" for i in (1, 2, 3)]
    again = _cli(podman, ws, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    health = _cli(podman, ws, "cluster", "health")
    assert health.returncode == 0, health.stdout
    drift = _cli(podman, ws, "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    reset = _cli(podman, ws, "deploy", "--file", "specs/api.yaml", "--reset", "--auto-approve")
    assert reset.returncode == 0, reset.stderr
    assert _running(podman, "api") == [f"{CLUSTER}-default-api-{i}" for i in (1, 2)]
    assert _cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0
