"""`docklock plan` (what would change, and why) and `docklock force-unlock`.

The CLI layer only: load → render → read state (under the lock, released at once) →
refresh → diff → print. Every decision lives in docklock.render and docklock.plan.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from docklock.cli._common import (
    Output,
    add_cue_option,
    check_out_path,
    connect_podman,
    duration_arg,
    workspace_of,
)
from docklock.errors import EXIT_CHANGES, EXIT_OK, LockError
from docklock.ledger import EntryType
from docklock.ledger.record import Recording, record_if_possible
from docklock.objects import canonical_json, sha256_hex
from docklock.plan import (
    RENDERERS,
    Plan,
    PlanOptions,
    plan_workspace,
    policy_info,
    render_text,
    save_plan,
)
from docklock.render import render_workspace
from docklock.state import StateStore
from docklock.state.store import gc_paused
from docklock.workspace import WorkspacePaths


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
    p.add_argument("--format", choices=sorted(RENDERERS), default="text",
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
    # A CI job reading `--format json` from stdout gets its errors as JSON too (as --json).
    args.json = args.format == "json"
    if args.out is not None:
        # Checked before planning: a bad path fails at once, and nothing is created.
        check_out_path(args.out)
    plan = make_cli_plan(args)
    paths = workspace_of(args)
    if args.out is not None:
        save_plan(plan, args.out, paths)
    recording = record_plan(paths, plan, args.out)
    if recording.problem is not None:
        # Without the private key (e.g. a fresh clone), or when the ledger cannot be
        # written for an operational reason, the plan is still shown and the exit code
        # keeps its meaning (--detailed-exitcode in CI). No key is created and
        # docklock.pub stays as committed. A tampered ledger raised instead.
        out.info(f"{'note' if recording.no_key else 'warning'}: {recording.problem}")
    if args.format == "text":
        out.line(render_text(plan, out.paint).rstrip("\n"))
    else:
        out.line(RENDERERS[args.format](plan).rstrip("\n"))
    if args.out is not None:
        out.info(f"Saved the plan to {args.out}; apply it with `docklock apply {args.out}`.")
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def make_cli_plan(args: argparse.Namespace) -> Plan:
    """The whole pipeline for `docklock plan` (also used by tests in-process)."""
    from docklock.load import load_workspace

    paths = workspace_of(args)
    with gc_paused():  # large acyclic data; see docklock._fs.gc_paused
        ws = load_workspace(paths, cue=args.cue)
        policy = policy_info(ws)
        rendered = render_workspace(ws)
    store = StateStore(paths)
    # Plan writes no state: the lock is held only while reading, so a concurrent apply
    # is noticed (and waited for with --lock-timeout) but not blocked for long.
    with store.lock(command="docklock plan", timeout=args.lock_timeout):
        state = store.read(cluster=ws.cluster_name)
    options = PlanOptions(destroy=args.destroy, targets=tuple(args.target),
                          replace=tuple(args.replace), refresh=args.refresh)
    if not args.refresh:
        return plan_workspace(ws, rendered, state, options=options, reader=None,
                              policy=policy)
    with connect_podman(args, ws) as runtime:
        return plan_workspace(ws, rendered, state, options=options, reader=runtime,
                              policy=policy)


def record_plan(paths: WorkspacePaths, plan: Plan, saved_to: Path | None) -> Recording:
    """Append a `plan` entry (digest of the plan, its summary and policy digest). Nothing
    when this workspace has no private key (plan never creates one); operational failures
    come back as `problem`, a ledger failing authentication raises (LedgerError)."""
    payload = {
        "plan_digest": sha256_hex(canonical_json(plan.to_dict())),
        "summary": plan.summary.to_dict(), "spec_digest": plan.spec_digest,
        "policy_digest": plan.policy.digest, "lineage": plan.lineage,
        "serial": plan.serial, "saved_to": str(saved_to) if saved_to else None,
        "options": plan.options.to_dict(),
    }
    return record_if_possible(paths, EntryType.PLAN, payload, cluster=plan.cluster,
                              serial=plan.serial)


def cmd_force_unlock(args: argparse.Namespace, out: Output) -> int:
    paths = workspace_of(args)
    if args.lock_id is None and not args.yes:
        raise LockError("force-unlock needs the LOCK_ID to remove",
                        hint="copy it from the 'state is locked' message, or pass --yes "
                             "to remove whatever lock is there")
    store = StateStore(paths)
    info, held = store.force_unlock(args.lock_id)
    what = info.describe() if info else "an unnamed lock"
    out.line(f"Removed {what}.")
    if held:
        out.info(out.paint("Warning: ", "yellow") + "that process still held the lock; "
                 "if it is still running it may write state concurrently. Stop it first.")
    return EXIT_OK
