"""The LedgerStorage contract as a reusable suite (docklock/ledger/storage.py).

Every storage the Ledger can sit on must pass it: FileLedgerStorage here
(tests/unit/ledger/test_storage_file.py), the PostgreSQL one in the backend tests. A
storage keeps bytes, it does not interpret them, so the checks append plain lines (the
Ledger's own behaviour on top is tested by the other ledger tests).

Use from a test module:

    from storage_contract import CONTRACT, storage_contract

    @pytest.mark.parametrize("case", sorted(CONTRACT))
    def test_contract(case, make_storage):          # one test per clause
        CONTRACT[case](make_storage)

    storage_contract(make_storage)                   # or all clauses in one call

`make_storage()` returns a NEW, EMPTY storage each call (its own folder or workspace). Writes
are made under `exclusive()`, as the Ledger makes them. This module's name is unique
(test folders have no __init__.py): put tests/unit/ledger on sys.path to import it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.errors import LedgerError
from docklock.ledger.storage import LedgerStorage

StorageFactory = Callable[[], LedgerStorage]


def _line(seq: int, text: str = "") -> bytes:
    """A canonical-looking entry line (UTF-8 beyond ASCII on purpose: bytes, not text)."""
    return json.dumps({"n": text or "é\u2028☃" * (seq % 5), "seq": seq}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _append_all(storage: LedgerStorage, lines: list[bytes], *, first_seq: int = 0) -> list[int]:
    """Append `lines` as the Ledger does; returns the byte offset each one starts at."""
    offsets = []
    with storage.exclusive():
        offset = storage.entries_size()
        for i, line in enumerate(lines):
            offsets.append(offset)
            storage.append_entry(line, offset=offset, seq=first_seq + i)
            offset += len(line) + 1
    return offsets


def _stream(storage: LedgerStorage, offset: int = 0, end: int | None = None) -> bytes:
    chunks = list(storage.read_entries(offset, end))
    assert all(isinstance(c, bytes) and c for c in chunks), "chunks are non-empty bytes"
    return b"".join(chunks)


# ------------------------------------------------------------------------- clauses


def empty_storage_holds_nothing(make: StorageFactory) -> None:
    s = make()
    assert s.kind in ("local", "postgres")
    assert isinstance(s.can_tear, bool)
    for label in (s.label, s.entries_label, s.checkpoints_label, s.tree_label, s.meta_label,
                  s.cosignatures_label):
        assert isinstance(label, Path | str)
        assert str(label)
    assert s.entries_size() == 0
    assert _stream(s) == b""
    assert s.last_entry_line() is None
    assert s.read_entries_at(0, 10) == b""
    assert s.checkpoint_data() == b""
    assert s.first_checkpoint_line() is None
    assert s.last_checkpoint_line() is None
    assert s.read_meta() is None
    assert s.read_tree() is None
    assert not s.tree_exists()
    assert s.read_cosignatures() is None


def entries_are_one_byte_stream(make: StorageFactory) -> None:
    s = make()
    lines = [_line(i) for i in range(7)]
    offsets = _append_all(s, lines)
    stream = b"".join(line + b"\n" for line in lines)
    assert s.entries_size() == len(stream)
    assert _stream(s) == stream
    for off in offsets:  # from any line boundary to the end
        assert _stream(s, off) == stream[off:]
    assert _stream(s, offsets[2], offsets[5]) == stream[offsets[2]:offsets[5]]
    assert _stream(s, offsets[3], offsets[3]) == b""
    assert s.last_entry_line() == (lines[-1], True)


def later_appends_continue_the_stream(make: StorageFactory) -> None:
    s = make()
    _append_all(s, [_line(0), _line(1)])
    _append_all(s, [_line(2)], first_seq=2)
    assert _stream(s).split(b"\n") == [_line(0), _line(1), _line(2), b""]
    assert s.last_entry_line() == (_line(2), True)


def read_entries_at_any_offset(make: StorageFactory) -> None:
    """Ledger.tail reads backwards in blocks that start mid-line."""
    s = make()
    _append_all(s, [_line(i) for i in range(5)])
    stream = _stream(s)
    for off in (0, 1, 5, len(stream) // 2, len(stream) - 1):
        for n in (1, 3, 40, len(stream)):
            assert s.read_entries_at(off, n) == stream[off:off + n], (off, n)
    assert s.read_entries_at(len(stream), 10) == b""


def a_stale_append_is_refused(make: StorageFactory) -> None:
    """Two writers computed the same position: the second must not land anywhere."""
    s = make()
    _append_all(s, [_line(0), _line(1)])
    size = s.entries_size()
    with s.exclusive():
        with pytest.raises(LedgerError):
            s.append_entry(_line(1, "again"), offset=len(_line(0)) + 1, seq=1)
        with pytest.raises(LedgerError):
            s.append_entry(_line(9), offset=size + 5, seq=9)
    assert s.entries_size() == size
    assert s.last_entry_line() == (_line(1), True)


def many_entries_round_trip(make: StorageFactory) -> None:
    """Enough lines that a storage reading in pages or chunks must stitch them."""
    s = make()
    lines = [_line(i, "x" * (i % 300)) for i in range(1500)]
    offsets = _append_all(s, lines)
    stream = b"".join(line + b"\n" for line in lines)
    assert _stream(s) == stream
    assert _stream(s, offsets[1000]) == stream[offsets[1000]:]
    assert _stream(s, offsets[10], offsets[1400]) == stream[offsets[10]:offsets[1400]]
    assert s.last_entry_line() == (lines[-1], True)


def checkpoints_are_a_record_stream(make: StorageFactory) -> None:
    s = make()
    records = [b'{"keyid":"k","note":"one","offset":1,"range":[]}',
               b'{"keyid":"k","note":"two","offset":2,"range":[]}',
               b'{"keyid":"k","note":"three \\u00e9","offset":3,"range":[]}']
    with s.exclusive():
        s.append_checkpoint(records[0])
    assert s.checkpoint_data() == records[0] + b"\n"
    assert s.first_checkpoint_line() == records[0]
    assert s.last_checkpoint_line() == (records[0], True)
    with s.exclusive():
        s.append_checkpoint(records[1])
        s.append_checkpoint(records[2])
    assert s.checkpoint_data() == b"".join(r + b"\n" for r in records)
    assert s.first_checkpoint_line() == records[0]
    assert s.last_checkpoint_line() == (records[2], True)
    assert s.entries_size() == 0  # the two streams are separate


def meta_is_written_once(make: StorageFactory) -> None:
    s = make()
    first = b'{"format":"docklock.io/ledger/v1","origin":"docklock.io/ledger/t/01"}\n'
    with s.exclusive():
        s.create_meta(first)
        s.create_meta(b'{"origin":"a later writer loses"}\n')  # no error, no change
    assert s.read_meta() == first


def tree_cache_is_replaced(make: StorageFactory) -> None:
    s = make()
    with s.exclusive():
        s.write_tree(b'{"size":1}\n')
    assert s.tree_exists()
    assert s.read_tree() == b'{"size":1}\n'
    with s.exclusive():
        s.write_tree(b'{"size":22}\n')
    assert s.read_tree() == b'{"size":22}\n'


def cosignatures_append_and_replace(make: StorageFactory) -> None:
    s = make()
    with s.exclusive():  # witnesses cosign a checkpoint: there is always one first
        s.append_checkpoint(b'{"keyid":"k"}')
    one, two = b'{"witness":"a"}\n', b'{"witness":"b"}\n'
    s.append_cosignature(one)
    s.append_cosignature(two)
    assert s.read_cosignatures() == one + two
    s.write_cosignatures(two)
    assert s.read_cosignatures() == two
    s.append_cosignature(one)
    assert s.read_cosignatures() == two + one


def locks_are_context_managers(make: StorageFactory) -> None:
    """Taken and released in turn (exclusion between processes is each storage's own
    test: within one process a PostgreSQL session lock is re-entrant, a flock is not)."""
    s = make()
    for _ in range(2):
        with s.exclusive():
            pass
        with s.shared():
            assert s.entries_size() == 0
    with s.exclusive():
        s.append_entry(_line(0), offset=0, seq=0)
    with s.shared():
        assert s.last_entry_line() == (_line(0), True)


CONTRACT: dict[str, Callable[[StorageFactory], None]] = {
    f.__name__: f for f in (
        empty_storage_holds_nothing, entries_are_one_byte_stream,
        later_appends_continue_the_stream, read_entries_at_any_offset,
        a_stale_append_is_refused, many_entries_round_trip, checkpoints_are_a_record_stream,
        meta_is_written_once, tree_cache_is_replaced, cosignatures_append_and_replace,
        locks_are_context_managers,
    )
}


def storage_contract(storage_factory: StorageFactory) -> None:
    """Run every clause, each on a fresh storage from `storage_factory`."""
    for clause in CONTRACT.values():
        clause(storage_factory)
