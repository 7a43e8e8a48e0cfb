"""Issue 14, must show 2: two clones of one workspace on the postgres backend (separate
folders holding only what git carries: docklock.yaml, specs/, docklock.pub), one
database, real Podman, the CLI.

- clone A applies; clone B, without any private key, plans "No changes" (exit 0 with
  --detailed-exitcode) and its drift exits 0; an out-of-band stop makes B's drift exit 2
  naming the container;
- two simultaneous applies (A, and clone C holding the team key through `keys export` /
  `keys import`): one proceeds, the other exits 1 at once naming the holder (pid, host,
  command);
- kill -9 of an apply holding the lock: the next apply gets the lock within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from backend_helpers import Workspace, WorkspaceFactory, web_and_api, workspace_factory
from conftest import PodmanHarness

pytestmark = [pytest.mark.podman, pytest.mark.postgres]
__all__ = ["workspace_factory"]  # the fixture, imported for pytest to find

NAME = "team"
WEB1, WEB2 = f"{NAME}-default-web-1", f"{NAME}-default-web-2"


def _race(*procs: subprocess.Popen[str], timeout: float = 300
          ) -> list[tuple[int, float, str, str]]:
    """Wait for every process; (exit code, seconds until it ended, stdout, stderr)."""
    start = time.monotonic()
    ended: dict[int, float] = {}
    while len(ended) < len(procs):
        assert time.monotonic() - start < timeout, "the applies did not finish"
        for i, proc in enumerate(procs):
            if i not in ended and proc.poll() is not None:
                ended[i] = time.monotonic() - start
        time.sleep(0.05)
    results = []
    for i, proc in enumerate(procs):
        out, err = proc.communicate()
        results.append((proc.returncode, ended[i], out, err))
    return results


def _no_changes(ws: Workspace) -> None:
    plan = ws("plan", "--detailed-exitcode")
    assert "No changes." in plan.stdout, plan.stdout
    assert ws("drift").returncode == 0


def test_two_clones_one_database(podman: PodmanHarness, workspace_factory: WorkspaceFactory,
                                 tmp_path: Path) -> None:
    a = workspace_factory(NAME, "postgres", web_and_api(podman.image), folder="a")
    a("apply", "--auto-approve")
    assert (a.root / "docklock.pub").exists()  # committed with the specs

    # Clone B: a teammate's (or CI's) fresh checkout, no private key anywhere.
    b = a.clone(tmp_path / "b")
    plan = b("plan", "--detailed-exitcode")
    assert "No changes." in plan.stdout
    assert "adopt" not in plan.stdout.lower()
    drift = b("drift")
    assert drift.returncode == 0
    assert not (b.root / ".docklock" / "keys" / "signing.key").exists()
    assert not (b.root / ".docklock" / "state.json").exists()
    assert json.loads(b("ledger", "verify", "--json").stdout)["ok"]

    # Out of band: B's drift sees it (exit 2, naming the container); A repairs it and
    # B sees the repair: both read the one state in the database.
    podman.podman("stop", "-t", "0", WEB2)
    drifted = b("drift", ok=None)
    assert drifted.returncode == 2, (drifted.stdout, drifted.stderr)
    assert WEB2 in drifted.stdout
    assert WEB1 not in drifted.stdout
    a("apply", "--auto-approve")
    _no_changes(b)

    # Clone C: a second operator holding the team key (keys export -> keys import).
    c = a.clone(tmp_path / "c")
    a("keys", "export", str(tmp_path / "team.key"))
    c("keys", "import", str(tmp_path / "team.key"))

    # A change merged in both clones whose apply is slow (httpd starts after 4 s and the
    # apply is health-gated): A and C apply at the same moment.
    slow = web_and_api(podman.image, env={"ROUND": "2"}, slow_start=4)
    for clone in (a, b, c):  # the change is merged: every clone pulls it
        clone.write_specs(slow)
    procs = (a.start("apply", "--auto-approve"), c.start("apply", "--auto-approve"))
    results = _race(*procs)
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    winner = 0 if results[0][0] == 0 else 1
    loser = 1 - winner
    _, lost_after, _, lost_err = results[loser]
    _, won_after, won_out, _ = results[winner]
    assert "Apply complete: 2 added, 0 changed, 2 destroyed." in won_out, won_out
    assert "state is locked" in lost_err, lost_err
    assert f"held by pid {procs[winner].pid} on {socket.gethostname()} running 'docklock apply'" \
        in lost_err, lost_err
    assert "force-unlock" in lost_err  # the hint names the way out if it is stuck
    # "at once": it did not wait for the winner (which needs > 8 s for two replicas).
    assert won_after > 8
    assert lost_after < won_after - 4, (lost_after, won_after)
    _no_changes(b)

    # kill -9 of the holder: its PostgreSQL session ends and the lock with it.
    slower = web_and_api(podman.image, env={"ROUND": "3"}, slow_start=4)
    for clone in (a, b, c):
        clone.write_specs(slower)
    killed = c.start("apply", "--auto-approve")
    row = a.wait_for_lock_holder(killed.pid)
    assert row[2] == "docklock apply"
    time.sleep(1.5)  # mid-apply: a replica is being replaced
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    stale = a.lock_holder()
    assert stale is not None
    assert stale[0] == killed.pid  # the row stays behind; it does not hold the lock
    start = time.monotonic()
    after = a("apply", "--auto-approve", "--lock-timeout", "5s")
    assert "Apply complete" in after.stdout, after.stdout
    assert time.monotonic() - start < 120
    # --lock-timeout 5s bounds the wait: had the dead holder's lock survived, apply would
    # have failed after 5 s with "state is locked" instead.
    assert "state is locked" not in after.stderr
    assert a.lock_holder() is None  # released at the end of the apply
    _no_changes(b)
    env = podman.podman("inspect", WEB1, "--format",
                        "{{range .Config.Env}}{{println .}}{{end}}").stdout
    assert "ROUND=3" in env
    assert json.loads(b("ledger", "verify", "--json").stdout)["ok"]
