"""Drift sees every field Podman lets someone change after apply (issue 11 C12).

One applied workspace, one out-of-band change per service made with the podman CLI,
then `docklock drift` must exit 2 naming each object and the changed field, and
`docklock cluster health` must agree (same live view, same judge). A clean run first
proves the real listing of ports, mounts, networks and aliases is not misread.

Published ports and mounts cannot be changed on an existing container with Podman 4.3
(no CLI for it), so the clean run is their real-Podman test; their drift rules are
tested as data in tests/unit/apply/test_drift_detect.py, as is `podman update`, which
Podman 4.3 applies to the cgroup without reporting it through inspect or stats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from applyhelp import apply_ok, cli, cname, make_workspace, service
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

C = "drf"
NET = f"{C}-default-backend"
FRONT = f"{C}-default-front"
SLEEP = '[sleep, "600"]'


def _specs(image: str) -> str:
    net = "apiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: %s}\n"
    vol = "apiVersion: docklock.io/v1\nkind: Volume\nmetadata: {name: data}\n"
    sick = ("apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: sick}\nspec:\n"
            f"  image: {image}\n"
            '  command: [sh, -c, "touch /tmp/ok && exec sleep 600"]\n'
            "  stopTimeout: 0\n"
            "  healthcheck: {command: [test, -f, /tmp/ok], interval: 1s, retries: 1, "
            "timeout: 2s}\n")
    return "---\n".join([
        net % "backend", net % "front", vol,
        service("web", image, health=False, command=SLEEP,
                extra="  networks: [backend, front]\n"
                      "  restart: on-failure\n"
                      "  ports: [{container: 8080, host: 18471}]\n"
                      "  volumes: [{name: data, path: /data}]\n"),
        service("cut", image, health=False, command=SLEEP,
                extra="  networks: [backend, front]\n"),
        service("joined", image, health=False, command=SLEEP,
                extra="  networks: [backend]\n"),
        service("aliased", image, health=False, command=SLEEP,
                extra="  networks: [backend]\n"),
        service("stopped", image, health=False, command=SLEEP),
        service("paused", image, health=False, command=SLEEP),
        service("renamed", image, health=False, command=SLEEP),
        sick,
    ])


def _items(report: dict[str, object]) -> dict[str, tuple[str, tuple[str, ...]]]:
    items = report["items"]
    assert isinstance(items, list)
    return {i["name"]: (i["kind"], tuple(i["fields"])) for i in items}


def test_drift_names_each_field_changed_out_of_band(podman: PodmanHarness,
                                                    tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", C, _specs(podman.image))
    apply_ok(podman, ws)

    clean = cli(podman, ws, "drift", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["items"] == []
    # The list call plus one inspect per running container (aliases, limits).
    assert report["api_calls"] == 3 + 8, report["api_calls"]
    healthy = cli(podman, ws, "cluster", "health")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr

    podman.podman("network", "disconnect", FRONT, cname(C, "cut"))
    podman.podman("network", "connect", FRONT, cname(C, "joined"))
    podman.podman("network", "disconnect", NET, cname(C, "aliased"))
    podman.podman("network", "connect", "--alias", "db", NET, cname(C, "aliased"))
    podman.podman("stop", "-t", "0", cname(C, "stopped"))
    podman.podman("pause", cname(C, "paused"))
    podman.podman("rename", cname(C, "renamed"), "not-renamed-by-docklock")
    podman.podman("exec", cname(C, "sick"), "rm", "/tmp/ok")
    podman.podman("healthcheck", "run", cname(C, "sick"), check=False)

    drift = cli(podman, ws, "drift", "--json")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    found = _items(json.loads(drift.stdout))
    assert found == {
        cname(C, "cut"): ("changed", ("networks",)),
        cname(C, "joined"): ("changed", ("networks",)),
        cname(C, "aliased"): ("changed", ("aliases",)),
        cname(C, "stopped"): ("stopped", ("status",)),
        cname(C, "paused"): ("stopped", ("status",)),
        cname(C, "renamed"): ("changed", ("name",)),
        cname(C, "sick"): ("unhealthy", ("health",)),
    }, found
    text = cli(podman, ws, "drift")
    assert text.returncode == 2
    assert f"not connected to network {FRONT}" in text.stdout
    assert f"connected to network {FRONT}, not recorded" in text.stdout
    assert f"network {NET}: alias db added outside DockLock" in text.stdout
    assert "renamed to not-renamed-by-docklock" in text.stdout
    assert "--replace Service/default/cut" in text.stdout

    # `cluster health` judges the same live view with the same function.
    health = cli(podman, ws, "cluster", "health", "--json")
    assert health.returncode == 2, health.stdout + health.stderr
    body = json.loads(health.stdout)
    assert body["healthy"] is False
    assert _items(body["drift"]) == found
    assert "drift in 7 object(s)" in cli(podman, ws, "cluster", "health").stdout

    # The way back drift points to works: apply (which restarts, unpauses and puts the
    # recorded name back) with the --replace drift prints for what plan cannot see.
    replace = [a for line in text.stdout.splitlines() if "--replace" in line
               for a in line.split("--replace ")[1:]]
    replace = [a.strip().rstrip("`.").strip() for a in replace]
    assert sorted(replace) == ["Service/default/aliased", "Service/default/cut",
                               "Service/default/joined", "Service/default/sick"]
    fixed = cli(podman, ws, "apply", "--auto-approve",
                *[x for a in replace for x in ("--replace", a)])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    after = cli(podman, ws, "drift")
    assert after.returncode == 0, after.stdout + after.stderr
    assert cli(podman, ws, "cluster", "health").returncode == 0
