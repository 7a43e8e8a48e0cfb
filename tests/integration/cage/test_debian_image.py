"""The Debian 12 + Python test image (tools/debian-image) and docklock-launch in real images.

The image is what deterministic-job tests run Python in: glibc, so libfaketime can be
preloaded, and Debian's dynamically linked busybox (not busybox-static, which no preload
reaches). The launcher runs as Podman's init (`--init --init-path`); it turns ASLR off
with personality(), which Podman's default seccomp profile denies, so THIS file runs it
unconfined (the cage's own profile allows exactly that call, and is tested elsewhere).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cage_helpers import build_python_image
from conftest import PYTHON_IMAGE, REPO, PodmanHarness

pytestmark = pytest.mark.podman

LAUNCHER = REPO / "docklock" / "cage" / "data" / "docklock-launch-x86_64"
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
PRELOAD = "/.docklock/libfaketime.so.1"  # where the cage binds it: the launcher drops only this
GLIBC_LOADER = "/lib64/ld-linux-x86-64.so.2"

# Prints an ELF file's program interpreter (PT_INTERP), or "static" when it has none.
ELF_INTERP = r"""
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:4] == b"\x7fELF" and data[4] == 2, "not a 64-bit ELF file"
phoff = struct.unpack_from("<Q", data, 0x20)[0]
size, count = struct.unpack_from("<HH", data, 0x36)
for i in range(count):
    at = phoff + i * size
    if struct.unpack_from("<I", data, at)[0] == 3:  # PT_INTERP
        offset = struct.unpack_from("<Q", data, at + 8)[0]
        length = struct.unpack_from("<Q", data, at + 32)[0]
        print(data[offset:offset + length].rstrip(b"\0").decode())
        break
else:
    print("static")
"""


def run(harness: PodmanHarness, image: str, *command: str,
        options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return harness.podman("run", "--rm", "--network", "none", *options, image, *command,
                          check=False)


def launched(harness: PodmanHarness, image: str, script: str, *,
             faketime: str | None) -> subprocess.CompletedProcess[str]:
    """Run `sh -c script` under docklock-launch with the host's libfaketime preloaded."""
    assert LIBFAKETIME.exists(), (
        f"{LIBFAKETIME} is missing: ./dev setup installs libfaketime")
    options = ["--init", "--init-path", str(LAUNCHER),
               "--security-opt", "seccomp=unconfined",
               "-v", f"{LIBFAKETIME}:{PRELOAD}:ro",
               "-e", f"LD_PRELOAD={PRELOAD}", "-e", "FAKETIME=@2000-01-01 00:00:00"]
    if faketime is not None:
        options += ["-e", f"DOCKLOCK_FAKETIME={faketime}"]
    return run(harness, image, "sh", "-c", script, options=tuple(options))


def test_image_is_built_into_the_harness_store(podman: PodmanHarness,
                                                python_image: str) -> None:
    assert python_image == PYTHON_IMAGE
    inspect = podman.podman("image", "inspect", python_image)
    config = json.loads(inspect.stdout)[0]["Config"]
    assert config["Cmd"] == ["/usr/bin/python3"]
    assert any(e.startswith("PATH=") and "/usr/bin" in e for e in config["Env"])
    image_id = json.loads(inspect.stdout)[0]["Id"]
    # Idempotent: a second build keeps the image (no new import, same id).
    assert build_python_image(podman) == PYTHON_IMAGE
    again = json.loads(podman.podman("image", "inspect", python_image).stdout)[0]["Id"]
    assert again == image_id


def test_python_and_its_standard_library_run(podman: PodmanHarness,
                                              python_image: str) -> None:
    ran = run(podman, python_image, "python3", "-c",
              "import uuid, tempfile, random, sys; "
              "print(sys.version_info[:2], len(str(uuid.uuid4())), "
              "random.Random(1).randrange(10**6), tempfile.gettempdir())")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "(3, 11) 36 140891 /tmp"


def test_image_default_command_is_python(podman: PodmanHarness, python_image: str) -> None:
    # No command: the image's CMD, python3, reads the program from stdin.
    ran = subprocess.run(["podman", *podman.global_args, "run", "--rm", "-i", "--network",
                          "none", python_image], env=podman.env, input="print(6 * 7)\n",
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "42"


def test_busybox_is_the_dynamic_one(podman: PodmanHarness, python_image: str,
                                    tmp_path: Path) -> None:
    # The checker itself tells a static binary apart: the host's busybox-static.
    host = subprocess.run([sys.executable, "-c", ELF_INTERP, "/bin/busybox"],
                          capture_output=True, text=True, check=False)
    assert (host.returncode, host.stdout.strip()) == (0, "static"), host.stderr
    ran = run(podman, python_image, "python3", "-c", ELF_INTERP, "/usr/bin/busybox")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == GLIBC_LOADER
    ran = run(podman, python_image, "sh", "-c",
              "ldd /usr/bin/busybox && busybox echo applets-work")
    assert ran.returncode == 0, ran.stderr
    assert "libc.so.6" in ran.stdout
    assert "applets-work" in ran.stdout


def test_launcher_drops_the_preload_where_there_is_no_glibc_loader(
        podman: PodmanHarness) -> None:
    # The busybox test image is busybox-static alone: no /lib64/ld-linux-x86-64.so.2.
    script = "env; cat /proc/self/personality; date -u +%Y"
    ran = launched(podman, podman.image, script, faketime="auto")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "DOCKLOCK_FAKETIME=auto" in lines
    assert not any(line.startswith(("LD_PRELOAD=", "FAKETIME=")) for line in lines)
    assert "00040000" in lines  # ASLR off: the launcher ran as the init
    assert "2000" not in lines  # a static program was never clock-pinned
    # Without `auto` the launcher leaves the environment alone: the drop above is its doing.
    ran = launched(podman, podman.image, "env", faketime=None)
    assert ran.returncode == 0, ran.stderr
    assert f"LD_PRELOAD={PRELOAD}" in ran.stdout.splitlines()


def test_launcher_keeps_the_preload_in_the_debian_image(podman: PodmanHarness,
                                                        python_image: str) -> None:
    script = ("env; cat /proc/self/personality; date -u +%Y; "
              "python3 -c 'import time; print(time.gmtime().tm_year)'")
    ran = launched(podman, python_image, script, faketime="auto")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert f"LD_PRELOAD={PRELOAD}" in lines
    assert "FAKETIME=@2000-01-01 00:00:00" in lines
    assert "00040000" in lines
    # The preload really works there: date and Python both see the pinned year.
    assert lines[-2:] == ["2000", "2000"]
