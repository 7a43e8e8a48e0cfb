"""Where the ledger's bytes live: the storage contract the Ledger is written against.

The ledger (docklock.ledger.store) is defined over byte streams, not files: the entries
are one stream of canonical lines, each ending in b"\\n", addressed by byte offset (the
offsets checkpoints and the tree cache record); the checkpoint records are another such
stream. A backend stores those streams and a few small records; everything that gives
them meaning (hashing, linking, signing, repairing, verifying) stays in the Ledger and
is the same whatever the storage. So a ledger copied byte for byte from one storage to
another verifies the same, and `ledger verify` reports the same findings on both.

Two implementations: FileLedgerStorage (`.docklock/ledger/`, the default) here, and the
PostgreSQL one in docklock.backend.pg_ledger. The Ledger picks one through
docklock.backend.ledger_storage(paths) and never asks which it got.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from docklock._fs import atomic_write_bytes, fsync_dir
from docklock.errors import LedgerError, Location

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
TREE_FILE = "tree.json"
LOCK_FILE = "ledger.lock"
META_FILE = "ledger.json"
COSIGNATURES_FILE = "cosignatures.jsonl"
CHUNK = 1 << 24  # read size of the entries file: verify's hot loop is fed in these


@runtime_checkable
class LedgerStorage(Protocol):
    """The byte-level operations a Ledger needs. Labels (`*_label`) name the place in
    messages and error locations: a Path for files, a `postgres:...` string otherwise;
    `str()` of either is what a user sees."""

    kind: str  # "local" | "postgres"

    # Read-only, so an implementation may narrow them (FileLedgerStorage: Path; str).
    @property
    def label(self) -> Path | str:
        """The ledger as a whole (".docklock/ledger")."""

    @property
    def entries_label(self) -> Path | str: ...

    @property
    def checkpoints_label(self) -> Path | str: ...

    @property
    def tree_label(self) -> Path | str: ...

    @property
    def meta_label(self) -> Path | str: ...

    @property
    def cosignatures_label(self) -> Path | str: ...

    # True when a write can be torn (files): the Ledger then detects and repairs torn
    # tails. A transactional store never shows a partial line.
    can_tear: bool

    # -- identity (ledger.json): written once, never changed
    def read_meta(self) -> bytes | None:
        """The identity record, or None when there is none yet."""

    def create_meta(self, data: bytes) -> None:
        """Store the identity record unless one exists (then do nothing: the caller
        re-reads, so two writers racing agree on the first). Raises OSError on failure."""

    # -- entries
    def entries_size(self) -> int:
        """Length in bytes of the entries stream."""

    def read_entries(self, offset: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Chunks of the entries stream from byte `offset` (a line boundary) to `end`
        (default: the end), in order; their concatenation is the stream's bytes."""

    def last_entry_line(self) -> tuple[bytes, bool] | None:
        """(last line without its newline, complete?) or None when there are no entries."""

    def append_entry(self, line: bytes, *, offset: int, seq: int) -> None:
        """Append `line` + b"\\n" as entry `seq`, which must start at byte `offset` (the
        current size). All or nothing, durable when it returns; raises OSError (ENOSPC,
        EIO, ...) with nothing written, or LedgerError when `offset`/`seq` are not the
        current end (another writer got there first)."""

    # -- checkpoints
    def checkpoint_data(self) -> bytes:
        """All checkpoint records, each followed by b"\\n" (a torn last one has none)."""

    def first_checkpoint_line(self) -> bytes | None:
        """The first complete record, or None."""

    def last_checkpoint_line(self) -> tuple[bytes, bool] | None:
        """(last record, complete?) or None when there is none."""

    def append_checkpoint(self, line: bytes) -> None:
        """Append `line` + b"\\n" as one record, all or nothing, durable when it returns
        (OSError on failure, nothing written)."""

    # -- side records: caches (may be lost or stale; never trusted for security)
    def read_tree(self) -> bytes | None: ...

    def write_tree(self, data: bytes) -> None:
        """Best effort: failing to write a cache must not fail a command."""

    def tree_exists(self) -> bool: ...

    def read_cosignatures(self) -> bytes | None: ...

    def write_cosignatures(self, data: bytes) -> None:
        """Replace the cosignature records (OSError on failure)."""

    def append_cosignature(self, line: bytes) -> None:
        """Add one record (`line` ends with b"\\n") after the others, durably. Witnesses
        answer after the ledger lock is released, so two commands may add records at
        once: neither may lose the other's (a read-modify-write would)."""

    # -- concurrency
    def exclusive(self) -> AbstractContextManager[None]:
        """Held while appending or checkpointing: one writer at a time, across processes
        and hosts sharing the storage."""

    def shared(self) -> AbstractContextManager[None]:
        """Held by readers that need a consistent snapshot (verify) while writers wait."""

    def read_entries_at(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes of the entries stream from ANY byte `offset` (not only a line
        boundary): `Ledger.tail` reads backwards from the end with it, whatever the
        storage; the torn-tail check reads a fragment with it."""

    # -- torn tails (only called when can_tear)

    def move_torn_tails(self) -> list[Path]:
        """Move an incomplete last line of the entries and checkpoint streams aside
        (kept in `torn-*.bin`), returning where they went."""


# ------------------------------------------------------------------------ the files


def read_last_line(path: Path) -> tuple[bytes, bool] | None:
    """(last line, complete?) of a file without reading all of it; None if empty."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return None
            block = 1 << 16
            pos = end
            buf = b""
            while pos > 0:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
                body = buf[:-1] if buf.endswith(b"\n") else buf
                cut = body.rfind(b"\n")
                if cut >= 0:
                    return body[cut + 1:], buf.endswith(b"\n")
            body = buf[:-1] if buf.endswith(b"\n") else buf
            return body, buf.endswith(b"\n")
    except FileNotFoundError:
        return None


def save_cache_file(path: Path, data: bytes) -> None:
    """Replace a cache file (tree.json) best effort.

    Atomic against a crash of this process (rename), but not fsynced: after a power loss
    it may lag the entries file and is caught up or rebuilt.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        # A full disk must not fail a command over a cache: the old file stays (readers
        # catch up from its offset) and the partial temp file goes.
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _append_durably(path: Path, data: bytes, *, expect_size: int | None = None) -> int:
    """Append `data` to `path` (created 0644) and fdatasync; on failure cut the file back
    to its previous length, so no torn record stays behind (if even that fails, the
    fragment is a torn tail the next writer repairs). Returns the previous length."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        if expect_size is not None and start != expect_size:
            raise LedgerError(
                f"the ledger changed while it was being written: {path.name} ends at byte "
                f"{start}, not {expect_size}", location=Location(str(path)),
                hint="another process wrote it without the ledger lock; run "
                     "`docklock ledger verify`")
        try:
            _write_all(fd, data)
            os.fdatasync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fdatasync(fd)
            raise
        return start
    finally:
        os.close(fd)


class FileLedgerStorage:
    """The ledger in `.docklock/ledger/`: entries.jsonl, checkpoints.jsonl, ledger.json,
    tree.json, cosignatures.jsonl, flock on ledger.lock (docklock.ledger.store describes
    the files). Appends are O_APPEND writes with fdatasync, cut back on failure; a crash
    mid-write can still leave a torn last line (`can_tear`), which the Ledger repairs."""

    kind = "local"
    can_tear = True

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.entries_file = folder / ENTRIES_FILE
        self.checkpoints_file = folder / CHECKPOINTS_FILE
        self.tree_file = folder / TREE_FILE
        self.meta_file = folder / META_FILE
        self.cosignatures_file = folder / COSIGNATURES_FILE
        self.lock_path = folder / LOCK_FILE
        # The protocol's labels: here they are the paths themselves.
        self.label = folder
        self.entries_label = self.entries_file
        self.checkpoints_label = self.checkpoints_file
        self.tree_label = self.tree_file
        self.meta_label = self.meta_file
        self.cosignatures_label = self.cosignatures_file

    def __repr__(self) -> str:
        return f"FileLedgerStorage({str(self.dir)!r})"

    # -- identity

    def read_meta(self) -> bytes | None:
        try:
            return self.meta_file.read_bytes()
        except FileNotFoundError:
            return None

    def create_meta(self, data: bytes) -> None:
        # Linked into place only if absent: a racing writer's file is kept.
        with contextlib.suppress(FileExistsError):
            atomic_write_bytes(self.meta_file, data, mode=0o644, exclusive=True)

    # -- entries

    def entries_size(self) -> int:
        try:
            return self.entries_file.stat().st_size
        except FileNotFoundError:
            return 0

    def read_entries(self, offset: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            f = self.entries_file.open("rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(offset)
            if end is None:
                while chunk := f.read(CHUNK):
                    yield chunk
                return
            remaining = end - offset
            while remaining > 0:
                chunk = f.read(min(remaining, CHUNK))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def read_entries_at(self, offset: int, n: int) -> bytes:
        try:
            with self.entries_file.open("rb") as f:
                f.seek(offset)
                return f.read(n)
        except FileNotFoundError:
            return b""

    def last_entry_line(self) -> tuple[bytes, bool] | None:
        return read_last_line(self.entries_file)

    def append_entry(self, line: bytes, *, offset: int, seq: int) -> None:
        # `seq` is implied by `offset` here: the Ledger computed both from this file
        # under the lock, so a size that moved means a writer that ignored the lock.
        _append_durably(self.entries_file, line + b"\n", expect_size=offset)
        if offset == 0:
            fsync_dir(self.dir)  # the file was created: make its name durable too

    # -- checkpoints

    def checkpoint_data(self) -> bytes:
        try:
            return self.checkpoints_file.read_bytes()
        except FileNotFoundError:
            return b""

    def first_checkpoint_line(self) -> bytes | None:
        try:
            with self.checkpoints_file.open("rb") as f:
                line = f.readline()
        except FileNotFoundError:
            return None
        if not line.endswith(b"\n"):
            return None
        return line[:-1]

    def last_checkpoint_line(self) -> tuple[bytes, bool] | None:
        return read_last_line(self.checkpoints_file)

    def append_checkpoint(self, line: bytes) -> None:
        _append_durably(self.checkpoints_file, line + b"\n")

    # -- side records

    def read_tree(self) -> bytes | None:
        try:
            return self.tree_file.read_bytes()
        except FileNotFoundError:
            return None

    def write_tree(self, data: bytes) -> None:
        save_cache_file(self.tree_file, data)

    def tree_exists(self) -> bool:
        return self.tree_file.exists()

    def read_cosignatures(self) -> bytes | None:
        try:
            return self.cosignatures_file.read_bytes()
        except FileNotFoundError:
            return None

    def write_cosignatures(self, data: bytes) -> None:
        atomic_write_bytes(self.cosignatures_file, data, mode=0o644)

    def append_cosignature(self, line: bytes) -> None:
        fd = os.open(self.cosignatures_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        rest = line
        try:
            while rest:  # os.write may write less than asked
                rest = rest[os.write(fd, rest):]
            os.fdatasync(fd)
        except OSError:
            if rest is not line:
                # End the torn record, so the next one starts on its own line (best
                # effort; a torn line is skipped when read).
                with contextlib.suppress(OSError):
                    os.write(fd, b"\n")
            raise
        finally:
            os.close(fd)

    # -- concurrency

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            # Named after the lock file whatever step failed: that is what the user
            # must make writable.
            raise OSError(exc.errno, exc.strerror, str(self.lock_path)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        if not self.dir.is_dir():
            yield  # no ledger yet: nothing to hold still (and nothing to create)
            return
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    # -- torn tails

    def move_torn_tails(self) -> list[Path]:
        moved: list[Path] = []
        for path in (self.entries_file, self.checkpoints_file):
            last = read_last_line(path)
            if last is None or last[1]:
                continue
            fragment = last[0]
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            keep = self.dir / f"torn-{path.stem}-{stamp}.bin"
            try:
                keep.write_bytes(fragment)
                fd = os.open(keep, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with path.open("r+b") as f:
                    f.truncate(path.stat().st_size - len(fragment))
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                # Named after the copy: where the fragment should have gone.
                raise OSError(exc.errno, exc.strerror, str(keep)) from exc
            moved.append(keep)
        return moved
