"""The state store: the only code that writes `.docklock/state.json` and its lock.

Invariants:
- Writes are atomic (docklock._fs.atomic_write_bytes: a temp file in the same folder,
  fsync, `os.replace`, fsync of the folder). A reader sees either the old or the new
  file, never a torn one. The state file is 0600.
- Every write bumps the serial by one; the first write of a never-written state also
  draws its lineage (uuid4). The previous file is kept as `state.json.backup` (hard link,
  no copy).
- A state file that does not parse is refused (StateError) and never overwritten.
- Writers hold `.docklock/state.lock` (fcntl.flock, exclusive, non-blocking); the holder's
  pid/host/command/since/id are written into the lock file so a second process can say who
  holds it. The kernel drops a flock when its holder dies, so a leftover record without a
  live flock is stale and simply overwritten; `force_unlock` exists for a holder that is
  alive but stuck (it unlinks the lock file; the stuck holder keeps a lock on an inode
  nobody else opens any more).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock._fs import atomic_write_bytes, fsync_dir, gc_paused, utc_now
from docklock.errors import LockError, StateError
from docklock.state.model import State
from docklock.workspace import WorkspacePaths

if TYPE_CHECKING:
    from docklock.overrides import Override

# atomic_write_bytes, gc_paused and utc_now live in docklock._fs and are re-exported here:
# plan, render, the CLI and the benches import them from this module.
__all__ = [
    "LockInfo", "StateLock", "StateStore", "atomic_write_bytes", "gc_paused", "locked",
    "utc_now",
]

# Commands that hold the lock only to read state.json, and how long others wait for them.
_BRIEF_HOLDERS = frozenset({"docklock plan"})
_BRIEF_HOLD_WAIT = 10.0
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or last held) the state lock."""

    id: str
    pid: int
    host: str
    command: str
    since: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "pid": self.pid, "host": self.host,
                "command": self.command, "since": self.since}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LockInfo:
        return cls(str(d.get("id", "")), int(d.get("pid", 0)), str(d.get("host", "")),
                   str(d.get("command", "")), str(d.get("since", "")))

    def describe(self) -> str:
        return (f"lock {self.id} held by pid {self.pid} on {self.host} "
                f"running {self.command!r} since {self.since}")


class StateLock:
    """A held state lock; release with `release()` or by leaving the `with` block."""

    def __init__(self, path: Path, fd: int, info: LockInfo) -> None:
        self.path = path
        self.info = info
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear our record before unlocking so nobody reads a holder that is gone.
            # Truncating through our fd only touches our inode, even after force-unlock.
            os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    """Read, write and lock the recorded state of one workspace.

    `read()` needs no lock (writes are atomic renames); `write()` requires the lock held
    through this store (`with store.lock(command=...)`).
    """

    def __init__(self, paths: WorkspacePaths) -> None:
        self.paths = paths
        self._lock: StateLock | None = None
        # (inode, mtime_ns, size, serial) of the file last read or written, so a write
        # does not re-parse a large state that nobody changed in between.
        self._seen: tuple[int, int, int, int] | None = None

    @property
    def path(self) -> Path:
        return self.paths.state

    @property
    def backup_path(self) -> Path:
        return self.paths.state.with_name(self.paths.state.name + ".backup")

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self, *, cluster: str | None = None) -> State:
        """The recorded state; `State.empty(cluster)` when no state file exists yet."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._seen = None
            return State.empty(cluster)
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror}",
                             hint="check the file's permissions") from exc
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            raw = fh.read()
        try:
            with gc_paused():
                data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(
                f"{self.path} is corrupt: not valid JSON ({exc})",
                hint="DockLock will not overwrite it; restore it from "
                     f"{self.backup_path.name} or fix it by hand",
            ) from exc
        if not isinstance(data, dict):
            raise StateError(f"{self.path} is corrupt: the top level is not an object",
                             hint=f"restore it from {self.backup_path.name}")
        with gc_paused():
            state = State.from_dict(data, source=str(self.path))
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size, state.serial)
        return state

    # ------------------------------------------------------------------ writing

    def write(self, state: State) -> State:
        """Persist `state` as serial+1 (drawing a lineage if it has none); return it.

        Refuses when the lock is not held by this store, when the file on disk is
        corrupt, or when it changed since `state` was read (serial or lineage differ).
        """
        if self._lock is None or not self._lock.held:
            raise StateError("internal: state written without holding the state lock",
                             hint="wrap the write in `with store.lock(command=...)`")
        disk_serial, disk_lineage = self._disk_version()
        if disk_serial != state.serial or (
                disk_lineage is not None and disk_lineage != state.lineage):
            raise StateError(
                f"{self.path} changed since it was read (serial {state.serial} read, "
                f"{disk_serial} on disk)",
                hint="re-run the command so it works from the current state")
        new = State(lineage=state.lineage or str(uuid.uuid4()), serial=state.serial + 1,
                    cluster=state.cluster, resources=state.resources,
                    overrides=state.overrides)
        # Compact: the C encoder is ~6x faster than indent=, and state is written after
        # every change during apply (use `jq` to read it).
        data = json.dumps(new.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
        self.paths.dot.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._backup()
        atomic_write_bytes(self.path, data, mode=0o600)
        st = os.stat(self.path)
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size, new.serial)
        return new

    def write_bytes(self, data: bytes) -> State:
        """Store `data` (a whole state document's bytes, e.g. from a backend being
        migrated away from) as this workspace's first state, byte for byte, keeping its
        lineage and serial. Lock required; refused when a state file exists."""
        if self._lock is None or not self._lock.held:
            raise StateError("internal: state written without holding the state lock",
                             hint="wrap the write in `with store.lock(command=...)`")
        try:
            with gc_paused():
                doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"the state to import is not valid JSON ({exc})",
                             hint="nothing was written") from exc
        if not isinstance(doc, dict):
            raise StateError("the state to import is not a JSON object",
                             hint="nothing was written")
        state = State.from_dict(doc, source=str(self.path))
        self.paths.dot.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(self.path, data, mode=0o600, exclusive=True)
        except FileExistsError:
            raise StateError(f"{self.path} already holds state",
                             hint="nothing was written; a workspace's state is imported "
                                  "only into an empty one") from None
        st = os.stat(self.path)
        self._seen = (st.st_ino, st.st_mtime_ns, st.st_size, state.serial)
        return state

    def set_overrides(self, state: State, overrides: tuple[Override, ...]) -> State:
        """Store the deploy overrides (docklock.overrides) as the new state, serial+1;
        `state` unchanged (no write) when they are the same. Lock required, as for
        write; the same checks (the file must be the one `state` was read from)."""
        if state.with_overrides(overrides).overrides == state.overrides:
            return state
        return self.write(state.with_overrides(overrides))

    def claim_lineage(self, state: State) -> State:
        """`state` with a lineage, writing a never-written state once (serial 1, no
        objects) so the lineage exists, durably, before apply labels a Podman object
        with it: a crash after the first create then finds its objects ours. Plan stays
        read-only: only apply (holding the lock) claims. Lock required, as for write."""
        if state.lineage is not None:
            return state
        return self.write(state)

    def _disk_version(self) -> tuple[int, str | None]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0, None
        seen = self._seen
        if seen is not None and seen[:3] == (st.st_ino, st.st_mtime_ns, st.st_size):
            # Unchanged since we read or wrote it; the lineage check needs the file only
            # when something else touched it.
            return seen[3], None
        current = self.read()
        return current.serial, current.lineage

    def _backup(self) -> None:
        # A hard link keeps the previous version at no copying cost; the rename of the
        # link into place is atomic, so a crash leaves an old or new backup, never none.
        tmp = self.backup_path.with_name(f".{self.backup_path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.link(self.path, tmp)
        os.replace(tmp, self.backup_path)

    # ------------------------------------------------------------------ locking

    def lock(self, *, command: str, timeout: float = 0.0) -> StateLock:
        """Take the state lock; fail at once (or after `timeout` seconds) if held."""
        if self._lock is not None and self._lock.held:
            raise StateError("internal: the state lock is already held by this process")
        self.paths.dot.mkdir(parents=True, exist_ok=True)
        path = self.paths.state_lock
        start = time.monotonic()
        deadline = start + max(timeout, 0.0)
        # A plan holds the lock only while it reads state.json (milliseconds): two plans
        # at once, or an apply started while CI plans, wait for it instead of failing.
        brief_deadline = start + max(timeout, _BRIEF_HOLD_WAIT)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                now = time.monotonic()
                if now >= deadline and not (now < brief_deadline and self._held_briefly()):
                    raise self._held_error(timeout) from None
                time.sleep(_POLL_SECONDS)
                continue
            # A force-unlock may have unlinked the file between our open and flock: then
            # we locked an orphan inode and must start again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                continue
            break
        info = LockInfo(id=str(uuid.uuid4()), pid=os.getpid(), host=socket.gethostname(),
                        command=command, since=utc_now())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info.to_dict(), sort_keys=True).encode() + b"\n", 0)
        os.fsync(fd)
        self._lock = StateLock(path, fd, info)
        return self._lock

    def holder(self) -> LockInfo | None:
        """The holder record in the lock file, or None when empty/absent/unreadable."""
        try:
            raw = self.paths.state_lock.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            return LockInfo.from_dict(data) if isinstance(data, dict) else None
        except (ValueError, TypeError):
            return None

    def is_locked(self) -> bool:
        """True when some process holds the flock right now."""
        try:
            fd = os.open(self.paths.state_lock, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def active_holder(self) -> LockInfo | None:
        """Who holds the lock right now (None when nobody does), without touching it.

        For read-only commands (`status`, `cluster health`) that work without the lock
        but should say an apply is in flight. Unlike `is_locked`, this never takes the
        flock, even for a moment, so it cannot make a starting apply fail: the kernel's
        lock table (/proc/locks) says whether a live flock exists on the lock file.
        """
        pid = _flock_owner(self.paths.state_lock)
        if pid is None:
            return None
        info = self.holder()
        if info is None:  # taken, record not written yet
            return LockInfo(id="", pid=pid, host=socket.gethostname(), command="(unknown)",
                            since="")
        return info

    def _held_briefly(self) -> bool:
        """True when the lock's holder is one that keeps it for milliseconds: a plan, or
        a process that has just taken it and not yet written its record."""
        pid = _flock_owner(self.paths.state_lock)
        if pid is None:
            return True  # released since our attempt: try again
        info = self.holder()
        if info is None or info.pid != pid:
            return True
        return info.command in _BRIEF_HOLDERS

    def _held_error(self, timeout: float) -> LockError:
        info = self.holder()
        who = info.describe() if info else "the state lock is held by another process"
        waited = f" (waited {timeout:g}s)" if timeout > 0 else ""
        hint = "wait for it to finish, or pass --lock-timeout SECONDS"
        if info:
            hint += f"; if it is stuck: docklock force-unlock {info.id}"
        return LockError(f"state is locked: {who}{waited}", hint=hint)

    def force_unlock(self, lock_id: str | None) -> tuple[LockInfo | None, bool]:
        """Remove the lock record (and break a held lock). Returns (holder, was_held).

        With `lock_id`, refuses unless it matches the recorded holder, like Terraform.
        """
        info = self.holder()
        held = self.is_locked()
        if info is None and not held:
            raise LockError("the state is not locked",
                            hint="there is nothing to unlock")
        if lock_id is not None and (info is None or info.id != lock_id):
            current = info.id if info else "(no holder record)"
            raise LockError(f"lock id {lock_id} does not match the current lock {current}",
                            hint="copy the id from the 'state is locked' message")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.paths.state_lock)
        fsync_dir(self.paths.dot)
        return info, held


def _flock_owner(path: Path) -> int | None:
    """The pid of a process holding a flock on `path` now, from /proc/locks; None if none.

    /proc/locks rows read `N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`; waiters
    are marked `->` and do not hold the lock. Without /proc (not Linux) the answer is
    None: read-only commands then simply do not warn.
    """
    try:
        st = os.stat(path)
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for row in table.splitlines():
        fields = row.split()
        if len(fields) < 6 or "->" in fields[1] or fields[1] != "FLOCK":
            continue
        if fields[5] == device and fields[4].isdigit():
            return int(fields[4])
    return None


@contextlib.contextmanager
def locked(store: StateStore, *, command: str, timeout: float = 0.0) -> Iterator[StateLock]:
    """`with locked(store, command="apply"):` — the lock for the duration of the block."""
    lock = store.lock(command=command, timeout=timeout)
    try:
        yield lock
    finally:
        lock.release()
