"""The policy gate shared by `validate`, `plan` and `apply`: one call per loaded workspace.

It evaluates every active rule, turns the outcome into located diagnostics (deny
failures are errors, warn failures and expired exceptions warnings) and keeps the
report so the plan and the ledger can record its digest. Positions are looked up
(re-reading a YAML file precisely) only for what is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from docklock.errors import Diagnostic, Location, PolicyError, ValidationError
from docklock.load import Workspace
from docklock.model import Kind
from docklock.policy.results import PolicyReport, RuleResult, Status

# How many reported results get their exact key's position (the rest: the document's).
PRECISE_LOCATIONS = 20


@dataclass(frozen=True)
class PolicyOutcome:
    """The report (None when the policies themselves are malformed) and its diagnostics."""

    report: PolicyReport | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity != "error")


def check_workspace(ws: Workspace, *, locate_warnings: bool = True) -> PolicyOutcome:
    """Evaluate the workspace's policies; never raises for a policy problem.

    The first PRECISE_LOCATIONS reported results point at the exact key behind them
    (re-reading their YAML file precisely, ~1 ms per document); the rest, and warnings
    when `locate_warnings` is False (plan only records them as text), point at their
    document, so a large workspace full of warnings still plans fast.

    A workspace with no rules at all (no `spec.policies`, no Policy documents: the
    default) gets its report without loading the policy engine (house rule 12); it is the
    report the engine makes for no rules, digest included.
    """
    if not ws.cluster_spec.policies and not any(
            r.kind == Kind.POLICY.value for r in ws.resources):
        return PolicyOutcome(empty_report(date.today()), ())
    from docklock.load.positions import PositionLookup
    from docklock.policy.engine import document_path, evaluate_workspace

    lookup = PositionLookup(ws.paths)
    try:
        report = evaluate_workspace(ws.resources, ws.cluster_spec, locate=lookup,
                                    cluster_doc=ws.cluster)
    except ValidationError as exc:
        return PolicyOutcome(None, tuple(exc.diagnostics))
    except PolicyError as exc:
        return PolicyOutcome(None, (Diagnostic(exc.message, exc.location, hint=exc.hint),))

    located = 0

    def at(result: RuleResult) -> Location | None:
        nonlocal located
        if located >= PRECISE_LOCATIONS or (
                result.status is not Status.FAIL and not locate_warnings):
            return None
        resource = ws.get(result.address)
        if resource is None or not result.path:
            return None
        located += 1
        return lookup(resource, document_path(result.path))

    return PolicyOutcome(report, tuple(report.to_diagnostics(locate=at)))


def empty_report(today: date) -> PolicyReport:
    """The report of a workspace without rules: no results, every framework's controls
    not covered."""
    from docklock.policy.frameworks import framework_views

    return PolicyReport.build(on=today, packs=(), rules=(), results=(),
                              frameworks=framework_views((), ()))
