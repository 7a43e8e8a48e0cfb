"""The `policy check` use case: the BISO policies and compliance packs, per resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docklock.errors import ValidationError

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.policy import PolicyReport


def check(ctx: Context) -> PolicyReport:
    """Load the workspace and run the same policy gate validate and plan run. Raises
    ValidationError when the specs or the policies themselves are malformed; failing
    rules are in the report (`deny_failures`), not raised."""
    from docklock.policy import gate

    outcome = gate.check_workspace(ctx.load())
    if outcome.report is None:
        raise ValidationError(outcome.errors)
    return outcome.report
