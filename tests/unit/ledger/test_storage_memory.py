"""The Ledger over a storage that is not files: a small in-memory, transactional one
(`can_tear = False`, string labels, like the PostgreSQL storage). It must pass the same
contract, and a Ledger on it must append, checkpoint, verify and catch an edit exactly as
on files, without ever touching `.docklock/ledger/`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from storage_contract import CONTRACT

from docklock.errors import LedgerError
from docklock.ledger import HybridSigner, Ledger, LedgerStorage, verify_ledger
from docklock.workspace import WorkspacePaths


class MemoryLedgerStorage:
    """Each write is all or nothing; nothing is ever torn."""

    kind = "postgres"  # stands in for a transactional store in these tests
    can_tear = False

    def __init__(self, name: str = "mem") -> None:
        self.label = f"memory:{name}"
        self.entries_label = f"memory:{name}/entries"
        self.checkpoints_label = f"memory:{name}/checkpoints"
        self.tree_label = f"memory:{name}/tree"
        self.meta_label = f"memory:{name}/meta"
        self.cosignatures_label = f"memory:{name}/cosignatures"
        self.entries = bytearray()
        self.seqs = 0
        self.checkpoints = bytearray()
        self.meta: bytes | None = None
        self.tree: bytes | None = None
        self.cosignatures: bytes | None = None
        self._lock = threading.RLock()

    def read_meta(self) -> bytes | None:
        return self.meta

    def create_meta(self, data: bytes) -> None:
        if self.meta is None:
            self.meta = bytes(data)

    def entries_size(self) -> int:
        return len(self.entries)

    def read_entries(self, offset: int = 0, end: int | None = None) -> Iterator[bytes]:
        data = bytes(self.entries[offset:end])
        for i in range(0, len(data), 4096):  # small pages: callers must stitch lines
            yield data[i:i + 4096]

    def read_entries_at(self, offset: int, n: int) -> bytes:
        return bytes(self.entries[offset:offset + n])

    def last_entry_line(self) -> tuple[bytes, bool] | None:
        if not self.entries:
            return None
        return bytes(self.entries[:-1]).rsplit(b"\n", 1)[-1], True

    def append_entry(self, line: bytes, *, offset: int, seq: int) -> None:
        if offset != len(self.entries) or seq != self.seqs:
            raise LedgerError(f"entry {seq} at {offset}: another writer got there first")
        self.entries += line + b"\n"
        self.seqs += 1

    def checkpoint_data(self) -> bytes:
        return bytes(self.checkpoints)

    def first_checkpoint_line(self) -> bytes | None:
        return bytes(self.checkpoints).split(b"\n", 1)[0] if self.checkpoints else None

    def last_checkpoint_line(self) -> tuple[bytes, bool] | None:
        if not self.checkpoints:
            return None
        return bytes(self.checkpoints[:-1]).rsplit(b"\n", 1)[-1], True

    def append_checkpoint(self, line: bytes) -> None:
        self.checkpoints += line + b"\n"

    def read_tree(self) -> bytes | None:
        return self.tree

    def write_tree(self, data: bytes) -> None:
        self.tree = bytes(data)

    def tree_exists(self) -> bool:
        return self.tree is not None

    def read_cosignatures(self) -> bytes | None:
        return self.cosignatures

    def write_cosignatures(self, data: bytes) -> None:
        self.cosignatures = bytes(data)

    def append_cosignature(self, line: bytes) -> None:
        self.cosignatures = (self.cosignatures or b"") + line

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            yield

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._lock:
            yield

    def move_torn_tails(self) -> list[Path]:
        raise AssertionError("never called on a storage that cannot tear")


@pytest.mark.parametrize("clause", sorted(CONTRACT))
def test_contract(clause: str) -> None:
    CONTRACT[clause](MemoryLedgerStorage)


def _commands(ledger: Ledger, signer: HybridSigner) -> None:
    for n in range(3):
        ledger.append("plan", {"summary": f"plan {n}"}, serial=n)
        ledger.append("change", {"address": f"Service/default/web{n}"}, serial=n)
        ledger.checkpoint(signer)
    ledger.append("drift", {"summary": "unsigned tail"})
    ledger.close()


def test_a_ledger_on_it_never_touches_the_ledger_folder(workspace: WorkspacePaths,
                                                        signer: HybridSigner) -> None:
    mem = MemoryLedgerStorage()
    assert isinstance(mem, LedgerStorage)
    ledger = Ledger(workspace, "t", signer=signer, storage=mem)
    _commands(ledger, signer)
    assert not workspace.ledger.exists()
    assert (ledger.dir, ledger.entries_path) == ("memory:mem", "memory:mem/entries")
    report = verify_ledger(workspace, storage=mem)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.unsigned_tail) == (7, 3, 1)
    # The same Ledger API reads it back.
    again = Ledger(workspace, "t", storage=mem)
    assert again.origin == ledger.origin
    assert again.size == 7
    assert [e.seq for e in again.tail(3)] == [4, 5, 6]
    assert [e.type.value for e in again.entries(5)] == ["change", "drift"]
    latest = again.latest_checkpoint()
    assert latest is not None
    assert latest.size == 6


def test_bytes_copied_from_files_verify_the_same(workspace: WorkspacePaths,
                                                 signer: HybridSigner) -> None:
    """`state migrate` copies the streams byte for byte: the copy verifies, same root."""
    on_files = Ledger(workspace, "t", signer=signer)
    _commands(on_files, signer)
    mem = MemoryLedgerStorage()
    folder = workspace.ledger
    mem.meta = (folder / "ledger.json").read_bytes()
    mem.entries += (folder / "entries.jsonl").read_bytes()
    mem.seqs = mem.entries.count(b"\n")
    mem.checkpoints += (folder / "checkpoints.jsonl").read_bytes()
    files_report = verify_ledger(workspace)
    mem_report = verify_ledger(workspace, storage=mem)
    assert files_report.ok, files_report.problem
    assert mem_report.ok, mem_report.problem
    assert (mem_report.root, mem_report.entries, mem_report.origin) == (
        files_report.root, files_report.entries, files_report.origin)


def test_an_edited_entry_is_named_with_the_storage_label(workspace: WorkspacePaths,
                                                         signer: HybridSigner) -> None:
    mem = MemoryLedgerStorage("team")
    _commands(Ledger(workspace, "t", signer=signer, storage=mem), signer)
    at = mem.entries.index(b"web1")
    mem.entries[at:at + 4] = b"web9"  # what an UPDATE by a superuser would do
    report = verify_ledger(workspace, storage=mem)
    assert report.problem is not None
    assert report.problem.seq == 3
    assert report.problem.file == "memory:team/entries"
    assert "payload was edited" in report.problem.message


def test_a_damaged_tail_is_refused_not_repaired(workspace: WorkspacePaths,
                                                signer: HybridSigner) -> None:
    """No torn-tail repair where nothing can tear: a line without its newline is damage."""
    mem = MemoryLedgerStorage()
    ledger = Ledger(workspace, "t", signer=signer, storage=mem)
    _commands(ledger, signer)
    mem.entries += b'{"actor":"x'
    fresh = Ledger(workspace, "t", signer=signer, storage=mem)
    with pytest.raises(LedgerError, match="incomplete"):
        fresh.append("plan", {"summary": "after"})
    assert mem.entries.endswith(b'{"actor":"x')  # left as found
    assert fresh.repaired == []
