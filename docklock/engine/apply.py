"""The `apply` and `destroy` use cases: lock, load, plan (or check a saved plan),
confirm, journal to the ledger, execute.

The state lock comes first, so a second apply fails at once naming the holder. Apply
loads and renders the specs; destroy works from the recorded state alone (a workspace
whose specs no longer validate can still be destroyed). With a saved plan (`planfile`,
from `plan --out`), it must be signed, for this cluster and still current (state lineage
and serial, spec digests); otherwise the plan is made against live Podman. The caller
sees the plan first (`PlanReady`), then approves it through `confirm(plan)`; the ledger
gets apply-start, a write-ahead intent before every Podman step, one entry per change,
apply-end and a signed checkpoint; `docklock.apply.execute` does the work and streams
`ApplyEvent`s to `on_event`.

Nothing here prints or exits: the CLI renders the events and maps `ApplyOutcome` to an
exit code; the agent or a CI integration calls `apply(ctx, ...)` the same way.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import ApplyError, DockLockError, StalePlanError

if TYPE_CHECKING:
    from docklock.apply import ApplyEvent, ApplyJournal, ApplyResult
    from docklock.engine.context import Context
    from docklock.ledger import Ledger, Signer
    from docklock.load import Workspace
    from docklock.plan import Plan
    from docklock.workspace import WorkspacePaths


@dataclass(frozen=True)
class ApplyRequest:
    """What to apply. Without `planfile` a plan is made now (restricted by `targets`,
    forcing `replace`); with it, exactly that saved plan is applied."""

    planfile: Path | None = None
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    parallelism: int = 8  # at most this many Podman operations at once
    lock_timeout: float = 0.0  # wait this long for the state lock
    health_timeout: float | None = None  # None: from each container's healthcheck

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplyRequest:
        planfile = data.get("planfile")
        health = data.get("health_timeout")
        return cls(planfile=Path(planfile) if planfile is not None else None,
                   targets=tuple(data.get("targets", ())),
                   replace=tuple(data.get("replace", ())),
                   parallelism=int(data.get("parallelism", 8)),
                   lock_timeout=float(data.get("lock_timeout", 0.0)),
                   health_timeout=float(health) if health is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return {"planfile": str(self.planfile) if self.planfile is not None else None,
                "targets": list(self.targets), "replace": list(self.replace),
                "parallelism": self.parallelism, "lock_timeout": self.lock_timeout,
                "health_timeout": self.health_timeout}


@dataclass(frozen=True)
class DestroyRequest:
    """What to destroy: everything recorded, or `targets` and what depends on them."""

    targets: tuple[str, ...] = ()
    parallelism: int = 8
    lock_timeout: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DestroyRequest:
        return cls(targets=tuple(data.get("targets", ())),
                   parallelism=int(data.get("parallelism", 8)),
                   lock_timeout=float(data.get("lock_timeout", 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "parallelism": self.parallelism,
                "lock_timeout": self.lock_timeout}


@dataclass(frozen=True)
class PlanReady:
    """Event: the plan is made (or the saved plan checked), before confirmation.
    `saved_from` is the plan file when a saved plan is being applied."""

    plan: Plan
    saved_from: Path | None = None
    destroy: bool = False

    @property
    def work(self) -> int:
        """How many changes do something (the executor's events count these)."""
        return sum(1 for c in self.plan.changes if c.is_work)


if TYPE_CHECKING:
    EngineEvent = ApplyEvent | PlanReady
    EventSink = Callable[[EngineEvent], None]
    Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply or destroy did.

    `result` is None when nothing ran: the plan had no work, or `confirm` said no
    (`cancelled`). `ledger_problem` is the first ledger write that failed (the apply
    halted at it, or, after the last step, the record is incomplete). `serial` and
    `lineage` are the state's before the apply.
    """

    plan: Plan
    result: ApplyResult | None
    destroy: bool = False
    saved_from: Path | None = None
    cancelled: bool = False
    ledger_problem: DockLockError | None = None
    serial: int = 0
    lineage: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing failed: no change, no halt, no ledger problem, not cancelled."""
        if self.cancelled or self.ledger_problem is not None:
            return False
        return self.result is None or self.result.ok

    def to_dict(self) -> dict[str, Any]:
        """The CLI's `--json` body: the ApplyResult's, or the zero body of a no-op."""
        if self.result is None:
            body: dict[str, Any] = {
                "ok": not self.cancelled, "added": 0, "changed": 0, "destroyed": 0,
                "adopted": 0, "renamed_aside": 0, "halted": "", "outcomes": [],
                "serial": self.serial, "lineage": self.lineage}
            if self.cancelled:
                body["cancelled"] = True
        else:
            body = self.result.to_dict()
        if self.ledger_problem is not None:
            body["ledger_error"] = self.ledger_problem.message
        return body


def apply(ctx: Context, request: ApplyRequest | None = None, *,
          on_event: EventSink | None = None, confirm: Confirm | None = None) -> ApplyOutcome:
    """Make Podman match the specs of `ctx` (or apply `request.planfile`).

    `on_event` gets `PlanReady` once, then the executor's `ApplyEvent`s. `confirm(plan)`
    is asked before a fresh plan with work is applied (never for a saved plan, which was
    reviewed when saved); None approves. Raises for what stops the apply before any
    change: LockError, ValidationError, PolicyError, StalePlanError, PlanError,
    PodmanUnavailableError, a ledger that cannot be started; a full disk met before the
    executor is an ApplyError with a hint. Failures during execution are in the result.
    """
    request = request or ApplyRequest()
    return _on_disk(ctx, "apply", lambda: _run(
        ctx, destroy=False, planfile=request.planfile, targets=request.targets,
        replace=request.replace, parallelism=request.parallelism,
        lock_timeout=request.lock_timeout, health_timeout=request.health_timeout,
        on_event=on_event, confirm=confirm))


def destroy(ctx: Context, request: DestroyRequest | None = None, *,
            on_event: EventSink | None = None, confirm: Confirm | None = None
            ) -> ApplyOutcome:
    """Remove every object the state of `ctx` records (and every container carrying the
    cluster's labels), in reverse dependency order; the spec files are not read. The same
    events, confirmation and ledger journal as `apply`."""
    request = request or DestroyRequest()
    return _on_disk(ctx, "destroy", lambda: _run(
        ctx, destroy=True, planfile=None, targets=request.targets, replace=(),
        parallelism=request.parallelism, lock_timeout=request.lock_timeout,
        health_timeout=None, on_event=on_event, confirm=confirm))


def _on_disk(ctx: Context, verb: str, run: Callable[[], ApplyOutcome]) -> ApplyOutcome:
    """`run`, with a full disk met before the executor (the lock file, the state's
    lineage claim, a cache) reported as one error with a hint. The executor itself
    never lets a write error escape: it halts and reports (see docklock.apply)."""
    try:
        return run()
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        raise ApplyError(f"no space left on device{where}: the {verb} could not write its "
                         "files", hint=f"free disk space (or raise the quota) and run "
                                       f"`docklock {verb}` again; state and ledger hold "
                                       "every change already made") from exc


def _command(destroy: bool, planfile: Path | None) -> str:
    if destroy:
        return "docklock destroy"
    return f"docklock apply {planfile}" if planfile is not None else "docklock apply"


def _no_events(_event: EngineEvent) -> None:
    return None


def _run(ctx: Context, *, destroy: bool, planfile: Path | None, targets: tuple[str, ...],
         replace: tuple[str, ...], parallelism: int, lock_timeout: float,
         health_timeout: float | None, on_event: EventSink | None,
         confirm: Confirm | None) -> ApplyOutcome:
    from docklock.apply import ApplyOptions, dependency_conditions, execute
    from docklock.backend import open_state_store
    from docklock.overrides import overlay
    from docklock.plan import (
        PlanError,
        PlanOptions,
        bind_desired,
        check_plan_current,
        load_plan,
        plan_workspace,
        policy_info,
    )
    from docklock.render import render_workspace

    emit = on_event or _no_events
    paths = ctx.paths
    store = open_state_store(paths)
    if planfile is not None and (targets or replace):
        raise PlanError("--target and --replace do not go with a saved plan",
                        hint="pass them to `docklock plan --out` instead")
    if planfile is not None and planfile.exists():
        # A folder or unreadable file fails here (an OSError naming the path), before
        # the lock creates anything; a missing one is load_plan's to report.
        planfile.open("rb").close()
    # The lock comes first: a second apply fails at once, naming who holds it.
    with store.lock(command=_command(destroy, planfile), timeout=lock_timeout):
        saved = load_plan(planfile, paths) if planfile is not None else None
        # Destroy works from the recorded state alone (issue 11 C15): a workspace whose
        # specs no longer validate must still be removable, so its specs are not read.
        ws = recorded_only(paths) if destroy else ctx.load()
        state = store.read(cluster=ws.cluster_name)
        if not destroy:
            ws = overlay(ws, state.overrides)  # `docklock deploy` overrides (ADR 0014)
        # A saved plan passed the gate when it was made (and its spec digests bind it);
        # destroy is never blocked by policy.
        policy = policy_info(ws) if saved is None and not destroy else None
        rendered = render_workspace(ws)
        with ctx.connect(ws) as runtime:
            if saved is not None:
                if saved.cluster != ws.cluster_name:
                    raise StalePlanError(
                        f"the plan is for cluster {saved.cluster!r}, this workspace is "
                        f"{ws.cluster_name!r}", hint="apply it in its own workspace")
                check_plan_current(saved, state, spec_digest=ws.spec_digest, files=ws.files)
                plan = saved
            else:
                plan = plan_workspace(
                    ws, rendered, state, reader=runtime, policy=policy,
                    options=PlanOptions(destroy=destroy, targets=targets, replace=replace))
            emit(PlanReady(plan, planfile, destroy))
            outcome = ApplyOutcome(plan, None, destroy=destroy, saved_from=planfile,
                                   serial=state.serial, lineage=state.lineage)
            if not any(c.is_work for c in plan.changes):
                return outcome
            if saved is None and confirm is not None and not confirm(plan):
                return ApplyOutcome(plan, None, destroy=destroy, cancelled=True,
                                    serial=state.serial, lineage=state.lineage)
            desired = bind_desired(plan, rendered.objects)
            journal = open_journal(paths, ws.cluster_name, plan,
                                   command="destroy" if destroy else "apply")
            result = execute(plan, desired, store=store, state=state, runtime=runtime,
                             paths=paths, cluster=ws.cluster_name,
                             conditions=dependency_conditions(ws.resources),
                             options=ApplyOptions(parallelism=parallelism,
                                                  health_timeout=health_timeout),
                             on_event=fan_out(emit, journal), write_ahead=journal.intent)
            ledger_problem = finish_journal(journal, result)
    return ApplyOutcome(plan, result, destroy=destroy, saved_from=planfile,
                        ledger_problem=ledger_problem, serial=state.serial,
                        lineage=state.lineage)


def recorded_only(paths: WorkspacePaths) -> Workspace:
    """The workspace as destroy sees it: docklock.yaml (cluster name, Podman URL) and no
    resources, so the plan deletes every object the state records or that carries the
    cluster's labels, whatever the spec files say now."""
    from docklock.load import Workspace, load_cluster, spec_digest

    return Workspace(paths, load_cluster(paths), (), {}, spec_digest({}))


class Journal:
    """Ledger bookkeeping for one apply. The intent of every Podman step is written
    ahead (`intent`, the executor's write-ahead hook): once any ledger write failed,
    every later intent fails too, so the executor changes nothing more (issue 11 D19).
    Outcome entries never raise: the first error is kept and reported at the end, and
    state goes on recording what the steps in flight did."""

    def __init__(self, inner: ApplyJournal, ledger: Ledger, signer: Signer) -> None:
        self.inner = inner
        self.ledger = ledger
        self.signer = signer
        self.error: DockLockError | None = None

    def guard(self, fn: Callable[[], Any]) -> None:
        if self.error is not None:
            return
        try:
            fn()
        except DockLockError as exc:
            self.error = exc
        except OSError as exc:
            self.error = DockLockError(f"writing the ledger failed: {exc}")

    def intent(self, event: ApplyEvent) -> None:
        if self.error is not None:
            raise self.error  # a ledger that lost an entry takes no more intents
        inner = self.inner
        self.guard(lambda: inner.intent(event))
        if self.error is not None:
            raise self.error


def open_journal(paths: WorkspacePaths, cluster: str, plan: Plan, *, command: str,
                 start: bool = True) -> Journal:
    """The ledger journal of one apply (`command`: apply, destroy, deploy); with `start`
    its apply-start entry is written now (deploy writes its own entry first)."""
    from docklock.apply import ApplyJournal
    from docklock.ledger import Ledger, ensure_keys

    # The key and the apply-start entry come before any Podman change: if the ledger
    # cannot be signed or written, nothing is changed (the error propagates).
    signer = ensure_keys(paths)
    ledger = Ledger.open(paths, cluster, signer=signer)  # signs each entry (ledger.trust)
    inner = ApplyJournal(ledger, plan, command=command)
    if start:
        inner.start()
    return Journal(inner, ledger, signer)


def fan_out(emit: Callable[[ApplyEvent], None],
            journal: Journal) -> Callable[[ApplyEvent], None]:
    """The executor's event sink: `emit` first, then the journal (never raises)."""
    def sink(event: ApplyEvent) -> None:
        emit(event)
        inner = journal.inner
        journal.guard(lambda: inner.on_event(event))

    return sink


def finish_journal(journal: Journal, result: ApplyResult) -> DockLockError | None:
    """apply-end and the signed checkpoint; the first ledger error of the apply."""
    inner, ledger, signer = journal.inner, journal.ledger, journal.signer
    journal.guard(lambda: inner.finish(result))
    journal.guard(lambda: ledger.checkpoint(signer))
    return journal.error
