"""`drift` while an apply runs (issue 11 D26): it names the apply holding the lock and
exits 1, or waits with --lock-timeout; `status` stays lock-free and says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from applyhelp import cli, cname, make_workspace
from conftest import PodmanHarness, run_cli

from docklock.state import StateStore
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.podman

C = "inflight"
# Healthy only after ~15 s (room for slow CLI start-ups on a busy machine): apply holds
# the lock while it waits, with the container already created (the in-flight object an
# unlocked drift would report).
SLOW = """apiVersion: docklock.io/v1
kind: Service
metadata: {name: slow}
spec:
  image: IMAGE
  command: [sh, -c, "sleep 15 && touch /tmp/ok && exec sleep 600"]
  stopTimeout: 0
  healthcheck: {command: [test, -f, /tmp/ok], interval: 1s, retries: 60, timeout: 2s}
"""


def _wait_for(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_drift_names_the_running_apply_or_waits_for_it(podman: PodmanHarness,
                                                       tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", C, SLOW.replace("IMAGE", podman.image))
    # The executable run_cli uses, started without waiting for it.
    docklock = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    apply = subprocess.Popen([docklock, "apply", "--auto-approve", "-C", str(ws)],
                             env=podman.cli_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        store = StateStore(WorkspacePaths(ws))
        _wait_for("apply to take the lock", lambda: store.active_holder() is not None)
        _wait_for("apply to create its container",
                  lambda: cname(C, "slow") in podman.containers(f"io.docklock.cluster={C}"))
        assert apply.poll() is None, "apply finished before the test could race it"

        busy = cli(podman, ws, "drift")
        assert busy.returncode == 1, busy.stdout + busy.stderr
        assert "docklock apply holds the state lock" in busy.stderr
        assert f"pid {apply.pid}" in busy.stderr
        assert "in-flight objects" in busy.stderr
        assert "--lock-timeout" in busy.stderr
        assert "drift" not in busy.stdout.lower()  # no verdict printed

        # status does not wait and does not block the apply; it says what is going on.
        status = cli(podman, ws, "status", "--json")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "note: docklock apply holds the state lock" in status.stderr
        assert json.loads(status.stdout)["locked_by"]["pid"] == apply.pid

        waited = cli(podman, ws, "drift", "--lock-timeout", "2m")
        assert waited.returncode == 0, waited.stdout + waited.stderr
        assert "No drift" in waited.stdout
        out, err = apply.communicate(timeout=120)
        assert apply.returncode == 0, out + err
    finally:
        if apply.poll() is None:
            apply.kill()
            apply.communicate(timeout=30)
    after = cli(podman, ws, "status", "--json")
    assert json.loads(after.stdout)["locked_by"] is None
    assert "note:" not in after.stderr


def test_drift_refuses_a_held_lock_before_touching_podman(tmp_path: Path) -> None:
    """The lock is checked first: no Podman is needed to be told who holds it."""
    ws = make_workspace(tmp_path / "ws", C, SLOW.replace("IMAGE", "localhost/none:1"))
    env = dict(os.environ, NO_COLOR="1",
               DOCKLOCK_PODMAN_URL=f"unix://{tmp_path}/nothing-here.sock")
    store = StateStore(WorkspacePaths(ws))
    with store.lock(command="docklock apply plan.json") as lock:
        started = time.monotonic()
        held = run_cli(["drift", "-C", str(ws), "--lock-timeout", "1s"], env=env)
        assert time.monotonic() - started >= 1.0
    assert held.returncode == 1, held.stdout + held.stderr
    assert "docklock apply plan.json holds the state lock (waited 1s)" in held.stderr
    assert lock.info.id in held.stderr
    assert lock.info.since in held.stderr
    free = run_cli(["drift", "-C", str(ws)], env=env)
    # Free lock: drift goes on to Podman, which is not there in this test.
    assert "holds the state lock" not in free.stderr
    assert "nothing-here.sock" in free.stderr
