"""`docklock plan` (what would change, and why) and `docklock force-unlock`.

The CLI layer only: arguments → docklock.engine.plan.plan (load → render → read state
under the lock → refresh → diff → save → ledger) → print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from docklock.cli._common import Output, add_cue_option, check_out_path, context_of, duration_arg
from docklock.errors import EXIT_CHANGES, EXIT_OK, LockError

# docklock.engine.plan.FORMATS (the planner's renderers); not imported here so that
# building the parser does not load the engine.
FORMATS = ("json", "markdown", "text")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "plan", parents=[common], help="show what apply would change, and why",
        description="Compare the specs with the recorded state (and, unless --no-refresh, "
                    "with live Podman) and show every planned change. Exit 0 when there "
                    "is nothing to do; with --detailed-exitcode, 2 when there are changes.")
    p.add_argument("--out", metavar="FILE", type=Path,
                   help="save the plan, signed, for `docklock apply FILE`")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when the plan has changes (0 none, 1 error)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="output format (json is stable: docs/plan-json.md)")
    p.add_argument("--target", action="append", default=[], metavar="ADDR",
                   help="plan only this address (and what it depends on); repeatable")
    p.add_argument("--replace", action="append", default=[], metavar="ADDR",
                   help="replace this address's objects even if unchanged; repeatable")
    p.add_argument("--destroy", action="store_true", help="plan to destroy everything")
    p.add_argument("--refresh", action=argparse.BooleanOptionalAction, default=True,
                   help="read live Podman state (default) or plan from recorded state only")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="wait this long for the state lock instead of failing at once "
                        "(seconds, or e.g. 500ms, 30s, 1m30s)")
    add_cue_option(p)
    p.set_defaults(handler=cmd_plan)

    f = sub.add_parser(
        "force-unlock", parents=[common], help="remove a stuck state lock",
        description="Remove the state lock record. Use the LOCK_ID printed by the 'state "
                    "is locked' error; without it, --yes removes whatever lock is there. "
                    "Only do this when the holder is gone or stuck.")
    f.add_argument("lock_id", nargs="?", metavar="LOCK_ID")
    f.add_argument("--yes", action="store_true",
                   help="remove the current lock without naming its id")
    f.set_defaults(handler=cmd_force_unlock)


def cmd_plan(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.plan import PlanRequest, plan, render_plan

    # A CI job reading `--format json` from stdout gets its errors as JSON too (as --json).
    args.json = args.format == "json"
    if args.out is not None:
        # Checked before planning: a bad path fails at once, and nothing is created.
        check_out_path(args.out)
    result = plan(context_of(args), PlanRequest(
        destroy=args.destroy, targets=tuple(args.target), replace=tuple(args.replace),
        refresh=args.refresh, lock_timeout=args.lock_timeout, out=args.out))
    if result.ledger_problem is not None:
        # Without the private key (e.g. a fresh clone), or when the ledger cannot be
        # written for an operational reason, the plan is still shown and the exit code
        # keeps its meaning (--detailed-exitcode in CI). No key is created and
        # docklock.pub stays as committed. A tampered ledger raised instead.
        out.info(f"{'note' if result.no_key else 'warning'}: {result.ledger_problem}")
    out.line(render_plan(result.plan, args.format,
                         out.paint if args.format == "text" else None))
    if args.out is not None:
        out.info(f"Saved the plan to {args.out}; apply it with `docklock apply {args.out}`.")
    if args.detailed_exitcode and result.plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_force_unlock(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.lock import force_unlock

    ctx = context_of(args)
    if args.lock_id is None and not args.yes:
        raise LockError("force-unlock needs the LOCK_ID to remove",
                        hint="copy it from the 'state is locked' message, or pass --yes "
                             "to remove whatever lock is there")
    unlocked = force_unlock(ctx, args.lock_id)
    out.line(f"Removed {unlocked.description}.")
    if unlocked.held:
        out.info(out.paint("Warning: ", "yellow") + "that process still held the lock; "
                 "if it is still running it may write state concurrently. Stop it first.")
    return EXIT_OK
