"""State migration without a database: the byte copy between two file ledgers (fresh,
resumed, refused), the state import keeping lineage and serial, and the refusals of
`state migrate` that come before any backend is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.backend.migrate import (
    LedgerCopy,
    MigrationError,
    copy_ledger,
    import_state,
    retire_local,
    stored_bytes,
)
from docklock.engine import Context
from docklock.engine import state as engine_state
from docklock.ledger import EntryType, Ledger, verify_ledger
from docklock.ledger.keys import init_keys
from docklock.ledger.storage import FileLedgerStorage
from docklock.objects import ObjectKind
from docklock.state import RecordedObject, StateStore
from docklock.workspace import WorkspacePaths

HEAD = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: moving}\n"


def _workspace(root: Path, spec: str = "spec: {}\n") -> WorkspacePaths:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docklock.yaml").write_text(HEAD + spec)
    return WorkspacePaths(root)


def _ledger_with_entries(paths: WorkspacePaths, n: int) -> None:
    signer = init_keys(paths)
    with Ledger.open(paths, "moving", signer=signer) as ledger:
        for i in range(n):
            ledger.append(EntryType.PLAN, {"i": i, "text": "é" * (i % 5)})
            if i % 7 == 3:
                ledger.checkpoint(signer)
        ledger.checkpoint(signer)


def _state(paths: WorkspacePaths, writes: int) -> bytes:
    store = StateStore(paths)
    with store.lock(command="test"):
        state = store.read(cluster="moving")
        for i in range(writes):
            obj = RecordedObject(key=f"container:c{i}", kind=ObjectKind.CONTAINER,
                                 name=f"c{i}", id=f"{i:064x}", config_hash="c" * 64)
            state = store.write(state.with_object(f"Service/default/s{i}", obj))
    return paths.state.read_bytes()


def _copy(source: FileLedgerStorage, target: FileLedgerStorage) -> LedgerCopy:
    # The caller's contract: both storages held exclusively (this also makes the folder).
    with source.exclusive(), target.exclusive():
        return copy_ledger(source, target)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.name not in ("ledger.lock",)}


def test_copy_is_byte_for_byte_and_verifies(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 30)
    dst_dir = tmp_path / "dst" / "ledger"
    copied = _copy(FileLedgerStorage(src.ledger), FileLedgerStorage(dst_dir))
    assert (copied.entries, copied.checkpoints) == (30, 5)  # 4 along the way + 1 at the end
    assert copied.resumed_entries == 0
    for name in ("entries.jsonl", "checkpoints.jsonl", "ledger.json"):
        assert (dst_dir / name).read_bytes() == (src.ledger / name).read_bytes(), name
    # The copy verifies as the source does: same origin, same root.
    src_report = verify_ledger(src)
    dst_ws = _workspace(tmp_path / "dst-ws")
    (dst_ws.root / "docklock.pub").write_bytes((src.root / "docklock.pub").read_bytes())
    dst_ws.dot.mkdir()
    (dst_dir.parent / "ledger").rename(dst_ws.ledger)
    dst_report = verify_ledger(dst_ws, cluster="moving")
    assert dst_report.ok, dst_report.problem
    assert (dst_report.root, dst_report.origin) == (src_report.root, src_report.origin)


def test_an_interrupted_copy_resumes(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 12)
    source = FileLedgerStorage(src.ledger)
    target = FileLedgerStorage(tmp_path / "dst")
    # What a copy killed after 5 entries and 1 checkpoint leaves behind.
    (tmp_path / "dst").mkdir()
    target.create_meta(source.read_meta() or b"")
    lines = b"".join(source.read_entries()).split(b"\n")[:-1]
    offset = 0
    for seq, line in enumerate(lines[:5]):
        target.append_entry(line, offset=offset, seq=seq)
        offset += len(line) + 1
    target.append_checkpoint(source.checkpoint_data().split(b"\n")[0])
    copied = _copy(source, target)
    assert (copied.resumed_entries, copied.resumed_checkpoints) == (5, 1)
    assert copied.entries == 12
    assert b"".join(target.read_entries()) == b"".join(source.read_entries())
    assert target.checkpoint_data() == source.checkpoint_data()


def test_a_foreign_target_is_refused_before_any_write(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 4)
    other = _workspace(tmp_path / "other")
    _ledger_with_entries(other, 2)
    before = _files(other.ledger)
    with pytest.raises(MigrationError, match="already holds a ledger"):
        _copy(FileLedgerStorage(src.ledger), FileLedgerStorage(other.ledger))
    assert _files(other.ledger) == before


def test_a_torn_source_is_refused(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 3)
    with (src.ledger / "entries.jsonl").open("ab") as f:
        f.write(b'{"seq":3,"ti')
    target = tmp_path / "dst"
    with pytest.raises(MigrationError, match="incomplete"):
        _copy(FileLedgerStorage(src.ledger), FileLedgerStorage(target))
    assert [p.name for p in target.iterdir()] == ["ledger.lock"]  # nothing copied


def test_state_import_keeps_lineage_serial_and_bytes(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    data = _state(src, 5)
    source = StateStore(src)
    state = source.read()
    dst = _workspace(tmp_path / "dst")
    target = StateStore(dst)
    with target.lock(command="test"):
        written = import_state(target, data, state)
        assert (written.lineage, written.serial) == (state.lineage, 5)
        with pytest.raises(MigrationError, match="already holds state"):
            import_state(target, data, state)
    assert stored_bytes(target) == data


def test_retire_local_keeps_the_files(tmp_path: Path) -> None:
    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 2)
    data = _state(src, 2)
    moved = retire_local(src, "20260101T000000Z")
    again = retire_local(src, "20260101T000000Z")  # same second: a second folder
    assert moved.name == "migrated-20260101T000000Z"
    assert again.name == "migrated-20260101T000000Z-2"
    assert (moved / "state.json").read_bytes() == data
    assert (moved / "state.json.backup").exists()
    assert (moved / "ledger" / "entries.jsonl").exists()
    assert not src.state.exists()
    assert not src.ledger.exists()


@pytest.mark.parametrize(("spec", "to", "message"), [
    ("spec: {}\n", "postgres", "docklock.yaml names the local backend, not postgres"),
    ("spec:\n  backend: {type: postgres, connectionEnv: PG_NOWHERE}\n", "local",
     "docklock.yaml names the postgres backend, not local"),
    ("spec:\n  backend: {type: local}\n", "local",
     "spec.backend.connectionEnv is not set"),
], ids=["target-not-named", "target-not-named-pg", "no-database"])
def test_migrate_refusals(tmp_path: Path, spec: str, to: str, message: str) -> None:
    paths = _workspace(tmp_path / "ws", spec)
    with pytest.raises(MigrationError) as caught:
        engine_state.migrate(Context(paths), to)
    assert message in caught.value.message
    assert not paths.dot.exists()  # nothing was created


def test_an_append_during_verification_is_verified_too(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import docklock.ledger

    src = _workspace(tmp_path / "src")
    _ledger_with_entries(src, 3)
    real = docklock.ledger.verify_ledger
    calls: list[int] = []

    def verify_then_append(*args: object, **kwargs: object) -> object:
        report = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(report.entries)
        if len(calls) == 1:  # another command appends between verify and the copy
            with Ledger.open(src, "moving") as ledger:
                ledger.append(EntryType.DRIFT, {"late": True})
        return report

    monkeypatch.setattr(docklock.ledger, "verify_ledger", verify_then_append)
    source, target = FileLedgerStorage(src.ledger), FileLedgerStorage(tmp_path / "dst")
    report, copied = engine_state._verify_and_copy(src, "moving", source, target)
    assert calls == [3, 4]  # the second pass covered the late entry
    assert report.entries == copied.entries == 4
    assert b"".join(target.read_entries()) == b"".join(source.read_entries())
