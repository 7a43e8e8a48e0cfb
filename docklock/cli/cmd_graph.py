"""`docklock graph [-C DIR] [--format dot|mermaid|json]`: the dependency graph of a workspace.

Edges point from a dependency to its dependent (start order); nodes are grouped in the
topological waves apply uses. The workspace must validate first.
"""

from __future__ import annotations

import argparse

from docklock.cli._common import Output, add_cue_option, context_of
from docklock.errors import EXIT_OK


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("graph", parents=[common], help="print the dependency graph",
                       description="Print the resources' dependency graph (edges point from "
                                   "a dependency to what depends on it).")
    p.add_argument("--format", choices=("dot", "mermaid", "json"), default="dot",
                   help="output format (default: dot)")
    add_cue_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.graph import graph_of

    graph = graph_of(context_of(args))
    if args.format == "json":
        out.json(graph.to_json())
    elif args.format == "mermaid":
        out.stdout.write(graph.to_mermaid())
    else:
        out.stdout.write(graph.to_dot())
    out.stdout.flush()
    return EXIT_OK
