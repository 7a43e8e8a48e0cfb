"""The PostgreSQL test harness: a private PostgreSQL cluster in a temporary folder.

One cluster per test session, started from Debian's PostgreSQL binaries
(/usr/lib/postgresql/<major>/bin): its own data folder and unix-socket folder, no TCP
(listen_addresses=''), password (SCRAM) authentication, durability switched off (a
throwaway). initdb refuses to run as root, so under root the cluster runs as the system
user `postgres` (`runuser -u postgres --`); otherwise as the current user. The folder
lives directly under /tmp, not under pytest's 0700 root-owned tmp folder, so `postgres`
can enter it, and the socket path stays under the 107-byte limit of unix sockets.

It holds a superuser `postgres` and a NON-superuser role `docklock` owning the database
`docklock`: DockLock runs as the role an operator would give it, so the append-only
triggers are tested against the table owner, not against a superuser.

If PostgreSQL or psycopg is missing the tests FAIL with the reason (they never skip).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_USER = "postgres"  # the OS user the cluster runs as under root, and the superuser role
ROLE = "docklock"
DATABASE = "docklock"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) inside our private folder
# Throwaway cluster: durability costs time and buys nothing here.
SETTINGS = """
listen_addresses = ''
port = {port}
unix_socket_directories = '{sock}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
"""


def _fail(reason: str) -> None:
    pytest.fail(f"the PostgreSQL test harness cannot run: {reason}", pytrace=False)


def find_bindir() -> Path | None:
    """Debian's PostgreSQL server binaries, 15 preferred, else the newest installed."""
    preferred = Path("/usr/lib/postgresql/15/bin")
    if (preferred / "initdb").is_file():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    """Handles on the private cluster: conninfo strings and admin helpers."""

    base: Path
    bindir: Path
    socket_dir: Path
    superuser_password: str
    role_password: str
    run_as: list[str]  # prefix for server commands: runuser ... under root, else empty

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def conninfo_for(self, database: str = DATABASE, *, superuser: bool = False) -> str:
        """A libpq conninfo (key=value form) for `database` as `docklock` or the superuser."""
        from psycopg.conninfo import make_conninfo

        user, password = ((PG_USER, self.superuser_password) if superuser
                          else (ROLE, self.role_password))
        return make_conninfo(host=str(self.socket_dir), port=PORT, dbname=database,
                             user=user, password=password, connect_timeout=10)

    @property
    def conninfo(self) -> str:
        """The `docklock` role (not a superuser) on the `docklock` database."""
        return self.conninfo_for(DATABASE)

    @property
    def superuser_conninfo(self) -> str:
        return self.conninfo_for(DATABASE, superuser=True)

    def psql(self, sql: str, *, superuser: bool = True, database: str = DATABASE,
             params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run `sql` (several `;`-separated statements allowed without params) in
        autocommit mode; the rows of the last statement ([] when it returns none)."""
        import psycopg

        with psycopg.connect(self.conninfo_for(database, superuser=superuser),
                             autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description is not None else []
            while cur.nextset():  # several statements: keep the last one's rows
                rows = cur.fetchall() if cur.description is not None else []
            return rows

    def new_database(self, name: str) -> str:
        """CREATE DATABASE `name` (from template0, owned by `docklock`); its conninfo."""
        from psycopg import sql as q

        self._admin(q.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
            q.Identifier(name), q.Identifier(ROLE)))
        return self.conninfo_for(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql as q

        self._admin(q.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(q.Identifier(name)))

    def _admin(self, statement: Any) -> None:
        import psycopg

        with psycopg.connect(self.conninfo_for("postgres", superuser=True),
                             autocommit=True) as conn:
            conn.execute(statement)

    def server_cmd(self, *args: str, check: bool = True,
                   timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.run_as, *args], capture_output=True, text=True,
                              check=check, timeout=timeout)

    def start(self) -> None:
        done = self.server_cmd(str(self.bindir / "pg_ctl"), "start", "-D", str(self.data),
                               "-l", str(self.log), "-w", "-t", "60", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{self.log_tail()}")

    def stop(self) -> None:
        self.server_cmd(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data),
                        "-m", "fast", "-w", "-t", "60", check=False)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def start_postgres() -> PostgresServer:
    """Create, start and populate the private cluster; pytest.fail with the reason."""
    bindir = find_bindir()
    if bindir is None:
        _fail("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); "
              "run ./dev setup (it installs Debian's postgresql)")
        raise AssertionError  # unreachable: pytest.fail raises
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _fail("psycopg is not installed in this Python; run ./dev setup")
    run_as: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(PG_USER)
        except KeyError:
            _fail(f"running as root and there is no {PG_USER!r} user to run PostgreSQL "
                  "as (initdb refuses root); run ./dev setup (Debian's postgresql creates it)")
            raise AssertionError from None
        run_as = ["runuser", "-u", PG_USER, "--"]
    base = Path(tempfile.mkdtemp(prefix="dlpg-", dir="/tmp"))
    server = PostgresServer(base=base, bindir=bindir, socket_dir=base / "sock",
                            superuser_password=secrets.token_hex(16),
                            role_password=secrets.token_hex(16), run_as=run_as)
    try:
        _init_cluster(server, owner)
        server.start()
        server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{server.role_password}'",
                    database="postgres")
        server.new_database(DATABASE)
    except Exception as exc:  # psycopg errors too: never leave a server running
        log = server.log_tail()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
        _fail(f"{exc}\n{log}")
    return server


def _init_cluster(server: PostgresServer, owner: pwd.struct_passwd | None) -> None:
    server.socket_dir.mkdir(mode=0o700)
    pwfile = server.base / "pwfile"
    pwfile.write_text(server.superuser_password + "\n")
    pwfile.chmod(0o600)
    if owner is not None:
        for path in (server.base, server.socket_dir, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server.base.chmod(0o700)
    done = server.server_cmd(
        str(server.bindir / "initdb"), "-D", str(server.data), "-U", PG_USER,
        "--pwfile", str(pwfile), "--auth-local=scram-sha-256", "--auth-host=reject",
        "-E", "UTF8", "--locale=C", "--no-sync", check=False)
    pwfile.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
    conf = server.data / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(SETTINGS.format(port=PORT, sock=server.socket_dir))


def stop_postgres(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """A new database owned by `docklock` for one test; dropped afterwards (after
    closing this process's cached DockLock connections to it)."""
    name = f"t_{secrets.token_hex(6)}"
    conninfo = server.new_database(name)
    try:
        yield conninfo
    finally:
        try:
            from docklock.backend import pg
        except ImportError:
            pass
        else:
            pg.close_all()
        server.drop_database(name)
