"""Who listens on a host TCP port: for the hint of a "port already in use" error.

Reads /proc/net/tcp and /proc/net/tcp6 for sockets in LISTEN state on the port, then
finds the processes holding those sockets through /proc/<pid>/fd (what `ss -ltnp`
does). Only meaningful when Podman runs on this host (a unix socket URL); best effort:
a process of another user may be invisible without privileges, and any failure just
yields fewer owners. Read-only, and only ever called after an error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp
MAX_PROCESSES = 4096  # bound the /proc walk (it runs once, after an error)


@dataclass(frozen=True)
class Listener:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Socket inodes listening on TCP `port` (any address, IPv4 or IPv6)."""
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            lines = (proc / "net" / table).read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _LISTEN:
                    continue
                _, _, hex_port = fields[1].rpartition(":")
                with contextlib.suppress(ValueError):
                    if int(hex_port, 16) == port:
                        found.add(fields[9])
    return found


def listeners(port: int, proc: Path = Path("/proc")) -> list[Listener]:
    """The processes holding a socket that listens on TCP `port` (sorted by pid)."""
    inodes = listening_inodes(port, proc)
    if not inodes:
        return []
    wanted = {f"socket:[{i}]" for i in inodes}
    out: list[Listener] = []
    for pid in _pids(proc):
        fd_dir = proc / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target in wanted:
                out.append(Listener(pid, _command(proc, pid)))
                break
    return out


def _pids(proc: Path) -> Iterable[int]:
    try:
        names = os.listdir(proc)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())[:MAX_PROCESSES]


def _command(proc: Path, pid: int) -> str:
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""
