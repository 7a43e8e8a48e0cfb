"""Drift in a workspace whose state file is gone while its containers run: not "no
drift" (exit 0), but the error plan gives, naming the lineage and the way back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PodmanHarness

from docklock.engine import Context
from docklock.engine import apply as engine_apply
from docklock.engine import drift as engine_drift
from docklock.errors import StateError

pytestmark = pytest.mark.podman

CLUSTER = "driftlost"


def test_drift_without_state_names_the_lost_lineage(podman_harness: PodmanHarness,
                                                    tmp_path: Path) -> None:
    if podman_harness.process is None or podman_harness.process.poll() is not None:
        podman_harness.start_service()
    (tmp_path / "specs").mkdir()
    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {CLUSTER}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    (tmp_path / "specs" / "app.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
        f"  image: {podman_harness.image}\n"
        "  command: [httpd, -f, -p, '8080', -h, /www]\n  stopTimeout: 0\n")
    ctx = Context.find(tmp_path, podman_url=podman_harness.url)
    try:
        assert engine_apply.apply(ctx).ok
        state = tmp_path / ".docklock" / "state.json"
        lineage = json.loads(state.read_text())["lineage"]
        assert not engine_drift.drift(ctx).has_drift
        saved = state.read_bytes()
        state.unlink()
        with pytest.raises(StateError) as caught:
            engine_drift.drift(ctx)
        assert lineage in caught.value.message
        assert f"{CLUSTER}-default-web-1" in caught.value.message
        assert "state.json" in caught.value.hint
        assert not state.exists()  # drift wrote no state
        state.write_bytes(saved)
        assert not engine_drift.drift(ctx).has_drift
    finally:
        podman_harness.remove_all()
