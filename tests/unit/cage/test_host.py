"""docklock.cage.host.needed_glibc: the glibc version a library needs from libc.so.6, read
from its version-needs section, checked against readelf on real system libraries."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from docklock.cage.host import find_libfaketime, needed_glibc

LIBRARIES = ("/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr/bin/python3", "/bin/ls")


def _readelf_libc_needs(path: str) -> str | None:
    """The newest GLIBC_x.y readelf lists under `File: libc.so.6` in .gnu.version_r."""
    out = subprocess.run(["readelf", "-V", "-W", path], check=True, capture_output=True,
                         text=True).stdout
    needs = out[out.index(".gnu.version_r"):] if ".gnu.version_r" in out else ""
    names: list[str] = []
    current = None
    for line in needs.splitlines():
        file_match = re.search(r"File: (\S+)", line)
        if file_match:
            current = file_match.group(1)
        name = re.search(r"Name: (GLIBC_[\d.]+)\b", line)
        if name and current == "libc.so.6":
            names.append(name.group(1))
    if not names:
        return None
    return max(names, key=lambda n: tuple(int(p) for p in n[6:].split(".")))


@pytest.mark.parametrize("path", [p for p in LIBRARIES if Path(p).is_file()])
def test_agrees_with_readelf(path: str) -> None:
    assert shutil.which("readelf"), "binutils' readelf is needed (gcc brings it)"
    assert needed_glibc(Path(path).read_bytes()) == _readelf_libc_needs(path)


def test_the_hosts_libfaketime_needs_glibc_2_34() -> None:
    """Debian 12's libfaketime (the set-up installs it): 2.34 from libc.so.6, although it
    also needs GLIBC_2.2.5 from libm and 2.3 from the loader."""
    library = find_libfaketime("x86_64")
    assert library is not None, "apt-get install libfaketime"
    assert needed_glibc(library.read_bytes()) == "GLIBC_2.34"


@pytest.mark.parametrize("data", [
    b"", b"not an elf", b"\x7fELF\x01\x01" + b"\0" * 60,  # 32-bit
    Path("/bin/ls").read_bytes()[:200],  # truncated: section headers out of reach
    b"GLIBC_2.99\0" * 10,  # version names outside an ELF mean nothing
])
def test_not_a_library_needs_nothing(data: bytes) -> None:
    assert needed_glibc(data) is None
