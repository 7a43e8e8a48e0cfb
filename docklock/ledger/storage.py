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

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class LedgerStorage(Protocol):
    """The byte-level operations a Ledger needs. Labels (`*_label`) name the place in
    messages and error locations: a Path for files, a `postgres:...` string otherwise;
    `str()` of either is what a user sees."""

    kind: str  # "local" | "postgres"
    label: Path | str  # the ledger as a whole (".docklock/ledger")
    entries_label: Path | str
    checkpoints_label: Path | str
    tree_label: Path | str
    meta_label: Path | str
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
        """Append one record, all or nothing, durable when it returns (OSError on
        failure, nothing written)."""

    # -- side records: caches (may be lost or stale; never trusted for security)
    def read_tree(self) -> bytes | None: ...

    def write_tree(self, data: bytes) -> None:
        """Best effort: failing to write a cache must not fail a command."""

    def tree_exists(self) -> bool: ...

    def read_cosignatures(self) -> bytes | None: ...

    def write_cosignatures(self, data: bytes) -> None:
        """Replace the cosignature records (OSError on failure)."""

    # -- concurrency
    def exclusive(self) -> AbstractContextManager[None]:
        """Held while appending or checkpointing: one writer at a time, across processes
        and hosts sharing the storage."""

    def shared(self) -> AbstractContextManager[None]:
        """Held by readers that need a consistent snapshot (verify) while writers wait."""

    # -- torn tails (only called when can_tear)
    def read_entries_at(self, offset: int, n: int) -> bytes: ...

    def move_torn_tails(self) -> list[Path]:
        """Move an incomplete last line of the entries and checkpoint streams aside
        (kept in `torn-*.bin`), returning where they went."""
