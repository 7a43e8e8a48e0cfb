"""The ledger's bytes in PostgreSQL: PgLedgerStorage, the LedgerStorage of the postgres backend.

It stores exactly the streams FileLedgerStorage keeps in `.docklock/ledger/`, so the
Ledger above it (hashing, linking, signing, verifying) cannot tell them apart:
- entries: one row per line in `docklock_ledger_entries(workspace, seq, start_offset,
  line)`. The entries stream is the concatenation of `line + b"\\n"` in seq order, and
  `start_offset` is the row's byte offset in it, so the offsets checkpoints and the tree
  cache record are the ones the entries file would have. `start_offset` is an index for
  seeking, never trusted for content: reading from 0 concatenates the lines themselves,
  so a row edited outside DockLock shows `ledger verify` the same bytes a file would;
- checkpoints: one row per record in `docklock_ledger_checkpoints(workspace, idx, line)`,
  idx counting from 1 like the lines of checkpoints.jsonl;
- `docklock_ledger_meta` (ledger.json, written once), `docklock_ledger_tree` (tree.json,
  a cache) and `docklock_ledger_cosignatures` (one value; records are appended to it in
  one statement as witnesses answer, so concurrent commands keep each other's).

The database refuses UPDATE, DELETE and TRUNCATE on entries, checkpoints and meta
(triggers created by docklock.backend.pg); this module only ever INSERTs into them. A
row is written whole or not at all, so a line is never torn (`can_tear` is False).

Appending is one INSERT that only succeeds when `seq` and `offset` are still the end of
the stream; a writer that lost a race gets a LedgerError, never a gap or a duplicate.
Entries and checkpoints are refused once the workspace is marked moved (state migrate),
even for a command that opened it before: the same INSERT reads the mark.
Writers serialise on a PostgreSQL advisory lock keyed by the workspace (`exclusive()`;
readers wanting a snapshot take it shared), so processes on different hosts sharing the
database exclude each other as the flock on ledger.lock does on one host. The threads of
one process share its session, for which PostgreSQL's lock is re-entrant, so an
in-process lock keeps them apart too.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from docklock.backend.pg import PgBackend
from docklock.errors import BackendError, LedgerError, Location

FIRST_BATCH = 1024  # rows in the first round trip of a read (verify from a checkpoint)
BATCH = 4096  # rows per later round trip
BATCH_BYTES = 8 << 20  # ... or fewer rows, once this many bytes are in the batch
_POLL_START = 0.01  # seconds between attempts to take a busy advisory lock, doubling
_POLL_MAX = 0.25

# Table names are written out in every statement (no SQL is ever built from values).

# The byte offset where the stream ends: just past the last row's line and newline.
_END_SQL = """
SELECT seq, start_offset + octet_length(line) + 1 FROM docklock_ledger_entries
WHERE workspace = %s ORDER BY seq DESC LIMIT 1
"""

# Both appends also require that the workspace lives here: its docklock_workspaces row
# is read FOR SHARE, so a migration's mark_moved (an UPDATE of it) waits for an append
# in flight to commit, and an append that started before the mark re-reads the row once
# it is committed and sees it. After mark_moved returns the stream is final (`state
# migrate` checks it is what it copied), whatever locks the writer took.

# One round trip: the row is inserted only if it starts exactly where the stream ends
# (and the workspace was not migrated away).
_APPEND_SQL = """
INSERT INTO docklock_ledger_entries (workspace, seq, start_offset, line)
SELECT %(ws)s, %(seq)s, %(offset)s, %(line)s
WHERE COALESCE(
    (SELECT ARRAY[seq + 1, start_offset + octet_length(line) + 1]
     FROM docklock_ledger_entries WHERE workspace = %(ws)s ORDER BY seq DESC LIMIT 1),
    ARRAY[0, 0]::bigint[]) = ARRAY[%(seq)s, %(offset)s]::bigint[]
  AND COALESCE((SELECT moved_to IS NULL FROM docklock_workspaces
                WHERE workspace = %(ws)s FOR SHARE), true)
"""

_APPEND_CHECKPOINT_SQL = """
INSERT INTO docklock_ledger_checkpoints (workspace, idx, line)
SELECT %(ws)s, COALESCE(max(idx), 0) + 1, %(line)s
FROM docklock_ledger_checkpoints WHERE workspace = %(ws)s
HAVING COALESCE((SELECT moved_to IS NULL FROM docklock_workspaces
                 WHERE workspace = %(ws)s FOR SHARE), true)
"""

# A batch of rows in one round trip, shipped as one value: the rows' bytes joined by the
# server (converting thousands of rows one by one in Python costs more than the query).
# The batch starts after seq `after` and at the row holding byte `offset` (the last one
# starting at or before it, found through the index on (workspace, start_offset)); it
# ends after `n` rows, at `end`, or once `budget` bytes are reached (at least one row:
# plans can make long lines, and one value may not exceed 1 GB). Returned: the rows
# scanned, the rows shipped, the last seq shipped, the first row's start_offset, bytes.
_BATCH_SQL = """
WITH b AS (
  SELECT seq, start_offset, line,
         sum(octet_length(line) + 1) OVER (ORDER BY seq) - octet_length(line) - 1 AS before
  FROM docklock_ledger_entries
  WHERE workspace = %(ws)s AND seq > %(after)s AND start_offset < %(end)s
    AND seq >= COALESCE(
      (SELECT seq FROM docklock_ledger_entries
       WHERE workspace = %(ws)s AND start_offset <= %(offset)s
       ORDER BY start_offset DESC, seq DESC LIMIT 1), 0)
  ORDER BY seq LIMIT %(n)s)
SELECT (SELECT count(*) FROM b), count(*), max(seq),
       (array_agg(start_offset ORDER BY seq))[1],
       string_agg(line || '\\x0a'::bytea, ''::bytea ORDER BY seq)
FROM b WHERE before < %(budget)s
"""

# 64-bit keys, hashtextextended('docklock:ledger:' || workspace, 0): a 32-bit hash
# under a constant class id let two workspace keys share a lock.
_LOCK_SQL = {
    False: "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
    True: "SELECT pg_try_advisory_lock_shared(hashtextextended(%s, 0))",
}
_UNLOCK_SQL = {
    False: "SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
    True: "SELECT pg_advisory_unlock_shared(hashtextextended(%s, 0))",
}

_NO_END = (1 << 63) - 1  # bigint max: "to the end"


# One in-process lock per (backend, workspace): advisory locks belong to the session, and
# every thread of this process shares one session, so PostgreSQL alone would let two
# threads in at once. Re-entrant, as a nested shared() inside exclusive() must not wait.
_THREAD_LOCKS: dict[tuple[int, str], threading.RLock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(backend: object, workspace: str) -> threading.RLock:
    key = (id(backend), workspace)
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.get(key)
        if lock is None:
            lock = _THREAD_LOCKS[key] = threading.RLock()
        return lock


def _os_error(exc: psycopg.Error, what: str) -> OSError:
    """A failed write as the OSError the storage contract promises (the Ledger turns it
    into 'could not write ... nothing was recorded'). A full disk on the server keeps
    ENOSPC, so the hint about freeing space still fits."""
    code = errno.ENOSPC if isinstance(exc, pg_errors.DiskFull) else errno.EIO
    detail = exc.diag.message_primary or exc.__class__.__name__
    return OSError(code, f"PostgreSQL refused to store {what}: {detail}")


class PgLedgerStorage:
    """The ledger of one workspace in a PostgreSQL database (see the module docstring)."""

    kind = "postgres"
    can_tear = False

    def __init__(self, backend: PgBackend, workspace: str) -> None:
        self.backend = backend
        self.workspace = workspace
        # Labels name the place for people; never the conninfo (it may hold a password).
        self.label = f"postgres:{workspace}/ledger"
        self.entries_label = f"{self.label}/entries"
        self.checkpoints_label = f"{self.label}/checkpoints"
        self.tree_label = f"{self.label}/tree"
        self.meta_label = f"{self.label}/meta"
        self.cosignatures_label = f"{self.label}/cosignatures"
        self._threads = _thread_lock(backend, workspace)

    def __repr__(self) -> str:
        return f"PgLedgerStorage({self.label!r})"

    # -- plumbing

    def _rows(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        # Binary results: bytea arrives as bytes without hex decoding. Any failure is the
        # backend's BackendError (the password masked).
        return self.backend.rows(sql, params, binary=True)

    def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: Any, what: str) -> int:
        """Run one INSERT; its row count. A database error becomes OSError."""
        with self.backend.connection() as conn:
            try:
                return conn.execute(sql, params).rowcount
            except pg_errors.UniqueViolation:
                raise
            except (pg_errors.InsufficientResources, pg_errors.DataError,
                    pg_errors.ReadOnlySqlTransaction, pg_errors.QueryCanceled) as exc:
                # The server answered and stored nothing: full disk, out of memory, a
                # read-only standby, a statement timeout. (A server that cannot be reached
                # is left to the backend, whose one-line error names the connection's
                # environment variable; anything else is a bug and stays itself.)
                raise _os_error(exc, what) from exc

    # -- identity

    def read_meta(self) -> bytes | None:
        row = self._one("SELECT data FROM docklock_ledger_meta WHERE workspace = %s",
                        (self.workspace,))
        return bytes(row[0]) if row else None

    def create_meta(self, data: bytes) -> None:
        # A second writer's INSERT does nothing; both then read back the first one's.
        self._write("INSERT INTO docklock_ledger_meta (workspace, data) VALUES (%s, %s) "
                    "ON CONFLICT (workspace) DO NOTHING", (self.workspace, data),
                    "the ledger's identity")

    # -- entries

    def _end(self) -> tuple[int, int]:
        """(next seq, stream size)."""
        row = self._one(_END_SQL, (self.workspace,))
        return (0, 0) if row is None else (int(row[0]) + 1, int(row[1]))

    def entries_size(self) -> int:
        return self._end()[1]

    def read_entries(self, offset: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The stream from `offset` to `end`, one chunk per round trip (_BATCH_SQL; keyset
        pagination: no cursor or transaction stays open between chunks, so the connection
        is free for other threads while the caller works on one)."""
        stop = _NO_END if end is None else end
        if offset >= stop:
            return
        params: dict[str, Any] = {"ws": self.workspace, "offset": offset, "end": stop,
                                  "after": -1, "n": FIRST_BATCH, "budget": BATCH_BYTES}
        pos: int | None = None  # stream offset of the next byte, from the lines themselves
        while True:
            row = self._one(_BATCH_SQL, params)
            if row is None or not row[1]:
                return
            scanned, shipped, last_seq, first_start = (int(v) for v in row[:4])
            data = bytes(row[4])
            if pos is None:
                pos = first_start
                if offset > pos:  # inside the first row's line: a file read starts there
                    data = data[offset - pos:]
                    pos = offset
            if pos + len(data) >= stop:
                if stop > pos:
                    yield data[:stop - pos]
                return
            if data:  # empty only when `offset` is past the end
                yield data
            pos += len(data)
            if scanned < params["n"] and shipped == scanned:
                return  # the last rows there are
            params.update(after=last_seq, n=BATCH)

    def lines_ending_with(self, suffixes: tuple[bytes, ...], offset: int,
                          end: int) -> list[bytes]:
        """The entry lines (without newline) lying within bytes [offset, end) that end in
        one of `suffixes`, in order: the server filters, so finding the rare key-rotation
        and key-trust lines ships those lines, not the whole stream (docklock.ledger.trust
        replays them before every signature)."""
        if not suffixes or offset >= end:
            return []
        rows = self._rows(
            "SELECT line FROM docklock_ledger_entries WHERE workspace = %(ws)s "
            "AND start_offset >= %(start)s AND start_offset + length(line) + 1 <= %(end)s "
            "AND EXISTS (SELECT 1 FROM unnest(%(ends)s::bytea[]) AS e(s) "
            "WHERE substr(line, length(line) - length(e.s) + 1) = e.s) ORDER BY seq",
            {"ws": self.workspace, "start": offset, "end": end, "ends": list(suffixes)})
        return [bytes(r[0]) for r in rows]

    def read_entries_at(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes from any `offset` (Ledger.tail reads backwards in steps)."""
        return b"".join(self.read_entries(offset, offset + n)) if n > 0 else b""

    def last_entry_line(self) -> tuple[bytes, bool] | None:
        row = self._one("SELECT line FROM docklock_ledger_entries WHERE workspace = %s "
                        "ORDER BY seq DESC LIMIT 1", (self.workspace,))
        return None if row is None else (bytes(row[0]), True)

    def append_entry(self, line: bytes, *, offset: int, seq: int) -> None:
        params = {"ws": self.workspace, "seq": seq, "offset": offset, "line": line}
        try:
            inserted = self._write(_APPEND_SQL, params, "the entry")
        except pg_errors.UniqueViolation as exc:
            raise self._lost_race(seq, offset) from exc
        if inserted != 1:
            self._refuse_if_moved()
            raise self._lost_race(seq, offset)

    def _refuse_if_moved(self) -> None:
        """The workspace was migrated away after this command opened it: say so (the
        append was refused by the database, nothing was recorded)."""
        moved = self.backend.moved()
        if moved is not None:
            raise self.backend.moved_error(*moved, after="; nothing was recorded")

    def _lost_race(self, seq: int, offset: int) -> LedgerError:
        next_seq, size = self._end()
        return LedgerError(
            f"another writer appended first: the ledger now ends at seq {next_seq} (byte "
            f"{size}), not at seq {seq} (byte {offset}); nothing was recorded",
            location=Location(self.entries_label),
            hint="run the command again (a writer must hold the ledger lock while it "
                 "appends)")

    # -- checkpoints

    def checkpoint_data(self) -> bytes:
        rows = self._rows("SELECT line FROM docklock_ledger_checkpoints WHERE workspace = %s "
                          "ORDER BY idx", (self.workspace,))
        return b"".join(bytes(r[0]) + b"\n" for r in rows)

    def first_checkpoint_line(self) -> bytes | None:
        row = self._one("SELECT line FROM docklock_ledger_checkpoints WHERE workspace = %s "
                        "ORDER BY idx LIMIT 1", (self.workspace,))
        return None if row is None else bytes(row[0])

    def last_checkpoint_line(self) -> tuple[bytes, bool] | None:
        row = self._one("SELECT line FROM docklock_ledger_checkpoints WHERE workspace = %s "
                        "ORDER BY idx DESC LIMIT 1", (self.workspace,))
        return None if row is None else (bytes(row[0]), True)

    def append_checkpoint(self, line: bytes) -> None:
        try:
            inserted = self._write(_APPEND_CHECKPOINT_SQL,
                                   {"ws": self.workspace, "line": line}, "the checkpoint")
        except pg_errors.UniqueViolation as exc:
            raise LedgerError(
                "another writer appended a checkpoint at the same time; nothing was recorded",
                location=Location(self.checkpoints_label),
                hint="run the command again (checkpoints are written under the ledger "
                     "lock)") from exc
        if inserted != 1:
            self._refuse_if_moved()
            raise LedgerError("PostgreSQL stored no checkpoint; nothing was recorded",
                              location=Location(self.checkpoints_label),
                              hint="run the command again")

    # -- side records

    def read_tree(self) -> bytes | None:
        row = self._one("SELECT data FROM docklock_ledger_tree WHERE workspace = %s",
                        (self.workspace,))
        return None if row is None else bytes(row[0])

    def write_tree(self, data: bytes) -> None:
        # A cache: a failure to store it must not fail the command (readers catch up).
        with contextlib.suppress(OSError, psycopg.Error, BackendError):
            self._write("INSERT INTO docklock_ledger_tree (workspace, data) VALUES (%s, %s) "
                        "ON CONFLICT (workspace) DO UPDATE SET data = EXCLUDED.data",
                        (self.workspace, data), "the tree cache")

    def tree_exists(self) -> bool:
        return self._one("SELECT 1 FROM docklock_ledger_tree WHERE workspace = %s",
                         (self.workspace,)) is not None

    def read_cosignatures(self) -> bytes | None:
        row = self._one("SELECT data FROM docklock_ledger_cosignatures WHERE workspace = %s",
                        (self.workspace,))
        return None if row is None else bytes(row[0])

    def write_cosignatures(self, data: bytes) -> None:
        self._write("INSERT INTO docklock_ledger_cosignatures (workspace, data) "
                    "VALUES (%s, %s) ON CONFLICT (workspace) DO UPDATE "
                    "SET data = EXCLUDED.data", (self.workspace, data),
                    "the witness cosignatures")

    def append_cosignature(self, line: bytes) -> None:
        # One statement: two commands adding records at once both keep theirs (the
        # row-level lock of ON CONFLICT DO UPDATE serialises them; no read-modify-write).
        self._write("INSERT INTO docklock_ledger_cosignatures AS t (workspace, data) "
                    "VALUES (%s, %s) ON CONFLICT (workspace) DO UPDATE "
                    "SET data = t.data || EXCLUDED.data", (self.workspace, line),
                    "a witness cosignature")

    # -- concurrency

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self._locked(shared=False)

    def shared(self) -> contextlib.AbstractContextManager[None]:
        return self._locked(shared=True)

    @contextlib.contextmanager
    def _locked(self, *, shared: bool) -> Iterator[None]:
        key = (f"docklock:ledger:{self.workspace}",)
        with self._threads:
            # Polled with the try- form so the process's connection is not held while
            # another process's command finishes (other threads need it meanwhile).
            delay = _POLL_START
            while not self._rows(_LOCK_SQL[shared], key)[0][0]:
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
            try:
                yield
            finally:
                # If the connection is gone its session (and so the lock) is gone too; an
                # error here must not hide the one that ended the block.
                with contextlib.suppress(BackendError):
                    self._rows(_UNLOCK_SQL[shared], key)

    # -- torn tails: a row is never partly written

    def move_torn_tails(self) -> list[Path]:
        return []
