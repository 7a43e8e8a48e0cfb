"""docklock-launch, the deterministic job's init: the checked-in bytes are what
tools/build-launcher makes from launch.c, and the binary behaves as launch.c says when run
on this (x86-64) host: ASLR off, execvp-like lookup with its exit codes and messages, and
libfaketime kept where a glibc loader exists and this host's libc defines the glibc version
the cage names (DOCKLOCK_FAKETIME_GLIBC), dropped (its LD_PRELOAD element only) where it
does not. Its behaviour inside images (the loader missing, an old libc) is in
tests/integration/cage/test_debian_image.py and test_launcher_glibc.py.
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
HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
PRELOAD = "/.docklock/libfaketime.so.1"  # where the cage binds libfaketime
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
    assert ran.stderr == ("docklock-launch: cannot execute docklock-data: permission denied "
                          "or not a program\n")


def test_script_without_a_shebang_found_in_path_is_not_reported_missing(
        tmp_path: Path) -> None:
    # Executable, but the kernel refuses it (ENOEXEC): found, so 126, never "not found".
    script = tmp_path / "docklock-noshebang"
    script.write_text("echo ran\n")
    script.chmod(0o755)
    ran = launch("--", "docklock-noshebang", env={"PATH": f"/nonexistent/docklock:{tmp_path}"})
    assert ran.returncode == 126
    assert ran.stdout == ""  # not run through a shell either
    assert ran.stderr == (f"docklock-launch: cannot execute {script}: permission denied or "
                          "not a program\n")


def test_a_later_path_folder_still_wins_over_a_denied_one(tmp_path: Path) -> None:
    # execvp: EACCES is remembered and the search goes on.
    denied, good = tmp_path / "denied", tmp_path / "good"
    denied.mkdir()
    good.mkdir()
    (denied / "docklock-prog").write_text("#!/bin/sh\necho denied\n")
    (good / "docklock-prog").write_text("#!/bin/sh\necho good\n")
    (good / "docklock-prog").chmod(0o755)
    ran = launch("--", "docklock-prog", env={"PATH": f"{denied}:{good}"})
    assert (ran.returncode, ran.stdout) == (0, "good\n"), ran.stderr


def test_path_through_a_file_is_not_found_127() -> None:
    ran = launch("--", "/etc/passwd/docklock")  # ENOTDIR
    assert ran.returncode == 127
    assert ran.stderr == "docklock-launch: cannot execute /etc/passwd/docklock: not found\n"


def test_empty_command_name_is_not_found_127(tmp_path: Path) -> None:
    # Without the check, PATH lookup would try to execute each folder itself (EACCES).
    ran = launch("--", "", env={"PATH": str(tmp_path)})
    assert ran.returncode == 127
    assert ran.stderr.endswith(": not found\n")
    assert "permission denied" not in ran.stderr


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


def preload_env(mode: str, glibc: str | None, preload: str) -> dict[str, str]:
    env = {"DOCKLOCK_FAKETIME": mode, "LD_PRELOAD": preload, "FAKETIME": "x"}
    if glibc is not None:
        env["DOCKLOCK_FAKETIME_GLIBC"] = glibc
    return env


def env_lines(env: dict[str, str]) -> list[str]:
    """The environment the command got, as /usr/bin/env prints it (stdout only: glibc
    warns on stderr about preloads that do not exist, which these values never do)."""
    ran = launch("--", "/usr/bin/env", env=env)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.splitlines()


def test_auto_keeps_the_preload_where_libc_defines_the_version_it_needs() -> None:
    assert b"GLIBC_2.34\0" in HOST_LIBC.read_bytes(), (
        f"this test needs a glibc >= 2.34 host ({HOST_LIBC}; Debian 12 has 2.36)")
    lines = env_lines(preload_env("auto", "GLIBC_2.34", f"{PRELOAD} /docklock-none/own.so"))
    assert f"LD_PRELOAD={PRELOAD} /docklock-none/own.so" in lines
    assert "FAKETIME=x" in lines
    assert "DOCKLOCK_FAKETIME_GLIBC=GLIBC_2.34" in lines


def test_auto_drops_the_preload_where_libc_lacks_the_version() -> None:
    assert b"GLIBC_99.0\0" not in HOST_LIBC.read_bytes()
    lines = env_lines(preload_env("auto", "GLIBC_99.0", PRELOAD))
    assert not any(line.startswith(("LD_PRELOAD=", "FAKETIME=")) for line in lines), lines
    assert "DOCKLOCK_FAKETIME=auto" in lines


def test_the_version_must_match_whole() -> None:
    # The launcher looks for the name followed by its NUL: "GLIBC_2.3" is defined (kept);
    # "GLIBC_2.340" only has the defined "GLIBC_2.34" as a prefix (dropped).
    assert "LD_PRELOAD=" + PRELOAD in env_lines(preload_env("auto", "GLIBC_2.3", PRELOAD))
    lines = env_lines(preload_env("auto", "GLIBC_2.340", PRELOAD))
    assert not any(line.startswith("LD_PRELOAD=") for line in lines), lines


def test_dropping_keeps_the_jobs_own_preload_elements() -> None:
    lines = env_lines(preload_env("auto", "GLIBC_99.0", f"{PRELOAD} /x/own.so"))
    assert "LD_PRELOAD=/x/own.so" in lines
    assert not any(line.startswith("FAKETIME=") for line in lines), lines
    # Colons separate too; every libfaketime element goes, each kept one keeps its separator.
    lines = env_lines(preload_env("auto", "GLIBC_99.0",
                                  f"/x/a.so:{PRELOAD} /x/b.so:{PRELOAD}"))
    assert [line for line in lines if line.startswith("LD_PRELOAD=")] == [
        "LD_PRELOAD=/x/a.so /x/b.so"]
    # A look-alike path is the job's own, not libfaketime.
    lines = env_lines(preload_env("auto", "GLIBC_99.0", f"{PRELOAD}.bak"))
    assert f"LD_PRELOAD={PRELOAD}.bak" in lines


def test_always_keeps_everything_even_where_libc_lacks_the_version() -> None:
    lines = env_lines(preload_env("always", "GLIBC_99.0", f"{PRELOAD} /x/own.so"))
    assert f"LD_PRELOAD={PRELOAD} /x/own.so" in lines
    assert "FAKETIME=x" in lines


def test_auto_without_a_version_needs_only_the_loader() -> None:
    assert GLIBC_LOADER.exists()
    for env in (preload_env("auto", None, PRELOAD), preload_env("auto", "", PRELOAD)):
        lines = env_lines(env)
        assert f"LD_PRELOAD={PRELOAD}" in lines
        assert "FAKETIME=x" in lines
