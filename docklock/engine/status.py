"""What the read-only commands start from (drift; status, get and cluster health): the
specs rendered, the recorded state and who holds the state lock, read without taking it
(state writes are atomic renames; see docs/adr/0008). `drift` calls it under the lock;
`status` and `health` do not take the lock (an operator watches them while an apply
runs), and `locked_by` says which command holds it, because rows may show objects the
apply has not recorded yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.load import Workspace
    from docklock.objects import DesiredObject
    from docklock.state import LockInfo, State


@dataclass(frozen=True)
class Inputs:
    """What the read-only commands (status, drift) start from."""

    workspace: Workspace
    desired: tuple[DesiredObject, ...]
    state: State
    locked_by: LockInfo | None = None  # a command holding the state lock right now


def load_inputs(ctx: Context) -> Inputs:
    """Specs (loaded and rendered), recorded state, and the lock's holder (no lock)."""
    from docklock.backend import open_state_store
    from docklock.overrides import overlay
    from docklock.render import render_workspace

    ws = ctx.load()
    store = open_state_store(ctx.paths)
    state = store.read(cluster=ws.cluster_name)
    ws = overlay(ws, state.overrides)  # `docklock deploy` overrides (ADR 0014)
    rendered = render_workspace(ws)
    return Inputs(ws, rendered.objects, state, store.active_holder())
