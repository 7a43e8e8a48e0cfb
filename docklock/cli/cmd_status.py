"""`docklock status`, `docklock get services|pods|jobs|networks|volumes|all [-A] [-n NS]
[-o wide|json|yaml]` and `docklock cluster health [--detailed]`.

The CLI layer only: the engine (docklock.engine.get) loads and renders the specs, reads
the recorded state (no lock: state writes are atomic renames) and lists the cluster's
containers with ONE Podman call (one more per networks / volumes when listed); this
module prints `docklock.status`'s tables, JSON or YAML. `cluster health --detailed`
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
from typing import TYPE_CHECKING, Any

from docklock.cli._common import Output, add_cue_option, command_group
from docklock.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.engine.get import GetView

_FORMATS = ("wide", "json", "yaml")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    from docklock.cli.cmd_init import cluster_group

    s = sub.add_parser(
        "status", parents=[common], help="what runs now: replicas, health, ports, cages",
        description="One row per resource: replicas ready/desired, health, ports and cage, "
                    "from one Podman list call.")
    _output_args(s)
    s.set_defaults(handler=cmd_status, kinds=(), namespace=None, all_namespaces=True,
                   output=None)

    g = sub.add_parser("get", parents=[common], help="list resources (kubectl style)",
                       description="List resources of one kind, like kubectl get.")
    gsub = command_group(g, dest="get_what", metavar="KIND")
    svc = gsub.add_parser("services", aliases=["service", "svc"], parents=[common],
                          help="services with replicas ready/desired, health, ports, cage")
    _get_args(svc, "services")
    _output_args(svc)
    svc.set_defaults(handler=cmd_status, kinds=("Service",))
    for kind, aliases, text in (
            ("pods", ["pod", "po"], "one row per container (replica): ready, status, "
                                    "restarts, age"),
            ("jobs", ["job"], "jobs: how their run ended, exit code, cage, age"),
            ("networks", ["network", "net"], "networks: specs, state and Podman agree?"),
            ("volumes", ["volume", "vol"], "volumes: specs, state and Podman agree?"),
            ("all", [], "services, pods, jobs, networks and volumes")):
        p = gsub.add_parser(kind, aliases=aliases, parents=[common], help=text,
                            description=f"docklock get {kind}: {text}.")
        _get_args(p, kind)
        add_cue_option(p)
        p.set_defaults(handler=cmd_get, get_kinds=(kind,) if kind != "all" else (
            "services", "pods", "jobs", "networks", "volumes"), json=False)

    h = cluster_group(sub, common).add_parser(
        "health", parents=[common], help="is everything up and healthy? (exit 2 if not)",
        description="Podman's reachability and version, then every resource's readiness. "
                    "Exit 0 when every desired replica is ready, 2 when not. --detailed "
                    "runs each running container's healthcheck now and shows its output.")
    h.add_argument("--detailed", action="store_true",
                   help="one line per replica, with a fresh healthcheck result")
    _output_args(h)
    h.set_defaults(handler=cmd_cluster_health)


def _get_args(p: argparse.ArgumentParser, kind: str) -> None:
    p.add_argument("-A", "--all-namespaces", action="store_true",
                   help=f"{kind} of every namespace (default: -n namespace)")
    p.add_argument("-n", "--namespace", default="default",
                   help="namespace to list (default: default)")
    p.add_argument("-o", "--output", choices=_FORMATS, default=None,
                   help="wide: more columns; json / yaml: the rows as data")


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (stable, documented)")
    add_cue_option(p)


def _context(args: argparse.Namespace) -> Context:
    from docklock.engine.context import Context

    return Context.find(getattr(args, "directory", None),
                        podman_url=getattr(args, "podman_url", None),
                        cue=getattr(args, "cue", None))


def _note_lock(locked_by: dict[str, Any] | None, out: Output) -> None:
    """Say that a command (an apply, usually) holds the lock: rows may be in flight."""
    if locked_by is None:
        return
    since = f" since {locked_by.get('since')}" if locked_by.get("since") else ""
    out.info(f"note: {locked_by.get('command')} holds the state lock (pid "
             f"{locked_by.get('pid')} on {locked_by.get('host')}{since}): objects it is "
             "changing may not be recorded yet")


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.get import status
    from docklock.status import render_status_table, to_yaml

    all_ns = bool(getattr(args, "all_namespaces", True))
    view = status(_context(args), kinds=tuple(args.kinds),
                  namespace=None if all_ns else getattr(args, "namespace", None))
    _note_lock(view.locked_by, out)
    fmt = "json" if args.json else getattr(args, "output", None)
    if fmt in ("json", "yaml"):
        body = view.report.to_dict()
        body["locked_by"] = view.locked_by
        if fmt == "json":
            out.json(body)
        else:
            out.line(to_yaml(body).rstrip("\n"))
    else:
        out.line(render_status_table(view.report, show_namespace=all_ns,
                                     detailed=fmt == "wide").rstrip("\n"))
    return EXIT_OK


def cmd_get(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.get import get

    all_ns = bool(args.all_namespaces)
    view = get(_context(args), args.get_kinds, namespace=None if all_ns else args.namespace)
    _note_lock(view.locked_by, out)
    if args.output == "json":
        out.json(view.to_dict())
    elif args.output == "yaml":
        from docklock.status import to_yaml

        out.line(to_yaml(view.to_dict()).rstrip("\n"))
    else:
        out.line(render_get(view, show_namespace=all_ns, wide=args.output == "wide"))
    return EXIT_OK


def render_get(view: GetView, *, show_namespace: bool, wide: bool) -> str:
    """The tables of a GetView, one section per kind when several were asked for."""
    from docklock.status import (
        render_jobs_table,
        render_named_table,
        render_pods_table,
        render_status_table,
    )

    parts: list[tuple[str, str]] = []
    for kind in view.kinds:
        if kind == "services" and view.services is not None:
            text = render_status_table(view.services, show_namespace=show_namespace,
                                       detailed=wide)
        elif kind == "pods":
            text = render_pods_table(view.pods, now=view.now, show_namespace=show_namespace,
                                     wide=wide, node=view.node)
        elif kind == "jobs":
            text = render_jobs_table(view.jobs, now=view.now, show_namespace=show_namespace,
                                     wide=wide)
        elif kind == "networks":
            text = render_named_table(view.networks, what="networks",
                                      show_namespace=show_namespace, wide=wide)
        elif kind == "volumes":
            text = render_named_table(view.volumes, what="volumes",
                                      show_namespace=show_namespace, wide=wide)
        else:
            continue
        parts.append((kind, text.rstrip("\n")))
    if len(parts) == 1:
        return parts[0][1]
    return "\n\n".join(f"== {kind} ==\n{text}" for kind, text in parts)


def cmd_cluster_health(args: argparse.Namespace, out: Output) -> int:
    from docklock.drift import render_drift_text
    from docklock.engine.get import cluster_health
    from docklock.status import render_status_table

    view = cluster_health(_context(args), detailed=args.detailed)
    report, drift, healthy = view.report, view.drift, view.healthy
    _note_lock(view.locked_by, out)
    if args.json:
        body = report.to_dict()
        body["healthy"] = healthy
        body["drift"] = drift.to_dict()
        body["locked_by"] = view.locked_by
        body["podman"] = {"url": view.podman_url, "source": view.podman_source,
                          "version": view.podman_version, "ping_ms": view.ping_ms}
        out.json(body)
    else:
        out.line(f"Podman {view.podman_version} at {view.podman_url} ({view.podman_source}), "
                 f"ping {view.ping_ms:.1f} ms")
        verdict = "healthy" if healthy else "NOT healthy"
        ready = sum(r.ready for r in report.resources)
        desired = sum(r.desired for r in report.resources)
        drifted = f"; drift in {len(drift.items)} object(s)" if drift.has_drift else ""
        out.line(out.paint(f"Cluster {view.inputs.workspace.cluster_name}: {verdict} "
                           f"({ready}/{desired} desired objects ready{drifted})",
                           "green" if healthy else "red"))
        out.line()
        out.line(render_status_table(report, detailed=args.detailed).rstrip("\n"))
        if drift.has_drift:
            out.line()
            out.line(out.paint(render_drift_text(drift).rstrip("\n"), "yellow"))
    return EXIT_OK if healthy else EXIT_CHANGES
