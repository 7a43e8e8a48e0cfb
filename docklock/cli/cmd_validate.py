"""`docklock validate [-C DIR] [--json] [--cue PATH]`: load and check a workspace, report all.

Prints `N resources valid` (N counts every document in the spec folders, not
docklock.yaml) or every problem, one per line as `file:line:col: message (hint)`; exit
0 or 1. Warnings are printed too (before the errors) and never change the exit code.
`--json` prints {"valid", "resources", "errors": [{file, line, column, path, message,
hint}], "warnings": [same shape]} on stdout in both cases. For a policy failure `path`
is the path in the resource view the rule checked (`effective.*` fields are computed
from the cage) while file:line:col point at the document key behind it.

Checks beyond loading plug in through docklock.engine.validate.extra_checks. The BISO
policies are one: every active rule (built-in packs from docklock.yaml, Policy
documents) is evaluated; a deny-rule failure is an error naming the rule, the resource,
the key's file:line:col and the compliance controls, a warn-rule failure a warning, and
a malformed policy, exception or pack entry an error like any other spec problem.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from docklock.cli._common import Output, add_cue_option, context_of
from docklock.errors import EXIT_ERROR, EXIT_OK, Diagnostic

if TYPE_CHECKING:
    from docklock.load import Workspace


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", parents=[common],
                       help="check every spec file; print all problems",
                       description="Load the workspace's specs (YAML and CUE), check them "
                                   "against the schemas and each other, and report every "
                                   "problem with its file:line:col.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_cue_option(p)
    p.set_defaults(handler=run)


def format_diagnostic(d: Diagnostic) -> str:
    where = f"{d.location}: " if d.location else ""
    hint = f" ({d.hint})" if d.hint else ""
    warn = "warning: " if d.severity == "warning" else ""
    return f"{where}{warn}{d.message}{hint}"


def _entry(d: Diagnostic) -> dict[str, object]:
    loc = d.location
    return {"file": loc.file if loc else None, "line": loc.line if loc else None,
            "column": loc.column if loc else None, "path": d.path, "message": d.message,
            "hint": d.hint}


def validate(args: argparse.Namespace) -> tuple[Workspace | None, list[Diagnostic]]:
    """The workspace (None when it failed to load) and every diagnostic, errors first
    (docklock.engine.validate; the extra checks, e.g. the policies, live there)."""
    from docklock.engine.validate import validate as validate_workspace

    result = validate_workspace(context_of(args))
    return result.workspace, list(result.diagnostics)


def run(args: argparse.Namespace, out: Output) -> int:
    ws, diagnostics = validate(args)
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = [d for d in diagnostics if d.severity != "error"]
    count = len(ws.resources) if ws is not None else 0
    valid = ws is not None and not errors
    if getattr(args, "json", False):
        out.json({"valid": valid, "resources": count,
                  "errors": [_entry(d) for d in errors],
                  "warnings": [_entry(d) for d in warnings]})
        return EXIT_OK if valid else EXIT_ERROR
    for d in warnings:
        out.error(out.paint(format_diagnostic(d), "yellow"))
    if not valid:
        for d in errors:
            out.error(format_diagnostic(d))
        n = len(errors)
        out.error(out.paint(f"{n} problem{'s' if n != 1 else ''} found", "red"))
        return EXIT_ERROR
    out.line(out.paint(f"{count} resource{'s' if count != 1 else ''} valid", "green"))
    return EXIT_OK
