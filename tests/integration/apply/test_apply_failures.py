"""When things go wrong: drift behind DockLock's back, a service that dies at once, a
SIGKILL in the middle of a wave, and two applies racing for the lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from applyhelp import (
    apply_ok,
    cli,
    cname,
    ids,
    make_workspace,
    recorded,
    service,
    state,
    statuses,
    three_tier,
    write_specs,
)
from conftest import PodmanHarness

pytestmark = pytest.mark.podman


def test_container_removed_behind_our_back_is_drift_then_restored(
        podman: PodmanHarness, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "drifty", three_tier(podman.image, web_replicas=2))
    apply_ok(podman, ws)
    clean = cli(podman, ws, "drift")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No drift" in clean.stdout

    victim = cname("drifty", "web", 2)
    podman.podman("rm", "-f", "-t", "0", victim)
    found = cli(podman, ws, "drift")
    assert found.returncode == 2, found.stdout + found.stderr
    assert victim in found.stdout
    assert "removed" in found.stdout
    as_json = cli(podman, ws, "drift", "--json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert [(i["kind"], i["name"]) for i in report["items"]] == [("removed", victim)]

    # a stopped container is drift too, and apply starts it again
    podman.podman("stop", "-t", "0", cname("drifty", "db"))
    stopped = json.loads(cli(podman, ws, "drift", "--json").stdout)
    assert ("stopped", cname("drifty", "db")) in [(i["kind"], i["name"])
                                                  for i in stopped["items"]]

    fixed = apply_ok(podman, ws)
    assert f"+ container {victim} " in fixed.stdout
    assert f"~ container {cname('drifty', 'db')} " in fixed.stdout
    after = cli(podman, ws, "drift")
    assert after.returncode == 0, after.stdout
    assert all(s == "running" for s in statuses(podman, "drifty").values())


def test_unmanaged_container_with_our_labels_is_drift(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "squat", service("db", podman.image))
    apply_ok(podman, ws)
    podman.podman("run", "-d", "--name", "squatter", "--label",
                  "io.docklock.managed-by=docklock", "--label", "io.docklock.cluster=squat",
                  "--label", "io.docklock.address=Service/default/ghost", podman.image,
                  "sleep", "600")
    found = cli(podman, ws, "drift", "--json")
    assert found.returncode == 2
    items = json.loads(found.stdout)["items"]
    assert [(i["kind"], i["name"], i["address"]) for i in items] == [
        ("unmanaged", "squatter", "Service/default/ghost")]


def test_service_that_exits_at_once_fails_and_blocks_its_dependents(
        podman: PodmanHarness, tmp_path: Path) -> None:
    broken = '[sh, -c, "echo api cannot start >&2; exit 3"]'
    ws = make_workspace(tmp_path / "ws", "broken",
                        three_tier(podman.image, api_entrypoint=broken))
    failed = cli(podman, ws, "apply", "--auto-approve")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Service/default/api" in failed.stderr
    assert "exited with code 3" in failed.stderr
    assert "api cannot start" in failed.stderr  # the container's own last words
    # db, and the api container that was created before it exited, count as added:
    # the summary counts what happened in Podman (issue 11 D27)
    assert "Apply failed: 2 added, 0 changed, 0 destroyed; 1 failed, 1 not attempted." \
        in failed.stdout
    assert "not attempted" in failed.stdout
    assert cname("broken", "web") in failed.stdout
    # the dependent was never created; what was made is recorded
    live = statuses(podman, "broken")
    assert cname("broken", "web") not in live
    assert live[cname("broken", "db")] == "running"
    assert live[cname("broken", "api")] == "exited"
    assert set(recorded(ws)) == {f"container:{cname('broken', 'db')}",
                                 f"container:{cname('broken', 'api')}"}

    write_specs(ws, three_tier(podman.image))
    fixed = apply_ok(podman, ws)
    assert "Apply complete: 2 added, 0 changed, 1 destroyed." in fixed.stdout
    assert all(s == "running" for s in statuses(podman, "broken").values())
    assert len(statuses(podman, "broken")) == 3
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0


def test_health_timeout_names_the_dependency_and_its_last_output(
        podman: PodmanHarness, tmp_path: Path) -> None:
    # db serves nothing on 8080: its healthcheck fails until Podman calls it unhealthy.
    specs = "---\n".join([
        service("db", podman.image, command='[sleep, "600"]'),
        service("api", podman.image, depends=["db"]),
    ])
    ws = make_workspace(tmp_path / "ws", "sick", specs)
    failed = cli(podman, ws, "apply", "--auto-approve")
    assert failed.returncode == 1
    assert "Service/default/db" in failed.stderr
    assert "unhealthy" in failed.stderr
    assert "last health output" in failed.stderr
    assert "Connection refused" in failed.stderr or "can't connect" in failed.stderr
    assert cname("sick", "api") not in statuses(podman, "sick")


def _apply_process(podman: PodmanHarness, ws: Path, *extra: str) -> subprocess.Popen[str]:
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    return subprocess.Popen([exe, "apply", "--auto-approve", "-C", str(ws), *extra],
                            env=podman.cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_in_the_middle_of_a_wave_then_apply_converges(
        podman: PodmanHarness, tmp_path: Path) -> None:
    names = [f"s{i:02d}" for i in range(10)]
    specs = "---\n".join(service(n, podman.image, command='[sleep, "600"]', health=False)
                         for n in names)
    ws = make_workspace(tmp_path / "ws", "crash", specs)
    proc = _apply_process(podman, ws, "--parallelism", "2")
    deadline = time.monotonic() + 120
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = podman.containers("io.docklock.cluster=crash")
        if len(seen) >= 2 or proc.poll() is not None:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= len(seen) < 10, f"the kill did not land mid-wave: {seen}"
    time.sleep(0.5)  # let Podman finish a create that was in flight
    half = len(podman.containers("io.docklock.cluster=crash"))
    assert half < 10
    recorded_before = state(ws)["serial"] if (ws / ".docklock/state.json").exists() else 0
    assert recorded_before < 10

    again = apply_ok(podman, ws)
    expected = {cname("crash", n) for n in names}
    live = statuses(podman, "crash")
    assert set(live) == expected  # no duplicates, no orphans
    assert all(s == "running" for s in live.values())
    assert set(recorded(ws)) == {f"container:{n}" for n in expected}
    assert recorded(ws) == {f"container:{n}": i for n, i in ids(podman, "crash").items()}
    assert "Apply complete" in again.stdout
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0


def test_two_applies_at_once_one_waits_for_nobody(podman: PodmanHarness,
                                                  tmp_path: Path) -> None:
    slow = service("slow", podman.image,
                   command='[sh, -c, "sleep 3; exec httpd -f -p 8080 -h /www"]',
                   extra="")
    slow = slow.replace("retries: 3", "retries: 10")
    ws = make_workspace(tmp_path / "ws", "race", slow)
    first = _apply_process(podman, ws)
    lock = ws / ".docklock" / "state.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if lock.exists() and b"pid" in lock.read_bytes():
            break
        time.sleep(0.02)
    holder = json.loads(lock.read_text())
    assert holder["pid"] == first.pid
    started = time.monotonic()
    second = cli(podman, ws, "apply", "--auto-approve")
    took = time.monotonic() - started
    assert second.returncode == 1
    assert "state is locked" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "docklock apply" in second.stderr
    assert took < 10, f"the second apply waited {took:.1f}s instead of failing at once"
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, out + err
    assert "Apply complete: 1 added" in out
    assert len(ids(podman, "race")) == 1
