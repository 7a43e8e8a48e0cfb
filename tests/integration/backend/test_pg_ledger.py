"""PgLedgerStorage on a real PostgreSQL (the private cluster of tests/harness_pg.py).

The storage must be indistinguishable from the files to the Ledger: the same bytes at
the same offsets (checked against FileLedgerStorage fed the same lines), one writer at a
time across sessions and threads, workspaces apart. A whole Ledger on it verifies, and
a row edited by a superuser past the append-only triggers is named by `ledger verify`
exactly as the same edit of entries.jsonl is.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from harness_pg import PostgresServer
from psycopg.conninfo import conninfo_to_dict

from docklock.backend import pg, pg_ledger
from docklock.backend.pg_ledger import BATCH, FIRST_BATCH, PgLedgerStorage
from docklock.errors import LedgerError
from docklock.ledger import HybridSigner, Ledger, ensure_keys, verify_ledger
from docklock.ledger.storage import FileLedgerStorage, LedgerStorage
from docklock.ledger.store import LedgerUnavailableError
from docklock.ledger.verify import Problem
from docklock.workspace import WorkspacePaths

# Helper A's contract suite, shared by every LedgerStorage (a unique module name).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "ledger"))
from storage_contract import CONTRACT

pytestmark = pytest.mark.postgres

ENV = "DOCKLOCK_TEST_PG"
WS = "ws1"


@pytest.fixture
def conninfo(pg_conninfo: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, pg_conninfo)
    return pg_conninfo


@pytest.fixture
def backend(conninfo: str) -> pg.PgBackend:
    return pg.connect(ENV, WS)


@pytest.fixture
def store(backend: pg.PgBackend) -> PgLedgerStorage:
    return PgLedgerStorage(backend, WS)


@pytest.fixture
def make_storage(backend: pg.PgBackend) -> Callable[[], PgLedgerStorage]:
    """A new, empty workspace in the test's database at each call."""
    made = iter(range(1000))
    return lambda: PgLedgerStorage(backend, f"contract-{next(made)}")


@pytest.mark.parametrize("clause", sorted(CONTRACT))
def test_contract(clause: str, make_storage: Callable[[], PgLedgerStorage]) -> None:
    CONTRACT[clause](make_storage)


def other_session(workspace: str = WS) -> PgLedgerStorage:
    """The storage as another process sees it: its own PostgreSQL session."""
    return PgLedgerStorage(pg.connect(ENV, workspace, shared=False), workspace)


def lines(n: int, start: int = 0) -> list[bytes]:
    """Lines of varied lengths, some with multi-byte UTF-8 (offsets count bytes)."""
    return [json.dumps({"seq": i, "pad": "é" * (i % 5) + "x" * (i * 7 % 23)},
                       ensure_ascii=False, separators=(",", ":")).encode()
            for i in range(start, start + n)]


def append_all(storage: LedgerStorage, new: list[bytes]) -> None:
    offset = storage.entries_size()
    last = storage.last_entry_line()
    seq = 0 if last is None else json.loads(last[0])["seq"] + 1
    with storage.exclusive():
        for line in new:
            storage.append_entry(line, offset=offset, seq=seq)
            offset += len(line) + 1
            seq += 1


def stream(storage: LedgerStorage, offset: int = 0, end: int | None = None) -> bytes:
    chunks = list(storage.read_entries(offset, end))
    assert all(chunks), "no empty chunks"
    return b"".join(chunks)


class Counter:
    """Counts the statements a backend's connection sends (a round trip each)."""

    def __init__(self, backend: pg.PgBackend, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        conn = backend._conn
        real = conn.execute

        def execute(*args: Any, **kwargs: Any) -> Any:
            self.n += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(conn, "execute", execute)


# ----------------------------------------------------------------- the byte streams


def test_identity_and_labels_never_name_the_connection(store: PgLedgerStorage,
                                                       conninfo: str) -> None:
    assert isinstance(store, LedgerStorage)
    assert (store.kind, store.can_tear) == ("postgres", False)
    assert store.entries_label == "postgres:ws1/ledger/entries"
    labels = [store.label, store.entries_label, store.checkpoints_label, store.tree_label,
              store.meta_label, store.cosignatures_label, repr(store)]
    assert len(set(labels)) == len(labels)
    password = conninfo_to_dict(conninfo)["password"]
    assert all(password not in str(label) and "host=" not in str(label) for label in labels)


def test_an_empty_ledger(store: PgLedgerStorage) -> None:
    assert store.entries_size() == 0
    assert stream(store) == b""
    assert store.read_entries_at(0, 100) == b""
    assert store.last_entry_line() is None
    assert store.checkpoint_data() == b""
    assert store.first_checkpoint_line() is None
    assert store.last_checkpoint_line() is None
    assert store.read_meta() is None
    assert store.read_tree() is None
    assert not store.tree_exists()
    assert store.read_cosignatures() is None
    assert store.move_torn_tails() == []


def test_streams_are_byte_for_byte_the_files(store: PgLedgerStorage, tmp_path: Path) -> None:
    files = FileLedgerStorage(tmp_path / "ledger")
    tmp_path.joinpath("ledger").mkdir()
    data = lines(300)
    for s in (store, files):
        append_all(s, data)
        for cp in (b'{"cp":1}', b'{"cp":2,"x":"\xc3\xa9"}'):
            s.append_checkpoint(cp)
    whole = stream(files)
    assert stream(store) == whole
    assert store.entries_size() == files.entries_size() == len(whole)
    assert store.last_entry_line() == files.last_entry_line() == (data[-1], True)
    assert store.checkpoint_data() == files.checkpoint_data()
    assert store.first_checkpoint_line() == files.first_checkpoint_line() == b'{"cp":1}'
    assert store.last_checkpoint_line() == files.last_checkpoint_line()
    # Every line boundary, every middle of a line, and past the end; with and without end.
    bounds = [0]
    for line in data:
        bounds.append(bounds[-1] + len(line) + 1)
    points = sorted({*bounds, *(b + 3 for b in bounds), len(whole) + 5})
    for i, offset in enumerate(points):
        end = points[min(len(points) - 1, i + 7)]
        assert stream(store, offset) == whole[offset:], offset
        assert stream(store, offset, end) == whole[offset:end], (offset, end)
        assert store.read_entries_at(offset, 1000) == whole[offset:offset + 1000]
    assert stream(store, 50, 10) == b""


def test_batches_stop_at_a_byte_budget(store: PgLedgerStorage, backend: pg.PgBackend,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Long lines (a big plan's payload) make batches of fewer rows: one value shipped
    per round trip must stay far below PostgreSQL's 1 GB."""
    big = [json.dumps({"seq": i, "pad": "p" * (5 << 20)}).encode() for i in range(3)]
    append_all(store, big)
    whole = b"".join(line + b"\n" for line in big)
    counter = Counter(backend, monkeypatch)
    chunks = list(store.read_entries())
    assert b"".join(chunks) == whole
    assert [len(c) for c in chunks] == [len(big[0]) + len(big[1]) + 2, len(big[2]) + 1]
    assert counter.n == 2
    # A tiny budget: every batch is cut, and the stream is still whole from anywhere.
    monkeypatch.setattr(pg_ledger, "BATCH_BYTES", 100)
    small = lines(40, 3)
    append_all(store, small)
    whole += b"".join(line + b"\n" for line in small)
    for offset in (0, len(whole) - 500, len(whole) - 7, len(whole)):
        assert stream(store, offset) == whole[offset:]
        assert stream(store, offset, offset + 300) == whole[offset:offset + 300]


def test_append_is_one_insert_that_refuses_a_stale_end(store: PgLedgerStorage,
                                                       backend: pg.PgBackend,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    append_all(store, lines(3))
    size = store.entries_size()
    new = lines(1, 3)[0]
    for seq, offset in ((2, size), (4, size), (3, size - 1), (3, size + 1), (0, 0)):
        with pytest.raises(LedgerError, match="another writer appended first") as caught:
            store.append_entry(new, offset=offset, seq=seq)
        assert f"ends at seq 3 (byte {size})" in caught.value.message
        assert str(caught.value.location) == "postgres:ws1/ledger/entries"
    assert store.entries_size() == size
    counter = Counter(backend, monkeypatch)
    store.append_entry(new, offset=size, seq=3)
    assert counter.n == 1  # one round trip
    assert store.last_entry_line() == (new, True)


def _race(rivals: list[PgLedgerStorage], seq: int, offset: int) -> list[str]:
    """Both sessions append entry `seq` at `offset` at the same moment; their outcomes."""
    barrier = threading.Barrier(len(rivals))
    outcome: list[str] = []

    def write(s: PgLedgerStorage, who: int) -> None:
        line = json.dumps({"seq": seq, "by": who}).encode()
        barrier.wait()
        try:
            s.append_entry(line, offset=offset, seq=seq)
            outcome.append("ok")
        except LedgerError as exc:
            outcome.append("lost" if "another writer appended first" in exc.message
                           else exc.message)

    threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(rivals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(outcome)


def test_two_sessions_racing_for_one_seq_one_wins(store: PgLedgerStorage) -> None:
    rivals = [other_session(), other_session()]
    for seq in range(20):
        assert _race(rivals, seq, rivals[0].entries_size()) == ["lost", "ok"], seq
    data = stream(store).split(b"\n")[:-1]
    assert [json.loads(line)["seq"] for line in data] == list(range(20))


def test_append_only_in_the_database(store: PgLedgerStorage,
                                     postgres_server: PostgresServer, conninfo: str) -> None:
    """DockLock's own role (the tables' owner) cannot rewrite what the storage wrote."""
    append_all(store, lines(2))
    store.append_checkpoint(b"{}")
    store.create_meta(b"{}")
    for sql in ("UPDATE docklock_ledger_entries SET line = 'x' WHERE seq = 0",
                "DELETE FROM docklock_ledger_checkpoints",
                "UPDATE docklock_ledger_meta SET data = 'x'",
                "TRUNCATE docklock_ledger_entries"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"), \
                psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)
    assert stream(store) == b"".join(line + b"\n" for line in lines(2))


def test_a_refused_write_is_an_os_error_and_nothing_is_written(
        store: PgLedgerStorage, backend: pg.PgBackend, tmp_path: Path) -> None:
    """A server that answers but stores nothing (here a read-only session, as on a
    standby) fails the write with OSError, as a full disk does for the files; the Ledger
    turns that into 'could not write to the ledger ... nothing was recorded'."""
    append_all(store, lines(2))
    size = store.entries_size()
    with backend.connection() as conn:
        conn.execute("SET default_transaction_read_only = on")
    try:
        with pytest.raises(OSError, match="read-only transaction") as caught:
            store.append_entry(lines(1, 2)[0], offset=size, seq=2)
        assert caught.value.errno == errno.EIO
        assert "PostgreSQL refused to store the entry" in str(caught.value)
        with pytest.raises(OSError, match="read-only"):
            store.append_checkpoint(b"{}")
        with pytest.raises(OSError, match="read-only"):
            store.append_cosignature(b"x\n")
        store.write_tree(b"a cache: failing to store it is not an error")
        # Through a Ledger: the error an apply stops on before it changes anything.
        (tmp_path / "docklock.yaml").write_text(CLUSTER, encoding="utf-8")
        paths = WorkspacePaths(tmp_path)
        ledger = Ledger(paths, "t", storage=other_storage_of(store, backend),
                        signer=ensure_keys(paths))
        with pytest.raises(LedgerUnavailableError, match="nothing was recorded"):
            ledger.append("change", {"n": 1})
    finally:
        with backend.connection() as conn:
            conn.execute("SET default_transaction_read_only = off")
    assert store.entries_size() == size
    assert store.checkpoint_data() == b""
    assert store.read_tree() is None


def other_storage_of(store: PgLedgerStorage, backend: pg.PgBackend) -> PgLedgerStorage:
    """A fresh workspace on the same session (so the read-only setting applies)."""
    return PgLedgerStorage(backend, store.workspace + "-ledger")


def test_a_killed_holder_frees_the_ledger_lock(store: PgLedgerStorage, conninfo: str) -> None:
    """kill -9 of a process holding the ledger lock: its session ends and the lock goes
    with it (no stale lock file to remove by hand)."""
    script = (
        "import sys, time\n"
        "from docklock.backend import pg\n"
        "from docklock.backend.pg_ledger import PgLedgerStorage\n"
        f"s = PgLedgerStorage(pg.connect({ENV!r}, {WS!r}), {WS!r})\n"
        "with s.exclusive():\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            env={**os.environ, ENV: conninfo})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"held\n"
        assert not _try_lock(other_session(), shared=False)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        got = threading.Event()

        def take() -> None:
            with store.exclusive():
                got.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert got.wait(10), "the killed holder's lock was not released"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


# ----------------------------------------------------------------- side records


def test_meta_is_written_once_and_the_first_writer_wins(store: PgLedgerStorage) -> None:
    store.create_meta(b'{"origin":"first"}\n')
    other_session().create_meta(b'{"origin":"second"}\n')
    assert store.read_meta() == b'{"origin":"first"}\n'


def test_tree_and_cosignatures(store: PgLedgerStorage) -> None:
    store.write_tree(b"one")
    store.write_tree(b"two")
    assert (store.read_tree(), store.tree_exists()) == (b"two", True)
    store.write_cosignatures(b"a\n")
    store.write_cosignatures(b"b\n")
    assert store.read_cosignatures() == b"b\n"
    # Two commands adding cosignatures at once: neither loses the other's.
    rivals = [other_session(), other_session()]

    def add(s: PgLedgerStorage, who: int) -> None:
        for i in range(40):
            s.append_cosignature(f"{who}-{i}\n".encode())

    threads = [threading.Thread(target=add, args=(s, i)) for i, s in enumerate(rivals)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    got = (store.read_cosignatures() or b"").decode().splitlines()
    assert got[0] == "b"
    assert len(got) == 81
    assert sorted(got[1:]) == sorted(f"{w}-{i}" for w in (0, 1) for i in range(40))
    for who in (0, 1):  # each writer's records stay in its order
        mine = [r for r in got if r.startswith(f"{who}-")]
        assert mine == [f"{who}-{i}" for i in range(40)]


def test_workspaces_in_one_database_do_not_see_each_other(store: PgLedgerStorage,
                                                          backend: pg.PgBackend) -> None:
    append_all(store, lines(5))
    store.append_checkpoint(b"cp")
    store.create_meta(b"m")
    store.write_tree(b"t")
    other = PgLedgerStorage(pg.connect(ENV, "ws2"), "ws2")
    assert other.entries_size() == 0
    assert other.last_entry_line() is None
    assert other.checkpoint_data() == b""
    assert other.read_meta() is None
    assert other.read_tree() is None
    append_all(other, lines(2, 100))
    assert stream(other) == b"".join(line + b"\n" for line in lines(2, 100))
    assert stream(store) == b"".join(line + b"\n" for line in lines(5))
    with store.exclusive():  # another workspace's writer does not wait for this one
        assert _try_lock(other_session("ws2"), shared=False)
        assert not _try_lock(other_session(WS), shared=False)


# ----------------------------------------------------------------- locking


def _try_lock(session: PgLedgerStorage, shared: bool) -> bool:
    """Take and drop the ledger lock by the contract's key (CTX14), from `session`."""
    fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    un = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    key = (f"docklock:ledger:{session.workspace}",)
    got = bool(session.backend.rows(f"SELECT {fn}(hashtextextended(%s, 0))", key)[0][0])
    if got:
        session.backend.rows(f"SELECT {un}(hashtextextended(%s, 0))", key)
    return got


def test_exclusive_and_shared_across_sessions(store: PgLedgerStorage) -> None:
    probe = other_session()
    with store.exclusive():
        assert not _try_lock(probe, shared=False)
        assert not _try_lock(probe, shared=True)
    assert _try_lock(probe, shared=False)
    with store.shared():
        assert _try_lock(probe, shared=True)
        assert not _try_lock(probe, shared=False)
    with store.shared(), store.exclusive():  # nested in one thread: no self-deadlock
        assert not _try_lock(probe, shared=True)
    assert _try_lock(probe, shared=False)


def _held_while(holder: Callable[[], Any], waiter: Callable[[], Any]) -> tuple[float, float]:
    """(when the holder let go, when the waiter got in): the waiter starts while the
    holder holds its lock for 0.4 s."""
    entered = threading.Event()
    released: list[float] = []
    got: list[float] = []

    def hold() -> None:
        with holder():
            entered.set()
            time.sleep(0.4)
            released.append(time.monotonic())

    def wait() -> None:
        entered.wait(10)
        with waiter():
            got.append(time.monotonic())

    threads = [threading.Thread(target=hold), threading.Thread(target=wait)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return released[0], got[0]


def test_a_writer_waits_for_another_sessions_writer(store: PgLedgerStorage) -> None:
    rival = other_session()
    released, got = _held_while(store.exclusive, rival.exclusive)
    assert got >= released
    released, got = _held_while(store.shared, rival.exclusive)
    assert got >= released


def test_threads_sharing_one_session_exclude_each_other(store: PgLedgerStorage) -> None:
    """Advisory locks belong to the session, which all threads share: the storage must
    still keep a second thread of the same process out."""
    same = PgLedgerStorage(store.backend, WS)  # another Ledger in the same process
    released, got = _held_while(store.exclusive, same.exclusive)
    assert got >= released


# ----------------------------------------------------------------- speed


def test_reading_ten_thousand_entries(store: PgLedgerStorage, backend: pg.PgBackend,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = lines(10_000)
    offset, rows = 0, []
    for seq, line in enumerate(data):
        rows.append((WS, seq, offset, line))
        offset += len(line) + 1
    with backend.connection() as conn, conn.cursor() as cur, cur.copy(
            "COPY docklock_ledger_entries (workspace, seq, start_offset, line) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    counter = Counter(backend, monkeypatch)
    started = time.perf_counter()
    got = stream(store)
    took = time.perf_counter() - started
    assert got == b"".join(line + b"\n" for line in data)
    assert counter.n == 1 + -(-(10_000 - FIRST_BATCH) // BATCH)  # round trips
    assert took < 1.0, f"reading 10k entries took {took:.2f}s"
    assert store.entries_size() == offset


# ----------------------------------------------------------------- a whole ledger


CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n"
PG_CLUSTER = ("apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\n"
              f"spec:\n  backend: {{type: postgres, connectionEnv: {ENV}, workspace: {WS}}}\n")


class Clock:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"2025-01-01T00:00:{self.n // 1000000:02d}.{self.n % 1000000:06d}Z"


@dataclass(frozen=True)
class Built:
    paths: WorkspacePaths
    ledger: Ledger
    signer: HybridSigner


def build(root: Path, yaml: str) -> Built:
    """200 entries, a checkpoint after every 50 of the first 150, 50 unsigned."""
    root.mkdir()
    (root / "docklock.yaml").write_text(yaml, encoding="utf-8")
    paths = WorkspacePaths(root)
    signer = ensure_keys(paths)
    ledger = Ledger(paths, "t", clock=Clock(), who="alice@host", commit="ab" * 20)
    for seq in range(200):
        ledger.append("change", {"address": f"Service/default/web{seq}", "n": seq},
                      serial=seq // 3)
        if seq % 50 == 49 and seq < 150:
            ledger.checkpoint(signer)
    ledger.close()
    return Built(paths, ledger, signer)


@pytest.fixture
def two_ledgers(tmp_path: Path, conninfo: str, monkeypatch: pytest.MonkeyPatch,
                ) -> Iterator[tuple[Built, Built]]:
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE", raising=False)
    files = build(tmp_path / "files", CLUSTER)
    on_pg = build(tmp_path / "pg", PG_CLUSTER)
    assert isinstance(on_pg.ledger.storage, PgLedgerStorage)  # docklock.yaml chose it
    assert isinstance(files.ledger.storage, FileLedgerStorage)
    return files, on_pg


def _superuser_edit(server: PostgresServer, conninfo: str, seq: int,
                    edit: Callable[[bytes], bytes]) -> None:
    """What an attacker with the superuser's password does: switch the triggers off for
    the session and rewrite a row."""
    db = conninfo_to_dict(conninfo)["dbname"]
    with psycopg.connect(server.conninfo_for(db, superuser=True), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        (line,) = conn.execute("SELECT line FROM docklock_ledger_entries "
                               "WHERE workspace = %s AND seq = %s", (WS, seq)).fetchone() \
            or (None,)
        assert line is not None
        conn.execute("UPDATE docklock_ledger_entries SET line = %s "
                     "WHERE workspace = %s AND seq = %s", (edit(bytes(line)), WS, seq))


def _edit_file(paths: WorkspacePaths, seq: int, edit: Callable[[bytes], bytes]) -> None:
    path = paths.ledger / "entries.jsonl"
    data = path.read_bytes().split(b"\n")
    data[seq] = edit(data[seq])
    path.write_bytes(b"\n".join(data))


def _finding(problem: Problem | None, built: Built) -> tuple[Any, ...]:
    """What verify reports, with the workspace's own key id (each has its own key) and
    entries file written neutrally."""
    assert problem is not None
    message = problem.message.replace(built.signer.keyid[:16], "<key>")
    assert problem.file == str(built.ledger.entries_path)
    # Hints name where the ledger lives (entries.jsonl or the entry rows): the same
    # advice otherwise.
    hint = problem.hint.replace("the ledger's entry rows", "entries.jsonl")
    return (problem.kind, problem.seq, problem.line, message, hint)


def _time_digit(line: bytes) -> bytes:
    """The edit of tests/unit/ledger test_problem_names_seq_line_and_file: one digit of
    the entry's time (same length)."""
    pos = line.index(b'"time":"') + 10
    return line[:pos] + (b"8" if line[pos:pos + 1] == b"9" else b"9") + line[pos + 1:]


def _payload_longer(line: bytes) -> bytes:
    """A changed payload that also changes the line's length (start_offset of every
    later row is then stale: the stream must still be the rows' own bytes)."""
    return line.replace(b'"address":"Service/default/', b'"address":"Service/evil/default/')


@pytest.mark.parametrize(("seq", "edit"), [
    (7, _time_digit),  # inside the first checkpointed range
    (100, _time_digit),  # the first entry after a checkpoint
    (170, _time_digit),  # the unsigned tail
    (199, _time_digit),  # the last entry: only the tree cache remembers its hash
    (60, _payload_longer),
    (180, _payload_longer),
])
def test_ledger_on_postgres_verifies_and_names_an_edited_row(
        two_ledgers: tuple[Built, Built], postgres_server: PostgresServer, conninfo: str,
        seq: int, edit: Callable[[bytes], bytes]) -> None:
    files, on_pg = two_ledgers
    for built in (files, on_pg):
        report = verify_ledger(built.paths)
        assert report.ok, report.problem
        assert (report.entries, report.checkpoints, report.unsigned_tail) == (200, 3, 50)
    # Ledger.tail reads backwards through read_entries_at
    assert [e.seq for e in Ledger(on_pg.paths, "t").tail(3)] == [197, 198, 199]

    _edit_file(files.paths, seq, edit)
    _superuser_edit(postgres_server, conninfo, seq, edit)
    on_files = verify_ledger(files.paths).problem
    on_postgres = verify_ledger(on_pg.paths).problem
    assert on_postgres is not None
    assert on_postgres.file == "postgres:ws1/ledger/entries"
    assert _finding(on_postgres, on_pg) == _finding(on_files, files)
    assert (on_postgres.kind, on_postgres.seq) == ("entry", seq)
