"""What this host offers the deterministic cage: detected, never assumed.

- libfaketime (Debian's `libfaketime`): the preload that pins the wall and monotonic
  clocks of dynamically linked glibc programs;
- the launcher (docklock/cage/data/docklock-launch-<arch>, shipped with DockLock): turns
  ASLR off; built for x86-64 only;
- time namespaces: the kernel may have them (/proc/self/ns/time), but Podman's API has no
  way to ask for one with clock offsets, so DockLock cannot use them (reported as such).

Detection reads files only; the result is cached per process. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import platform
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
# Debian's multiarch paths first, then the upstream `make install` location.
LIBFAKETIME_PATHS: tuple[str, ...] = (
    "/usr/lib/{triplet}/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)
_TRIPLETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
_LAUNCHERS = {"x86_64": "docklock-launch-x86_64"}


@dataclass(frozen=True)
class HostSupport:
    """The deterministic cage's options on this host; each None/False says why not."""

    arch: str
    libfaketime: str | None  # host path, None: not installed
    libfaketime_digest: str | None
    launcher: str | None  # packaged launcher for this arch, None: none built
    launcher_digest: str | None
    kernel_time_namespaces: bool
    runtime_time_namespaces: bool = False  # Podman's API offers no time offsets
    # The newest glibc version libfaketime needs from libc.so.6 ("GLIBC_2.34"): an image
    # whose libc does not define it cannot load the preload (the launcher checks, in the
    # container, that the image's libc.so.6 holds that version name).
    libfaketime_glibc: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "libfaketime": self.libfaketime,
                "libfaketime_digest": self.libfaketime_digest, "launcher": self.launcher,
                "launcher_digest": self.launcher_digest,
                "kernel_time_namespaces": self.kernel_time_namespaces,
                "runtime_time_namespaces": self.runtime_time_namespaces,
                "libfaketime_glibc": self.libfaketime_glibc}


def file_sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def find_libfaketime(arch: str) -> Path | None:
    triplet = _TRIPLETS.get(arch, f"{arch}-linux-gnu")
    for pattern in LIBFAKETIME_PATHS:
        path = Path(pattern.format(triplet=triplet))
        if path.is_file():
            return path
    return None


_SHT_GNU_VERNEED = 0x6FFFFFFE
_GLIBC_VERSION = re.compile(r"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")


def needed_glibc(library: bytes) -> str | None:
    """The newest `GLIBC_x.y[.z]` a 64-bit little-endian ELF library needs from libc.so.6.

    Read from its version-needs section (.gnu.version_r): only what it asks of libc.so.6,
    not its own version definitions nor what it needs from libm or the loader. None when
    the bytes are not such a library or it names no glibc version.
    """
    try:
        return _needed_glibc(library)
    except (struct.error, IndexError, UnicodeDecodeError):
        return None


def _needed_glibc(data: bytes) -> str | None:
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # ELF64, little-endian
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)

    def section(index: int) -> tuple[int, int, int, int, int]:
        _, kind, _, _, offset, size, link, info = struct.unpack_from(
            "<IIQQQQII", data, shoff + index * shentsize)
        return kind, offset, size, link, info

    def text(table: int, at: int) -> str:
        end = data.index(b"\0", table + at)
        return data[table + at:end].decode("ascii")

    versions: dict[tuple[int, ...], str] = {}
    for index in range(shnum):
        kind, offset, _, link, count = section(index)
        if kind != _SHT_GNU_VERNEED:
            continue
        strings = section(link)[1]
        entry = offset
        for _ in range(count):
            _, aux_count, file_at, aux, following = struct.unpack_from("<HHIII", data, entry)
            if text(strings, file_at) == "libc.so.6":
                at = entry + aux
                for _ in range(aux_count):
                    _, _, _, name_at, aux_next = struct.unpack_from("<IHHII", data, at)
                    name = text(strings, name_at)
                    match = _GLIBC_VERSION.fullmatch(name)
                    if match:
                        versions[tuple(int(g or 0) for g in match.groups())] = name
                    at += aux_next
            if not following:
                break
            entry += following
    return versions[max(versions)] if versions else None


def launcher_path(arch: str) -> Path | None:
    name = _LAUNCHERS.get(arch)
    if name is None:
        return None
    path = DATA / name
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def detect_host() -> HostSupport:
    arch = platform.machine()
    faketime = find_libfaketime(arch)
    launcher = launcher_path(arch)
    return HostSupport(
        arch=arch,
        libfaketime=str(faketime) if faketime else None,
        libfaketime_digest=file_sha256(faketime) if faketime else None,
        launcher=str(launcher) if launcher else None,
        launcher_digest=file_sha256(launcher) if launcher else None,
        kernel_time_namespaces=Path("/proc/self/ns/time").exists(),
        libfaketime_glibc=needed_glibc(faketime.read_bytes()) if faketime else None,
    )
