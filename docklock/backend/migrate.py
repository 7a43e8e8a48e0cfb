"""Moving a workspace's state and ledger from one backend to another, byte for byte.

The mechanics of `docklock state migrate` (the use case, with its locks, the source
ledger's verification and the `state-migrate` entry, is docklock.engine.state.migrate):
copy the ledger's streams and side records from one LedgerStorage to another, copy the
state document from one state store to another, and retire the source.

Invariants:
- The target ends with exactly the source's bytes: the entries stream (each line
  appended at the offset and seq it had), the checkpoint records, the identity record
  and the witnesses' cosignatures. So the ledger verifies the same on the target, its
  origin (recorded in docklock.pub and by witnesses) is unchanged, and `ledger verify`
  reports the same root.
- Nothing of the target is ever overwritten. A target that already holds something is
  accepted only when it is a byte prefix of the source (what an interrupted migration
  leaves: the PostgreSQL ledger is append-only, so its rows cannot be taken back); the
  copy then resumes after it. Anything else is refused before a byte is written, except
  the source's ledger followed by one `state-migrate` entry (recorded_move): a run
  killed after recording the move, which a re-run finishes by retiring the source.
- The state keeps its lineage and serial: a plan saved before the move is judged
  against the same state after it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock._fs import fsync_dir
from docklock.errors import LedgerError, StateError
from docklock.state.model import State
from docklock.workspace import WorkspacePaths

if TYPE_CHECKING:
    from docklock.backend import StateBackend
    from docklock.ledger.storage import LedgerStorage

_CMP_CHUNK = 1 << 20


class MigrationError(StateError):
    """The source or the target is not in a state a migration can start from."""


@dataclass(frozen=True)
class LedgerCopy:
    """What copy_ledger did: entries and checkpoints in the target afterwards, how many
    it found there already (an interrupted migration resumed), and the stream's size."""

    entries: int
    checkpoints: int
    size: int
    resumed_entries: int = 0
    resumed_checkpoints: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"entries": self.entries, "checkpoints": self.checkpoints, "bytes": self.size,
                "resumed_entries": self.resumed_entries,
                "resumed_checkpoints": self.resumed_checkpoints}


def holds_ledger(storage: LedgerStorage) -> bool:
    """True when the storage holds any ledger record (identity, entry or checkpoint)."""
    return (storage.read_meta() is not None or storage.entries_size() > 0
            or bool(storage.checkpoint_data()))


def check_whole(storage: LedgerStorage) -> None:
    """Refuse a source whose last entry or checkpoint is torn (a crashed write on files):
    the copy would carry half a line."""
    for what, last in (("entry", storage.last_entry_line()),
                       ("checkpoint", storage.last_checkpoint_line())):
        if last is not None and not last[1]:
            raise MigrationError(
                f"the last {what} of {storage.label} is incomplete (a crashed write)",
                hint="nothing was copied; set spec.backend.type back to the source's, "
                     "run `docklock ledger repair` (it moves the fragment aside), then "
                     "set it again and migrate")


def copy_ledger(source: LedgerStorage, target: LedgerStorage) -> LedgerCopy:
    """Copy the ledger from `source` to `target` (both held exclusively by the caller).

    Raises MigrationError, before writing anything, when the target holds a ledger that
    is not a prefix of the source's."""
    check_whole(source)
    src_meta, dst_meta = source.read_meta(), target.read_meta()
    if dst_meta is not None and dst_meta != src_meta:
        raise _foreign(target, "its identity record differs")
    src_size, dst_size = source.entries_size(), target.entries_size()
    have = 0
    if dst_size:
        if dst_size > src_size:
            raise _foreign(target, f"it holds {dst_size} bytes of entries, the source "
                                   f"{src_size}")
        have, same = _same_prefix(source, target, dst_size)
        if not same:
            raise _foreign(target, "its entries differ from the source's")
    src_cps, dst_cps = source.checkpoint_data(), target.checkpoint_data()
    if not src_cps.startswith(dst_cps):
        raise _foreign(target, "its checkpoints differ from the source's")

    if dst_meta is None and src_meta is not None:
        target.create_meta(src_meta)
    seq, offset = have, dst_size
    for line in _lines(source.read_entries(dst_size)):
        target.append_entry(line, offset=offset, seq=seq)
        offset += len(line) + 1
        seq += 1
    had_cps = dst_cps.count(b"\n")
    for record in src_cps[len(dst_cps):].split(b"\n")[:-1]:
        target.append_checkpoint(record)
    cosignatures = source.read_cosignatures()
    if cosignatures is not None:
        target.write_cosignatures(cosignatures)
    tree = source.read_tree()
    if tree is not None:
        target.write_tree(tree)  # a cache: best effort, validated by the Ledger on use
    return LedgerCopy(entries=seq, checkpoints=src_cps.count(b"\n"), size=offset,
                      resumed_entries=have, resumed_checkpoints=had_cps)


@dataclass(frozen=True)
class RecordedMove:
    """A `state-migrate` entry that an earlier, interrupted run appended on the target
    right after copying the source: its seq and payload, whether its checkpoint was
    signed too, and the copy it completed (as copy_ledger would report it)."""

    seq: int
    payload: dict[str, Any]
    checkpointed: bool
    copy: LedgerCopy


def recorded_move(source: LedgerStorage, target: LedgerStorage) -> RecordedMove | None:
    """The move an earlier run recorded, when the target holds exactly the source's
    ledger (identity, entries, checkpoints) followed by ONE `state-migrate` entry and at
    most one checkpoint; None when it holds anything else (copy_ledger then judges it).

    The caller still checks the payload names this source, its size and root: the
    entry could come from another source whose ledger began the same way."""
    from docklock.ledger.store import Entry, EntryType

    src_size, dst_size = source.entries_size(), target.entries_size()
    last = target.last_entry_line()
    if dst_size <= src_size or last is None or not last[1]:
        return None
    line = last[0]
    if dst_size != src_size + len(line) + 1 or source.read_meta() != target.read_meta():
        return None
    src_cps, dst_cps = source.checkpoint_data(), target.checkpoint_data()
    if not dst_cps.startswith(src_cps) or dst_cps[len(src_cps):].count(b"\n") > 1:
        return None
    if _digest(target.read_entries(0, src_size)) != _digest(source.read_entries(0)):
        return None
    try:
        entry = Entry.from_line(line)
    except (LedgerError, ValueError, KeyError, TypeError):
        return None
    if entry.type is not EntryType.STATE_MIGRATE:
        return None
    n_cps = src_cps.count(b"\n")
    return RecordedMove(
        seq=entry.seq, payload=dict(entry.payload),
        checkpointed=len(dst_cps) > len(src_cps),
        copy=LedgerCopy(entries=entry.seq, checkpoints=n_cps, size=src_size,
                        resumed_entries=entry.seq, resumed_checkpoints=n_cps))


def _digest(chunks: Iterator[bytes]) -> bytes:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.digest()


def _foreign(target: LedgerStorage, why: str) -> MigrationError:
    return MigrationError(
        f"the target {target.label} already holds a ledger for this workspace ({why})",
        hint="nothing was copied; migrate into an empty workspace: on PostgreSQL give "
             "this one a new key with spec.backend.workspace (ledger rows are never "
             "deleted), on files move .docklock/ledger and .docklock/state.json aside")


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines (without b"\\n") of a stream of chunks; check_whole made sure the
    stream ends with a newline."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        raise MigrationError("the source's entries ended in an incomplete line",
                             hint="nothing after it was copied; run the migration again")


def _same_prefix(source: LedgerStorage, target: LedgerStorage, n: int) -> tuple[int, bool]:
    """(lines in the target's stream, whether its `n` bytes equal the source's first)."""
    dst = hashlib.sha256()
    lines = 0
    for chunk in target.read_entries(0):
        dst.update(chunk)
        lines += chunk.count(b"\n")
    src = hashlib.sha256()
    for chunk in source.read_entries(0, n):
        src.update(chunk)
    return lines, dst.digest() == src.digest()


# ---------------------------------------------------------------------------- state


def stored_bytes(store: StateBackend) -> bytes | None:
    """The state document exactly as stored (state.json's bytes), None when none is."""
    reader = getattr(store, "read_bytes", None)  # PgStateStore
    if reader is not None:
        data: bytes | None = reader()
        return data
    path = Path(store.path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror}",
                         hint="check the file's permissions") from exc


def parse_state(data: bytes, source: str) -> State:
    """`data` as a State (StateError when it is not one)."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{source} is corrupt: not valid JSON ({exc})",
                         hint="nothing was migrated; restore the state first") from exc
    if not isinstance(doc, dict):
        raise StateError(f"{source} is corrupt: the top level is not an object",
                         hint="nothing was migrated; restore the state first")
    return State.from_dict(doc, source=source)


def import_state(target: StateBackend, data: bytes, state: State) -> State:
    """Store `data` (holding `state`) as the target's first state, keeping its lineage
    and serial. The target's lock must be held; a target with state is refused."""
    if target.exists():
        raise MigrationError(f"the target {target.path} already holds state",
                             hint="nothing was changed; migrate into an empty workspace")
    return target.write_bytes(data)


def retire_local(paths: WorkspacePaths, stamp: str) -> Path:
    """Move the local state and ledger aside into `.docklock/migrated-<stamp>/` (kept,
    never deleted): the workspace no longer reads them, and reverting docklock.yaml to
    `local` finds no stale copy but a missing ledger, which DockLock reports."""
    folder = paths.dot / f"migrated-{stamp}"
    n = 1
    while True:
        try:
            folder.mkdir(mode=0o700)
            break
        except FileExistsError:  # two migrations within one second
            n += 1
            folder = paths.dot / f"migrated-{stamp}-{n}"
    state_backup = paths.state.with_name(paths.state.name + ".backup")
    for item in (paths.state, state_backup, paths.ledger):
        if item.exists():
            os.rename(item, folder / item.name)
    fsync_dir(folder)
    fsync_dir(paths.dot)
    return folder
