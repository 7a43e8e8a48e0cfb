"""The `validate` use case: load and check a workspace, collecting every problem.

Checks beyond loading plug in through `extra_checks`. The BISO policies are one: every
active rule is evaluated; a deny-rule failure is an error naming the rule, the resource,
the key's file:line:col and the compliance controls, a warn-rule failure a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docklock.errors import CueError, Diagnostic, ValidationError

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.load import Workspace

    # Each function returns further diagnostics for a loaded workspace (errors fail).
    ExtraCheck = Callable[[Workspace], Sequence[Diagnostic]]


def extra_checks() -> list[ExtraCheck]:
    """Checks run after loading, in order; each returns errors and warnings."""
    return [policy_diagnostics]


def policy_diagnostics(ws: Workspace) -> list[Diagnostic]:
    """The workspace's policy outcome as diagnostics (docklock.policy.gate)."""
    from docklock.policy.gate import check_workspace

    return list(check_workspace(ws).diagnostics)


@dataclass(frozen=True)
class Validation:
    """The workspace (None when it failed to load) and every diagnostic, errors first."""

    workspace: Workspace | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity != "error")

    @property
    def resources(self) -> int:
        return len(self.workspace.resources) if self.workspace is not None else 0

    @property
    def valid(self) -> bool:
        return self.workspace is not None and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "resources": self.resources,
                "errors": [d.to_dict() for d in self.errors],
                "warnings": [d.to_dict() for d in self.warnings]}


def validate(ctx: Context) -> Validation:
    """Load the specs of `ctx` and run every extra check; never raises for a spec
    problem (they are the diagnostics)."""
    try:
        ws = ctx.load()
    except ValidationError as exc:
        return Validation(None, tuple(exc.diagnostics))
    except CueError as exc:
        return Validation(None, (Diagnostic(exc.message, exc.location, hint=exc.hint),))
    found: list[Diagnostic] = []
    for check in extra_checks():
        found.extend(check(ws))
    errors = [d for d in found if d.severity == "error"]
    warnings = [*ws.warnings, *(d for d in found if d.severity != "error")]
    return Validation(ws, tuple(errors + warnings))
