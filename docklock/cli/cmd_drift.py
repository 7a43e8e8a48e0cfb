"""`docklock drift [-C DIR] [--json]`: what changed in Podman behind DockLock's back.

Read-only towards Podman and the state: the live view of `docklock.drift.read_live`
(one labelled list call per object kind in use, plus one inspect per running recorded
container for aliases and limits), compared by `docklock.drift.detect_drift` with the
recorded state (and the specs, for the informational "pending" list). Exit 0 when live
matches the record, 2 when it drifted. When the workspace has a signing key, the result
is appended to the ledger and a checkpoint signed (drift is evidence worth keeping), by
the rules plan follows (docklock.ledger.record.record_if_possible): docklock.pub is never
changed, an outage (witnesses, passphrase, missing ledger folder) is a warning, and a
ledger that fails authentication (a foreign or forged tail) makes drift fail.

Drift holds the state lock while it reads state and Podman: an apply in flight has
objects created but not yet recorded, which would all look like drift. When an apply
holds the lock, drift says who (pid, host, command, since) and exits 1, or waits up to
--lock-timeout for it. `status` and `cluster health` stay lock-free (see cmd_status).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from docklock.cli._common import (
    Output,
    add_cue_option,
    connect_podman,
    duration_arg,
    workspace_of,
)
from docklock.errors import EXIT_CHANGES, EXIT_OK, LockError

if TYPE_CHECKING:
    from docklock.drift import DriftReport
    from docklock.state import StateStore
    from docklock.workspace import WorkspacePaths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "drift", parents=[common], help="compare live Podman with the recorded state",
        description="List objects removed, stopped or changed outside DockLock, and "
                    "containers claiming this cluster's labels that no apply recorded. "
                    "Exit 0 clean, 2 drift found. Spec changes not applied yet are listed "
                    "as pending but are not drift.")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="when an apply holds the state lock, wait this long for it "
                        "instead of failing at once (seconds, or e.g. 30s, 2m)")
    add_cue_option(p)
    p.set_defaults(handler=cmd_drift)


def cmd_drift(args: argparse.Namespace, out: Output) -> int:
    from docklock.cli.cmd_status import load_inputs
    from docklock.drift import detect_drift, read_live, render_drift_text
    from docklock.plan import kinds_in_use
    from docklock.state import StateStore

    store = StateStore(workspace_of(args))
    try:
        lock = store.lock(command="docklock drift", timeout=args.lock_timeout)
    except LockError as exc:
        raise _in_flight(store, exc, args.lock_timeout) from exc
    with lock:
        inputs = load_inputs(args)
        ws = inputs.workspace
        with connect_podman(args, ws) as runtime:
            live, kinds = read_live(runtime, ws.cluster_name, inputs.state,
                                    kinds_in_use(inputs.desired, inputs.state))
        report = detect_drift(inputs.state, live, cluster=ws.cluster_name,
                              desired=inputs.desired, live_kinds=kinds)
        _record(ws.paths, ws.cluster_name, report, out)
    if args.json:
        out.json(report.to_dict())
    else:
        text = render_drift_text(report).rstrip("\n")
        out.line(out.paint(text, "yellow") if report.has_drift else text)
    return EXIT_CHANGES if report.has_drift else EXIT_OK


def _in_flight(store: StateStore, exc: LockError, waited: float) -> LockError:
    """The lock error reworded for drift: say who holds it and why drift will not run."""
    info = store.holder()
    if info is None:
        return exc
    after = f" (waited {waited:g}s)" if waited > 0 else ""
    return LockError(
        f"{info.command or 'another command'} holds the state lock{after}: pid {info.pid} "
        f"on {info.host}, since {info.since} (lock {info.id}); drift would report its "
        "in-flight objects as drift", hint=exc.hint)


def _record(paths: WorkspacePaths, cluster: str, report: DriftReport, out: Output) -> None:
    """A ledger entry for the check, only where a signing key already exists (the same
    rules as plan: docklock.ledger.record.record_if_possible)."""
    from docklock.ledger import EntryType
    from docklock.ledger.record import record_if_possible

    body = report.to_dict()
    recording = record_if_possible(
        paths, EntryType.DRIFT,
        {"drift": report.has_drift, "counts": body["counts"], "checked": report.checked,
         "items": [{"kind": i.kind.value, "key": i.key} for i in report.items]},
        cluster=cluster, serial=report.serial)
    if recording.problem is not None and not recording.no_key:
        out.info(f"warning: the drift check was {recording.problem}")
