"""Must-show proofs, real containers: what hardened forbids and what standard allows.

Every check runs a busybox command inside the cage and watches it fail (or succeed)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cage_helpers import Ran, cage, sh, status_fields
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

PROBES = {
    "mount": "mount -t tmpfs none /tmp",
    "unshare": "unshare -U true",
    "unshare_net": "unshare -n true",
    "write_root": "echo x > /probe",
    "write_etc": "echo x > /etc/probe",
    "raise_cap": "setpriv --inh-caps +net_raw --ambient-caps +net_raw true",
    "chown": "touch /tmp/f && chown 1 /tmp/f",
    "ping": "ping -c 1 -W 1 127.0.0.1",
}


def probe(harness: PodmanHarness, level: str, tmp_path: Path) -> tuple[dict[str, int], Ran]:
    """Run every probe in one container; exit codes per probe plus the raw output."""
    script = "; ".join(f"{cmd} >/dev/null 2>/tmp/err.{name}; echo {name}=$?; "
                       f"cat /tmp/err.{name} >&2" for name, cmd in PROBES.items())
    script = "cat /proc/self/status; " + script
    ran = sh(harness, cage(level, tmp_path), script, cages_dir=tmp_path)
    assert ran.exit_code == 0, ran.stderr
    codes = {}
    for line in ran.stdout.splitlines():
        name, sep, code = line.partition("=")
        if sep and name in PROBES:
            codes[name] = int(code)
    assert set(codes) == set(PROBES), ran.stdout
    return codes, ran


def test_hardened_forbids_everything(podman: PodmanHarness, tmp_path: Path) -> None:
    codes, ran = probe(podman, "hardened", tmp_path)
    status = status_fields(ran.stdout)
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == "0000000000000000"
    assert status["CapBnd"] == "0000000000000000"
    for name in ("mount", "unshare", "unshare_net", "write_root", "write_etc", "raise_cap",
                 "chown", "ping"):
        assert codes[name] != 0, f"{name} succeeded under hardened:\n{ran.stderr}"
    assert "Read-only file system" in ran.stderr  # the write to / hit the read-only root
    assert "unshare(0x10000000): Operation not permitted" in ran.stderr  # seccomp EPERM


def test_standard_allows_what_hardened_forbids(podman: PodmanHarness, tmp_path: Path) -> None:
    codes, ran = probe(podman, "standard", tmp_path)
    status = status_fields(ran.stdout)
    # Standard is still a cage: seccomp filter, no-new-privileges, no capabilities.
    assert status["Seccomp"] == "2"
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == "0000000000000000"
    # ... but its root filesystem is writable and namespaces can be created.
    assert codes["write_etc"] == 0, ran.stderr
    assert codes["unshare"] == 0, ran.stderr
    assert "Read-only file system" not in ran.stderr
    # Capabilities are still dropped: these need CAP_SYS_ADMIN, CAP_SETPCAP, CAP_CHOWN,
    # CAP_NET_RAW.
    for name in ("mount", "raise_cap", "chown", "ping"):
        assert codes[name] != 0, f"{name} succeeded under standard:\n{ran.stderr}"


def test_an_explicit_capability_is_the_only_way_in(podman: PodmanHarness,
                                                   tmp_path: Path) -> None:
    """cap_add is honoured (a CageProfile's capAdd with a reason): ping works with NET_RAW."""
    base = replace(cage("standard", tmp_path), network_none=True)
    without = sh(podman, base, "ping -c 1 -W 2 127.0.0.1", cages_dir=tmp_path)
    with_cap = sh(podman, replace(base, cap_add=("NET_RAW",)), "ping -c 1 -W 2 127.0.0.1",
                  cages_dir=tmp_path)
    assert without.exit_code != 0
    assert with_cap.exit_code == 0, with_cap.stderr
    assert "1 packets received" in with_cap.stdout


def test_hardened_tmp_is_writable_and_limits_are_set(podman: PodmanHarness,
                                                     tmp_path: Path) -> None:
    settings = cage("hardened", tmp_path)
    ran = sh(podman, settings,
             "echo ok > /tmp/x && cat /tmp/x; cat /sys/fs/cgroup/pids/pids.max "
             "/sys/fs/cgroup/pids.max 2>/dev/null; "
             "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max "
             "2>/dev/null; true", cages_dir=tmp_path)
    lines = ran.stdout.split()
    assert lines[0] == "ok"
    assert str(settings.pids_limit) in lines
    assert str(512 * 1024 * 1024) in lines


def test_deterministic_cage_has_no_network(podman: PodmanHarness, tmp_path: Path) -> None:
    ran = sh(podman, cage("deterministic", tmp_path, seed=1),
             "ls /sys/class/net; hostname; date +%Z; umask", cages_dir=tmp_path)
    assert ran.exit_code == 0, ran.stderr
    assert ran.stdout.split() == ["lo", "docklock-cage", "UTC", "0022"]
