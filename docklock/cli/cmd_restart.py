"""`docklock restart SERVICE [--replica N]`: a rolling, health-gated restart, one
replica at a time, recorded in the ledger (docklock.engine.verbs.restart; ADR 0017).
Exit 1 naming the replica that did not become healthy; the roll stops there."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from docklock.cli._common import Output, add_cue_option, duration_arg
from docklock.errors import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from docklock.engine.verbs import RestartEvent


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    from docklock.cli.cmd_logs import add_target_args

    p = sub.add_parser(
        "restart", parents=[common], help="rolling restart of a service, health-gated",
        description="Restart a Service's replicas one at a time (or only --replica N); "
                    "each must become healthy before the next. Takes the state lock; "
                    "each replica is a ledger entry.")
    p.add_argument("target", metavar="SERVICE",
                   help="a Service: `api` or `Service/default/api`")
    add_target_args(p)
    p.add_argument("--health-timeout", type=duration_arg, default=None, metavar="DURATION",
                   help="how long a replica may take to become healthy (default: from its "
                        "healthcheck)")
    p.add_argument("--lock-timeout", type=duration_arg, default=0.0, metavar="DURATION",
                   help="wait this long for the state lock (default: fail at once)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_cue_option(p)
    p.set_defaults(handler=cmd_restart)


def cmd_restart(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.context import Context
    from docklock.engine.verbs import RestartOptions, restart

    ctx = Context.find(getattr(args, "directory", None),
                       podman_url=getattr(args, "podman_url", None), cue=args.cue)

    def on_event(event: RestartEvent) -> None:
        if args.json:
            return
        if event.phase == "restarting":
            out.info(f"{event.container}: restarting")
        elif event.phase == "done":
            out.info(f"{event.container}: {event.health or 'running'} after "
                     f"{event.elapsed:.1f}s")

    result = restart(ctx, args.target,
                     RestartOptions(replica=args.replica, namespace=args.namespace,
                                    lock_timeout=args.lock_timeout,
                                    health_timeout=args.health_timeout),
                     on_event=on_event)
    if args.json:
        out.json(result.to_dict())
    elif result.ok:
        out.line(out.paint(f"Restarted {result.address}: {len(result.restarted)} "
                           "replica(s), each healthy.", "green"))
    failed = result.failed
    if failed is not None:
        left = (f"; not restarted: {', '.join(result.skipped)}" if result.skipped else "")
        out.error(f"error: restart of {result.address} stopped: container {failed.container} "
                  f"did not become healthy ({failed.message}){left} (hint: see `docklock "
                  f"logs {result.address} --replica {failed.replica}`; fix it and run "
                  "restart or apply again)")
    if result.ledger_problem is not None:
        out.error(f"error: the ledger could not sign this restart: {result.ledger_problem}")
    return EXIT_OK if result.ok and result.ledger_problem is None else EXIT_ERROR
