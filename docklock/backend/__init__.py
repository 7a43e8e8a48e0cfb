"""The backend a workspace keeps its state, state lock and ledger in (`spec.backend`).

Owns the choice, not the storage: `backend_settings(paths)` reads docklock.yaml's
`spec.backend` (no section, or no docklock.yaml: `local`), `open_state_store(paths)`
gives the state store and `ledger_storage(paths)` the ledger's storage of that backend.
The rest of the engine asks these two functions and never which backend it got.

- `local`: `.docklock/state.json` + `state.lock` (docklock.state.StateStore) and
  `.docklock/ledger/` (docklock.ledger.storage.FileLedgerStorage), as before backends.
- `postgres`: one database shared by every clone and CI job; the connection string is
  read from the environment variable `spec.backend.connectionEnv` names (docklock.yaml
  is committed: it never holds the password). Rows are keyed by the workspace key,
  `spec.backend.workspace` or else the cluster's name, so several clusters share one
  database. docklock.backend.pg (connection, schema), .pg_state (PgStateStore) and
  .pg_ledger (PgLedgerStorage) are imported only for such a workspace, and with them
  psycopg (house rule 12: a local workspace never loads it).

Invariant: `StateBackend` below is StateStore's public API; PgStateStore has exactly
the same, so every engine use case runs unchanged on either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from docklock._fs import FileCache
from docklock.errors import Location, StateError
from docklock.workspace import WORKSPACE_FILE, WorkspacePaths

if TYPE_CHECKING:
    from docklock.backend.pg import PgBackend
    from docklock.ledger.storage import LedgerStorage
    from docklock.overrides import Override
    from docklock.state import LockInfo, State

__all__ = [
    "BACKEND_TYPES", "BackendSettings", "HeldLock", "StateBackend", "backend_settings",
    "ledger_storage", "ledger_storage_for", "open_state_store", "postgres_backend",
    "state_store_for",
]

BACKEND_TYPES = ("local", "postgres")


class HeldLock(Protocol):
    """A held state lock (docklock.state.StateLock or its PostgreSQL twin)."""

    @property
    def held(self) -> bool: ...

    @property
    def info(self) -> LockInfo: ...

    def release(self) -> None: ...

    def __enter__(self) -> HeldLock: ...

    def __exit__(self, *exc: object) -> None: ...


class StateBackend(Protocol):
    """The recorded state of one workspace, wherever it lives: docklock.state.StateStore's
    public API (its docstrings are the contract). `path` labels the state in messages (a
    Path for files, a `postgres:<workspace>/state` string otherwise)."""

    @property
    def path(self) -> Path | str: ...

    def exists(self) -> bool: ...

    def read(self, *, cluster: str | None = None) -> State: ...

    def write(self, state: State) -> State: ...

    def write_bytes(self, data: bytes) -> State: ...

    def set_overrides(self, state: State, overrides: tuple[Override, ...]) -> State: ...

    def claim_lineage(self, state: State) -> State: ...

    def lock(self, *, command: str, timeout: float = 0.0) -> HeldLock: ...

    def holder(self) -> LockInfo | None: ...

    def is_locked(self) -> bool: ...

    def active_holder(self) -> LockInfo | None: ...

    def force_unlock(self, lock_id: str | None) -> tuple[LockInfo | None, bool]: ...


@dataclass(frozen=True)
class BackendSettings:
    """`spec.backend` resolved. `workspace` is the key of this workspace's rows in a
    shared database (spec.backend.workspace, else the cluster's name); None only for a
    local workspace without a backend section, which has nothing to key."""

    type: str = "local"  # one of BACKEND_TYPES
    connection_env: str | None = None
    workspace: str | None = None
    # spec.backend.connectionEnv in docklock.yaml, for errors about the connection
    location: Location | None = field(default=None, compare=False)

    @property
    def is_local(self) -> bool:
        return self.type == "local"

    def as_type(self, type: str) -> BackendSettings:
        """The same settings naming backend `type` (migration opens the other side)."""
        return replace(self, type=type)

    def to_dict(self) -> dict[str, str | None]:
        return {"type": self.type, "connectionEnv": self.connection_env,
                "workspace": self.workspace}


LOCAL = BackendSettings()

# Every Ledger and state store asks for docklock.yaml's backend, several times per
# command; a changed file is re-read.
_SETTINGS: FileCache[BackendSettings] = FileCache()


def backend_settings(paths: WorkspacePaths) -> BackendSettings:
    """The workspace's backend: `spec.backend` of docklock.yaml; local without one."""
    return _SETTINGS.get(paths.config, lambda: _read_settings(paths), LOCAL)


def _read_settings(paths: WorkspacePaths) -> BackendSettings:
    # A file that never says "backend" names none: a local workspace is not parsed (and
    # its schemas not loaded) just to learn that, and behaves exactly as before backends,
    # even when its docklock.yaml has become invalid (destroy and force-unlock still run).
    try:
        raw = paths.config.read_bytes()
    except FileNotFoundError:
        return LOCAL
    except OSError as exc:
        raise StateError(f"cannot read {paths.config}: {exc.strerror}",
                         hint="check the file's permissions") from exc
    if b"backend" not in raw:
        return LOCAL
    from docklock.load import load_cluster
    from docklock.model import ClusterSpec

    cluster = load_cluster(paths)  # ValidationError at file:line:col for a bad section
    spec = cluster.spec
    backend = spec.backend if isinstance(spec, ClusterSpec) else None
    if backend is None:
        return LOCAL
    return BackendSettings(type=backend.type, connection_env=backend.connectionEnv,
                           workspace=backend.workspace or cluster.metadata.name,
                           location=_where(raw, cluster.location))


def _where(raw: bytes, start: Location | None) -> Location:
    """docklock.yaml's line and column of spec.backend.connectionEnv (or the nearest key
    above it): a connection error points there, as a spec error would."""
    from docklock.load.yaml import parse_yaml_precise

    positions = parse_yaml_precise(raw.decode("utf-8", "replace"), WORKSPACE_FILE).positions
    hit = positions.locate(0, ("spec", "backend", "connectionEnv")) if positions else None
    if hit is None:
        return start or Location(WORKSPACE_FILE)
    return Location(WORKSPACE_FILE, hit[0], hit[1])


def open_state_store(paths: WorkspacePaths) -> StateBackend:
    """The state store of the workspace's backend (nothing is read or locked yet).

    On postgres it first checks that the database's workspace is this project's (its
    ledger is the one docklock.pub signs: docklock.backend.pg.check_project), so two
    projects whose clusters share a name never read or write each other's state."""
    settings = backend_settings(paths)
    if not settings.is_local:
        from docklock.backend.pg import check_project

        check_project(postgres_backend(settings), paths)
    return state_store_for(paths, settings)


def ledger_storage(paths: WorkspacePaths) -> LedgerStorage:
    """The ledger storage of the workspace's backend (docklock.ledger.Ledger's default);
    on postgres after the same project check as open_state_store (so `ledger show` never
    prints another project's ledger)."""
    settings = backend_settings(paths)
    if not settings.is_local:
        from docklock.backend.pg import check_project

        check_project(postgres_backend(settings), paths)
    return ledger_storage_for(paths, settings)


def state_store_for(paths: WorkspacePaths, settings: BackendSettings) -> StateBackend:
    """The state store of backend `settings` for this workspace, whatever docklock.yaml
    names (state migration opens both sides)."""
    if settings.is_local:
        from docklock.state import StateStore

        return StateStore(paths)
    from docklock.backend.pg_state import PgStateStore

    backend, workspace = _postgres(settings)
    return PgStateStore(backend, workspace)


def ledger_storage_for(paths: WorkspacePaths, settings: BackendSettings) -> LedgerStorage:
    """The ledger storage of backend `settings` for this workspace (see state_store_for)."""
    if settings.is_local:
        from docklock.ledger.storage import FileLedgerStorage

        return FileLedgerStorage(paths.ledger)
    from docklock.backend.pg_ledger import PgLedgerStorage

    backend, workspace = _postgres(settings)
    return PgLedgerStorage(backend, workspace)


def postgres_backend(settings: BackendSettings, *, check_moved: bool = True) -> PgBackend:
    """The process's connection to the database of `settings` (pg.connect caches it);
    `check_moved=False` also opens a workspace that was migrated away."""
    from docklock.backend import pg

    if settings.connection_env is None or settings.workspace is None:
        raise StateError(
            "spec.backend names no database: connectionEnv is not set",
            location=settings.location,
            hint="add `connectionEnv: NAME` to spec.backend in docklock.yaml, NAME being "
                 "the environment variable that holds the PostgreSQL connection string")
    return pg.connect(settings.connection_env, settings.workspace,
                      location=settings.location, check_moved=check_moved)


def _postgres(settings: BackendSettings) -> tuple[PgBackend, str]:
    backend = postgres_backend(settings)
    return backend, backend.workspace
