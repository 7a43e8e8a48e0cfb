"""`docklock apply [PLANFILE]` and `docklock destroy`: plan (or load a saved plan), confirm,
execute, report.

The CLI layer only: it turns the flags into a request for docklock.engine.apply (which
takes the state lock, loads and renders the specs, plans against live Podman or checks
that a saved plan is still current, journals to the ledger and executes), shows the plan
when the engine reports it ready, asks for `yes` as the engine's `confirm` callback,
prints one line per finished change and the summary, and maps the outcome to an exit
code.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
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
from docklock.errors import EXIT_ERROR, EXIT_OK, ApplyError, DockLockError

if TYPE_CHECKING:
    from docklock.apply import ApplyEvent, ApplyResult
    from docklock.engine.apply import ApplyOutcome, EngineEvent
    from docklock.plan import Plan


def _common_apply_args(p: argparse.ArgumentParser, *, specs: bool = True) -> None:
    p.add_argument("--auto-approve", action="store_true",
                   help="do not ask for confirmation (required when stdin is not a terminal)")
    p.add_argument("--parallelism", type=whole_number(1), default=8, metavar="N",
                   help="at most N Podman operations at once (default 8)")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="wait this long for the state lock instead of failing at once "
                        "(seconds, or e.g. 500ms, 30s, 1m30s)")
    if specs:  # destroy reads no specs and starts no container: no options about them
        p.add_argument("--health-timeout", type=duration_arg, default=None,
                       metavar="DURATION",
                       help="how long a container may take to become healthy (default: "
                            "from its healthcheck: start period + (retries+1) x "
                            "(interval+timeout))")
        add_cue_option(p)
    p.add_argument("--json", action="store_true",
                   help="print the result as JSON on stdout (events still go to stderr)")
    p.add_argument("--target", action="append", default=[], metavar="ADDR",
                   help="only this address (with what it depends on; with destroy, what "
                        "depends on it); repeatable; not with PLANFILE")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    a = sub.add_parser(
        "apply", parents=[common], help="make Podman match the specs",
        description="Without PLANFILE: plan against live Podman, show the plan, ask for "
                    "`yes` (or take --auto-approve) and apply it. With PLANFILE (from "
                    "`docklock plan --out`): check it is signed and still current (state "
                    "lineage and serial, spec digests) and apply exactly it. State is saved "
                    "after every change; exit 1 names the change that failed.")
    a.add_argument("planfile", nargs="?", type=Path, metavar="PLANFILE",
                   help="a saved plan to apply")
    a.add_argument("--replace", action="append", default=[], metavar="ADDR",
                   help="replace this address's objects even if unchanged; repeatable; "
                        "not with PLANFILE")
    _common_apply_args(a)
    a.set_defaults(handler=cmd_apply, destroy=False)

    d = sub.add_parser(
        "destroy", parents=[common], help="remove everything the workspace manages",
        description="Plan the removal of every object the state records (and every "
                    "container carrying this cluster's labels), in reverse dependency "
                    "order, ask for `yes` (or --auto-approve) and do it. Leaves an empty "
                    "state. Works from the recorded state alone: the spec files are not "
                    "read, so a workspace whose specs no longer validate can be destroyed.")
    _common_apply_args(d, specs=False)
    d.set_defaults(handler=cmd_destroy, destroy=True, planfile=None, replace=[])


def cmd_apply(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.apply import ApplyRequest, apply

    request = ApplyRequest(planfile=args.planfile, targets=tuple(args.target),
                           replace=tuple(args.replace), parallelism=args.parallelism,
                           lock_timeout=args.lock_timeout, health_timeout=args.health_timeout)
    view = _View(out, args, destroy=False)
    return view.report(apply(context_of(args), request, on_event=view.on_event,
                             confirm=view.confirm))


def cmd_destroy(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.apply import DestroyRequest, destroy

    request = DestroyRequest(targets=tuple(args.target), parallelism=args.parallelism,
                             lock_timeout=args.lock_timeout)
    view = _View(out, args, destroy=True)
    return view.report(destroy(context_of(args), request, on_event=view.on_event,
                               confirm=view.confirm))


class _View:
    """What one apply or destroy shows: the plan once the engine has it, the question,
    the executor's events, the summary, and the exit code."""

    def __init__(self, out: Output, args: argparse.Namespace, *, destroy: bool) -> None:
        self.out = out
        self.args = args
        self.destroy = destroy
        self.printer: ChangePrinter | None = None

    def on_event(self, event: EngineEvent) -> None:
        from docklock.engine.apply import PlanReady

        out, args = self.out, self.args
        if isinstance(event, PlanReady):
            plan = event.plan
            if event.saved_from is not None:
                out.info(f"Applying the saved plan {event.saved_from} "
                         f"({plan.summary.add} to add, {plan.summary.change} to change, "
                         f"{plan.summary.destroy} to destroy).")
            elif not args.json:
                from docklock.plan import render_text

                out.line(render_text(plan, out.paint).rstrip("\n"))
                out.line()
            self.printer = ChangePrinter(out if not args.json else _stderr_output(out),
                                        total=event.work,
                                        tty=out.is_tty and not args.json)
        elif self.printer is not None:
            self.printer(event)

    def confirm(self, _plan: Plan) -> bool:
        return _confirm(self.out, self.args, destroy=self.destroy)

    def report(self, outcome: ApplyOutcome) -> int:
        out, args = self.out, self.args
        if outcome.cancelled:
            out.error(("Destroy" if self.destroy else "Apply") + " cancelled.")
            return EXIT_ERROR
        if outcome.result is None:  # the plan had nothing to do
            if args.json:
                out.json(outcome.to_dict())
            elif outcome.saved_from is not None:
                out.line("The saved plan has no changes; nothing to do.")
            return EXIT_OK
        return _report(out, args, outcome.result, outcome.ledger_problem,
                       destroy=self.destroy)


@dataclass
class ChangePrinter:
    """Renders apply events: one line per finished change, a live counter on a TTY."""

    out: Output
    total: int
    tty: bool
    done: int = 0
    running: int = 0
    _status_shown: bool = False

    def __call__(self, event: ApplyEvent) -> None:
        from docklock.apply import EventType, format_event

        if event.type is EventType.CHANGE_STARTED:
            self.running += 1
        elif event.type in (EventType.CHANGE_DONE, EventType.CHANGE_FAILED):
            self.running -= 1
            self.done += 1
        elif event.type is EventType.CHANGE_SKIPPED:
            self.done += 1
        line = format_event(event)
        if line is not None:
            self._clear()
            self.out.line(self._paint(event, line))
        if self.tty and event.type is not EventType.APPLY_FINISHED:
            self._status()
        elif event.type is EventType.APPLY_FINISHED:
            self._clear()

    def _paint(self, event: ApplyEvent, line: str) -> str:
        from docklock.apply import EventType

        if event.type is EventType.CHANGE_FAILED:
            return self.out.paint(line, "red")
        if event.type in (EventType.CHANGE_SKIPPED, EventType.CHANGE_PROGRESS):
            return self.out.paint(line, "dim")
        color = {"create": "green", "replace": "yellow", "update": "yellow",
                 "delete": "red"}.get(event.action, "cyan")
        return self.out.paint(line, color)

    def _status(self) -> None:
        if self.running <= 0:
            self._clear()
            return
        text = f"  ... {self.running} in progress, {self.done}/{self.total} finished"
        self.out.stdout.write("\r\x1b[K" + self.out.paint(text, "dim"))
        self.out.stdout.flush()
        self._status_shown = True

    def _clear(self) -> None:
        if self._status_shown:
            self.out.stdout.write("\r\x1b[K")
            self.out.stdout.flush()
            self._status_shown = False


def _confirm(out: Output, args: argparse.Namespace, *, destroy: bool) -> bool:
    if args.auto_approve:
        return True
    if not sys.stdin.isatty():
        verb = "destroy" if destroy else "apply"
        raise ApplyError(f"refusing to {verb} without confirmation: stdin is not a terminal",
                         hint=f"review the plan above and run `docklock {verb} "
                              "--auto-approve`, or save it with `docklock plan --out FILE` "
                              "and run `docklock apply FILE`")
    return ask_yes(out, "Do you really want to destroy all resources?" if destroy
                   else "Do you want to perform these actions?")


def _stderr_output(out: Output) -> Output:
    return Output(out.stderr, out.stderr, out.color)


_HALT_HINT = ("free disk space or fix the file system, then run it again; nothing was "
              "changed after this point, and the next plan adopts whatever the state "
              "could not record")


def _report(out: Output, args: argparse.Namespace, result: ApplyResult,
            ledger_problem: DockLockError | None, *, destroy: bool) -> int:
    from docklock.apply import summary_line

    verb = "Destroy" if destroy else "Apply"
    if args.json:
        body = result.to_dict()
        if ledger_problem is not None:
            body["ledger_error"] = ledger_problem.message
        out.json(body)
    else:
        line = summary_line(result, verb=verb)
        out.line(out.paint(line, "green" if result.ok else "red"))
        if result.adopted:
            out.line(f"{result.adopted} object(s) found in Podman were recorded in state.")
    for o in result.failed:
        out.error(f"Error: {o.address} ({o.kind} {o.name}): {o.error}"
                  + (f" (hint: {o.hint})" if o.hint else ""))
    not_done = result.not_done
    if not_done and not args.json:
        out.error(f"Not done ({len(not_done)}): " + ", ".join(
            f"{o.address} ({o.name})" for o in not_done[:10])
            + (", ..." if len(not_done) > 10 else ""))
    if result.halted:
        # One error line, however many of state and ledger failed (both do on a full disk).
        also = (f"; the ledger could not record it either: {ledger_problem.message}"
                if ledger_problem is not None else "")
        out.error(f"error: the {verb.lower()} stopped early: {result.halted}{also} (hint: "
                  f"{_HALT_HINT})")
    elif ledger_problem is not None:
        if not ledger_problem.hint:
            ledger_problem = DockLockError(ledger_problem.message,
                                           location=ledger_problem.location,
                                           hint=_HALT_HINT)
        out.error(f"error: the ledger could not record this {verb.lower()}: "
                  f"{ledger_problem.explain().removeprefix('error: ')}")
    if not result.ok or ledger_problem is not None:
        return EXIT_ERROR
    return EXIT_OK
