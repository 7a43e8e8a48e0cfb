"""Issue 11 D27 on real Podman: Podman goes away mid-apply, and the summary still counts
what happened.

The test runs its own `podman system service` on the harness's store (so killing it
leaves the harness's service alone). Two services are replaced create-before-destroy:
each old container is renamed aside, the new one created and started, and then apply
waits for it to become healthy (it never does). The service is SIGKILLed then. The apply fails, and
its result must count the two containers created and the two old ones left under their
retired names (it used to say "0 added, 0 changed"). With Podman back, apply converges.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from applyhelp import make_workspace, service, statuses, write_specs
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

SLEEPER = '[sleep, "600"]'
# Never passes, and takes its time saying so: apply is still waiting when Podman goes.
NEVER_HEALTHY = '  healthcheck: {command: [sh, -c, "exit 1"], interval: 1s, retries: 60}\n'


class OwnService:
    """A private Podman API service on the harness's store, to be killed by the test."""

    def __init__(self, harness: PodmanHarness, folder: Path) -> None:
        self.harness = harness
        self.sock = folder / "own.sock"
        self.url = f"unix://{self.sock}"
        self.log = folder / "own-service.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.sock.exists():
            self.sock.unlink()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["podman", *self.harness.global_args, "system", "service", "--time=0",
                 self.url], env=self.harness.env, stdout=log, stderr=log,
                start_new_session=True)
        deadline = time.monotonic() + 30
        while not self.sock.exists():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "own podman service did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def own_service(podman: PodmanHarness, tmp_path: Path) -> Iterator[OwnService]:
    svc = OwnService(podman, tmp_path)
    svc.start()
    try:
        yield svc
    finally:
        svc.kill()


def specs(image: str, version: str, *, extra: str = "") -> str:
    return "---\n".join(service(n, image, command=SLEEPER, health=False,
                                env={"V": f"'{version}'"}, extra=extra) for n in ("a", "b"))


def test_summary_counts_what_happened_when_podman_is_lost(
        podman: PodmanHarness, own_service: OwnService, tmp_path: Path) -> None:
    c = "td27"
    ws = make_workspace(tmp_path / "ws", c, specs(podman.image, "1"))
    env = podman.cli_env(DOCKLOCK_PODMAN_URL=own_service.url)

    def apply(*extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["apply", "--auto-approve", "-C", str(ws), *extra], env=env,
                       timeout=240)

    first = apply()
    assert first.returncode == 0, first.stdout + first.stderr
    before = {n: podman.podman("inspect", n, "--format", "{{.Id}}").stdout.strip()
              for n in statuses(podman, c)}
    assert len(before) == 2

    write_specs(ws, specs(podman.image, "2", extra=NEVER_HEALTHY))
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    proc = subprocess.Popen([exe, "apply", "--auto-approve", "--json", "-C", str(ws)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Both replacements created and running, both old ones renamed aside: apply now
        # waits for them to become healthy. Kill Podman's API there.
        deadline = time.monotonic() + 60
        while True:
            live = statuses(podman, c)
            old = [n for n in live if "-old-" in n]
            new = [n for n, s in live.items() if "-old-" not in n and s == "running"]
            if len(old) == 2 and len(new) == 2:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, live
            time.sleep(0.05)
        own_service.kill()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    result = json.loads(out)

    # Ground truth from Podman (through the CLI on the store, not the killed service).
    live = statuses(podman, c)
    ids_now = {n: podman.podman("inspect", n, "--format", "{{.Id}}").stdout.strip()
               for n in live}
    created = [n for n, i in ids_now.items() if i not in before.values()]
    retired = [n for n in live if "-old-" in n]
    gone = [n for n, i in before.items() if i not in ids_now.values()]
    assert (len(created), len(retired), len(gone)) == (2, 2, 0), live
    assert (result["added"], result["destroyed"], result.get("renamed_aside")) == (2, 0, 2), \
        result
    assert not result["ok"]
    for o in result["outcomes"]:
        assert o["status"] == "failed", o
        assert o["effects"] == ["renamed", "created", "started"], o
        assert "lost the Podman API" in o["error"] or "Podman" in o["error"], o

    # Podman back, the healthcheck fixed: apply removes the retired containers, converges.
    own_service.start()
    write_specs(ws, specs(podman.image, "3"))
    again = apply()
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(statuses(podman, c)) == [f"{c}-default-a-1", f"{c}-default-b-1"]
    plan = run_cli(["plan", "--detailed-exitcode", "-C", str(ws)], env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
