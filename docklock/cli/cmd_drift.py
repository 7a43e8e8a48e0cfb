"""`docklock drift [-C DIR] [--json]`: what changed in Podman behind DockLock's back.

Read-only towards Podman and the state: one labelled list call per object kind in
use, compared by `docklock.drift.detect_drift` with the recorded state (and the specs,
for the informational "pending" list). Exit 0 when live matches the record, 2 when it
drifted. When the workspace has a signing key, the result is appended to the ledger
and a checkpoint signed (drift is evidence worth keeping).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from docklock.cli._common import Output, add_cue_option, connect_podman
from docklock.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from docklock.drift import DriftReport
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
    add_cue_option(p)
    p.set_defaults(handler=cmd_drift)


def cmd_drift(args: argparse.Namespace, out: Output) -> int:
    from docklock.cli.cmd_status import load_inputs
    from docklock.drift import detect_drift, render_drift_text
    from docklock.plan import kinds_in_use, refresh_live

    inputs = load_inputs(args)
    ws = inputs.workspace
    with connect_podman(args, ws) as runtime:
        live, kinds = refresh_live(runtime, ws.cluster_name,
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


def _record(paths: WorkspacePaths, cluster: str, report: DriftReport, out: Output) -> None:
    """A ledger entry for the check, only where a signing key already exists."""
    from docklock.errors import DockLockError
    from docklock.ledger import Ledger, keys_exist, load_signer

    if not keys_exist(paths):
        return
    body = report.to_dict()
    try:
        ledger = Ledger.open(paths, cluster)
        ledger.append("drift", {"drift": report.has_drift, "counts": body["counts"],
                                "checked": report.checked,
                                "items": [{"kind": i.kind.value, "key": i.key}
                                          for i in report.items]}, serial=report.serial)
        ledger.checkpoint(load_signer(paths))
    except (DockLockError, OSError) as exc:
        out.info(f"warning: the drift check was not recorded in the ledger: {exc}")
