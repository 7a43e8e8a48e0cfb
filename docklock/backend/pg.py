"""The PostgreSQL backend's connection, schema and errors (psycopg 3).

Owns: the one connection a process keeps per (connection string, workspace), DockLock's
tables and their migrations, and turning psycopg's failures into one-line BackendErrors.
The state store (docklock.backend.pg_state) and the ledger storage
(docklock.backend.pg_ledger) run their SQL through `PgBackend.connection()`.

Invariants:
- The connection string comes from the environment variable docklock.yaml's
  `spec.backend.connectionEnv` names; docklock.yaml never holds it. No message DockLock
  prints contains the password: every error text goes through `mask()` (libpq
  `password=...`, a URI's `user:secret@`, and the literal password itself).
- The connection is in autocommit mode; a multi-statement change opens
  `conn.transaction()` inside `connection()`. One re-entrant lock guards it, held for
  the whole `with` block: apply writes state and ledger from worker threads, and a
  transaction must not interleave with another thread's statements.
- Session-level advisory locks (the state lock) live on this connection, so the process
  must never silently reconnect while one is held: a broken connection stays broken
  (every later call fails with the BackendError naming the variable); only a later
  `connect()` opens a new one, and a store holding a lock keeps its old backend.
- The schema is created and migrated by DockLock on first connect, in one transaction
  under `pg_advisory_xact_lock`, so two first connects at once do not race; the version
  is in `docklock_schema`. A database newer than this DockLock is refused, not touched.
- The ledger tables refuse UPDATE, DELETE and TRUNCATE through triggers (they bind the
  table owner too; only a superuser with session_replication_role=replica gets past).
- A workspace migrated away (`docklock_workspaces.moved_to`) cannot be opened.
- A workspace whose ledger another project's docklock.pub signed is refused
  (check_project): one workspace key must not serve two projects.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from docklock.errors import BackendError, Location

if TYPE_CHECKING:
    from docklock.workspace import WorkspacePaths

__all__ = [
    "LOCK_SPACE", "SCHEMA_VERSION", "PgBackend", "check_project", "close_all", "connect",
    "mask",
]

# First key of the schema's advisory lock: 0x444C4F4B, "DLOK", second hashtext('schema').
# A workspace's state and ledger locks use one 64-bit key each,
# hashtextextended('docklock:<state|ledger>:' || workspace, 0) (pg_state, pg_ledger):
# PostgreSQL keeps one-bigint and two-int4 keys apart, so they never meet this one.
LOCK_SPACE = 1145916491

# Each migration is the list of statements taking the schema from version i to i+1
# (MIGRATIONS[0]: nothing to version 1). Append; never edit a released one.
_REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION docklock_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'docklock: the ledger is append-only (% refused on %)',
        TG_OP, TG_TABLE_NAME
        USING HINT = 'DockLock''s ledger tables only ever grow; nothing may be changed';
END
$$
"""

_APPEND_ONLY = ("docklock_ledger_entries", "docklock_ledger_checkpoints",
                "docklock_ledger_meta")


def _append_only_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER docklock_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION docklock_refuse_change()",
        f"CREATE TRIGGER docklock_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION docklock_refuse_change()",
    ]


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE docklock_workspaces (
            workspace text PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            moved_to text,
            moved_at timestamptz)""",
        # data: the same canonical JSON bytes state.json holds; previous: the version
        # before it (state.json.backup).
        """CREATE TABLE docklock_state (
            workspace text PRIMARY KEY,
            lineage text,
            serial bigint NOT NULL,
            data bytea NOT NULL,
            previous bytea,
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by text NOT NULL DEFAULT '')""",
        # The state lock's holder (the lock itself is a session advisory lock).
        """CREATE TABLE docklock_locks (
            workspace text PRIMARY KEY,
            lock_id text NOT NULL,
            pid integer NOT NULL,
            host text NOT NULL,
            command text NOT NULL,
            since text NOT NULL,
            backend_pid integer NOT NULL)""",
        """CREATE TABLE docklock_ledger_entries (
            workspace text NOT NULL,
            seq bigint NOT NULL,
            start_offset bigint NOT NULL,
            line bytea NOT NULL,
            PRIMARY KEY (workspace, seq))""",
        "CREATE INDEX docklock_ledger_entries_offset "
        "ON docklock_ledger_entries (workspace, start_offset)",
        """CREATE TABLE docklock_ledger_checkpoints (
            workspace text NOT NULL,
            idx bigint NOT NULL,
            line bytea NOT NULL,
            PRIMARY KEY (workspace, idx))""",
        """CREATE TABLE docklock_ledger_meta (
            workspace text PRIMARY KEY,
            data bytea NOT NULL)""",
        """CREATE TABLE docklock_ledger_tree (
            workspace text PRIMARY KEY,
            data bytea NOT NULL)""",
        """CREATE TABLE docklock_ledger_cosignatures (
            workspace text PRIMARY KEY,
            data bytea NOT NULL)""",
        _REFUSE_FUNCTION,
        *(stmt for table in _APPEND_ONLY for stmt in _append_only_triggers(table)),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_CONNECT_TIMEOUT = 10  # seconds, unless the connection string sets connect_timeout

_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_SECRET = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/?#@\s]*):[^@/\s]*@", re.IGNORECASE)


def mask(text: str, password: str | None = None) -> str:
    """`text` with every password replaced by `****`: `password=...` pairs (libpq key/
    value form or a URI's query), the secret of a URI's `user:secret@`, and `password`
    itself wherever it still appears."""
    text = _PASSWORD_KV.sub(r"\1****", text)
    text = _URI_SECRET.sub(r"\1:****@", text)
    if password and len(password) >= 4:
        text = text.replace(password, "****")
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


class PgBackend:
    """One connection to the database of one workspace (see the module docstring).

    Use `connect()` (cached per process); construct directly only for a second,
    independent session (tests: "another process").
    """

    def __init__(self, conninfo: str, *, conninfo_env: str, workspace: str,
                 location: Location | None = None) -> None:
        self.conninfo_env = conninfo_env
        self.workspace = workspace
        self.location = location
        self.label = f"postgres:{workspace}"
        self._lock = threading.RLock()
        self._checked_moved = False
        params = _parse_conninfo(conninfo, conninfo_env, location)
        self._password = str(params.get("password") or "") or None
        self.database = str(params.get("dbname") or params.get("user") or "")
        options: dict[str, Any] = {}
        if "connect_timeout" not in params:
            options["connect_timeout"] = _CONNECT_TIMEOUT
        if "application_name" not in params:
            options["application_name"] = "docklock"
        try:
            self._conn: psycopg.Connection[Any] = psycopg.connect(
                conninfo, autocommit=True, **options)
        except psycopg.Error as exc:
            raise self._error("cannot connect to PostgreSQL", exc) from exc
        try:
            ensure_schema(self)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PgBackend({self.label!r}, env={self.conninfo_env!r})"

    # ------------------------------------------------------------------ connection

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed or self._conn.broken)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The autocommit connection, held by this thread for the block. A failure of
        the connection itself (server unreachable, session ended) becomes a BackendError;
        SQL errors (constraint violations, refused changes) propagate as psycopg raised
        them, for the caller to judge."""
        with self._lock:
            if self.closed:
                raise BackendError(
                    f"the connection to PostgreSQL ({self.conninfo_env}) was lost earlier "
                    "in this command",
                    location=self.location,
                    hint="check that the server is up and run the command again")
            try:
                yield self._conn
            except psycopg.Error as exc:
                if _is_connection_failure(exc) or self._conn.broken:
                    raise self._error("lost the connection to PostgreSQL", exc) from exc
                raise

    def rows(self, sql: str, params: Any = None, *,
             binary: bool = False) -> list[tuple[Any, ...]]:
        """Run one statement; its rows ([] for none). Any psycopg error becomes a
        BackendError (use `connection()` to handle SQL errors yourself)."""
        try:
            with self.connection() as conn:
                cur = conn.execute(sql, params, binary=binary)
                return cur.fetchall() if cur.description is not None else []
        except psycopg.Error as exc:
            raise self._error("PostgreSQL refused a DockLock query", exc) from exc

    def backend_pid(self) -> int:
        """The server process id of this session (pg_locks names holders by it)."""
        with self.connection() as conn:
            return int(conn.info.backend_pid)

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self._conn.close()

    # ------------------------------------------------------------------ workspaces

    def check_workspace(self) -> None:
        """Register this workspace (first open) and refuse it when it was migrated away."""
        if self._checked_moved:
            return
        found = self.rows("SELECT moved_to, moved_at::text FROM docklock_workspaces "
                          "WHERE workspace = %s", (self.workspace,))
        if not found:
            self.rows("INSERT INTO docklock_workspaces (workspace) VALUES (%s) "
                      "ON CONFLICT (workspace) DO NOTHING", (self.workspace,))
        elif found[0][0] is not None:
            raise self.moved_error(found[0][0], found[0][1])
        self._checked_moved = True

    def moved_error(self, moved_to: str, moved_at: str, *, after: str = "") -> BackendError:
        """The error for this workspace having been migrated to `moved_to` (`after`: what
        the refused command was doing, e.g. "; nothing was recorded")."""
        return BackendError(
            f"workspace {self.workspace!r} in the PostgreSQL database named by "
            f"{self.conninfo_env} was migrated to {moved_to} at {moved_at}; its "
            f"state and ledger there are no longer current{after}",
            location=self.location,
            hint=f"point spec.backend at where it went (docklock.yaml: {moved_to}), "
                 "or give this workspace a new key with spec.backend.workspace")

    def moved(self) -> tuple[str, str] | None:
        """(where, when) this workspace was migrated to; None while it lives here."""
        found = self.rows("SELECT moved_to, moved_at::text FROM docklock_workspaces "
                          "WHERE workspace = %s AND moved_to IS NOT NULL", (self.workspace,))
        return None if not found else (str(found[0][0]), str(found[0][1]))

    def moved_to(self) -> str | None:
        """Where this workspace was migrated to (None: it lives here)."""
        found = self.rows("SELECT moved_to FROM docklock_workspaces WHERE workspace = %s",
                          (self.workspace,))
        return None if not found else found[0][0]

    def mark_moved(self, to: str) -> None:
        """Record that the workspace now lives in `to` (e.g. "local"): later opens of
        it here fail with a clear error, and so do appends of a command that opened it
        before (pg_ledger's appends read the row FOR SHARE: this UPDATE waits for an
        append in flight, and an append after it sees the mark). Its rows stay (the
        ledger is append-only)."""
        self.rows("INSERT INTO docklock_workspaces (workspace, moved_to, moved_at) "
                  "VALUES (%s, %s, now()) ON CONFLICT (workspace) DO UPDATE "
                  "SET moved_to = EXCLUDED.moved_to, moved_at = EXCLUDED.moved_at",
                  (self.workspace, to))

    def unmark_moved(self, to: str) -> None:
        """Undo mark_moved(`to`) (a migration that failed before recording the move on
        its target): the workspace lives here again. Another destination's mark stays."""
        self.rows("UPDATE docklock_workspaces SET moved_to = NULL, moved_at = NULL "
                  "WHERE workspace = %s AND moved_to = %s", (self.workspace, to))
        self._checked_moved = False

    def holdings(self) -> tuple[bool, bool]:
        """(holds state, holds any ledger record) for this workspace, in one query."""
        row = self.rows(
            "SELECT EXISTS (SELECT 1 FROM docklock_state WHERE workspace = %(ws)s), "
            "EXISTS (SELECT 1 FROM docklock_ledger_meta WHERE workspace = %(ws)s) "
            "OR EXISTS (SELECT 1 FROM docklock_ledger_entries WHERE workspace = %(ws)s) "
            "OR EXISTS (SELECT 1 FROM docklock_ledger_checkpoints WHERE workspace = %(ws)s)",
            {"ws": self.workspace})[0]
        return bool(row[0]), bool(row[1])

    def ledger_identity(self) -> tuple[bytes | None, bytes | None]:
        """(the ledger's identity record, its first checkpoint line), in one query."""
        row = self.rows(
            "SELECT (SELECT data FROM docklock_ledger_meta WHERE workspace = %(ws)s), "
            "(SELECT line FROM docklock_ledger_checkpoints WHERE workspace = %(ws)s "
            "ORDER BY idx LIMIT 1)", {"ws": self.workspace})[0]
        return (None if row[0] is None else bytes(row[0]),
                None if row[1] is None else bytes(row[1]))

    # ------------------------------------------------------------------ errors

    def _error(self, what: str, exc: BaseException) -> BackendError:
        return _backend_error(what, exc, self.conninfo_env, self._password, self.location)


# ------------------------------------------------------------------ whose workspace

# (id(backend), workspace, project root) already found to be this project's: the check
# runs once per process, not once per store.
_OWNED: set[tuple[int, str, str]] = set()


def foreign_workspace_hint(backend: PgBackend) -> str:
    return (f"set spec.backend.workspace in docklock.yaml to a key unique to this project "
            f"(the key {backend.workspace!r} is taken), or copy docklock.pub from the "
            "project that owns it")


def check_project(backend: PgBackend, paths: WorkspacePaths) -> None:
    """Refuse a workspace whose ledger is not the one this project's docklock.pub signs:
    two projects whose clusters share a name (the default workspace key) in one database
    would otherwise share state and ledger, silently.

    Cheap on purpose (it runs before every command's first read): one query for the
    ledger's identity record and first checkpoint, then two comparisons: the ledger's
    origin against docklock.pub's `ledger`, and the first checkpoint's signature key id
    against docklock.pub's genesis key (no signature is verified: `ledger verify` does
    that). On an empty workspace there is nothing to compare. Without docklock.pub a
    workspace holding state or a ledger is refused: a project's first command (apply
    creates docklock.pub before it writes anything) only ever meets an empty one, so a
    project without keys there is another project whose cluster has the same name."""
    key = (id(backend), backend.workspace, str(paths.root))
    if key in _OWNED:
        return
    from docklock.errors import DockLockError
    from docklock.ledger.keys import Keyring, public_keyring_path
    from docklock.ledger.note import note_key_id, parse_note
    from docklock.ledger.store import Checkpoint

    path = public_keyring_path(paths)
    if not path.exists():
        # Not cached: the project's own docklock.pub may appear later in this process.
        has_state, has_ledger = backend.holdings()
        if has_state or has_ledger:
            what = " and ".join(w for w, held in (("state", has_state),
                                                 ("a ledger", has_ledger)) if held)
            raise BackendError(
                f"workspace {backend.workspace!r} in the database named by "
                f"{backend.conninfo_env} already holds {what}, and this project has no "
                f"docklock.pub to show it is its own ({path} does not exist)",
                location=backend.location, hint=foreign_workspace_hint(backend))
        return
    try:
        keyring = Keyring.load(path)
    except DockLockError:
        return  # a damaged docklock.pub is reported by whatever reads it for its keys
    meta, first = backend.ledger_identity()
    origin: str | None = None
    if meta is not None:
        with contextlib.suppress(ValueError):
            doc = json.loads(meta)
            origin = doc.get("origin") if isinstance(doc, dict) else None
    checkpoint = None
    if first is not None:
        with contextlib.suppress(DockLockError, ValueError):
            checkpoint = Checkpoint.from_line(first)
    if origin is None and checkpoint is not None:
        origin = checkpoint.origin
    where = f"workspace {backend.workspace!r} in the database named by {backend.conninfo_env}"
    if keyring.ledger and origin is not None and origin != keyring.ledger:
        raise BackendError(
            f"{where} belongs to another project: its ledger is {origin}, docklock.pub's "
            f"is {keyring.ledger}", location=backend.location,
            hint=foreign_workspace_hint(backend))
    if checkpoint is not None:
        genesis = next((k for k in keyring.keys if k.keyid == keyring.genesis_keyid), None)
        try:
            note = parse_note(checkpoint.note)
        except DockLockError:
            note = None  # damaged: `ledger verify` names it
        if genesis is not None and note is not None:
            want = note_key_id(checkpoint.origin, genesis)
            if not any(s.key_id == want for s in note.signatures):
                raise BackendError(
                    f"{where} belongs to another project: its first checkpoint is not "
                    f"signed by docklock.pub's genesis key {keyring.genesis_keyid[:16]}",
                    location=backend.location, hint=foreign_workspace_hint(backend))
    _OWNED.add(key)


def _is_connection_failure(exc: psycopg.Error) -> bool:
    """True for a failure of the session itself, not of one statement: no SQLSTATE
    (client side), class 08 (connection exception) or 57P (admin shutdown, crash,
    terminated by an administrator)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


def _backend_error(what: str, exc: BaseException, env: str, password: str | None,
                   location: Location | None) -> BackendError:
    detail = mask(_one_line(str(exc)), password) or type(exc).__name__
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        hint = (f"the role in {env} may not do this: DockLock creates and migrates its "
                "tables itself, so connect it once as the owner of the database (or "
                "grant it CREATE on the schema)")
    elif isinstance(exc, psycopg.OperationalError):
        hint = (f"check the connection string in ${env} and that the server is up; keep "
                "the password in that variable, ~/.pgpass or PGPASSWORD, never in "
                "docklock.yaml")
    else:
        hint = "this is a DockLock or database problem; the server log may say more"
    return BackendError(f"{what} ({env}): {detail}", location=location, hint=hint)


def _parse_conninfo(conninfo: str, env: str, location: Location | None) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        # libpq quotes the offending piece, which may be the password: name only an
        # unknown option's key, never echo the string.
        unknown = re.search(r'invalid (?:connection|URI query) (?:option|parameter) "(\w+)"',
                            str(exc))
        what = f": unknown option {unknown.group(1)!r}" if unknown else ""
        raise BackendError(
            f"{env} does not hold a valid PostgreSQL connection string{what}",
            location=location,
            hint="use the libpq form 'host=... dbname=... user=...' or a URI "
                 "'postgresql://user@host/dbname'") from None


# ---------------------------------------------------------------------- schema

def ensure_schema(backend: PgBackend) -> None:
    """Create or migrate DockLock's tables to SCHEMA_VERSION (see the module docstring)."""
    if _schema_version(backend) == SCHEMA_VERSION:
        return
    try:
        with backend.connection() as conn, conn.transaction():
            # Two first connects at once: the second waits here, then finds the work done.
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext('schema'))",
                         (LOCK_SPACE,))
            conn.execute("CREATE TABLE IF NOT EXISTS docklock_schema "
                         "(version integer NOT NULL)")
            row = conn.execute("SELECT max(version) FROM docklock_schema").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            _refuse_newer(backend, current)
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    conn.execute(statement)
            if current < SCHEMA_VERSION:
                conn.execute("DELETE FROM docklock_schema")
                conn.execute("INSERT INTO docklock_schema (version) VALUES (%s)",
                             (SCHEMA_VERSION,))
    except psycopg.Error as exc:
        raise backend._error("cannot create or migrate DockLock's tables", exc) from exc


def _schema_version(backend: PgBackend) -> int:
    """The schema's version, 0 when DockLock's tables do not exist yet."""
    try:
        with backend.connection() as conn:
            row = conn.execute("SELECT max(version) FROM docklock_schema").fetchone()
    except pg_errors.UndefinedTable:
        return 0
    except psycopg.Error as exc:
        raise backend._error("cannot read DockLock's schema version", exc) from exc
    version = int(row[0]) if row and row[0] is not None else 0
    _refuse_newer(backend, version)
    return version


def _refuse_newer(backend: PgBackend, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise BackendError(
            f"the database named by {backend.conninfo_env} has DockLock schema version "
            f"{version}; this DockLock knows up to {SCHEMA_VERSION}",
            location=backend.location,
            hint="upgrade DockLock on this machine (a newer DockLock migrated the database)")


# ---------------------------------------------------------------------- connect

# (pid, connection string, workspace) -> backend. The pid keeps a forked child from using
# its parent's socket.
_BACKENDS: dict[tuple[int, str, str], PgBackend] = {}
_BACKENDS_GUARD = threading.Lock()


def conninfo_from_env(conninfo_env: str, location: Location | None = None) -> str:
    """The connection string in the environment variable `conninfo_env`."""
    value = os.environ.get(conninfo_env)
    if value is None or not value.strip():
        state = "which is not set" if value is None else "which is empty"
        raise BackendError(
            f"spec.backend.connectionEnv names {conninfo_env}, {state}",
            location=location,
            hint=f"export {conninfo_env}='host=... dbname=... user=...' (a libpq "
                 "connection string or postgresql:// URI); keep the password there, in "
                 "~/.pgpass or PGPASSWORD, never in docklock.yaml")
    return value


def connect(conninfo_env: str, workspace: str, *, location: Location | None = None,
            shared: bool = True, check_moved: bool = True) -> PgBackend:
    """The process's backend for the database `$conninfo_env` and `workspace`.

    `shared=False` opens a new, independent session (not cached). `check_moved=False`
    opens a workspace even when it was migrated away (state migration inspects it).
    """
    conninfo = conninfo_from_env(conninfo_env, location)
    key = (os.getpid(), conninfo, workspace)
    if shared:
        with _BACKENDS_GUARD:
            backend = _BACKENDS.get(key)
            if backend is None or backend.closed:
                backend = PgBackend(conninfo, conninfo_env=conninfo_env,
                                    workspace=workspace, location=location)
                _BACKENDS[key] = backend
    else:
        backend = PgBackend(conninfo, conninfo_env=conninfo_env, workspace=workspace,
                            location=location)
    if check_moved:
        backend.check_workspace()
    return backend


def close_all() -> None:
    """Close every cached connection of this process (tests; a long-lived agent)."""
    with _BACKENDS_GUARD:
        backends = list(_BACKENDS.values())
        _BACKENDS.clear()
    for backend in backends:
        backend.close()
