"""`docklock drift [-C DIR] [--json]`: what changed in Podman behind DockLock's back.

The CLI layer over docklock.engine.drift. Read-only towards Podman and the state: the
live view of `docklock.drift.read_live` (one labelled list call per object kind in use,
plus one inspect per running recorded container for aliases and limits), compared by
`docklock.drift.detect_drift` with the recorded state (and the specs, for the
informational "pending" list). Exit 0 when live matches the record, 2 when it drifted.
When the workspace has a signing key, the result is appended to the ledger and a
checkpoint signed (drift is evidence worth keeping), by the rules plan follows
(docklock.ledger.record.record_if_possible): docklock.pub is never changed, an outage
(witnesses, passphrase, missing ledger folder) is a warning, and a ledger that fails
authentication (a foreign or forged tail) makes drift fail.

Drift holds the state lock while it reads state and Podman: an apply in flight has
objects created but not yet recorded, which would all look like drift. When an apply
holds the lock, drift says who (pid, host, command, since) and exits 1, or waits up to
--lock-timeout for it. `status` and `cluster health` stay lock-free (see cmd_status).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from docklock.cli._common import Output, add_cue_option, context_of, duration_arg
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
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="when an apply holds the state lock, wait this long for it "
                        "instead of failing at once (seconds, or e.g. 30s, 2m)")
    add_cue_option(p)
    p.set_defaults(handler=cmd_drift)


def cmd_drift(args: argparse.Namespace, out: Output) -> int:
    from docklock.drift import render_drift_text
    from docklock.engine.drift import drift

    outcome = drift(context_of(args), lock_timeout=args.lock_timeout)
    _warn(outcome.ledger_problem, outcome.no_key, out)
    report = outcome.report
    if args.json:
        out.json(report.to_dict())
    else:
        text = render_drift_text(report).rstrip("\n")
        out.line(out.paint(text, "yellow") if report.has_drift else text)
    return EXIT_CHANGES if report.has_drift else EXIT_OK


def _warn(problem: str | None, no_key: bool, out: Output) -> None:
    if problem is not None and not no_key:
        out.info(f"warning: the drift check was {problem}")


def _record(paths: WorkspacePaths, cluster: str, report: DriftReport, out: Output) -> None:
    """Record `report` in the ledger (docklock.engine.drift.record_drift) and warn on an
    outage, as `drift` does after its check."""
    from docklock.engine.drift import record_drift

    recording = record_drift(paths, cluster, report)
    _warn(recording.problem, recording.no_key, out)
