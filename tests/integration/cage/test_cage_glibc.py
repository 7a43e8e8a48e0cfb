"""A multithreaded glibc program under the cages, and why clone3 must get ENOSYS."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from cage_helpers import build_glibc_image, cage, run_in_cage
from conftest import PodmanHarness

from docklock.cage.seccomp import EPERM, profile_bytes, profile_digest, seccomp_profile

pytestmark = pytest.mark.podman


@pytest.fixture
def glibc_image(podman: PodmanHarness) -> str:
    return build_glibc_image(podman)


def test_threads_start_under_hardened(podman: PodmanHarness, glibc_image: str,
                                      tmp_path: Path) -> None:
    ran = run_in_cage(podman, cage("hardened", tmp_path), ["/bin/mt"], cages_dir=tmp_path,
                      image=glibc_image)
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert "threads=8 ok" in ran.stdout
    assert "clone3 errno=38" in ran.stdout  # ENOSYS: glibc fell back to clone
    assert "getrandom errno=0" in ran.stdout  # hardened keeps the kernel's entropy


def test_standard_leaves_clone3_alone(podman: PodmanHarness, glibc_image: str,
                                      tmp_path: Path) -> None:
    ran = run_in_cage(podman, cage("standard", tmp_path), ["/bin/mt"], cages_dir=tmp_path,
                      image=glibc_image)
    assert "threads=8 ok" in ran.stdout
    assert "clone3 errno=22" in ran.stdout  # EINVAL from the kernel: clone3 reached it


def test_deterministic_denies_getrandom_with_enosys(podman: PodmanHarness, glibc_image: str,
                                                    tmp_path: Path) -> None:
    ran = run_in_cage(podman, cage("deterministic", tmp_path, seed=3), ["/bin/mt"],
                      cages_dir=tmp_path, image=glibc_image)
    assert ran.exit_code == 0, ran.stdout
    assert "threads=8 ok" in ran.stdout
    assert "getrandom errno=38" in ran.stdout


def test_clone3_with_eperm_would_break_threads(podman: PodmanHarness, glibc_image: str,
                                               tmp_path: Path) -> None:
    """The counter-proof: the same profile with clone3 → EPERM kills pthread_create."""
    settings = cage("hardened", tmp_path)
    profile = seccomp_profile(settings)
    for rule in profile["syscalls"]:
        if rule["names"] == ["clone3"] or "clone3" in rule["names"]:
            rule["names"] = [n for n in rule["names"] if n != "clone3"]
    profile["syscalls"] = [r for r in profile["syscalls"] if r["names"]]
    profile["syscalls"].append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                                "errnoRet": EPERM})
    path = tmp_path / "eperm-clone3.json"
    path.write_bytes(profile_bytes(profile))
    broken = replace(settings, seccomp_profile_path=str(path),
                     seccomp_digest=profile_digest(profile))
    config_profile = json.loads(path.read_text())
    assert config_profile["defaultErrnoRet"] == 38
    ran = run_in_cage(podman, broken, ["/bin/mt"], cages_dir=None,
                      image=glibc_image)
    assert ran.exit_code == 3, ran.stdout
    assert "pthread_create failed" in ran.stdout
