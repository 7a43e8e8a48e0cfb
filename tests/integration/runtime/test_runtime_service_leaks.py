"""Private `podman system service` processes do not outlive a killed DockLock (issue 11 D21).

Real `docklock` processes, each starting a private service on the harness's store (no
DOCKLOCK_PODMAN_URL, no default socket as root here), are killed with SIGKILL or SIGTERM
at random moments: before, during and after the service comes up. After every kill the
service must be gone within seconds (parent-death signal / SIGTERM unwinding), and after
the next start's clean-up no service folder may be left.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness
from test_runtime_private_service import _private_env

from docklock.runtime._services import ENV_RUNTIME_DIR, FOLDER_PREFIX

pytestmark = pytest.mark.podman

ROUNDS = 28  # 20 SIGKILL + 8 SIGTERM
SEED = 1121  # fixed: a failure can be replayed
GONE_WITHIN = 20.0  # seconds for the kernel's SIGTERM to stop a service


def _services_marked(token: str) -> list[int]:
    """Pids of running `podman system service` processes whose env carries `token`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"system" not in argv or b"service" not in argv:
                continue
            if token.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _wait_gone(token: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _services_marked(token)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def leak_env(podman: PodmanHarness, tmp_path: Path) -> Iterator[tuple[dict[str, str], str, Path]]:
    token = f"docklock-leak-probe-{uuid.uuid4().hex}"
    env = _private_env(podman, tmp_path)
    env.pop("DOCKLOCK_PODMAN_URL", None)
    env["DOCKLOCK_LEAK_PROBE"] = token  # inherited by the private service: how we find it
    env["NO_COLOR"] = "1"
    # A short folder: the service's socket path must fit in sun_path (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="dl-rt-"))
    env[ENV_RUNTIME_DIR] = str(root)
    try:
        yield env, token, root
    finally:
        for pid in _services_marked(token):  # only services our own children started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _docklock() -> str:
    return shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")


def test_killed_commands_leave_no_service_and_no_folder(
        leak_env: tuple[dict[str, str], str, Path], tmp_path: Path) -> None:
    env, token, root = leak_env
    if Path("/run/podman/podman.sock").exists() or os.geteuid() != 0:
        pytest.fail("this test needs root without a system Podman socket, so that "
                    "DockLock starts a private service", pytrace=False)
    rng = random.Random(SEED)
    cwd = tmp_path / "nowhere"  # not a workspace: ping uses the default socket
    cwd.mkdir()
    signals = [signal.SIGKILL] * 20 + [signal.SIGTERM] * 8
    rng.shuffle(signals)
    assert len(signals) == ROUNDS
    reached_service = 0
    for i, sig in enumerate(signals):
        proc = subprocess.Popen([_docklock(), "podman", "ping", "--count", "10000",
                                 "--interval", "50ms"], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.1, 4.0))
        if _services_marked(token):
            reached_service += 1
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        if sig == signal.SIGTERM:
            # SIGTERM unwinds like Ctrl-C (130); only one that lands before DockLock
            # has set anything up kills it outright.
            assert proc.returncode in (130, -signal.SIGTERM), (proc.returncode, out, err)
        left = _wait_gone(token, GONE_WITHIN)
        assert not left, (f"round {i} ({sig.name}): podman system service {left} "
                          f"outlived DockLock; stderr: {err.decode(errors='replace')}")
    # The kills landed at every stage, including while a service was serving.
    assert reached_service >= ROUNDS // 3, reached_service

    done = subprocess.run([_docklock(), "podman", "ping"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "private service" in done.stdout
    assert not _services_marked(token)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(FOLDER_PREFIX)) == []
