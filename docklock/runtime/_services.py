"""Bookkeeping that keeps private `podman system service` processes from outliving DockLock.

A private service (runtime.podman.PrivateService) runs only for one command. Three
things tie its life to that command, because none is enough alone:

1. Parent-death signal: the service is started with PR_SET_PDEATHSIG = SIGTERM, so the
   kernel stops it when DockLock dies, even of SIGKILL. Linux sends it when the *thread*
   that forked the child exits, so it is only set when the main thread starts the
   service (the command's life); a service started from another thread relies on 2+3.
2. SIGTERM handling: while a private service runs in the main thread, SIGTERM is turned
   into KeyboardInterrupt, so the command unwinds as on Ctrl-C (apply drains, state is
   saved, the runtime closes and removes the service's folder).
3. Reaping: every service gets a folder `svc-<owner pid>-<random>` under one per-user
   runtime folder, with `owner.json` (owner pid and start time, service pid and start
   time). Before a new private service starts, folders whose owner is dead are removed
   and their service, if it still runs, is stopped. Start times guard against a reused
   pid: a process is the recorded one only if its start time matches.

The runtime folder is $DOCKLOCK_RUNTIME_DIR, else $XDG_RUNTIME_DIR/docklock, else
<tmp>/docklock-<uid>; it must be a real folder owned by this user and closed to others,
or nothing in it is trusted (a fresh temporary folder is used, and nothing is reaped).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ENV_RUNTIME_DIR = "DOCKLOCK_RUNTIME_DIR"
OWNER_FILE = "owner.json"
FOLDER_PREFIX = "svc-"
PR_SET_PDEATHSIG = 1
REAP_STOP_TIMEOUT = 10.0  # seconds a stale service gets to stop on SIGTERM


# ---------------------------------------------------------------- processes


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22);
    None when no such process exists (or it is a zombie being reaped)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = raw[raw.rfind(")") + 2:].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, started: int | None) -> bool:
    """Whether `pid` still runs and is the process recorded (same start time)."""
    if pid <= 0:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def _is_podman_service(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"system" in argv and b"service" in argv


# ---------------------------------------------------------------- the runtime folder


def runtime_root(env: Mapping[str, str]) -> Path | None:
    """The per-user folder for service folders, created if needed; None if unsafe."""
    explicit = env.get(ENV_RUNTIME_DIR)
    if explicit:
        root = Path(explicit)
    elif env.get("XDG_RUNTIME_DIR"):
        root = Path(env["XDG_RUNTIME_DIR"]) / "docklock"
    else:
        root = Path(tempfile.gettempdir()) / f"docklock-{os.geteuid()}"
    with contextlib.suppress(FileExistsError, OSError):
        root.mkdir(mode=0o700, parents=True)
    try:
        st = os.lstat(root)
    except OSError:
        return None
    # Another user's folder (or a symlink planted in /tmp) is never used: we delete
    # folders in there.
    if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid()
            or st.st_mode & 0o077):
        return None
    return root


@dataclass(frozen=True)
class Owner:
    """The record in a service folder: who started the service, and which it is."""

    owner_pid: int
    owner_start: int | None
    service_pid: int = 0
    service_start: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"owner_pid": self.owner_pid, "owner_start": self.owner_start,
                "service_pid": self.service_pid, "service_start": self.service_start}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Owner:
        def opt(v: Any) -> int | None:
            return None if v is None else int(v)
        return cls(int(d.get("owner_pid", 0)), opt(d.get("owner_start")),
                   int(d.get("service_pid", 0)), opt(d.get("service_start")))


def new_folder(env: Mapping[str, str]) -> tuple[Path, bool]:
    """A fresh service folder (reaping stale ones first); and whether it is tracked."""
    root = runtime_root(env)
    if root is None:
        return Path(tempfile.mkdtemp(prefix="docklock-podman-")), False
    reap_stale(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=root))
    write_owner(folder, Owner(os.getpid(), start_time(os.getpid())))
    return folder, True


def write_owner(folder: Path, owner: Owner) -> None:
    tmp = folder / f".{OWNER_FILE}.tmp"
    tmp.write_text(json.dumps(owner.to_dict()))
    os.replace(tmp, folder / OWNER_FILE)


def _read_owner(folder: Path) -> Owner | None:
    try:
        data = json.loads((folder / OWNER_FILE).read_text())
        return Owner.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def _owner_pid_from_name(folder: Path) -> int:
    # svc-<pid>-<random>: the pid is known even when the owner died before owner.json.
    middle = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
    return int(middle) if middle.isdigit() else 0


def reap_stale(root: Path) -> list[Path]:
    """Stop the services of dead owners and remove their folders; the folders removed."""
    removed: list[Path] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if not folder.name.startswith(FOLDER_PREFIX) or folder.is_symlink() \
                or not folder.is_dir():
            continue
        owner = _read_owner(folder)
        pid = owner.owner_pid if owner else _owner_pid_from_name(folder)
        if alive(pid, owner.owner_start if owner else None):
            continue
        if owner is not None and owner.service_pid:
            stop_service(owner.service_pid, owner.service_start)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def stop_service(pid: int, started: int | None) -> None:
    """SIGTERM (then SIGKILL) the recorded service's process group, if it is still it."""
    if not alive(pid, started) or not _is_podman_service(pid):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + REAP_STOP_TIMEOUT
    while alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid, started):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# ---------------------------------------------------------------- the child's tie


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when this process dies; None where
    that cannot be promised (not Linux, or not the main thread: see the module doc)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec: no allocation-heavy work here.
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec


class TermAsInterrupt:
    """While active (main thread only), SIGTERM raises KeyboardInterrupt once, so the
    command unwinds as on Ctrl-C and closes its private service; later SIGTERMs during
    that unwinding are ignored rather than interrupting the clean-up."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._active = False
        self._fired = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current is not signal.SIG_DFL:
            return  # someone (a test runner, an embedding program) decided already
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        self._active = True

    def uninstall(self) -> None:
        if not self._active or threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, self._previous)
        self._active = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._fired:
            return
        self._fired = True
        raise KeyboardInterrupt("terminated (SIGTERM)")
