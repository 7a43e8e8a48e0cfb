"""`docklock status`, `docklock get services [-A]` and `docklock cluster health [--detailed]`.

The CLI layer only: load and render the specs, read the recorded state (no lock: state
writes are atomic renames), list the cluster's containers with ONE Podman call, and
print `docklock.status.compute_status` as a table or JSON. `cluster health --detailed`
additionally runs each running container's healthcheck once (Podman without systemd
never does on its own) and shows its output.
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
    from docklock.state import State


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


def load_inputs(args: argparse.Namespace) -> Inputs:
    """Specs (rendered) and recorded state; shared with `docklock drift`."""
    from docklock.load import load_workspace
    from docklock.render import render_workspace
    from docklock.state import StateStore

    paths = workspace_of(args)
    ws = load_workspace(paths, cue=getattr(args, "cue", None))
    rendered = render_workspace(ws)
    state = StateStore(paths).read(cluster=ws.cluster_name)
    return Inputs(ws, rendered.objects, state)


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    from docklock.status import compute_status, render_status_table

    inputs = load_inputs(args)
    ws = inputs.workspace
    with connect_podman(args, ws) as runtime:
        live = runtime.list_live(ws.cluster_name)
    report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
    all_ns = bool(getattr(args, "all_namespaces", True))
    report = report.only(kinds=tuple(args.kinds),
                         namespace=None if all_ns else getattr(args, "namespace", None))
    if args.json:
        out.json(report.to_dict())
    else:
        out.line(render_status_table(report, show_namespace=all_ns).rstrip("\n"))
    return EXIT_OK


def cmd_cluster_health(args: argparse.Namespace, out: Output) -> int:
    from docklock.status import compute_status, refresh_health, render_status_table

    inputs = load_inputs(args)
    ws = inputs.workspace
    with connect_podman(args, ws) as runtime:
        rtt = runtime.ping()
        version = runtime.version()
        live = runtime.list_live(ws.cluster_name)
        report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
        if args.detailed:
            report = refresh_health(runtime, report)
    if args.json:
        body = report.to_dict()
        body["podman"] = {"url": runtime.url, "source": runtime.source, "version": version,
                          "ping_ms": round(rtt * 1000, 1)}
        out.json(body)
    else:
        out.line(f"Podman {version} at {runtime.url} ({runtime.source}), "
                 f"ping {rtt * 1000:.1f} ms")
        verdict = "healthy" if report.healthy else "NOT healthy"
        ready = sum(r.ready for r in report.resources)
        desired = sum(r.desired for r in report.resources)
        out.line(out.paint(f"Cluster {ws.cluster_name}: {verdict} ({ready}/{desired} "
                           f"desired objects ready)", "green" if report.healthy else "red"))
        out.line()
        out.line(render_status_table(report, detailed=args.detailed).rstrip("\n"))
    return EXIT_OK if report.healthy else EXIT_CHANGES
