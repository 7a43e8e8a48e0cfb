"""`docklock describe ADDRESS [--entries N] [-o json|yaml]`: the spec (file:line), the
rendered objects, each replica's live state, the cage and the last ledger entries of
one resource, like kubectl describe (docklock.engine.describe)."""

from __future__ import annotations

import argparse

from docklock.cli._common import Output, add_cue_option
from docklock.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser],
             common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "describe", parents=[common], help="everything about one resource",
        description="Spec and its source line, rendered objects, live state of each "
                    "replica, cage, and the last ledger entries naming the resource.")
    p.add_argument("target", metavar="ADDRESS",
                   help="`api`, `Job/report`, `Network/default/backend`, ...")
    p.add_argument("--entries", type=int, default=5, metavar="N",
                   help="how many ledger entries to show (default: 5)")
    p.add_argument("-n", "--namespace", default=None,
                   help="namespace of a bare name (default: default)")
    p.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text",
                   help="text (default), json or yaml")
    add_cue_option(p)
    p.set_defaults(handler=cmd_describe)


def cmd_describe(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.context import Context
    from docklock.engine.describe import describe
    from docklock.status import render_description, to_yaml

    ctx = Context.find(getattr(args, "directory", None),
                       podman_url=getattr(args, "podman_url", None), cue=args.cue)
    found = describe(ctx, args.target, entries=args.entries, namespace=args.namespace)
    body = found.to_dict()
    if args.output == "json":
        out.json(body)
    elif args.output == "yaml":
        out.line(to_yaml(body).rstrip("\n"))
    else:
        out.line(render_description(body).rstrip("\n"))
    return EXIT_OK
