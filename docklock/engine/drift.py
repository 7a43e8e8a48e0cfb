"""The `drift` use case: what changed in Podman behind DockLock's back.

Read-only towards Podman and the state: the live view of `docklock.drift.read_live`,
compared by `docklock.drift.detect_drift` with the recorded state (and the specs, for
the informational "pending" list). When the workspace has a signing key the result is
appended to the ledger and a checkpoint signed, by the rules plan follows
(docklock.ledger.record.record_if_possible): docklock.pub is never changed, an outage is
a `ledger_problem`, and a ledger that fails authentication raises (LedgerError).

Drift holds the state lock while it reads state and Podman: an apply in flight has
objects created but not yet recorded, which would all look like drift. When another
command holds the lock, the LockError names it (pid, host, command, since).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docklock.errors import LockError

if TYPE_CHECKING:
    from docklock.backend import StateBackend
    from docklock.drift import DriftReport
    from docklock.engine.context import Context
    from docklock.ledger.record import Recording
    from docklock.runtime.podman import PodmanRuntime
    from docklock.workspace import WorkspacePaths


@dataclass(frozen=True)
class DriftOutcome:
    """The report, and why the ledger did not record it (None: recorded; `no_key`: the
    workspace has no private key, which is not worth a warning)."""

    report: DriftReport
    ledger_problem: str | None = None
    no_key: bool = False

    @property
    def has_drift(self) -> bool:
        return self.report.has_drift

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict()


def drift(ctx: Context, *, lock_timeout: float = 0.0) -> DriftOutcome:
    """Compare live Podman with the recorded state of `ctx`'s workspace."""
    from docklock.backend import open_state_store
    from docklock.drift import detect_drift, read_live
    from docklock.engine.status import load_inputs
    from docklock.plan import kinds_in_use

    store = open_state_store(ctx.paths)
    try:
        lock = store.lock(command="docklock drift", timeout=lock_timeout)
    except LockError as exc:
        raise _in_flight(store, exc, lock_timeout) from exc
    with lock:
        inputs = load_inputs(ctx)
        ws = inputs.workspace
        with ctx.connect(ws) as runtime:
            live, kinds = read_live(runtime, ws.cluster_name, inputs.state,
                                    kinds_in_use(inputs.desired, inputs.state))
            if inputs.state.lineage is None:
                _refuse_lost_state(runtime, ws.cluster_name, str(ws.paths.root))
        report = detect_drift(inputs.state, live, cluster=ws.cluster_name,
                              desired=inputs.desired, live_kinds=kinds)
        recording = record_drift(ws.paths, ws.cluster_name, report)
    return DriftOutcome(report, recording.problem, recording.no_key)


def _refuse_lost_state(runtime: PodmanRuntime, cluster: str, workspace: str) -> None:
    """No state, yet Podman holds objects of this cluster that a workspace made (they
    carry a lineage): this folder's state file was lost or replaced, or this is a copy
    of the workspace (a CI checkout) without the state. Drift cannot judge them, and
    "no drift" would hide them, so it fails like plan does (exit 1) with the way back."""
    from docklock.errors import StateError
    from docklock.objects import LABEL_LINEAGE, LABEL_WORKSPACE, ObjectKind
    from docklock.plan import refresh_live

    kinds = (ObjectKind.CONTAINER, ObjectKind.NETWORK, ObjectKind.VOLUME)
    live, _ = refresh_live(runtime, cluster, kinds)
    made = sorted((o.labels.get(LABEL_WORKSPACE) != workspace, o.name,
                   o.labels[LABEL_LINEAGE], o.labels.get(LABEL_WORKSPACE) or "?")
                  for o in live.objects.values() if o.labels.get(LABEL_LINEAGE))
    if not made:
        return
    elsewhere, _, lineage, folder = made[0]
    names = ", ".join(m[1] for m in made[:5]) + (", ..." if len(made) > 5 else "")
    who = (f"by the workspace folder {folder}" if elsewhere else "by this folder")
    raise StateError(
        f"this workspace has no state, but {len(made)} object(s) of cluster {cluster} in "
        f"Podman were made {who} under lineage {lineage} ({names}), so drift cannot "
        "judge them",
        hint="drift compares Podman with the recorded state: restore .docklock/state.json "
             "(e.g. from .docklock/state.json.backup) or copy the live workspace's "
             "state.json here, or run drift in the workspace that applied them")


def _in_flight(store: StateBackend, exc: LockError, waited: float) -> LockError:
    """The lock error reworded for drift: say who holds it and why drift will not run."""
    info = store.holder()
    if info is None:
        return exc
    after = f" (waited {waited:g}s)" if waited > 0 else ""
    return LockError(
        f"{info.command or 'another command'} holds the state lock{after}: pid {info.pid} "
        f"on {info.host}, since {info.since} (lock {info.id}); drift would report its "
        "in-flight objects as drift", hint=exc.hint)


def record_drift(paths: WorkspacePaths, cluster: str, report: DriftReport) -> Recording:
    """A ledger entry for the check, only where a signing key already exists (the same
    rules as plan: docklock.ledger.record.record_if_possible)."""
    from docklock.ledger import EntryType
    from docklock.ledger.record import record_if_possible

    body = report.to_dict()
    return record_if_possible(
        paths, EntryType.DRIFT,
        {"drift": report.has_drift, "counts": body["counts"], "checked": report.checked,
         "items": [{"kind": i.kind.value, "key": i.key} for i in report.items]},
        cluster=cluster, serial=report.serial)
