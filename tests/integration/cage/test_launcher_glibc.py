"""docklock-launch's glibc version check in real containers: with DOCKLOCK_FAKETIME=auto it
keeps libfaketime only where the image's libc.so.6 defines the glibc version the cage
names in DOCKLOCK_FAKETIME_GLIBC (the host's libfaketime needs GLIBC_2.34; a Debian 11
image has 2.31 and every dynamic program there would die loading it).

The images are the host's static busybox plus FAKE glibc files: an empty
/lib64/ld-linux-x86-64.so.2 (the launcher only checks it exists) and a libc.so.6 that is
filler around one version string, so "old" and "new" glibc differ in exactly that string.
busybox is static, so no preload is ever loaded: `env` shows what the launcher passed on.
The launcher runs as Podman's init, unconfined (as in test_debian_image.py: Podman's default
seccomp profile denies the personality() call; the cage's own profile allows it).
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, PodmanHarness

pytestmark = pytest.mark.podman

LAUNCHER = REPO / "docklock" / "cage" / "data" / "docklock-launch-x86_64"
BUSYBOX = Path("/bin/busybox")  # busybox-static (tools/busybox-image uses it too)
PRELOAD = "/.docklock/libfaketime.so.1"  # where the cage binds libfaketime
NEEDED = "GLIBC_2.34"  # what the host's libfaketime needs (the cage passes it)
# The launcher reads libc.so.6 in 32 KiB chunks: a version string across the first
# boundary checks the overlap it keeps between chunks.
CHUNK = 32768


@dataclass(frozen=True)
class FakeGlibc:
    tag: str
    libc_path: str  # where the image has its libc.so.6
    libc: bytes
    decoy_dir: str | None = None  # a folder named libc.so.6 where the launcher looks first


def filler_around(version: bytes, at: int, size: int = 3 * CHUNK) -> bytes:
    """`size` bytes of filler with `version` + NUL starting at offset `at`."""
    head = b"\x7fELF" + b"x" * (at - 4)
    body = head + version + b"\0"
    # Older versions' names as glibc has them too, so only the newest one differs.
    tail = b"GLIBC_2.2.5\0GLIBC_2.17\0GLIBC_PRIVATE\0"
    return body + tail + b"y" * (size - len(body) - len(tail))


OLD = FakeGlibc("localhost/docklock-test/fake-glibc:2.28", "/lib/x86_64-linux-gnu/libc.so.6",
                filler_around(b"GLIBC_2.28", 1000))
NEW = FakeGlibc("localhost/docklock-test/fake-glibc:2.34", "/lib/x86_64-linux-gnu/libc.so.6",
                filler_around(NEEDED.encode(), CHUNK - 4))
# Fedora-like: libc only in /usr/lib64, the fourth place the launcher looks.
NEW_LIB64 = FakeGlibc("localhost/docklock-test/fake-glibc:2.34-lib64", "/usr/lib64/libc.so.6",
                      filler_around(NEEDED.encode(), 5000))
# A folder named libc.so.6 in the first place looked at must not hide the real one.
NEW_BEHIND_FOLDER = FakeGlibc("localhost/docklock-test/fake-glibc:2.34-behind-folder",
                              "/usr/lib64/libc.so.6", filler_around(NEEDED.encode(), 5000),
                              decoy_dir="/lib/x86_64-linux-gnu/libc.so.6")


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def build_fake_glibc_image(harness: PodmanHarness, fake: FakeGlibc, work: Path) -> str:
    assert BUSYBOX.is_file(), f"{BUSYBOX} is missing: apt-get install busybox-static"
    assert b"GLIBC_2.34\0" not in OLD.libc  # the old image really lacks it
    rootfs = work / f"{fake.tag.rsplit(':', 1)[1]}.tar"
    with tarfile.open(rootfs, "w") as tar:
        for folder in ("bin", "lib64", "proc", "sys", "dev", "etc", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "env"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        add_bytes(tar, "lib64/ld-linux-x86-64.so.2", b"", 0o755)
        add_bytes(tar, fake.libc_path.lstrip("/"), fake.libc)
        if fake.decoy_dir is not None:
            info = tarfile.TarInfo(fake.decoy_dir.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
    harness.podman("import", "-q", "--change", "ENV PATH=/bin", str(rootfs), fake.tag)
    return fake.tag


@pytest.fixture(scope="module")
def images(podman_harness: PodmanHarness,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("fake-glibc")
    return {fake.tag: build_fake_glibc_image(podman_harness, fake, work)
           for fake in (OLD, NEW, NEW_LIB64, NEW_BEHIND_FOLDER)}


def launched_env(harness: PodmanHarness, image: str, *, preload: str = PRELOAD,
                 mode: str = "auto") -> list[str]:
    ran = harness.podman(
        "run", "--rm", "--network", "none",
        "--init", "--init-path", str(LAUNCHER), "--security-opt", "seccomp=unconfined",
        "-e", f"DOCKLOCK_FAKETIME={mode}", "-e", f"DOCKLOCK_FAKETIME_GLIBC={NEEDED}",
        "-e", f"LD_PRELOAD={preload}", "-e", "FAKETIME=x",
        image, "env", check=False)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert "DOCKLOCK_FAKETIME_GLIBC=GLIBC_2.34" in lines  # it ran with what we passed
    return lines


def preload_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("LD_PRELOAD=", "FAKETIME="))]


def test_old_glibc_image_gets_no_preload(podman: PodmanHarness,
                                         images: dict[str, str]) -> None:
    assert preload_lines(launched_env(podman, images[OLD.tag])) == []


def test_old_glibc_image_keeps_the_jobs_own_preload(podman: PodmanHarness,
                                                    images: dict[str, str]) -> None:
    lines = launched_env(podman, images[OLD.tag], preload=f"{PRELOAD} /x/own.so")
    assert preload_lines(lines) == ["LD_PRELOAD=/x/own.so"]


def test_always_keeps_the_preload_even_on_old_glibc(podman: PodmanHarness,
                                                    images: dict[str, str]) -> None:
    lines = launched_env(podman, images[OLD.tag], mode="always")
    assert sorted(preload_lines(lines)) == ["FAKETIME=x", f"LD_PRELOAD={PRELOAD}"]


@pytest.mark.parametrize("fake", [NEW, NEW_LIB64, NEW_BEHIND_FOLDER],
                         ids=["lib-x86_64-linux-gnu", "usr-lib64", "behind-a-folder"])
def test_new_glibc_image_keeps_the_preload(podman: PodmanHarness, images: dict[str, str],
                                           fake: FakeGlibc) -> None:
    lines = launched_env(podman, images[fake.tag])
    assert sorted(preload_lines(lines)) == ["FAKETIME=x", f"LD_PRELOAD={PRELOAD}"]
