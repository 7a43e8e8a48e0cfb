"""`docklock deploy --file F [--replicas N | --reset] [--auto-approve]`: apply the
resources of one spec file, with overrides kept in state (docklock.engine.deploy).

The CLI layer only: parse, build a Context, call the engine, print the override header
and the plan, ask for `yes`, print one line per finished change and the summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from docklock.cli._common import (
    Output,
    add_cue_option,
    ask_yes,
    context_of,
    duration_arg,
    whole_number,
)
from docklock.errors import EXIT_ERROR, EXIT_OK, ApplyError

if TYPE_CHECKING:
    from docklock.cli.cmd_apply import ChangePrinter
    from docklock.engine.deploy import DeployEvent, DeployOutcome, DeployPlanned
    from docklock.plan import Plan


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "deploy", parents=[common], help="apply one spec file, with --replicas overrides",
        description="Apply the resources defined in FILE (a spec file of this workspace) "
                    "and what they depend on. --replicas N sets the replicas of FILE's "
                    "Services without editing FILE: the override is kept in the state, "
                    "shown by plan and recorded in the ledger, and holds for later plans "
                    "and applies until `deploy --file FILE --reset` (or a deploy with the "
                    "spec's own value). See docs/adr/0014-deploy-overrides.md.")
    p.add_argument("--file", "-f", required=True, type=Path, metavar="FILE",
                   help="the spec file whose resources to deploy")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--replicas", type=whole_number(0, 1000), metavar="N",
                     help="run N replicas of each Service in FILE (0..1000)")
    how.add_argument("--reset", action="store_true",
                     help="drop FILE's overrides: back to the replicas in the spec")
    p.add_argument("--auto-scaling", action="store_true",
                   help="not available yet: needs the reconcile agent (issue 17); refused")
    p.add_argument("--auto-approve", action="store_true",
                   help="do not ask for confirmation (required when stdin is not a terminal)")
    p.add_argument("--parallelism", type=whole_number(1), default=8, metavar="N",
                   help="at most N Podman operations at once (default 8)")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="wait this long for the state lock instead of failing at once")
    p.add_argument("--health-timeout", type=duration_arg, default=None, metavar="DURATION",
                   help="how long a container may take to become healthy (default: from "
                        "its healthcheck)")
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (events go to stderr)")
    add_cue_option(p)
    p.set_defaults(handler=cmd_deploy)


class _Printer:
    """Renders deploy events: the override header and plan, then the changes as apply
    shows them (cli.cmd_apply.ChangePrinter)."""

    def __init__(self, out: Output, *, json: bool) -> None:
        self.out = out
        self.json = json
        self.sink = Output(out.stderr, out.stderr, out.color) if json else out
        self.changes: ChangePrinter | None = None

    def __call__(self, event: DeployEvent) -> None:
        from docklock.cli.cmd_apply import ChangePrinter
        from docklock.engine.deploy import DeployPlanned

        if isinstance(event, DeployPlanned):
            self.planned(event)
            self.changes = ChangePrinter(self.sink, total=event.work,
                                         tty=self.out.is_tty and not self.json)
        elif self.changes is not None:
            self.changes(event)

    def planned(self, event: DeployPlanned) -> None:
        from docklock.plan import render_text

        out = self.sink
        for line in header_lines(event):
            out.line(out.paint(line, "cyan"))
        if self.json:
            return
        out.line(render_text(event.plan, out.paint).rstrip("\n"))
        out.line()


def header_lines(event: DeployPlanned) -> list[str]:
    """`Overrides (docklock deploy): Service/default/api replicas 2 -> 3`, and the
    overrides this deploy leaves as they were."""
    from docklock.overrides import effect_lines

    lines = [f"Overrides (docklock deploy): {c.describe()}" for c in event.changes]
    changed = {(c.address, c.field) for c in event.changes}
    return lines + effect_lines([c for c in event.in_effect
                                 if (c.address, c.field) not in changed])


def _confirm(out: Output, auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not sys.stdin.isatty():
        raise ApplyError("refusing to deploy without confirmation: stdin is not a terminal",
                         hint="review the plan above and run `docklock deploy ... "
                              "--auto-approve`")
    return ask_yes(out, "Do you want to perform these actions?")


def cmd_deploy(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.deploy import DeployRequest, deploy

    ctx = context_of(args)
    request = DeployRequest(file=args.file, replicas=args.replicas, reset=args.reset,
                            auto_scaling=args.auto_scaling, parallelism=args.parallelism,
                            lock_timeout=args.lock_timeout,
                            health_timeout=args.health_timeout)
    printer = _Printer(out, json=args.json)

    def confirm(_plan: Plan) -> bool:
        return _confirm(printer.sink, args.auto_approve)

    outcome = deploy(ctx, request, on_event=printer, confirm=confirm)
    return _report(out, args, outcome)


def _report(out: Output, args: argparse.Namespace, outcome: DeployOutcome) -> int:
    if args.json:
        out.json(outcome.to_dict())
    if outcome.cancelled:
        out.error("Deploy cancelled.")
        return EXIT_ERROR
    result = outcome.result
    if not args.json:
        if result is not None:
            from docklock.apply import summary_line

            line = summary_line(result, verb="Deploy")
            out.line(out.paint(line, "green" if result.ok else "red"))
        elif outcome.changes:
            out.line(f"Overrides stored in state (serial {outcome.serial}); Podman already "
                     "matches.")
    if result is not None:
        for o in result.failed:
            out.error(f"Error: {o.address} ({o.kind} {o.name}): {o.error}"
                      + (f" (hint: {o.hint})" if o.hint else ""))
        if result.halted:
            out.error(f"error: the deploy stopped early: {result.halted}")
    if outcome.ledger_problem is not None:
        out.error(f"error: the ledger could not record this deploy: "
                  f"{outcome.ledger_problem.explain().removeprefix('error: ')}")
    return EXIT_OK if outcome.ok else EXIT_ERROR
