"""FileLedgerStorage: the storage contract, plus what only files do (the exact layout of
`.docklock/ledger/`, torn tails, flock between processes), and the Ledger on a storage it
is given."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_contract import CONTRACT, storage_contract

from docklock.ledger import FileLedgerStorage, HybridSigner, Ledger, LedgerStorage, verify_ledger
from docklock.ledger.store import default_storage
from docklock.workspace import WorkspacePaths


@pytest.fixture
def make_storage(tmp_path: Path) -> Callable[[], FileLedgerStorage]:
    made = iter(range(1000))

    def _make() -> FileLedgerStorage:
        return FileLedgerStorage(tmp_path / f"s{next(made)}" / ".docklock" / "ledger")

    return _make


@pytest.mark.parametrize("clause", sorted(CONTRACT))
def test_contract(clause: str, make_storage: Callable[[], FileLedgerStorage]) -> None:
    CONTRACT[clause](make_storage)


def test_the_whole_contract_in_one_call(make_storage: Callable[[], FileLedgerStorage]) -> None:
    storage_contract(make_storage)  # the form other storages' tests call


def test_it_is_a_ledger_storage(tmp_path: Path) -> None:
    s = FileLedgerStorage(tmp_path / "ledger")
    assert isinstance(s, LedgerStorage)
    assert (s.kind, s.can_tear) == ("local", True)


def test_the_files_are_todays_layout(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    s = FileLedgerStorage(folder)
    assert (s.label, s.entries_label, s.checkpoints_label, s.tree_label, s.meta_label,
            s.cosignatures_label) == (
        folder, folder / "entries.jsonl", folder / "checkpoints.jsonl", folder / "tree.json",
        folder / "ledger.json", folder / "cosignatures.jsonl")
    reads = [s.entries_size(), s.read_meta(), s.checkpoint_data(), s.read_cosignatures()]
    assert reads == [0, None, b"", None]
    with s.shared():
        pass
    assert not folder.exists()  # reading (even under the shared lock) creates nothing
    with s.exclusive():
        s.create_meta(b"meta\n")
        s.append_entry(b"e0", offset=0, seq=0)
        s.append_entry(b"e1", offset=3, seq=1)
        s.append_checkpoint(b"c0")
        s.write_tree(b"tree\n")
    s.append_cosignature(b"w\n")  # (after a checkpoint, as witnessing does)
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoints.jsonl", "cosignatures.jsonl", "entries.jsonl", "ledger.json",
        "ledger.lock", "tree.json"]
    assert (folder / "entries.jsonl").read_bytes() == b"e0\ne1\n"
    assert (folder / "checkpoints.jsonl").read_bytes() == b"c0\n"
    assert (folder / "ledger.json").read_bytes() == b"meta\n"
    assert (folder / "cosignatures.jsonl").read_bytes() == b"w\n"
    for name in ("entries.jsonl", "checkpoints.jsonl", "ledger.json", "tree.json"):
        assert (folder / name).stat().st_mode & 0o777 == 0o644, name


def test_torn_tails_are_seen_and_moved_aside(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    s = FileLedgerStorage(folder)
    with s.exclusive():
        s.append_entry(b"e0", offset=0, seq=0)
        s.append_checkpoint(b"c0")
    with (folder / "entries.jsonl").open("ab") as f:
        f.write(b'{"actor":"x')
    with (folder / "checkpoints.jsonl").open("ab") as f:
        f.write(b'{"keyid":')
    assert s.last_entry_line() == (b'{"actor":"x', False)
    assert s.last_checkpoint_line() == (b'{"keyid":', False)
    assert s.first_checkpoint_line() == b"c0"
    with s.exclusive():
        moved = s.move_torn_tails()
    assert [p.name.split("-")[1] for p in moved] == ["entries", "checkpoints"]
    assert [p.read_bytes() for p in moved] == [b'{"actor":"x', b'{"keyid":']
    assert (folder / "entries.jsonl").read_bytes() == b"e0\n"
    assert (folder / "checkpoints.jsonl").read_bytes() == b"c0\n"
    assert s.move_torn_tails() == []  # nothing torn any more


def test_a_lone_torn_checkpoint_is_no_first_record(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    folder.mkdir()
    (folder / "checkpoints.jsonl").write_bytes(b'{"keyid":"k","no')
    s = FileLedgerStorage(folder)
    assert s.first_checkpoint_line() is None
    assert s.last_checkpoint_line() == (b'{"keyid":"k","no', False)


def _try_lock(lock: Path, mode: str) -> str:
    script = textwrap.dedent(f"""
        import fcntl, os
        fd = os.open({str(lock)!r}, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_{mode} | fcntl.LOCK_NB)
            print("got")
        except BlockingIOError:
            print("busy")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.strip()


def test_the_locks_exclude_other_processes(tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    s = FileLedgerStorage(folder)
    lock = folder / "ledger.lock"
    with s.exclusive():
        assert _try_lock(lock, "SH") == "busy"
        assert _try_lock(lock, "EX") == "busy"
    assert _try_lock(lock, "EX") == "got"
    with s.shared():
        assert _try_lock(lock, "SH") == "got"  # readers together
        assert _try_lock(lock, "EX") == "busy"  # a writer waits for them


def test_a_lock_that_cannot_be_made_names_the_lock_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    s = FileLedgerStorage(blocker / "ledger")
    with pytest.raises(NotADirectoryError) as caught, s.exclusive():
        pass
    assert caught.value.filename == str(blocker / "ledger" / "ledger.lock")


def test_an_append_that_fails_leaves_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE cuts the write short (EFBIG, as ENOSPC would): the file is cut back
    and an OSError says so."""
    folder = tmp_path / "ledger"
    s = FileLedgerStorage(folder)
    with s.exclusive():
        s.append_entry(b"e0", offset=0, seq=0)
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from docklock.ledger.storage import FileLedgerStorage
        s = FileLedgerStorage(Path({str(folder)!r}))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50, 50))
        try:
            with s.exclusive():
                s.append_entry(b"x" * 500, offset=3, seq=1)
        except OSError as exc:
            print("OSError", exc.errno)
            sys.exit(3)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert (folder / "entries.jsonl").read_bytes() == b"e0\n"


# ------------------------------------------------------------ the Ledger on a storage


def test_the_default_storage_is_the_workspace_folder(workspace: WorkspacePaths) -> None:
    storage = default_storage(workspace)
    assert isinstance(storage, FileLedgerStorage)  # docklock.yaml names no backend
    assert storage.label == workspace.ledger
    ledger = Ledger(workspace, "t")
    assert (ledger.dir, ledger.entries_path, ledger.checkpoints_path) == (
        workspace.ledger, workspace.ledger / "entries.jsonl",
        workspace.ledger / "checkpoints.jsonl")


def test_a_ledger_writes_only_to_the_storage_it_is_given(workspace: WorkspacePaths,
                                                         signer: HybridSigner,
                                                         tmp_path: Path) -> None:
    elsewhere = FileLedgerStorage(tmp_path / "elsewhere")
    ledger = Ledger(workspace, "t", signer=signer, storage=elsewhere)
    ledger.append("plan", {"summary": "one"})
    ledger.append("state-rm", {"addresses": ["Service/default/web"]})
    cp = ledger.checkpoint(signer)
    assert cp.size == 2
    assert not workspace.ledger.exists()
    assert (tmp_path / "elsewhere" / "entries.jsonl").read_bytes().count(b"\n") == 2
    assert ledger.entries_path == tmp_path / "elsewhere" / "entries.jsonl"
    report = verify_ledger(workspace, storage=elsewhere)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints) == (2, 1)
    # docklock.yaml's own ledger is another one: empty, and docklock.pub now names the
    # ledger in `elsewhere`, so verifying the default one says it is missing.
    default = verify_ledger(workspace)
    assert default.problem is not None
    assert "missing" in default.problem.message


@pytest.mark.parametrize("etype", ["state-migrate", "state-rm"])  # key-trust: trust.py's
def test_the_issue_14_entry_types_round_trip(workspace: WorkspacePaths, signer: HybridSigner,
                                             etype: str) -> None:
    ledger = Ledger(workspace, "t", signer=signer)
    entry = ledger.append(etype, {"summary": etype})
    ledger.checkpoint(signer)
    assert [e.type.value for e in ledger.entries()] == [etype]
    line = (workspace.ledger / "entries.jsonl").read_bytes().rstrip(b"\n")
    assert json.loads(line)["type"] == etype
    assert line == entry.line()
    assert verify_ledger(workspace).ok


def test_the_lock_is_flock_on_ledger_lock(workspace: WorkspacePaths) -> None:
    """The Ledger's own lock is the storage's: another process sees ledger.lock held."""
    ledger = Ledger(workspace, "t")
    with ledger._locked():
        fd = os.open(workspace.ledger / "ledger.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
