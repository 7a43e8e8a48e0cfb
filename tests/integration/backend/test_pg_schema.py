"""docklock.backend.pg on a real PostgreSQL: schema, append-only triggers, connection
errors without the password, concurrent first connects, moved workspaces."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psycopg
import pytest
from harness_pg import PostgresServer

from docklock.backend import pg
from docklock.errors import BackendError

pytestmark = pytest.mark.postgres

ENV = "DOCKLOCK_PG_TEST"


@pytest.fixture
def pg_env(pg_conninfo: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(ENV, pg_conninfo)
    return pg_conninfo


def _tables(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchall()
    return {r[0] for r in rows}


def test_first_connect_creates_the_schema(pg_env: str) -> None:
    backend = pg.connect(ENV, "prod")
    assert _tables(pg_env) == {
        "docklock_schema", "docklock_workspaces", "docklock_state", "docklock_locks",
        "docklock_ledger_entries", "docklock_ledger_checkpoints", "docklock_ledger_meta",
        "docklock_ledger_tree", "docklock_ledger_cosignatures"}
    assert backend.rows("SELECT version FROM docklock_schema") == [(pg.SCHEMA_VERSION,)]
    assert backend.rows("SELECT workspace, moved_to FROM docklock_workspaces") == [
        ("prod", None)]
    # Cached per process: the same object, the same session.
    assert pg.connect(ENV, "prod") is backend
    assert pg.connect(ENV, "prod", shared=False) is not backend


def test_connect_is_idempotent_and_one_version_row(pg_env: str) -> None:
    for _ in range(3):
        pg.connect(ENV, "a", shared=False).close()
    backend = pg.connect(ENV, "a")
    assert backend.rows("SELECT count(*) FROM docklock_schema") == [(1,)]


def test_two_first_connects_at_once_do_not_race(pg_env: str) -> None:
    # Several processes start on an empty database at the same moment; every one must
    # come up (CREATE TABLE racing another CREATE TABLE fails without the xact lock).
    code = textwrap.dedent(f"""
        import sys
        from docklock.backend import pg
        pg.connect({ENV!r}, "ws" + sys.argv[1])
        print("ok")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(6)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, results
    backend = pg.connect(ENV, "check")
    assert backend.rows("SELECT count(*) FROM docklock_schema") == [(1,)]
    assert backend.rows("SELECT count(*) FROM docklock_workspaces") == [(7,)]


@pytest.mark.parametrize("table", ["docklock_ledger_entries", "docklock_ledger_checkpoints",
                                   "docklock_ledger_meta"])
def test_ledger_tables_refuse_update_delete_truncate(pg_env: str, table: str) -> None:
    pg.connect(ENV, "prod")
    insert = {
        "docklock_ledger_entries": "INSERT INTO docklock_ledger_entries "
                                   "VALUES ('prod', 0, 0, 'line')",
        "docklock_ledger_checkpoints": "INSERT INTO docklock_ledger_checkpoints "
                                       "VALUES ('prod', 1, 'cp')",
        "docklock_ledger_meta": "INSERT INTO docklock_ledger_meta VALUES ('prod', 'meta')",
    }[table]
    column = "workspace"
    # As the docklock role, which owns the tables: the triggers bind the owner too.
    with psycopg.connect(pg_env, autocommit=True) as conn:
        conn.execute(insert)  # type: ignore[arg-type]
        for statement, op in [(f"UPDATE {table} SET {column} = 'other'", "UPDATE"),
                              (f"DELETE FROM {table}", "DELETE"),
                              (f"TRUNCATE {table}", "TRUNCATE")]:
            with pytest.raises(psycopg.errors.RaiseException) as info:
                conn.execute(statement)  # type: ignore[arg-type]
            assert (f"docklock: the ledger is append-only ({op} refused on {table})"
                    in str(info.value))
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)  # type: ignore[arg-type]


def test_superuser_in_replica_mode_gets_past_the_triggers(
        postgres_server: PostgresServer, pg_env: str) -> None:
    pg.connect(ENV, "prod")
    dbname = psycopg.conninfo.conninfo_to_dict(pg_env)["dbname"]
    assert isinstance(dbname, str)
    postgres_server.psql("INSERT INTO docklock_ledger_entries VALUES ('prod', 0, 0, 'a')",
                         database=dbname, superuser=False)
    postgres_server.psql("SET session_replication_role = replica; "
                         "UPDATE docklock_ledger_entries SET line = 'b'", database=dbname)
    assert postgres_server.psql("SELECT line FROM docklock_ledger_entries",
                                database=dbname) == [(b"b",)]


def test_state_and_workspace_tables_stay_writable(pg_env: str) -> None:
    backend = pg.connect(ENV, "prod")
    backend.rows("INSERT INTO docklock_ledger_tree VALUES ('prod', 'x')")
    backend.rows("UPDATE docklock_ledger_tree SET data = 'y'")
    backend.rows("INSERT INTO docklock_ledger_cosignatures VALUES ('prod', 'x')")
    backend.rows("UPDATE docklock_ledger_cosignatures SET data = 'y'")
    assert backend.rows("SELECT data FROM docklock_ledger_tree") == [(b"y",)]


def test_unset_and_empty_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    assert info.value.message == f"spec.backend.connectionEnv names {ENV}, which is not set"
    assert f"export {ENV}=" in info.value.hint
    monkeypatch.setenv(ENV, "  ")
    with pytest.raises(BackendError, match="which is empty"):
        pg.connect(ENV, "prod")


def test_wrong_password_is_one_line_without_the_password(
        postgres_server: PostgresServer, pg_conninfo: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s3cret-Wrong-pass"
    good = postgres_server.role_password
    wrong = pg_conninfo.replace(good, secret)
    assert secret in wrong
    monkeypatch.setenv(ENV, wrong)
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    text = info.value.explain()
    assert "\n" not in text
    assert secret not in text
    assert good not in text
    assert ENV in text
    assert "password authentication failed" in text


def test_unreachable_server_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: object) -> None:
    monkeypatch.setenv(ENV, f"postgresql://docklock:topsecret@/nodb?host={tmp_path}")
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    text = info.value.explain()
    assert "cannot connect to PostgreSQL (DOCKLOCK_PG_TEST)" in text
    assert "topsecret" not in text
    assert "\n" not in text


def test_malformed_connection_string_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "host=/tmp password hunter2secret")
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    assert "hunter2secret" not in info.value.explain()
    assert "not hold a valid PostgreSQL connection string" in info.value.message


def test_moved_workspace_cannot_be_opened(pg_env: str) -> None:
    backend = pg.connect(ENV, "prod", shared=False)
    backend.mark_moved("local")
    backend.close()
    pg.close_all()
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    assert "workspace 'prod'" in info.value.message
    assert "migrated to local" in info.value.message
    # Other workspaces in the same database are not affected; migration may still look.
    pg.connect(ENV, "staging")
    assert pg.connect(ENV, "prod", shared=False, check_moved=False).moved_to() == "local"


def test_newer_schema_is_refused(pg_env: str) -> None:
    backend = pg.connect(ENV, "prod")
    backend.rows("UPDATE docklock_schema SET version = %s", (pg.SCHEMA_VERSION + 1,))
    with pytest.raises(BackendError, match="knows up to"):
        pg.connect(ENV, "prod", shared=False)


def test_lost_session_is_a_backend_error(postgres_server: PostgresServer, pg_env: str) -> None:
    backend = pg.connect(ENV, "prod", shared=False)
    postgres_server.psql("SELECT pg_terminate_backend(%s)", params=[backend.backend_pid()])
    with pytest.raises(BackendError) as info:
        backend.rows("SELECT 1")
    assert ENV in info.value.message
    assert backend.closed
    # The cache hands out a fresh session after that; the broken one stays broken.
    assert pg.connect(ENV, "prod").rows("SELECT 1") == [(1,)]
    with pytest.raises(BackendError, match="lost earlier"):
        backend.rows("SELECT 1")


def test_role_that_may_not_create_tables_gets_a_hint(
        postgres_server: PostgresServer, pg_conninfo: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A database whose DockLock tables were never created, reached by a role that owns
    # nothing there (PostgreSQL 15 gives PUBLIC no CREATE on schema public).
    postgres_server.psql("DROP ROLE IF EXISTS outsider; "
                         "CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw-123'")
    params = psycopg.conninfo.conninfo_to_dict(pg_conninfo)
    params.update(user="outsider", password="outsider-pw-123")
    monkeypatch.setenv(ENV, psycopg.conninfo.make_conninfo(**params))  # type: ignore[arg-type]
    with pytest.raises(BackendError) as info:
        pg.connect(ENV, "prod")
    assert info.value.message.startswith(
        f"cannot create or migrate DockLock's tables ({ENV}): permission denied")
    assert "owner of the database" in info.value.hint
    assert "outsider-pw-123" not in info.value.explain()
