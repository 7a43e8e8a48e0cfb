"""PgStateStore on a real PostgreSQL: the same behaviour as StateStore on files —
round trip, optimistic serial/lineage checks, the lock (holder, brief holders, timeout,
a kill -9'd holder), force-unlock, and workspaces sharing one database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from harness_pg import PostgresServer

from docklock.backend import pg
from docklock.backend.pg_state import PgStateStore
from docklock.errors import LockError, StateError
from docklock.objects import ObjectKind
from docklock.state import RecordedObject, State, StateStore
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.postgres

ENV = "DOCKLOCK_PG_TEST"


@pytest.fixture
def pg_env(pg_conninfo: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, pg_conninfo)
    return pg_conninfo


@pytest.fixture
def store(pg_env: str) -> PgStateStore:
    return PgStateStore(pg.connect(ENV, "prod"), "prod")


def other_process_store(workspace: str = "prod") -> PgStateStore:
    """A store on its own session: to PostgreSQL, another DockLock process."""
    return PgStateStore(pg.connect(ENV, workspace, shared=False), workspace)


def obj(key: str = "web-0") -> RecordedObject:
    return RecordedObject(key=key, kind=ObjectKind.CONTAINER, name=key, id="c0ffee",
                          config={"image": "x"}, config_hash="sha256:aa",
                          created="2026-01-01T00:00:00Z")


def sample(state: State) -> State:
    return state.with_object("Service/default/web", obj())


# ------------------------------------------------------------------ read / write


def test_empty_workspace_reads_as_empty_state(store: PgStateStore) -> None:
    assert not store.exists()
    assert store.read(cluster="demo") == State.empty("demo")
    assert store.read_bytes() is None
    assert store.path == "postgres:prod/state"


def test_round_trip_and_bytes_as_state_json(store: PgStateStore, tmp_path: Path) -> None:
    with store.lock(command="docklock apply"):
        first = store.claim_lineage(store.read(cluster="demo"))
        assert (first.serial, first.cluster) == (1, "demo")
        assert first.lineage is not None
        second = store.write(sample(first))
    assert second.serial == 2
    assert second.lineage == first.lineage
    assert store.exists()
    again = other_process_store().read()
    assert again == second
    # The stored bytes are exactly what StateStore writes to state.json: give it the
    # serial-1 version, let it make the same change, compare.
    prev = store.previous_bytes()
    assert prev is not None
    paths = WorkspacePaths(root=tmp_path)
    paths.dot.mkdir()
    paths.state.write_bytes(prev)
    files = StateStore(paths)
    with files.lock(command="test"):
        assert files.write(sample(files.read())) == second
    raw = store.read_bytes()
    assert raw == paths.state.read_bytes()
    assert raw is not None
    assert raw.endswith(b"}\n")
    # `previous` keeps the version before (state.json.backup).
    assert json.loads(prev)["serial"] == 1


def test_write_requires_the_lock(store: PgStateStore) -> None:
    with pytest.raises(StateError, match="without holding the state lock"):
        store.write(State.empty("demo"))
    assert not store.exists()


def test_serial_conflict_is_refused(store: PgStateStore) -> None:
    with store.lock(command="docklock apply"):
        base = store.claim_lineage(store.read(cluster="demo"))
    stale = store.read()
    rival = other_process_store()
    with rival.lock(command="docklock apply"):
        rival.write(sample(rival.read()))  # serial 2
    with store.lock(command="docklock apply"), pytest.raises(StateError) as info:
        store.write(sample(stale))
    assert info.value.message == (
        "postgres:prod/state changed since it was read (serial 1 read, 2 stored)")
    assert "re-run the command" in info.value.hint
    assert store.read().serial == 2
    assert base.serial == 1


def test_lineage_conflict_is_refused(store: PgStateStore) -> None:
    with store.lock(command="docklock apply"):
        written = store.claim_lineage(store.read(cluster="demo"))
        forged = State(lineage="another-lineage", serial=written.serial, cluster="demo")
        with pytest.raises(StateError, match="changed since it was read"):
            store.write(forged)
    assert store.read().lineage == written.lineage


def test_two_first_writes_one_wins(store: PgStateStore) -> None:
    rival = other_process_store()
    empty = store.read(cluster="demo")
    with rival.lock(command="docklock apply"):
        rival.claim_lineage(rival.read(cluster="demo"))
    with store.lock(command="docklock apply"), pytest.raises(
            StateError, match=r"serial 0 read, 1 stored"):
        store.claim_lineage(empty)


def test_set_overrides_without_change_does_not_write(store: PgStateStore) -> None:
    with store.lock(command="docklock deploy"):
        state = store.claim_lineage(store.read(cluster="demo"))
        assert store.set_overrides(state, ()) is state
    assert store.read().serial == 1


def test_corrupt_state_is_refused_not_overwritten(
        store: PgStateStore, postgres_server: PostgresServer, pg_env: str) -> None:
    with store.lock(command="docklock apply"):
        store.claim_lineage(store.read(cluster="demo"))
    dbname = psycopg.conninfo.conninfo_to_dict(pg_env)["dbname"]
    assert isinstance(dbname, str)
    postgres_server.psql("UPDATE docklock_state SET data = 'not json'", database=dbname)
    with pytest.raises(StateError, match="postgres:prod/state is corrupt: not valid JSON"):
        store.read()


def test_write_bytes_imports_once_byte_for_byte(store: PgStateStore, tmp_path: Path) -> None:
    files = StateStore(WorkspacePaths(root=tmp_path))
    with files.lock(command="test"):
        files.write(sample(files.claim_lineage(files.read(cluster="demo"))))
    data = files.path.read_bytes()
    with store.lock(command="docklock state migrate"):
        imported = store.write_bytes(data)
        with pytest.raises(StateError, match="already holds state"):
            store.write_bytes(data)
    assert store.read_bytes() == data
    assert imported == files.read()
    assert store.read().serial == 2


def test_workspaces_do_not_see_each_other(pg_env: str) -> None:
    a = PgStateStore(pg.connect(ENV, "a"), "a")
    b = PgStateStore(pg.connect(ENV, "b"), "b")
    with a.lock(command="docklock apply"):
        a.write(sample(a.claim_lineage(a.read(cluster="a"))))
        # a's lock does not lock b
        with b.lock(command="docklock apply"):
            b.claim_lineage(b.read(cluster="b"))
        assert b.active_holder() is None
    assert not b.read().resources
    assert b.read().cluster == "b"
    assert a.read().serial == 2
    assert b.read().serial == 1


# ------------------------------------------------------------------ locking


def test_holder_row_and_release(store: PgStateStore) -> None:
    assert store.holder() is None
    assert not store.is_locked()
    assert store.active_holder() is None
    with store.lock(command="docklock apply") as held:
        assert held.held
        assert store.holder() == held.info
        assert store.is_locked()
        assert other_process_store().active_holder() == held.info
        assert held.info.pid == os.getpid()
    assert not held.held
    assert store.holder() is None
    assert not store.is_locked()


def test_second_locker_fails_at_once_naming_the_holder(store: PgStateStore) -> None:
    with store.lock(command="docklock apply") as held:
        rival = other_process_store()
        start = time.monotonic()
        with pytest.raises(LockError) as info:
            rival.lock(command="docklock apply")
        assert time.monotonic() - start < 2
    assert info.value.message == f"state is locked: {held.info.describe()}"
    assert info.value.hint == ("wait for it to finish, or pass --lock-timeout SECONDS; "
                               f"if it is stuck: docklock force-unlock {held.info.id}")
    assert "running 'docklock apply'" in info.value.message


def test_second_store_in_the_same_process_is_refused(store: PgStateStore) -> None:
    # One session serves the whole process, and session locks are re-entrant: the
    # store must not let a second store of this process take it "again".
    same_session = PgStateStore(pg.connect(ENV, "prod"), "prod")
    assert same_session.backend is store.backend
    with store.lock(command="docklock apply") as held, pytest.raises(LockError) as info:
        same_session.lock(command="docklock apply")
    assert held.info.describe() in info.value.message
    with same_session.lock(command="docklock apply"):
        pass  # free again after release


def test_lock_twice_on_one_store_is_internal_error(store: PgStateStore) -> None:
    with store.lock(command="a"), pytest.raises(StateError, match="already held"):
        store.lock(command="b")


def test_timeout_waits_then_fails(store: PgStateStore) -> None:
    with store.lock(command="docklock apply"):
        start = time.monotonic()
        with pytest.raises(LockError, match=r"\(waited 0.5s\)"):
            other_process_store().lock(command="docklock apply", timeout=0.5)
        assert time.monotonic() - start >= 0.5


def test_brief_plan_holder_is_waited_for(store: PgStateStore) -> None:
    held = store.lock(command="docklock plan")
    releaser = threading.Timer(0.6, held.release)
    releaser.start()
    try:
        start = time.monotonic()
        with other_process_store().lock(command="docklock apply") as mine:
            waited = time.monotonic() - start
            assert mine.held
    finally:
        releaser.join()
    assert 0.4 < waited < 8


def test_timeout_then_free_succeeds(store: PgStateStore) -> None:
    held = store.lock(command="docklock apply")
    threading.Timer(0.4, held.release).start()
    with other_process_store().lock(command="docklock apply", timeout=5) as mine:
        assert mine.held


HOLDER = textwrap.dedent(f"""
    import sys, time
    from docklock.backend import pg
    from docklock.backend.pg_state import PgStateStore
    store = PgStateStore(pg.connect({ENV!r}, "prod"), "prod")
    lock = store.lock(command="docklock apply")
    print(lock.info.id, flush=True)
    time.sleep(120)
""")


@pytest.fixture
def holder_process(pg_env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lock_id = proc.stdout.readline().strip()
        assert lock_id, proc.stderr.read() if proc.stderr else ""
        yield proc, lock_id
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_kill_9_of_the_holder_frees_the_lock(
        store: PgStateStore, holder_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, lock_id = holder_process
    with pytest.raises(LockError) as info:
        store.lock(command="docklock apply")
    assert f"lock {lock_id} held by pid {proc.pid}" in info.value.message
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The server notices the dead client and ends its session (and the lock) at once.
    deadline = time.monotonic() + 10
    while True:
        try:
            lock = store.lock(command="docklock apply")
            break
        except LockError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with lock:
        assert store.holder() == lock.info  # the stale row was overwritten
        assert store.active_holder() == lock.info


def test_stale_row_after_kill_reads_as_no_active_holder(
        store: PgStateStore, holder_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, lock_id = holder_process
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while store.is_locked() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not store.is_locked()
    assert store.active_holder() is None
    stale = store.holder()
    assert stale is not None
    assert stale.id == lock_id
    # force-unlock of a stale record: removed, and it was not held.
    info, held = store.force_unlock(lock_id)
    assert info == stale
    assert held is False
    assert store.holder() is None


def test_force_unlock_of_a_live_holder_says_it_is_still_held(
        store: PgStateStore, holder_process: tuple[subprocess.Popen[str], str]) -> None:
    proc, lock_id = holder_process
    with pytest.raises(LockError, match="does not match the current lock"):
        store.force_unlock("not-the-id")
    info, held = store.force_unlock(lock_id)
    assert info is not None
    assert info.pid == proc.pid
    assert held is True
    assert store.holder() is None
    # The session still holds the lock: the next locker is told how it ends.
    with pytest.raises(LockError) as err:
        store.lock(command="docklock apply")
    assert "which left no holder record" in err.value.message
    assert "pg_terminate_backend(" in err.value.hint
    assert store.active_holder() is not None


def test_force_unlock_when_not_locked(store: PgStateStore) -> None:
    with pytest.raises(LockError, match="the state is not locked"):
        store.force_unlock(None)


def test_lost_connection_releases_quietly(
        store: PgStateStore, postgres_server: PostgresServer) -> None:
    lock = store.lock(command="docklock apply")
    postgres_server.psql("SELECT pg_terminate_backend(%s)",
                         params=[store.backend.backend_pid()])
    with pytest.raises(Exception, match="PostgreSQL"):
        store.write(store.read(cluster="demo"))
    lock.release()  # the session is gone, and its lock with it: nothing to do
    assert not lock.held
    fresh = other_process_store()
    with fresh.lock(command="docklock apply"):
        pass


def test_release_on_a_failing_connection_ends_the_session(
        store: PgStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    lock = store.lock(command="docklock apply")
    backend = store.backend

    def broken(*_a: object, **_k: object) -> object:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    # A release that cannot reach the server must not raise from __exit__ (it would
    # hide the command's own error): it ends the session, which frees the lock.
    with monkeypatch.context() as patch:
        patch.setattr(backend, "connection", broken)
        lock.release()
    assert backend.closed
    deadline = time.monotonic() + 10
    while other_process_store().is_locked() and time.monotonic() < deadline:
        time.sleep(0.1)
    with other_process_store().lock(command="docklock apply"):
        pass


@pytest.mark.parametrize(("workspace", "negative"), [("prod", True), ("staging", False)])
def test_lock_is_seen_in_pg_locks_for_either_hash_sign(
        pg_env: str, workspace: str, negative: bool) -> None:
    # pg_locks shows the second key as an oid: a negative hashtext wraps around.
    store = PgStateStore(pg.connect(ENV, workspace), workspace)
    key = store.backend.rows("SELECT hashtext('state:' || %s)", (workspace,))[0][0]
    assert (key < 0) is negative
    with store.lock(command="docklock apply") as held:
        assert store.is_locked()
        assert other_process_store(workspace).active_holder() == held.info
    assert not store.is_locked()
