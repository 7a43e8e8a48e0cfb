"""The `deploy` use case: apply the resources of one spec file, with overrides.

`deploy(ctx, DeployRequest(file=F, replicas=N))` is `apply --target` for every resource
defined in F, after setting the replicas of F's Services to N without editing F: the
override is kept in the recorded state (docklock.overrides, docs/adr/0014-deploy-
overrides.md), so later plans and applies see the same desired count until
`reset=True` (`docklock deploy --file F --reset`) or a deploy with the spec's own value
clears it.

Order, all under the state lock (one deploy or apply at a time): load the specs, check
that F is one of the workspace's spec files, merge the new overrides with the stored
ones, overlay them, plan the targets against live Podman, show the plan
(`DeployPlanned`, carrying the override changes), ask `confirm(plan)`, then store the
overrides (state serial + 1), append a `plan` ledger entry that names them (command
`docklock deploy`) and apply with the usual journal (apply-start, one entry per change,
apply-end, checkpoint). A deploy that changes neither the overrides nor Podman writes
nothing. `auto_scaling` is refused: it needs the reconcile agent (issue 17).

Nothing here prints or exits; the CLI (docklock/cli/cmd_deploy.py) renders the events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.errors import DockLockError, SpecError

if TYPE_CHECKING:
    from docklock.apply import ApplyEvent, ApplyResult
    from docklock.engine.context import Context
    from docklock.load import Workspace
    from docklock.overrides import Override, OverrideChange
    from docklock.plan import Plan


class DeployError(SpecError):
    """A deploy that cannot start: a file outside the workspace, a refused option."""


@dataclass(frozen=True)
class DeployRequest:
    """What to deploy: the resources of `file` (a spec file of the workspace; relative
    paths are taken from the current folder, as a shell user means them), with
    `replicas` for its Services, or `reset` to drop the file's overrides."""

    file: Path
    replicas: int | None = None
    reset: bool = False
    auto_scaling: bool = False
    parallelism: int = 8
    lock_timeout: float = 0.0
    health_timeout: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeployRequest:
        replicas = data.get("replicas")
        health = data.get("health_timeout")
        return cls(file=Path(data["file"]),
                   replicas=int(replicas) if replicas is not None else None,
                   reset=bool(data.get("reset", False)),
                   auto_scaling=bool(data.get("auto_scaling", False)),
                   parallelism=int(data.get("parallelism", 8)),
                   lock_timeout=float(data.get("lock_timeout", 0.0)),
                   health_timeout=float(health) if health is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.file), "replicas": self.replicas, "reset": self.reset,
                "auto_scaling": self.auto_scaling, "parallelism": self.parallelism,
                "lock_timeout": self.lock_timeout, "health_timeout": self.health_timeout}


@dataclass(frozen=True)
class DeployPlanned:
    """Event: the plan of the deploy, before confirmation. `changes` are the overrides
    this deploy sets or clears; `in_effect` every override that holds after it (for
    resources in the specs), `file` the spec file, workspace-relative."""

    file: str
    plan: Plan
    changes: tuple[OverrideChange, ...] = ()
    in_effect: tuple[OverrideChange, ...] = ()

    @property
    def work(self) -> int:
        return sum(1 for c in self.plan.changes if c.is_work)


if TYPE_CHECKING:
    DeployEvent = ApplyEvent | DeployPlanned
    EventSink = Callable[[DeployEvent], None]
    Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class DeployOutcome:
    """What a deploy did. `result` is None when nothing ran in Podman (no work, or
    `cancelled`); `overrides` are the stored overrides afterwards; `recorded` whether a
    ledger entry names this deploy's overrides; `serial` the state's after the override
    write (before the executor's own writes)."""

    file: str
    targets: tuple[str, ...]
    plan: Plan
    changes: tuple[OverrideChange, ...] = ()
    overrides: tuple[Override, ...] = ()
    result: ApplyResult | None = None
    cancelled: bool = False
    ledger_problem: DockLockError | None = None
    recorded: bool = False
    serial: int = 0
    lineage: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        if self.cancelled or self.ledger_problem is not None:
            return False
        return self.result is None or self.result.ok

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any]
        if self.result is None:
            body = {"ok": not self.cancelled, "added": 0, "changed": 0, "destroyed": 0,
                    "adopted": 0, "renamed_aside": 0, "halted": "", "outcomes": [],
                    "serial": self.serial, "lineage": self.lineage}
            if self.cancelled:
                body["cancelled"] = True
        else:
            body = self.result.to_dict()
        body["deploy"] = {"file": self.file, "targets": list(self.targets),
                          "changes": [c.to_dict() for c in self.changes],
                          "overrides": [o.to_dict() for o in self.overrides],
                          "recorded": self.recorded}
        if self.ledger_problem is not None:
            body["ledger_error"] = self.ledger_problem.message
        return body


AUTO_SCALING_REFUSED = ("--auto-scaling needs the reconcile agent, which DockLock does not "
                        "have yet (issue 17)")


def deploy(ctx: Context, request: DeployRequest, *, on_event: EventSink | None = None,
           confirm: Confirm | None = None) -> DeployOutcome:
    """Deploy `request.file` (see the module doc). Raises before any change for a bad
    request (DeployError, OverrideError), a lock held elsewhere, invalid specs, a policy
    deny, Podman unreachable or a ledger that cannot be started; failures during the
    apply are in the outcome, as for `docklock.engine.apply`."""
    if request.auto_scaling:
        raise DeployError(AUTO_SCALING_REFUSED,
                          hint="set the count with --replicas N; nothing was changed")
    if request.reset and request.replicas is not None:
        raise DeployError("--reset and --replicas do not go together",
                          hint="--reset returns to the spec's replicas; --replicas N "
                               "sets N")
    if request.replicas is not None:
        from docklock.overrides import check_value

        check_value("replicas", request.replicas)
    return _run(ctx, request, on_event or _no_events, confirm)


def _no_events(_event: DeployEvent) -> None:
    return None


def spec_file(ws: Workspace, file: Path) -> str:
    """`file` as the workspace-relative name the loader gave it; DeployError when it is
    outside the workspace or not one of its spec files."""
    from docklock.workspace import WORKSPACE_FILE

    root = ws.paths.root.resolve()
    if not file.is_absolute():
        # `-C DIR deploy --file specs/x.yaml` from another folder means DIR's file (as
        # with git -C), unless the path names a spec file from the current folder or
        # exists only there.
        inside = root / file
        if _relative(file, root) not in ws.files and (inside.exists() or not file.exists()):
            file = inside
    try:
        resolved = file.resolve()
    except (OSError, RuntimeError) as exc:
        raise DeployError(f"cannot use {file}: {exc}", hint="pass a spec file path") from exc
    try:
        rel = resolved.relative_to(root).as_posix()
    except ValueError:
        raise DeployError(f"{file} is outside the workspace {root}",
                          hint="deploy applies spec files of this workspace: move the file "
                               "into one of its spec folders (see docklock.yaml spec.specs)"
                          ) from None
    if rel not in ws.files or rel == WORKSPACE_FILE:
        folders = ", ".join(ws.cluster_spec.specs)
        what = "does not exist" if not resolved.exists() else "is not one of its spec files"
        raise DeployError(f"{rel} {what} in the workspace (spec folders: {folders})",
                          hint="pass a *.yaml, *.yml or *.cue file from a spec folder")
    return rel


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except (ValueError, OSError, RuntimeError):
        return None


def _run(ctx: Context, request: DeployRequest, emit: EventSink,
         confirm: Confirm | None) -> DeployOutcome:
    from docklock._fs import utc_now
    from docklock.apply import ApplyOptions, dependency_conditions, execute
    from docklock.backend import open_state_store
    from docklock.engine.apply import fan_out, finish_journal, open_journal
    from docklock.ledger import actor
    from docklock.overrides import changes, in_effect, merge, overlay
    from docklock.plan import PlanOptions, bind_desired, plan_workspace, policy_info
    from docklock.render import render_workspace

    paths = ctx.paths
    store = open_state_store(paths)
    command = f"docklock deploy --file {request.file}"
    with store.lock(command=command, timeout=request.lock_timeout):
        base = ctx.load()
        rel = spec_file(base, request.file)
        resources = [r for r in base.resources
                     if r.location is not None and r.location.file == rel]
        if not resources:
            raise DeployError(f"{rel} defines no resources", hint="pass a spec file that "
                              "defines the resources to deploy")
        targets = tuple(str(r.address) for r in resources)
        state = store.read(cluster=base.cluster_name)
        new = merge(state.overrides, resources, replicas=request.replicas,
                    reset=request.reset, by=actor(), at=utc_now())
        # Overrides of resources no longer in the specs are dropped on the way.
        new = tuple(o for o in new if base.get(o.address) is not None)
        delta = changes(base, state.overrides, new)
        ws = overlay(base, new)
        policy = policy_info(ws)
        rendered = render_workspace(ws)
        with ctx.connect(ws) as runtime:
            plan = plan_workspace(ws, rendered, state, reader=runtime, policy=policy,
                                  options=PlanOptions(targets=targets))
            emit(DeployPlanned(rel, plan, delta, in_effect(base, new)))
            work = any(c.is_work for c in plan.changes)
            outcome = DeployOutcome(rel, targets, plan, delta, state.overrides,
                                    serial=state.serial, lineage=state.lineage)
            if not work and new == state.overrides:
                return outcome
            if confirm is not None and (work or delta) and not confirm(plan):
                return DeployOutcome(rel, targets, plan, delta, state.overrides,
                                     cancelled=True, serial=state.serial,
                                     lineage=state.lineage)
            payload = _payload(rel, targets, plan, delta, new)
            # The serial the state will have once the overrides are stored.
            serial = state.serial + (1 if new != state.overrides else 0)
            if not work:  # only the overrides change (Podman already matches)
                problem = _record_alone(ctx, base.cluster_name, payload, serial)
                state = store.set_overrides(state, new)
                return DeployOutcome(rel, targets, plan, delta, new,
                                     ledger_problem=problem, recorded=True,
                                     serial=state.serial, lineage=state.lineage)
            # The deploy entry comes first: if the ledger cannot take it, nothing is
            # stored and nothing changed in Podman (the error propagates).
            journal = open_journal(paths, base.cluster_name, plan, command="deploy",
                                   start=False)
            journal.ledger.append("plan", payload, serial=serial)
            state = store.set_overrides(state, new)
            journal.inner.start()
            result = execute(plan, bind_desired(plan, rendered.objects), store=store,
                             state=state, runtime=runtime, paths=paths,
                             cluster=ws.cluster_name,
                             conditions=dependency_conditions(ws.resources),
                             options=ApplyOptions(parallelism=request.parallelism,
                                                  health_timeout=request.health_timeout),
                             on_event=fan_out(emit, journal), write_ahead=journal.intent)
            problem = finish_journal(journal, result)
    return DeployOutcome(rel, targets, plan, delta, new, result=result,
                         ledger_problem=problem, recorded=True, serial=state.serial,
                         lineage=state.lineage)


def _payload(rel: str, targets: tuple[str, ...], plan: Plan,
             delta: tuple[OverrideChange, ...], new: tuple[Override, ...]) -> dict[str, Any]:
    from docklock.objects import canonical_json, sha256_hex

    return {
        "command": "docklock deploy", "file": rel, "targets": list(targets),
        "override_changes": [c.to_dict() for c in delta],
        "overrides": [o.to_dict() for o in new],
        "plan_digest": sha256_hex(canonical_json(plan.to_dict())),
        "summary": plan.summary.to_dict(), "spec_digest": plan.spec_digest,
        "policy_digest": plan.policy.digest, "lineage": plan.lineage,
        "serial": plan.serial, "options": plan.options.to_dict(),
    }


def _record_alone(ctx: Context, cluster: str, payload: dict[str, Any],
                  serial: int) -> DockLockError | None:
    """The deploy entry and a checkpoint when nothing else is applied. A ledger that
    cannot take the entry raises (nothing is stored); witnesses that did not cosign the
    checkpoint come back as the problem (the entry is written and signed)."""
    from docklock.errors import WitnessError
    from docklock.ledger.record import record_event

    try:
        record_event(ctx.paths, "plan", payload, cluster=cluster, serial=serial)
    except WitnessError as exc:
        return exc
    return None
