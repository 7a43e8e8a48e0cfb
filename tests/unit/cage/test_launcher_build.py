"""docklock-launch, the deterministic job's init: the checked-in bytes are what
tools/build-launcher makes from launch.c, and the binary behaves as launch.c says when run
on this (x86-64) host: ASLR off, execvp-like lookup with its exit codes, and libfaketime
kept where a glibc loader exists. Its behaviour inside images (the loader missing) is in
tests/integration/cage/test_debian_image.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = REPO / "docklock" / "cage" / "data" / "docklock-launch-x86_64"
GLIBC_LOADER = Path("/lib64/ld-linux-x86-64.so.2")
ADDR_NO_RANDOMIZE = "00040000"  # /proc/self/personality prints the persona in hex


def launch(*args: str, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAUNCHER), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=30, check=False)


def test_checked_in_launcher_is_what_build_launcher_makes(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        # A test dependency (./dev test installs it): failing says so; skipping would hide
        # a launcher that no longer matches its source.
        pytest.fail("gcc is not installed: the launcher rebuild check needs gcc and "
                    "libc6-dev (./dev test installs them; apt-get install gcc libc6-dev)",
                    pytrace=False)
    env = dict(os.environ)
    env.pop("CC", None)  # the checked-in bytes are gcc's
    out = tmp_path / "docklock-launch-x86_64"
    built = subprocess.run([str(REPO / "tools" / "build-launcher"), str(out)], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert built.returncode == 0, f"tools/build-launcher failed:\n{built.stderr}"
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()[:1]
    assert out.read_bytes() == LAUNCHER.read_bytes(), (
        f"{LAUNCHER.relative_to(REPO)} is not what tools/build-launcher makes from launch.c "
        f"with {version}: rebuild it (tools/build-launcher) and commit the bytes")
    assert os.access(out, os.X_OK)


def test_aslr_is_off_for_the_command_and_its_children() -> None:
    # cat is a grandchild of the launcher: the persona is inherited across fork and exec.
    ran = launch("--", "sh", "-c", "cat /proc/self/personality")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == ADDR_NO_RANDOMIZE


def test_runs_the_command_without_the_double_dash_too() -> None:
    ran = launch("sh", "-c", "echo $0 $1", "zero", "one")
    assert (ran.returncode, ran.stdout) == (0, "zero one\n")


def test_missing_command_exits_127() -> None:
    ran = launch("--", "docklock-no-such-program")
    assert ran.returncode == 127
    assert "docklock-no-such-program: not found in PATH" in ran.stderr


def test_absolute_path_that_does_not_exist_exits_127() -> None:
    ran = launch("--", "/nonexistent/docklock-no-such-program")
    assert ran.returncode == 127
    assert ": not found" in ran.stderr


def test_absolute_non_executable_path_exits_126(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("not a program\n")
    data.chmod(0o644)
    ran = launch("--", str(data))
    assert ran.returncode == 126
    assert f"cannot execute {data}" in ran.stderr


def test_no_command_exits_127() -> None:
    for args in ((), ("--",)):
        ran = launch(*args)
        assert ran.returncode == 127, args
        assert "no command to run" in ran.stderr


def test_path_with_an_empty_element_and_a_missing_folder_still_finds_the_program(
        tmp_path: Path) -> None:
    true = shutil.which("true")
    assert true is not None
    folder = str(Path(true).parent)
    env = {"PATH": f":/nonexistent/docklock:{folder}"}
    # cwd is an empty folder: the empty element (the current folder) finds nothing there.
    ran = launch("--", "true", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    ran = launch("--", "sh", "-c", "echo ran", env=env, cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, "ran\n"), ran.stderr


def test_empty_path_element_means_the_current_folder(tmp_path: Path) -> None:
    script = tmp_path / "docklock-here"
    script.write_text("#!/bin/sh\necho here\n")
    script.chmod(0o755)
    ran = launch("--", "docklock-here", env={"PATH": "/nonexistent/docklock:"}, cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, "here\n"), ran.stderr


def test_non_executable_file_found_in_path_exits_126(tmp_path: Path) -> None:
    (tmp_path / "docklock-data").write_text("not a program\n")
    ran = launch("--", "docklock-data", env={"PATH": str(tmp_path)})
    assert ran.returncode == 126
    assert "docklock-data: permission denied" in ran.stderr


def test_faketime_auto_keeps_the_preload_where_the_glibc_loader_exists() -> None:
    assert GLIBC_LOADER.exists(), f"this test needs an x86-64 glibc host ({GLIBC_LOADER})"
    # LD_PRELOAD is empty: the loader has nothing to preload and prints no warning.
    env = {"DOCKLOCK_FAKETIME": "auto", "LD_PRELOAD": "", "FAKETIME": "x"}
    ran = launch("--", "/usr/bin/env", env=env)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "LD_PRELOAD=" in lines
    assert "FAKETIME=x" in lines
    assert "DOCKLOCK_FAKETIME=auto" in lines
