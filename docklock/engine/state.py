"""State surgery and migration: `docklock state pull|list|show|rm|migrate`.

Each works on the backend docklock.yaml names (docklock.backend), so the same commands
serve a local workspace and a team's PostgreSQL one.

- pull, list, show only read: no lock (state writes are atomic), no key.
- rm removes resources from the recorded state, under the state lock. The objects stay
  in Podman, unrecorded: drift reports them, and the next plan adopts them again (the
  resource is still in the specs) or deletes them (it is not; their labels still say
  they are this workspace's). It must sign: a `state-rm` entry is appended BEFORE the
  state is written (write-ahead, as apply journals intents), and a checkpoint after.
- migrate moves state and ledger between the backends (docklock.backend.migrate does
  the copying). docklock.yaml must already name the target, so every clone and CI job
  reading it agrees on where the workspace lives from then on; the other backend is the
  source. Under both state locks and both ledger locks: the source ledger is verified
  first (a damaged one is refused), copied byte for byte with the state, a signed
  `state-migrate` entry and checkpoint are appended on the target, and the source is
  retired (local files moved to `.docklock/migrated-<stamp>/`, a PostgreSQL workspace
  marked moved). The state keeps its lineage and serial.
  The source's ledger lock is held from its verification until it is retired, so a
  writer that opened it earlier (`keys trust` in a clone still naming it) waits and then
  fails instead of appending an entry nobody copies. A PostgreSQL source is marked moved
  BEFORE it is copied (and unmarked if the move cannot be recorded), so clones still
  naming it stop at once and its ledger refuses appends from then on (the INSERT reads
  the mark); a kill leaves it marked, and only this folder's re-run may open it. The
  source's streams are checked to be still the verified ones after the mark (and after
  the copy), else nothing is recorded: "appended to during the migration; run it
  again". A re-run that finds the target holding the source's ledger plus this source's
  state-migrate entry just finishes: signs the checkpoint if it is missing and retires
  the source.
"""

from __future__ import annotations

import difflib
import hashlib
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docklock.errors import StateError

if TYPE_CHECKING:
    from docklock.backend import BackendSettings, StateBackend
    from docklock.backend.migrate import LedgerCopy, RecordedMove
    from docklock.backend.pg import PgBackend
    from docklock.engine.context import Context
    from docklock.ledger import Ledger
    from docklock.ledger.keys import HybridSigner
    from docklock.ledger.storage import LedgerStorage
    from docklock.ledger.verify import VerifyReport
    from docklock.model import Address
    from docklock.state import RecordedObject, RecordedResource, State
    from docklock.workspace import WorkspacePaths


# ------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ResourceSummary:
    """One recorded address: how many objects it owns, of which kinds."""

    address: str
    objects: int
    kinds: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "objects": self.objects, "kinds": list(self.kinds)}


@dataclass(frozen=True)
class StateListing:
    """`state list`: the recorded addresses, and which state they come from."""

    store: str  # where the state lives (.docklock/state.json, postgres:<ws>/state)
    lineage: str | None
    serial: int
    resources: tuple[ResourceSummary, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "lineage": self.lineage, "serial": self.serial,
                "resources": [r.to_dict() for r in self.resources]}


@dataclass(frozen=True)
class RecordedView:
    """`state show ADDRESS`: the objects the state records for one address."""

    address: str
    resource: RecordedResource
    lineage: str | None
    serial: int

    @property
    def objects(self) -> tuple[RecordedObject, ...]:
        return tuple(self.resource.objects[k] for k in sorted(self.resource.objects))

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "lineage": self.lineage, "serial": self.serial,
                "objects": {o.key: o.to_dict() for o in self.objects}}


def pull(ctx: Context) -> bytes | None:
    """The state document exactly as the backend stores it (None: never written)."""
    from docklock.backend import open_state_store
    from docklock.backend.migrate import stored_bytes

    store = open_state_store(ctx.paths)
    _check_owner(ctx.paths)
    return stored_bytes(store)


def list_state(ctx: Context) -> StateListing:
    """Every recorded address, sorted."""
    store, state = _read(ctx.paths)
    rows = tuple(ResourceSummary(address, len(res.objects),
                                 tuple(sorted({o.kind.value for o in res.objects.values()})))
                 for address, res in sorted(state.resources.items()))
    return StateListing(str(store.path), state.lineage, state.serial, rows)


def show(ctx: Context, address: str) -> RecordedView:
    """The recorded objects of `address` (Kind/namespace/name, Kind/name or a Service's
    bare name). StateError naming the close matches when it is not recorded."""
    _store, state = _read(ctx.paths)
    found = resolve(state, [address])[0]
    return RecordedView(found, state.resources[found], state.lineage, state.serial)


def resolve(state: State, texts: list[str]) -> list[str]:
    """The recorded addresses `texts` name, in order; StateError listing every one that
    names nothing (with close matches), so a typo in one of several fails them all."""
    from docklock.model import Address

    out: list[str] = []
    missing: list[Address | str] = []
    said: list[str] = []
    for text in texts:
        if text in state.resources:
            out.append(text)
            continue
        try:
            parsed: Address | str = Address.parse(text)
        except ValueError:
            parsed = text
        if str(parsed) in state.resources:
            out.append(str(parsed))
        else:
            missing.append(parsed)
            said.append(text if str(parsed) == text else f"{text} ({parsed})")
    if missing:
        known = sorted(state.resources)
        close = sorted({m for wanted in missing for m in _close(wanted, known)})
        what = ", ".join(said)
        noun = "is" if len(missing) == 1 else "are"
        hint = (f"did you mean {', '.join(close)}? " if close else "") + \
            "`docklock state list` shows every recorded address"
        if not known:
            hint = "the state records no resources"
        raise StateError(f"{what} {noun} not in the recorded state", hint=hint)
    return out


def _close(wanted: Address | str, known: list[str]) -> list[str]:
    """Recorded addresses like `wanted`: the same kind and namespace with a similar name
    (the shared `Kind/namespace/` prefix would make every address look close)."""
    if isinstance(wanted, str):
        return difflib.get_close_matches(wanted, known, n=3, cutoff=0.6)
    by_name: dict[str, list[str]] = {}
    for address in known:
        parts = address.split("/")
        if len(parts) == 3 and (parts[0], parts[1]) == (wanted.kind, wanted.namespace):
            by_name.setdefault(parts[2], []).append(address)
    names = difflib.get_close_matches(wanted.name, list(by_name), n=3, cutoff=0.6)
    found = [a for n in names for a in by_name[n]]
    if found:
        return found
    # Same name, another kind or namespace (`state show backend` for a Network).
    return [a for a in known if a.split("/")[-1] == wanted.name]


def _read(paths: WorkspacePaths) -> tuple[StateBackend, State]:
    from docklock.backend import open_state_store

    store = open_state_store(paths)
    _check_owner(paths)
    return store, store.read()


def _check_owner(paths: WorkspacePaths) -> None:
    """On PostgreSQL: refuse a workspace key another project's ledger holds (it would
    show, or change, that project's state). Files are this folder's own."""
    from docklock.backend import backend_settings, postgres_backend

    settings = backend_settings(paths)
    if not settings.is_local:
        from docklock.backend.pg import check_project

        check_project(postgres_backend(settings), paths)


# ---------------------------------------------------------------------------- rm


@dataclass(frozen=True)
class RmResult:
    """`state rm`: what was (or, with dry_run, would be) removed, the serial the state
    has afterwards, the ledger entry's seq, and a ledger note (witnesses) if any."""

    removed: tuple[RecordedView, ...]
    dry_run: bool
    serial: int
    entry_seq: int | None = None
    ledger_problem: str | None = None

    @property
    def object_count(self) -> int:
        return sum(len(v.resource.objects) for v in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "serial": self.serial, "entry": self.entry_seq,
                "ledger_problem": self.ledger_problem,
                "removed": [v.to_dict() for v in self.removed]}


def rm(ctx: Context, addresses: list[str], *, dry_run: bool = False,
       lock_timeout: float = 0.0) -> RmResult:
    """Remove `addresses` from the recorded state (nothing in Podman changes).

    Raises StateError for an address not recorded (nothing removed), LockError when
    another command holds the state lock, KeyMaterialError without the private key (not
    with dry_run), LedgerError when the ledger cannot record it (state unchanged)."""
    from docklock.backend import open_state_store
    from docklock.ledger import EntryType, Ledger
    from docklock.ledger.keys import require_signer
    from docklock.load import load_cluster

    paths = ctx.paths
    if not addresses:
        raise StateError("state rm needs at least one address",
                         hint="`docklock state list` shows the recorded addresses")
    store = open_state_store(paths)
    _check_owner(paths)
    if dry_run:
        state = store.read()
        chosen = resolve(state, addresses)
        return RmResult(_views(state, chosen), True, state.serial)
    cluster = load_cluster(paths).metadata.name
    signer = require_signer(paths)  # before the lock: without a key nothing is touched
    with store.lock(command="docklock state rm", timeout=lock_timeout):
        state = store.read(cluster=cluster)
        chosen = resolve(state, addresses)
        views = _views(state, chosen)
        new = state
        for view in views:
            for obj in view.objects:
                new = new.without_object(view.address, obj.key)
        payload = {
            "addresses": list(dict.fromkeys(chosen)),
            "objects": [{"address": v.address, "key": o.key, "kind": o.kind.value,
                         "name": o.name, "id": o.id} for v in views for o in v.objects],
            "lineage": state.lineage, "serial_before": state.serial,
        }
        with Ledger.open(paths, cluster, signer=signer) as ledger:
            # Write-ahead: if the ledger cannot take the entry, the state is not changed.
            entry = ledger.append(EntryType.STATE_RM, payload, serial=state.serial + 1)
            written = store.write(new)
            problem = _checkpoint(ledger, signer)
    return RmResult(views, False, written.serial, entry.seq, problem)


def _views(state: State, addresses: list[str]) -> tuple[RecordedView, ...]:
    unique = list(dict.fromkeys(addresses))
    return tuple(RecordedView(a, state.resources[a], state.lineage, state.serial)
                 for a in unique)


def _checkpoint(ledger: Ledger, signer: HybridSigner) -> str | None:
    """Sign a checkpoint; a witness that did not cosign is a note, not a failure (the
    checkpoint is written and the next signing command asks the witnesses again)."""
    from docklock.errors import WitnessError

    try:
        ledger.checkpoint(signer)
    except WitnessError as exc:
        return f"recorded in the ledger, but {exc.message}"
    return None


# ----------------------------------------------------------------------- migrate


@dataclass(frozen=True)
class MigrateResult:
    """`state migrate`: from where to where, the state moved (None: there was none),
    the ledger copied, the migration's ledger entry, and where the source went."""

    source: str
    target: str
    state_serial: int | None
    state_lineage: str | None
    state_digest: str | None
    ledger: LedgerCopy
    verified: VerifyReport
    entry_seq: int
    retired: str  # .docklock/migrated-<stamp> or "postgres:<ws> marked moved"
    ledger_problem: str | None = None
    finished_earlier_run: bool = False  # an interrupted run had recorded the move

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target,
                "state": None if self.state_serial is None else {
                    "serial": self.state_serial, "lineage": self.state_lineage,
                    "digest": self.state_digest},
                "ledger": self.ledger.to_dict(), "source_verified": self.verified.to_dict(),
                "entry": self.entry_seq, "retired": self.retired,
                "ledger_problem": self.ledger_problem,
                "finished_earlier_run": self.finished_earlier_run}


def migrate(ctx: Context, to: str, *, lock_timeout: float = 0.0) -> MigrateResult:
    """Move the workspace's state and ledger to backend `to` (see the module doc).

    Raises MigrationError (docklock.yaml does not name `to`, nothing to move, the target
    holds another workspace's data), LedgerError (the source ledger fails verification),
    LockError, KeyMaterialError (no private key) and BackendError (PostgreSQL)."""
    from docklock._fs import utc_now
    from docklock.backend import (
        BACKEND_TYPES,
        backend_settings,
        ledger_storage_for,
        state_store_for,
    )
    from docklock.backend.migrate import (
        MigrationError,
        copy_ledger,
        holds_ledger,
        import_state,
        parse_state,
        recorded_move,
        retire_local,
        stored_bytes,
    )
    from docklock.ledger import EntryType, Ledger
    from docklock.ledger.keys import require_signer
    from docklock.load import load_cluster

    paths = ctx.paths
    if to not in BACKEND_TYPES:
        raise MigrationError(f"unknown backend {to!r}",
                             hint=f"migrate --to one of: {', '.join(BACKEND_TYPES)}")
    settings = backend_settings(paths)
    if settings.type != to:
        raise MigrationError(
            f"docklock.yaml names the {settings.type} backend, not {to}",
            hint=f"set spec.backend.type: {to} in docklock.yaml first (it is what every "
                 "clone and CI job reads), then run the migration from the "
                 f"{settings.type} backend to it")
    source_settings = settings.as_type("postgres" if to == "local" else "local")
    if settings.connection_env is None:
        raise MigrationError(
            "spec.backend.connectionEnv is not set: nothing names the PostgreSQL database "
            f"to migrate {'from' if to == 'local' else 'to'}",
            hint="add `connectionEnv: NAME` (the environment variable holding the "
                 "connection string) to spec.backend in docklock.yaml")
    cluster = load_cluster(paths).metadata.name
    signer = require_signer(paths)  # the migration entry is signed: fail before any work

    # A PostgreSQL source is opened even when marked moved: this migration marks it
    # before recording the move on the target, so a run killed after that finds it so.
    moved_mark = f"local ({paths.root})"
    source_store, source_ledger, source_pg = _open_source(source_settings, paths,
                                                          moved_mark)
    target_store = state_store_for(paths, settings)
    target_ledger = ledger_storage_for(paths, settings)
    command = f"docklock state migrate --to {to}"
    stamp = utc_now().replace("-", "").replace(":", "")  # 20261202T163000Z
    with ExitStack() as held:
        # The local side's lock first, then PostgreSQL's (two migrations collide at once
        # on the first instead of each holding one).
        first, second = ((source_store, target_store) if to == "postgres"
                         else (target_store, source_store))
        held.enter_context(first.lock(command=command, timeout=lock_timeout))
        held.enter_context(second.lock(command=command, timeout=lock_timeout))

        data = stored_bytes(source_store)
        state = parse_state(data, str(source_store.path)) if data is not None else None
        if state is None and not holds_ledger(source_ledger):
            raise MigrationError(
                f"{source_store.path} and {source_ledger.label} are empty: there is "
                "nothing to migrate",
                hint=f"docklock.yaml already names {to}; this workspace simply starts there")
        # The target's state may only be the source's own bytes: what a migration that
        # stopped after copying it left (it is then not copied again).
        there = stored_bytes(target_store) if target_store.exists() else None
        if there is not None and there != data:
            raise MigrationError(
                f"the target {target_store.path} already holds state",
                hint="nothing was copied; migrate into an empty workspace (on PostgreSQL "
                     "give this one a new key with spec.backend.workspace)")
        digest = "sha256:" + hashlib.sha256(data).hexdigest() if data is not None else None
        source_desc = _describe(source_settings, source_store, source_ledger)

        # The source's ledger lock is held from its verification until it is retired:
        # a writer that opened it before (a clone still naming it, `keys trust`) waits,
        # and then finds it marked moved (PostgreSQL refuses the append) or gone (files).
        report, snapshot = _verify_and_hold(paths, cluster, source_ledger, held)
        moved = recorded_move(source_ledger, target_ledger)
        if moved is not None:
            # A run killed after recording the move on the target: finish it (sign the
            # checkpoint if it was not, retire the source), once the entry is shown to
            # be this source's move of exactly these bytes.
            _check_recorded(moved, source_desc, state=state, digest=digest,
                            root=report.root, source=source_ledger, target=target_ledger)
            copied, seq, note = moved.copy, moved.seq, None
            if source_pg is not None:
                source_pg.mark_moved(moved_mark)
                try:
                    _check_unchanged(source_ledger, snapshot)
                except BaseException:
                    source_pg.unmark_moved(moved_mark)
                    raise
            if not moved.checkpointed:
                with Ledger.open(paths, cluster, signer=signer) as ledger:
                    note = _checkpoint(ledger, signer)
        else:
            marked = False
            try:
                if source_pg is not None:
                    # Clones still naming the database stop here from now on (no split
                    # brain), and no append lands after this (pg_ledger reads the mark
                    # in its INSERT): what is there now is final, and is what is copied.
                    # Undone below if the move cannot be recorded on the target.
                    source_pg.mark_moved(moved_mark)
                    marked = True
                    _check_unchanged(source_ledger, snapshot)
                with target_ledger.exclusive():
                    copied = copy_ledger(source_ledger, target_ledger)
                _check_unchanged(source_ledger, snapshot)
                if data is not None and state is not None and there is None:
                    import_state(target_store, data, state)
                payload = {
                    "from": source_desc,
                    "to": _describe(settings, target_store, target_ledger),
                    "state": None if state is None else {
                        "lineage": state.lineage, "serial": state.serial,
                        "digest": digest},
                    "ledger": {"entries": copied.entries,
                               "checkpoints": copied.checkpoints,
                               "bytes": copied.size, "root": report.root},
                }
                # The target is docklock.yaml's backend: an ordinary Ledger writes there.
                with Ledger.open(paths, cluster, signer=signer) as ledger:
                    entry = ledger.append(EntryType.STATE_MIGRATE, payload,
                                          serial=state.serial if state is not None
                                          else None)
            except BaseException:
                if marked and source_pg is not None:
                    source_pg.unmark_moved(moved_mark)
                raise
            seq = entry.seq
            with Ledger.open(paths, cluster, signer=signer) as ledger:
                note = _checkpoint(ledger, signer)

        if source_pg is None:
            retired = str(retire_local(paths, stamp).relative_to(paths.root))
        else:
            retired = f"{source_store.path} marked moved"
    return MigrateResult(
        source=str(source_ledger.label), target=str(target_ledger.label),
        state_serial=state.serial if state is not None else None,
        state_lineage=state.lineage if state is not None else None,
        state_digest=digest,
        ledger=copied, verified=report, entry_seq=seq, retired=retired,
        ledger_problem=note, finished_earlier_run=moved is not None)


def _open_source(settings: BackendSettings, paths: WorkspacePaths, mark: str
                 ) -> tuple[StateBackend, LedgerStorage, PgBackend | None]:
    """The source's state store and ledger storage, and its PostgreSQL connection (None
    for files). A workspace marked moved is refused unless `mark` (this folder's own
    interrupted migration) is where it went."""
    from docklock.backend import ledger_storage_for, postgres_backend, state_store_for

    if settings.is_local:
        return state_store_for(paths, settings), ledger_storage_for(paths, settings), None
    from docklock.backend.pg import check_project
    from docklock.backend.pg_ledger import PgLedgerStorage
    from docklock.backend.pg_state import PgStateStore

    backend = postgres_backend(settings, check_moved=False)
    if backend.moved_to() not in (None, mark):
        backend.check_workspace()  # the ordinary "was migrated to ..." error
    check_project(backend, paths)  # not another project's workspace
    return (PgStateStore(backend, backend.workspace),
            PgLedgerStorage(backend, backend.workspace), backend)


def _check_recorded(moved: RecordedMove, source_desc: dict[str, Any], *,
                    state: State | None, digest: str | None, root: str | None,
                    source: LedgerStorage, target: LedgerStorage) -> None:
    """Refuse a recorded state-migrate entry that is not this source's move of these
    exact bytes (another source with the same beginning, or a source changed since)."""
    from docklock.backend.migrate import MigrationError

    payload = moved.payload
    want_state = None if state is None else {
        "lineage": state.lineage, "serial": state.serial, "digest": digest}
    ledger = payload.get("ledger")
    same = (payload.get("from") == source_desc and payload.get("state") == want_state
            and isinstance(ledger, dict) and ledger.get("bytes") == moved.copy.size
            and ledger.get("root") == root)
    if not same:
        raise MigrationError(
            f"the target {target.label} already records a migration (ledger entry "
            f"{moved.seq}) that is not of {source.label} as it is now",
            hint="nothing was changed; if the source changed after that migration was "
                 "recorded, both backends were written to: compare `docklock state pull` "
                 "and `docklock ledger show` on each (switching spec.backend.type) before "
                 "choosing one")


def _describe(settings: BackendSettings, store: StateBackend,
              storage: LedgerStorage) -> dict[str, Any]:
    """A backend as the migration entry records it (no connection string: it may hold a
    password; the variable's name is enough to find it)."""
    out: dict[str, Any] = {"type": settings.type, "state": str(store.path),
                           "ledger": str(storage.label)}
    if not settings.is_local:
        out["connectionEnv"] = settings.connection_env
        out["workspace"] = settings.workspace
    return out


def _verify_and_hold(paths: WorkspacePaths, cluster: str, source: LedgerStorage,
                     held: ExitStack) -> tuple[VerifyReport, tuple[int, bytes]]:
    """Verify the source ledger and leave its exclusive lock held (in `held`) with the
    streams exactly as verified; returns the report and that snapshot (entries size,
    checkpoint records), which `_check_unchanged` compares against later.

    verify_ledger holds the source's shared lock, which a process holding its exclusive
    lock would wait for forever (flock), so the two are taken in turn: the snapshot is
    taken before verifying and compared once the exclusive lock is held. Only an append
    can change it (the ledger is append-only), so an equal snapshot means the held
    streams are the verified ones; otherwise another command appended in between, and
    the pass is repeated."""
    from docklock.backend.migrate import MigrationError

    for _attempt in range(3):
        before = _snapshot(source)
        report = _verify_source(paths, cluster, source)
        with ExitStack() as attempt:
            attempt.enter_context(source.exclusive())
            if _snapshot(source) != before:
                continue  # appended to while verifying: verify the new tail too
            held.enter_context(attempt.pop_all())
            return report, before
    raise MigrationError(f"{source.label} kept growing while it was verified",
                         hint="nothing was copied; stop the commands writing to the old "
                              "backend (clones whose docklock.yaml still names it) and "
                              "migrate again")


def _verify_and_copy(paths: WorkspacePaths, cluster: str, source: LedgerStorage,
                     target: LedgerStorage) -> tuple[VerifyReport, LedgerCopy]:
    """Verify the source ledger and copy exactly what was verified, in one step (the
    source's lock is released afterwards; `migrate` keeps it until the source is retired
    and so does these steps itself)."""
    from docklock.backend.migrate import copy_ledger

    with ExitStack() as held:
        report, _ = _verify_and_hold(paths, cluster, source, held)
        with target.exclusive():
            return report, copy_ledger(source, target)


def _snapshot(source: LedgerStorage) -> tuple[int, bytes]:
    return source.entries_size(), source.checkpoint_data()


def _check_unchanged(source: LedgerStorage, snapshot: tuple[int, bytes]) -> None:
    """MigrationError when the source's streams are no longer `snapshot`: a writer that
    did not take the ledger lock appended while the migration held it."""
    from docklock.backend.migrate import MigrationError

    if _snapshot(source) != snapshot:
        raise MigrationError(
            f"the ledger {source.label} was appended to during the migration; run it "
            "again", hint="the move was not recorded and the source stays in use; the "
                          "next run copies (or resumes copying) the ledger as it is then")


def _verify_source(paths: WorkspacePaths, cluster: str, source: LedgerStorage
                   ) -> VerifyReport:
    """The source ledger's verification; MigrationError when it fails."""
    from docklock.backend.migrate import MigrationError
    from docklock.ledger import verify_ledger

    report = verify_ledger(paths, cluster=cluster, storage=source)
    if report.problem is not None:
        bad = report.problem.error()
        raise MigrationError(
            f"the source ledger fails verification, so it is not migrated: "
            f"{bad.message}", location=bad.location,
            hint="nothing was copied; `docklock ledger verify` (with docklock.yaml "
                 "naming the source backend) shows the problem") from bad
    return report
