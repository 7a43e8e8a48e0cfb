"""A converted compose project runs: `docklock import compose` then `docklock apply` on
real Podman (tests/corpus/compose/busybox-stack: db healthy → migrate job completed →
two web replicas), then a plan shows no changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

STACK = Path(__file__).resolve().parents[2] / "corpus" / "compose" / "busybox-stack"


def test_converted_project_applies_and_runs(podman: PodmanHarness, tmp_path: Path) -> None:
    ws = tmp_path / "stack"
    shutil.copytree(STACK, ws)
    env = podman.cli_env(IMAGE=podman.image, PROJECT="cimport")
    done = run_cli(["import", "compose", str(ws / "compose.yaml")], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-2] == "mapped 24 of 24 keys (100%)", done.stdout
    assert (ws / "specs" / "migrate.yaml").read_text().count("kind: Job") == 1

    applied = run_cli(["apply", "--auto-approve", "-C", str(ws)], env=env, timeout=240)
    assert applied.returncode == 0, applied.stdout + applied.stderr

    out = podman.podman("ps", "-a", "--filter", "label=io.docklock.cluster=cimport",
                        "--format", "json").stdout
    state = {c["Names"][0]: c for c in json.loads(out or "[]")}
    assert {n: c["State"] for n, c in state.items()} == {
        "cimport-default-db-1": "running", "cimport-default-migrate-1": "exited",
        "cimport-default-web-1": "running", "cimport-default-web-2": "running"}
    assert "migrated" in podman.podman("logs", "cimport-default-migrate-1").stdout
    # the job wrote into the named volume the db mounts
    schema = podman.podman("exec", "cimport-default-db-1", "cat", "/data/schema").stdout
    assert schema.strip() == "schema v1"
    inspect = json.loads(podman.podman("inspect", "cimport-default-web-1").stdout)[0]
    assert "MODE=compose" in inspect["Config"]["Env"]
    assert inspect["Config"]["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert "com.example.role: database" in (ws / "specs" / "db.yaml").read_text()

    again = run_cli(["plan", "--detailed-exitcode", "-C", str(ws)], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
