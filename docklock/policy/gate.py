"""The policy gate shared by `validate`, `plan` and `apply`: one call per loaded workspace.

It evaluates every active rule, turns the outcome into located diagnostics (deny
failures are errors, warn failures and expired exceptions warnings) and keeps the
report so the plan and the ledger can record its digest. Positions are looked up
(re-reading a YAML file precisely) only for what is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from docklock.errors import Diagnostic, Location, PolicyError, ValidationError
from docklock.load import Workspace
from docklock.load.positions import PositionLookup
from docklock.policy.engine import document_path, evaluate_workspace
from docklock.policy.results import PolicyReport, RuleResult


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


def check_workspace(ws: Workspace) -> PolicyOutcome:
    """Evaluate the workspace's policies; never raises for a policy problem."""
    lookup = PositionLookup(ws.paths)
    try:
        report = evaluate_workspace(ws.resources, ws.cluster_spec, locate=lookup,
                                    cluster_doc=ws.cluster)
    except ValidationError as exc:
        return PolicyOutcome(None, tuple(exc.diagnostics))
    except PolicyError as exc:
        return PolicyOutcome(None, (Diagnostic(exc.message, exc.location, hint=exc.hint),))

    def at(result: RuleResult) -> Location | None:
        resource = ws.get(result.address)
        if resource is None or not result.path:
            return None
        return lookup(resource, document_path(result.path))

    return PolicyOutcome(report, tuple(report.to_diagnostics(locate=at)))
