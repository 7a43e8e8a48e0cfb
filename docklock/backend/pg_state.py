"""The recorded state and its lock in PostgreSQL: PgStateStore, the postgres twin of
docklock.state.StateStore (same public API, same messages, same rules).

Owns the rows of `docklock_state` and `docklock_locks` for one workspace.

Invariants:
- `docklock_state.data` holds exactly the bytes state.json would (canonical compact
  JSON plus a newline); `previous` the version before it (state.json.backup).
- Writes are optimistic on the serial: one UPDATE ... WHERE serial = <read serial>
  (an INSERT for a never-written state); no row changed means someone else wrote since
  the state was read, and the write is refused, as StateStore refuses a changed file.
  Writes also require the state lock held through this store.
- The lock is the session advisory lock on the 64-bit key
  hashtextextended('docklock:state:' || workspace, 0), on the process's connection,
  plus a row in `docklock_locks` naming the holder (who, command, since, the session's
  backend pid). PostgreSQL ends the lock with the session, so a killed holder frees it
  at once; its row is then stale and simply overwritten. A session lock is re-entrant
  for its own session, and every thread of a process shares one session, so a table of
  the locks this process holds stops a second store here from taking it "again".
- force-unlock removes the holder row; it cannot end another session's lock (that
  takes pg_terminate_backend, which DockLock's role normally may not run), so it says
  whether the lock is still held and the next locker's error tells how to end it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import psycopg

from docklock.backend.pg import PgBackend
from docklock.errors import BackendError, LockError, StateError
from docklock.state.model import State
from docklock.state.store import (
    _BRIEF_HOLD_WAIT,
    _BRIEF_HOLDERS,
    _POLL_SECONDS,
    LockInfo,
    gc_paused,
    utc_now,
)

if TYPE_CHECKING:
    from docklock.overrides import Override

__all__ = ["PgStateLock", "PgStateStore"]

# One 64-bit key per workspace: a 32-bit hash under a constant class id let two
# workspace keys collide (the second then waited on a lock that was not its own).
_KEY = "hashtextextended('docklock:state:' || %(ws)s, 0)"
_ROW_GRACE = 1.0  # seconds a new holder may take to write its row

# The advisory lock of this workspace as pg_locks shows it: a bigint key appears as
# classid (its high 32 bits) and objid (its low 32 bits), as oids, with objsubid 1.
_HOLDER_PID_SQL = """
WITH k AS (SELECT hashtextextended('docklock:state:' || %(ws)s, 0) AS key)
SELECT pid FROM pg_locks, k
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = ((k.key >> 32) & 4294967295)::oid
  AND objid = (k.key & 4294967295)::oid
LIMIT 1
"""

# Locks this process holds: (id(backend), workspace) -> the lock. See the docstring.
_HELD: dict[tuple[int, str], PgStateLock] = {}
_HELD_GUARD = threading.Lock()


class PgStateLock:
    """A held state lock; release with `release()` or by leaving the `with` block."""

    def __init__(self, store: PgStateStore, info: LockInfo) -> None:
        self.path = store.lock_label
        self.info = info
        self._store: PgStateStore | None = store

    @property
    def held(self) -> bool:
        return self._store is not None

    def release(self) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        store._release(self)

    def __enter__(self) -> PgStateLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class PgStateStore:
    """Read, write and lock the recorded state of one workspace in PostgreSQL.

    `read()` needs no lock; `write()` requires the lock held through this store
    (`with store.lock(command=...)`), as for StateStore.
    """

    def __init__(self, backend: PgBackend, workspace: str | None = None) -> None:
        self.backend = backend
        self.workspace = workspace if workspace is not None else backend.workspace
        self._lock: PgStateLock | None = None
        # backend pid -> when this store first saw it hold the lock without a row.
        self._rowless: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"PgStateStore({self.path!r})"

    @property
    def path(self) -> str:
        """The state's label in messages (never the connection string)."""
        return f"postgres:{self.workspace}/state"

    @property
    def lock_label(self) -> str:
        return f"postgres:{self.workspace}/lock"

    @property
    def _params(self) -> dict[str, Any]:
        return {"ws": self.workspace}

    # ------------------------------------------------------------------ reading

    def exists(self) -> bool:
        return bool(self.backend.rows(
            "SELECT 1 FROM docklock_state WHERE workspace = %(ws)s", self._params))

    def read_bytes(self) -> bytes | None:
        """The stored state bytes exactly (what state.json would hold), or None."""
        found = self.backend.rows("SELECT data FROM docklock_state WHERE workspace = %(ws)s",
                                  self._params, binary=True)
        return bytes(found[0][0]) if found else None

    def previous_bytes(self) -> bytes | None:
        """The version before the current one (state.json.backup), or None."""
        found = self.backend.rows(
            "SELECT previous FROM docklock_state WHERE workspace = %(ws)s",
            self._params, binary=True)
        return bytes(found[0][0]) if found and found[0][0] is not None else None

    def read(self, *, cluster: str | None = None) -> State:
        """The recorded state; `State.empty(cluster)` when none was written yet."""
        raw = self.read_bytes()
        if raw is None:
            return State.empty(cluster)
        return self._parse(raw)

    def _parse(self, raw: bytes) -> State:
        try:
            with gc_paused():
                data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(
                f"{self.path} is corrupt: not valid JSON ({exc})",
                hint="DockLock will not overwrite it; the previous version is in "
                     "docklock_state.previous (docklock state pull shows the current)",
            ) from exc
        if not isinstance(data, dict):
            raise StateError(f"{self.path} is corrupt: the top level is not an object",
                             hint="restore it from docklock_state.previous")
        with gc_paused():
            return State.from_dict(data, source=self.path)

    # ------------------------------------------------------------------ writing

    def write(self, state: State) -> State:
        """Persist `state` as serial+1 (drawing a lineage if it has none); return it.

        Refuses when the lock is not held by this store, or when the stored state
        changed since `state` was read (serial or lineage differ)."""
        self._require_lock()
        new = State(lineage=state.lineage or str(uuid.uuid4()), serial=state.serial + 1,
                    cluster=state.cluster, resources=state.resources,
                    overrides=state.overrides)
        data = json.dumps(new.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
        params = {**self._params, "data": data, "lineage": new.lineage, "serial": new.serial,
                  "read_serial": state.serial, "read_lineage": state.lineage,
                  "by": self._updated_by()}
        if state.serial == 0:
            sql = ("INSERT INTO docklock_state (workspace, lineage, serial, data, updated_by) "
                   "VALUES (%(ws)s, %(lineage)s, %(serial)s, %(data)s, %(by)s) "
                   "ON CONFLICT (workspace) DO NOTHING")
        else:
            # A state read with a lineage must still have it (IS NOT DISTINCT FROM: a
            # read without one matches only a row without one).
            sql = ("UPDATE docklock_state SET previous = data, data = %(data)s, "
                   "serial = serial + 1, lineage = %(lineage)s, updated_at = now(), "
                   "updated_by = %(by)s WHERE workspace = %(ws)s AND serial = %(read_serial)s "
                   "AND lineage IS NOT DISTINCT FROM %(read_lineage)s")
        changed = self._execute(sql, params)
        if changed != 1:
            found = self.backend.rows(
                "SELECT serial FROM docklock_state WHERE workspace = %(ws)s", self._params)
            stored = int(found[0][0]) if found else 0
            raise StateError(
                f"{self.path} changed since it was read (serial {state.serial} read, "
                f"{stored} stored)",
                hint="re-run the command so it works from the current state")
        return new

    def write_bytes(self, data: bytes) -> State:
        """Store `data` (a whole state file's bytes, e.g. state.json being migrated) as
        this workspace's first state, byte for byte. Lock required; refused when the
        workspace already holds state here. Returns the state `data` holds."""
        self._require_lock()
        state = self._parse(data)
        changed = self._execute(
            "INSERT INTO docklock_state (workspace, lineage, serial, data, updated_by) "
            "VALUES (%(ws)s, %(lineage)s, %(serial)s, %(data)s, %(by)s) "
            "ON CONFLICT (workspace) DO NOTHING",
            {**self._params, "lineage": state.lineage, "serial": state.serial,
             "data": data, "by": self._updated_by()})
        if changed != 1:
            raise StateError(f"{self.path} already holds state",
                             hint="nothing was written; a workspace's state is imported "
                                  "only into an empty one")
        return state

    def set_overrides(self, state: State, overrides: tuple[Override, ...]) -> State:
        """Store the deploy overrides as the new state, serial+1; `state` unchanged (no
        write) when they are the same. Lock required, as for write."""
        if state.with_overrides(overrides).overrides == state.overrides:
            return state
        return self.write(state.with_overrides(overrides))

    def claim_lineage(self, state: State) -> State:
        """`state` with a lineage, writing a never-written state once (serial 1, no
        objects) so the lineage exists before apply labels an object with it. Lock
        required, as for write."""
        if state.lineage is not None:
            return state
        return self.write(state)

    def _require_lock(self) -> None:
        if self._lock is None or not self._lock.held:
            raise StateError("internal: state written without holding the state lock",
                             hint="wrap the write in `with store.lock(command=...)`")

    def _updated_by(self) -> str:
        info = self._lock.info if self._lock is not None else None
        if info is None:
            return ""
        return f"{info.command} (pid {info.pid} on {info.host}, lock {info.id})"

    def _execute(self, sql: str, params: dict[str, Any]) -> int:
        try:
            with self.backend.connection() as conn:
                return int(conn.execute(sql, params).rowcount)
        except psycopg.Error as exc:
            raise self.backend._error(f"cannot write {self.path}", exc) from exc

    # ------------------------------------------------------------------ locking

    def lock(self, *, command: str, timeout: float = 0.0) -> PgStateLock:
        """Take the state lock; fail at once (or after `timeout` seconds) if held."""
        if self._lock is not None and self._lock.held:
            raise StateError("internal: the state lock is already held by this process")
        start = time.monotonic()
        deadline = start + max(timeout, 0.0)
        # A plan holds the lock only while it reads state (milliseconds): wait for it.
        brief_deadline = start + max(timeout, _BRIEF_HOLD_WAIT)
        info = LockInfo(id=str(uuid.uuid4()), pid=os.getpid(), host=socket.gethostname(),
                        command=command, since=utc_now())
        while not self._try_acquire(info):
            now = time.monotonic()
            if now >= deadline and not (now < brief_deadline and self._held_briefly()):
                raise self._held_error(timeout)
            time.sleep(_POLL_SECONDS)
        return self._lock  # type: ignore[return-value]  # set by _try_acquire

    def _try_acquire(self, info: LockInfo) -> bool:
        key = (id(self.backend), self.workspace)
        with _HELD_GUARD:
            other = _HELD.get(key)
            if other is not None and other.held:
                return False  # another store in this process (the same session) has it
            with self.backend.connection() as conn:
                row = conn.execute(f"SELECT pg_try_advisory_lock({_KEY})",
                                   self._params).fetchone()
                if not (row and row[0]):
                    return False
                try:
                    conn.execute(
                        "INSERT INTO docklock_locks (workspace, lock_id, pid, host, "
                        "command, since, backend_pid) VALUES (%(ws)s, %(id)s, %(pid)s, "
                        "%(host)s, %(command)s, %(since)s, pg_backend_pid()) "
                        "ON CONFLICT (workspace) DO UPDATE SET lock_id = EXCLUDED.lock_id, "
                        "pid = EXCLUDED.pid, host = EXCLUDED.host, "
                        "command = EXCLUDED.command, since = EXCLUDED.since, "
                        "backend_pid = EXCLUDED.backend_pid",
                        {**self._params, **info.to_dict()})
                except psycopg.Error as exc:
                    conn.execute(f"SELECT pg_advisory_unlock({_KEY})",
                                 self._params)
                    raise self.backend._error("cannot record the state lock's holder",
                                              exc) from exc
            lock = PgStateLock(self, info)
            _HELD[key] = lock
            self._lock = lock
            return True

    def _release(self, lock: PgStateLock) -> None:
        key = (id(self.backend), self.workspace)
        with _HELD_GUARD:
            if _HELD.get(key) is lock:
                del _HELD[key]
            if self._lock is lock:
                self._lock = None
            if self.backend.closed:
                return  # the session ended: PostgreSQL already dropped the lock
            # Clear our record before unlocking so nobody reads a holder that is gone
            # (force-unlock may have removed it already: then there is nothing to clear).
            try:
                with self.backend.connection() as conn:
                    conn.execute("DELETE FROM docklock_locks WHERE workspace = %(ws)s "
                                 "AND lock_id = %(id)s", {**self._params, "id": lock.info.id})
                    conn.execute(f"SELECT pg_advisory_unlock({_KEY})",
                                 self._params)
            except (psycopg.Error, BackendError):
                # Release runs in `finally`/`__exit__`: raising would hide the command's
                # own error. Ending the session is a release PostgreSQL guarantees; the
                # next connect() opens a new one.
                self.backend.close()

    def holder(self) -> LockInfo | None:
        """The holder row, or None when there is none (it may be stale: see
        active_holder for who holds the lock now)."""
        row = self._holder_row()
        return row[0] if row is not None else None

    def _holder_row(self) -> tuple[LockInfo, int] | None:
        found = self.backend.rows(
            "SELECT lock_id, pid, host, command, since, backend_pid FROM docklock_locks "
            "WHERE workspace = %(ws)s", self._params)
        if not found:
            return None
        lock_id, pid, host, command, since, backend_pid = found[0]
        return LockInfo(id=lock_id, pid=pid, host=host, command=command,
                        since=since), int(backend_pid)

    def _holder_backend_pid(self) -> int | None:
        """The session (server process id) holding the advisory lock now, or None."""
        found = self.backend.rows(_HOLDER_PID_SQL, self._params)
        return int(found[0][0]) if found else None

    def is_locked(self) -> bool:
        """True when some session holds the state lock right now."""
        return self._holder_backend_pid() is not None

    def active_holder(self) -> LockInfo | None:
        """Who holds the lock right now (None when nobody does), without touching it:
        pg_locks says which session holds it, the holder row who that is."""
        backend_pid = self._holder_backend_pid()
        if backend_pid is None:
            return None
        row = self._holder_row()
        if row is None or row[1] != backend_pid:  # taken, record not written yet
            return LockInfo(id="", pid=0, host="", command="(unknown)", since="")
        return row[0]

    def _held_briefly(self) -> bool:
        """True when the lock's holder keeps it for milliseconds (a plan), or has just
        taken it and not yet written its row, or has released it since."""
        key = (id(self.backend), self.workspace)
        with _HELD_GUARD:
            mine = _HELD.get(key)
        if mine is not None and mine.held:
            return mine.info.command in _BRIEF_HOLDERS
        backend_pid = self._holder_backend_pid()
        if backend_pid is None:
            return True
        row = self._holder_row()
        if row is None or row[1] != backend_pid:
            # A holder writes its row right after taking the lock; a session that has
            # none for longer had it removed by force-unlock and is not brief.
            first_seen = self._rowless.setdefault(backend_pid, time.monotonic())
            return time.monotonic() - first_seen < _ROW_GRACE
        return row[0].command in _BRIEF_HOLDERS

    def _held_error(self, timeout: float) -> LockError:
        backend_pid = self._holder_backend_pid()
        row = self._holder_row()
        waited = f" (waited {timeout:g}s)" if timeout > 0 else ""
        hint = "wait for it to finish, or pass --lock-timeout SECONDS"
        if row is not None and backend_pid in (None, row[1]):
            hint += f"; if it is stuck: docklock force-unlock {row[0].id}"
            return LockError(f"state is locked: {row[0].describe()}{waited}", hint=hint)
        if backend_pid is None:  # released since our last attempt, with no record left
            who = "the state lock is held by another process"
            return LockError(f"state is locked: {who}{waited}", hint=hint)
        # Held by a session without a holder row of its own: force-unlock removed it,
        # or the holder has not written it yet. Only the session's end frees the lock.
        who = (f"the state lock is held by PostgreSQL session {backend_pid}, which "
               "left no holder record")
        # A 64-bit key makes it unlikely, but two workspace keys may hash alike: then
        # the holder is another workspace's command, and its row says which.
        others = self.backend.rows(
            "SELECT workspace, lock_id, pid, host, command, since FROM docklock_locks "
            "WHERE backend_pid = %(pid)s AND workspace <> %(ws)s ORDER BY workspace",
            {**self._params, "pid": backend_pid})
        if others:
            ws, lock_id, pid, host, command, since = others[0]
            other = LockInfo(id=lock_id, pid=pid, host=host, command=command, since=since)
            who += (f" for this workspace, but that session holds workspace {ws!r}'s lock "
                    f"({other.describe()}): the two workspace keys may share a lock key")
        else:
            who += " (or the lock key may be shared with another workspace's)"
        hint += ("; a PostgreSQL session lock ends only with its session: stop the "
                 "DockLock process that holds it, or have a database administrator run "
                 f"SELECT pg_terminate_backend({backend_pid})")
        return LockError(f"state is locked: {who}{waited}", hint=hint)

    def force_unlock(self, lock_id: str | None) -> tuple[LockInfo | None, bool]:
        """Remove the holder row. Returns (holder, was_held); `was_held` True means a
        live session still holds the lock, which only that session's end releases.

        With `lock_id`, refuses unless it matches the recorded holder, like Terraform.
        """
        info = self.holder()
        held = self.is_locked()
        if info is None and not held:
            raise LockError("the state is not locked", hint="there is nothing to unlock")
        if lock_id is not None and (info is None or info.id != lock_id):
            current = info.id if info else "(no holder record)"
            raise LockError(f"lock id {lock_id} does not match the current lock {current}",
                            hint="copy the id from the 'state is locked' message")
        if info is not None:
            self.backend.rows("DELETE FROM docklock_locks WHERE workspace = %(ws)s "
                              "AND lock_id = %(id)s", {**self._params, "id": info.id})
        return info, held


if TYPE_CHECKING:
    from docklock.backend import StateBackend

    # mypy holds PgStateStore to the engine's StateBackend protocol (StateStore's API).
    _IS_A_STATE_BACKEND: type[StateBackend] = PgStateStore
