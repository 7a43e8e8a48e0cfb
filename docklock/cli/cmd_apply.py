"""`docklock apply [PLANFILE]` and `docklock destroy`: plan (or load a saved plan), confirm,
execute, report.

The CLI layer only: it takes the state lock first (so a second apply fails at once,
naming the holder), loads and renders the specs, plans against live Podman (or checks
that a saved plan is still current), asks for `yes`, and hands the plan to
`docklock.apply.execute`, printing one line per finished change and the summary. The
ledger gets apply-start, one entry per change, apply-end and a signed checkpoint.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.cli._common import Output, add_cue_option, connect_podman, duration_arg, workspace_of
from docklock.errors import EXIT_ERROR, EXIT_OK, ApplyError, DockLockError, StalePlanError

if TYPE_CHECKING:
    from docklock.apply import ApplyEvent, ApplyJournal, ApplyResult
    from docklock.ledger import Ledger, Signer
    from docklock.load import Workspace
    from docklock.plan import Plan
    from docklock.workspace import WorkspacePaths


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _common_apply_args(p: argparse.ArgumentParser, *, specs: bool = True) -> None:
    p.add_argument("--auto-approve", action="store_true",
                   help="do not ask for confirmation (required when stdin is not a terminal)")
    p.add_argument("--parallelism", type=_positive, default=8, metavar="N",
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
    return _run_on_disk(args, out, destroy=False)


def cmd_destroy(args: argparse.Namespace, out: Output) -> int:
    return _run_on_disk(args, out, destroy=True)


def _run_on_disk(args: argparse.Namespace, out: Output, *, destroy: bool) -> int:
    """`_run`, with a full disk met before the executor (the lock file, the state's
    lineage claim, a cache) reported as one error with a hint. The executor itself
    never lets a write error escape: it halts and reports (see docklock.apply)."""
    try:
        return _run(args, out, destroy=destroy)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        verb = "destroy" if destroy else "apply"
        raise ApplyError(f"no space left on device{where}: the {verb} could not write its "
                         "files", hint=f"free disk space (or raise the quota) and run "
                                       f"`docklock {verb}` again; state and ledger hold "
                                       "every change already made") from exc


@dataclass
class _Printer:
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
    question = ("Do you really want to destroy all resources?" if destroy
                else "Do you want to perform these actions?")
    out.line(out.paint(question, "bold"))
    out.line("  Only 'yes' will be accepted to approve.")
    try:
        answer = input("  Enter a value: ")
    except EOFError:
        answer = ""
    out.line()
    return answer.strip() == "yes"


def _command(destroy: bool, planfile: Path | None) -> str:
    if destroy:
        return "docklock destroy"
    return f"docklock apply {planfile}" if planfile is not None else "docklock apply"


def _run(args: argparse.Namespace, out: Output, *, destroy: bool) -> int:
    from docklock.apply import ApplyOptions, dependency_conditions, execute
    from docklock.load import load_workspace
    from docklock.plan import (
        PlanError,
        PlanOptions,
        bind_desired,
        check_plan_current,
        load_plan,
        plan_workspace,
        policy_info,
        render_text,
    )
    from docklock.render import render_workspace
    from docklock.state import StateStore

    paths = workspace_of(args)
    store = StateStore(paths)
    planfile: Path | None = args.planfile
    if planfile is not None and (args.target or args.replace):
        raise PlanError("--target and --replace do not go with a saved plan",
                        hint="pass them to `docklock plan --out` instead")
    if planfile is not None and planfile.exists():
        # A folder or unreadable file fails here (main() reports the OSError with its
        # path), before the lock creates anything; a missing one is load_plan's to report.
        planfile.open("rb").close()
    # The lock comes first: a second apply fails at once, naming who holds it.
    with store.lock(command=_command(destroy, planfile), timeout=args.lock_timeout):
        saved = load_plan(planfile, paths) if planfile is not None else None
        # Destroy works from the recorded state alone (issue 11 C15): a workspace whose
        # specs no longer validate must still be removable, so its specs are not read.
        ws = _recorded_only(paths) if destroy else load_workspace(paths, cue=args.cue)
        # A saved plan passed the gate when it was made (and its spec digests bind it);
        # destroy is never blocked by policy.
        policy = policy_info(ws) if saved is None and not destroy else None
        rendered = render_workspace(ws)
        state = store.read(cluster=ws.cluster_name)
        with connect_podman(args, ws) as runtime:
            if saved is not None:
                if saved.cluster != ws.cluster_name:
                    raise StalePlanError(
                        f"the plan is for cluster {saved.cluster!r}, this workspace is "
                        f"{ws.cluster_name!r}", hint="apply it in its own workspace")
                check_plan_current(saved, state, spec_digest=ws.spec_digest, files=ws.files)
                plan = saved
                out.info(f"Applying the saved plan {planfile} "
                         f"({plan.summary.add} to add, {plan.summary.change} to change, "
                         f"{plan.summary.destroy} to destroy).")
            else:
                plan = plan_workspace(
                    ws, rendered, state, reader=runtime, policy=policy,
                    options=PlanOptions(destroy=destroy, targets=tuple(args.target),
                                        replace=tuple(args.replace)))
                if not args.json:
                    out.line(render_text(plan, out.paint).rstrip("\n"))
                    out.line()
            if not _has_work(plan):
                if args.json:
                    out.json({"ok": True, "added": 0, "changed": 0, "destroyed": 0,
                              "adopted": 0, "renamed_aside": 0, "halted": "",
                              "outcomes": [], "serial": state.serial,
                              "lineage": state.lineage})
                elif saved is not None:
                    out.line("The saved plan has no changes; nothing to do.")
                return EXIT_OK
            if saved is None and not _confirm(out, args, destroy=destroy):
                out.error(("Destroy" if destroy else "Apply") + " cancelled.")
                return EXIT_ERROR
            desired = bind_desired(plan, rendered.objects)
            journal = _journal(paths, ws.cluster_name, plan, destroy)
            printer = _Printer(out if not args.json else _stderr_output(out),
                               total=_work_count(plan), tty=out.is_tty and not args.json)
            sink = _fan_out(printer, journal)
            options = ApplyOptions(parallelism=args.parallelism,
                                   health_timeout=getattr(args, "health_timeout", None))
            result = execute(plan, desired, store=store, state=state, runtime=runtime,
                             paths=paths, cluster=ws.cluster_name,
                             conditions=dependency_conditions(ws.resources),
                             options=options, on_event=sink, write_ahead=journal.intent)
            ledger_problem = _finish_journal(journal, result)
    return _report(out, args, result, ledger_problem, destroy=destroy)


def _recorded_only(paths: WorkspacePaths) -> Workspace:
    """The workspace as destroy sees it: docklock.yaml (cluster name, Podman URL) and no
    resources, so the plan deletes every object the state records or that carries the
    cluster's labels, whatever the spec files say now."""
    from docklock.load import Workspace, load_cluster, spec_digest

    return Workspace(paths, load_cluster(paths), (), {}, spec_digest({}))


def _has_work(plan: Plan) -> bool:
    return any(c.is_work for c in plan.changes)


def _work_count(plan: Plan) -> int:
    return sum(1 for c in plan.changes if c.is_work)


def _stderr_output(out: Output) -> Output:
    return Output(out.stderr, out.stderr, out.color)


class _Journal:
    """Ledger bookkeeping for one apply. The intent of every Podman step is written
    ahead (`intent`, the executor's write-ahead hook): once any ledger write failed,
    every later intent fails too, so the executor changes nothing more (issue 11 D19).
    Outcome entries never raise: the first error is kept and reported at the end
    (exit 1), and state goes on recording what the steps in flight did."""

    def __init__(self, inner: ApplyJournal | None, ledger: Ledger | None,
                 signer: Signer | None) -> None:
        self.inner = inner
        self.ledger = ledger
        self.signer = signer
        self.error: DockLockError | None = None

    def guard(self, fn: Callable[[], Any]) -> None:
        if self.inner is None or self.error is not None:
            return
        try:
            fn()
        except DockLockError as exc:
            self.error = exc
        except OSError as exc:
            self.error = DockLockError(f"writing the ledger failed: {exc}")

    def intent(self, event: ApplyEvent) -> None:
        if self.inner is None:
            return
        if self.error is not None:
            raise self.error  # a ledger that lost an entry takes no more intents
        inner = self.inner
        self.guard(lambda: inner.intent(event))
        if self.error is not None:
            raise self.error


def _journal(paths: WorkspacePaths, cluster: str, plan: Plan, destroy: bool) -> _Journal:
    from docklock.apply import ApplyJournal
    from docklock.ledger import Ledger, ensure_keys

    # The key and the apply-start entry come before any Podman change: if the ledger
    # cannot be signed or written, nothing is changed (the error propagates).
    signer = ensure_keys(paths)
    ledger = Ledger.open(paths, cluster, signer=signer)  # signs each entry (ledger.trust)
    inner = ApplyJournal(ledger, plan, command="destroy" if destroy else "apply")
    inner.start()
    return _Journal(inner, ledger, signer)


def _fan_out(printer: _Printer, journal: _Journal) -> Callable[[ApplyEvent], None]:
    def sink(event: ApplyEvent) -> None:
        printer(event)
        if journal.inner is not None:
            inner = journal.inner
            journal.guard(lambda: inner.on_event(event))

    return sink


def _finish_journal(journal: _Journal, result: ApplyResult) -> DockLockError | None:
    inner, ledger, signer = journal.inner, journal.ledger, journal.signer
    if inner is not None and ledger is not None and signer is not None:
        journal.guard(lambda: inner.finish(result))
        journal.guard(lambda: ledger.checkpoint(signer))
    return journal.error


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
