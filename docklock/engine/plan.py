"""The `plan` use case: what apply would change, and why.

load → policy → render → read state (under the lock, released at once) → refresh from
live Podman (unless `refresh=False`) → diff. Optionally writes the signed plan file
(`out`), and appends a `plan` entry to the ledger when the workspace has a private key
(plan never creates one; see docklock.ledger.record.record_if_possible).

Every decision lives in docklock.render and docklock.plan; this module only runs the
stages in order, so the CLI, the agent and CI run exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.ledger.record import Recording
    from docklock.plan import Plan
    from docklock.workspace import WorkspacePaths

# The plan renderers' names (docklock.plan.RENDERERS), here so a caller can offer them
# without importing the planner; a unit test keeps the two in step.
FORMATS = ("json", "markdown", "text")


@dataclass(frozen=True)
class PlanRequest:
    """What to plan. `targets`/`replace` are addresses (globs allowed, as on the CLI)."""

    destroy: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh: bool = True  # read live Podman (False: plan from recorded state only)
    lock_timeout: float = 0.0  # wait this long for the state lock
    out: Path | None = None  # save the signed plan here (for `apply PLANFILE`)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanRequest:
        out = data.get("out")
        return cls(destroy=bool(data.get("destroy", False)),
                   targets=tuple(data.get("targets", ())),
                   replace=tuple(data.get("replace", ())),
                   refresh=bool(data.get("refresh", True)),
                   lock_timeout=float(data.get("lock_timeout", 0.0)),
                   out=Path(out) if out is not None else None)

    def to_dict(self) -> dict[str, Any]:
        return {"destroy": self.destroy, "targets": list(self.targets),
                "replace": list(self.replace), "refresh": self.refresh,
                "lock_timeout": self.lock_timeout,
                "out": str(self.out) if self.out is not None else None}


@dataclass(frozen=True)
class PlanResult:
    """The plan (its policy outcome is `plan.policy`), where it was saved, and whether
    the ledger recorded it: `ledger_problem` says why not (None: recorded), `no_key`
    that the workspace simply has no private key (a note, not a warning)."""

    plan: Plan
    saved_to: Path | None = None
    ledger_problem: str | None = None
    no_key: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"plan": self.plan.to_dict(),
                "saved_to": str(self.saved_to) if self.saved_to is not None else None,
                "ledger_problem": self.ledger_problem, "no_key": self.no_key}


def plan(ctx: Context, request: PlanRequest | None = None) -> PlanResult:
    """Plan the workspace of `ctx`; save it to `request.out` and record it in the ledger.

    Raises ValidationError (specs), PolicyError (a deny rule fails), LockError (an apply
    holds the lock past `lock_timeout`), PodmanUnavailableError, KeyMaterialError (no
    key to sign `out` with) and LedgerError (a ledger that fails authentication).
    """
    request = request or PlanRequest()
    result = make_plan(ctx, request)
    if request.out is not None:
        from docklock.plan import save_plan

        save_plan(result, request.out, ctx.paths)
    recording = record_plan(ctx.paths, result, request.out)
    return PlanResult(result, request.out, recording.problem, recording.no_key)


def make_plan(ctx: Context, request: PlanRequest) -> Plan:
    """The plan alone: nothing written (no plan file, no ledger entry)."""
    from docklock.backend import open_state_store
    from docklock.overrides import overlay
    from docklock.plan import PlanOptions, plan_workspace, policy_info
    from docklock.render import render_workspace
    from docklock.state.store import gc_paused

    # Specs, policy and render are judged before the lock, so a broken or refused
    # workspace writes nothing (not even .docklock/ for the lock file).
    with gc_paused():  # large acyclic data; see docklock._fs.gc_paused
        ws = ctx.load()
        policy = policy_info(ws)
        rendered = render_workspace(ws)
    store = open_state_store(ctx.paths)
    # Plan writes no state: the lock is held only while reading, so a concurrent apply
    # is noticed (and waited for with lock_timeout) but not blocked for long.
    with store.lock(command="docklock plan", timeout=request.lock_timeout):
        state = store.read(cluster=ws.cluster_name)
    if state.overrides:  # `docklock deploy` overrides (ADR 0014): judged again with them
        with gc_paused():
            ws = overlay(ws, state.overrides)
            policy = policy_info(ws)
            rendered = render_workspace(ws)
    options = PlanOptions(destroy=request.destroy, targets=request.targets,
                          replace=request.replace, refresh=request.refresh)
    if not request.refresh:
        return plan_workspace(ws, rendered, state, options=options, reader=None,
                              policy=policy)
    with ctx.connect(ws) as runtime:
        return plan_workspace(ws, rendered, state, options=options, reader=runtime,
                              policy=policy)


def record_plan(paths: WorkspacePaths, plan: Plan, saved_to: Path | None) -> Recording:
    """Append a `plan` entry (digest of the plan, its summary and policy digest). Nothing
    when this workspace has no private key (plan never creates one); operational failures
    come back as `problem`, a ledger failing authentication raises (LedgerError)."""
    from docklock.ledger import EntryType
    from docklock.ledger.record import record_if_possible
    from docklock.objects import canonical_json, sha256_hex

    payload = {
        "plan_digest": sha256_hex(canonical_json(plan.to_dict())),
        "summary": plan.summary.to_dict(), "spec_digest": plan.spec_digest,
        "policy_digest": plan.policy.digest, "lineage": plan.lineage,
        "serial": plan.serial, "saved_to": str(saved_to) if saved_to else None,
        "options": plan.options.to_dict(),
    }
    return record_if_possible(paths, EntryType.PLAN, payload, cluster=plan.cluster,
                              serial=plan.serial)


def render_plan(plan: Plan, fmt: str = "text", paint: Any = None) -> str:
    """`plan` as text, markdown or json (docs/plan-json.md), without a trailing newline.
    `paint(text, colour)` colours the text format (the CLI passes its own)."""
    from docklock.plan import RENDERERS, render_text

    if fmt == "text" and paint is not None:
        return render_text(plan, paint).rstrip("\n")
    return RENDERERS[fmt](plan).rstrip("\n")
