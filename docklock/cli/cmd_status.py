"""`docklock status`, `docklock get services [-A]` and `docklock cluster health [--detailed]`.

The CLI layer only: load and render the specs, read the recorded state (no lock: state
writes are atomic renames), list the cluster's containers with ONE Podman call, and
print `docklock.status.compute_status` as a table or JSON. `cluster health --detailed`
additionally runs each running container's healthcheck once (Podman without systemd
never does on its own) and shows its output.

`cluster health` judges the same live view with the same function as `docklock drift`
(`docklock.drift.read_live` + `detect_drift`): the cluster is healthy only when every
desired replica is ready AND drift finds nothing, so the two never disagree.

Decision (issue 11 D26): status and health do not take the state lock. They are what
an operator watches while an apply runs, and must neither wait for it nor make it fail.
When an apply holds the lock they say so (who, since when) on stderr, and in JSON under
`locked_by`, because rows may show objects the apply has not recorded yet. `drift`,
whose verdict would be wrong mid-apply, takes the lock instead.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docklock.cli._common import Output, add_cue_option, command_group, connect_podman, workspace_of
from docklock.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.objects import DesiredObject
    from docklock.state import LockInfo, State


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    from docklock.cli.cmd_init import cluster_group

    s = sub.add_parser(
        "status", parents=[common], help="what runs now: replicas, health, ports, cages",
        description="One row per resource: replicas ready/desired, health, ports and cage, "
                    "from one Podman list call.")
    _output_args(s)
    s.set_defaults(handler=cmd_status, kinds=(), namespace=None, all_namespaces=True)

    g = sub.add_parser("get", parents=[common], help="list resources (kubectl style)",
                       description="List resources of one kind, like kubectl get.")
    gsub = command_group(g, dest="get_what", metavar="KIND")
    svc = gsub.add_parser("services", aliases=["service", "svc"], parents=[common],
                          help="services with replicas ready/desired, health, ports, cage")
    svc.add_argument("-A", "--all-namespaces", action="store_true",
                     help="services of every namespace (default: -n namespace)")
    svc.add_argument("-n", "--namespace", default="default",
                     help="namespace to list (default: default)")
    _output_args(svc)
    svc.set_defaults(handler=cmd_status, kinds=("Service",))

    h = cluster_group(sub, common).add_parser(
        "health", parents=[common], help="is everything up and healthy? (exit 2 if not)",
        description="Podman's reachability and version, then every resource's readiness. "
                    "Exit 0 when every desired replica is ready, 2 when not. --detailed "
                    "runs each running container's healthcheck now and shows its output.")
    h.add_argument("--detailed", action="store_true",
                   help="one line per replica, with a fresh healthcheck result")
    _output_args(h)
    h.set_defaults(handler=cmd_cluster_health)


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (stable, documented)")
    add_cue_option(p)


@dataclass(frozen=True)
class Inputs:
    """What the read-only commands (status, drift) start from."""

    workspace: Workspace
    desired: tuple[DesiredObject, ...]
    state: State
    locked_by: LockInfo | None = None  # a command holding the state lock right now


def load_inputs(args: argparse.Namespace) -> Inputs:
    """Specs (rendered) and recorded state; shared with `docklock drift`."""
    from docklock.load import load_workspace
    from docklock.render import render_workspace
    from docklock.state import StateStore

    paths = workspace_of(args)
    ws = load_workspace(paths, cue=getattr(args, "cue", None))
    rendered = render_workspace(ws)
    store = StateStore(paths)
    state = store.read(cluster=ws.cluster_name)
    return Inputs(ws, rendered.objects, state, store.active_holder())


def _note_lock(inputs: Inputs, out: Output) -> None:
    """Say that a command (an apply, usually) holds the lock: rows may be in flight."""
    info = inputs.locked_by
    if info is None:
        return
    since = f" since {info.since}" if info.since else ""
    out.info(f"note: {info.command} holds the state lock (pid {info.pid} on {info.host}"
             f"{since}): objects it is changing may not be recorded yet")


def _lock_json(inputs: Inputs) -> dict[str, object] | None:
    return None if inputs.locked_by is None else inputs.locked_by.to_dict()


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    from docklock.plan import owned_view
    from docklock.status import compute_status, render_status_table

    inputs = load_inputs(args)
    ws = inputs.workspace
    with connect_podman(args, ws) as runtime:
        # Not another workspace's objects (same cluster name, its own lineage: ADR 0010).
        live = owned_view(runtime.list_live(ws.cluster_name), inputs.state)
    report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
    all_ns = bool(getattr(args, "all_namespaces", True))
    report = report.only(kinds=tuple(args.kinds),
                         namespace=None if all_ns else getattr(args, "namespace", None))
    _note_lock(inputs, out)
    if args.json:
        body = report.to_dict()
        body["locked_by"] = _lock_json(inputs)
        out.json(body)
    else:
        out.line(render_status_table(report, show_namespace=all_ns).rstrip("\n"))
    return EXIT_OK


def cmd_cluster_health(args: argparse.Namespace, out: Output) -> int:
    from docklock.drift import detect_drift, read_live, render_drift_text
    from docklock.plan import kinds_in_use
    from docklock.status import compute_status, refresh_health, render_status_table

    inputs = load_inputs(args)
    ws = inputs.workspace
    with connect_podman(args, ws) as runtime:
        rtt = runtime.ping()
        version = runtime.version()
        # The same live view and the same judge as `docklock drift`.
        live, kinds = read_live(runtime, ws.cluster_name, inputs.state,
                                kinds_in_use(inputs.desired, inputs.state))
        drift = detect_drift(inputs.state, live, cluster=ws.cluster_name, live_kinds=kinds)
        report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
        if args.detailed:
            report = refresh_health(runtime, report)
    healthy = report.healthy and not drift.has_drift
    _note_lock(inputs, out)
    if args.json:
        body = report.to_dict()
        body["healthy"] = healthy
        body["drift"] = drift.to_dict()
        body["locked_by"] = _lock_json(inputs)
        body["podman"] = {"url": runtime.url, "source": runtime.source, "version": version,
                          "ping_ms": round(rtt * 1000, 1)}
        out.json(body)
    else:
        out.line(f"Podman {version} at {runtime.url} ({runtime.source}), "
                 f"ping {rtt * 1000:.1f} ms")
        verdict = "healthy" if healthy else "NOT healthy"
        ready = sum(r.ready for r in report.resources)
        desired = sum(r.desired for r in report.resources)
        drifted = f"; drift in {len(drift.items)} object(s)" if drift.has_drift else ""
        out.line(out.paint(f"Cluster {ws.cluster_name}: {verdict} ({ready}/{desired} "
                           f"desired objects ready{drifted})",
                           "green" if healthy else "red"))
        out.line()
        out.line(render_status_table(report, detailed=args.detailed).rstrip("\n"))
        if drift.has_drift:
            out.line()
            out.line(out.paint(render_drift_text(drift).rstrip("\n"), "yellow"))
    return EXIT_OK if healthy else EXIT_CHANGES
