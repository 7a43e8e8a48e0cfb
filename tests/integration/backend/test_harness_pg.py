"""The PostgreSQL harness itself: a private cluster, a non-superuser role, no TCP."""

from __future__ import annotations

import pytest
from harness_pg import PostgresServer

pytestmark = pytest.mark.postgres


def test_role_is_not_superuser_and_owns_its_database(postgres_server: PostgresServer) -> None:
    rows = postgres_server.psql(
        "SELECT rolsuper, pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
        "WHERE r.rolname = current_user AND d.datname = current_database()",
        superuser=False)
    assert rows == [(False, "docklock")]


def test_cluster_is_private(postgres_server: PostgresServer) -> None:
    rows = postgres_server.psql(
        "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')")
    assert rows == [("", str(postgres_server.socket_dir))]
    assert str(postgres_server.base).startswith("/tmp/dlpg-")


def test_pg_conninfo_is_a_fresh_database_per_test(
        postgres_server: PostgresServer, pg_conninfo: str) -> None:
    import psycopg

    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        name, user = conn.execute("SELECT current_database(), current_user").fetchone() or ()
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname='public'"
                              ).fetchone()
    assert name.startswith("t_")
    assert user == "docklock"
    assert tables == (0,)
    owner = postgres_server.psql(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", params=[name])
    assert owner == [("docklock",)]


def test_psql_runs_several_statements(postgres_server: PostgresServer) -> None:
    rows = postgres_server.psql("CREATE TEMP TABLE t(x int); INSERT INTO t VALUES (1), (2); "
                                "SELECT sum(x) FROM t")
    assert rows == [(3,)]


def test_missing_postgresql_fails_naming_the_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness_pg

    monkeypatch.setattr(harness_pg, "find_bindir", lambda: None)
    with pytest.raises(pytest.fail.Exception) as info:
        harness_pg.start_postgres()
    assert "./dev setup" in str(info.value)
    assert "cannot run" in str(info.value)
