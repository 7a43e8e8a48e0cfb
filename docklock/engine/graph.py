"""The `graph` use case: the workspace's dependency graph (edges from a dependency to
its dependent; nodes in the topological waves apply uses). The specs must validate."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.graph import ResourceGraph


def graph_of(ctx: Context) -> ResourceGraph:
    """The loaded workspace's graph (built from its resources if loading did not)."""
    from docklock.graph import build_graph

    ws = ctx.load()
    return ws.graph if ws.graph is not None else build_graph(ws.resources)
