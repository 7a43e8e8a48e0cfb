"""What the read-only commands start from (status, get, cluster health, drift): the
specs rendered, the recorded state and who holds the state lock, read without taking it
(state writes are atomic renames; see docs/adr/0008); plus `status` and `health` views.

`status` and `health` do not take the lock (an operator watches them while an apply
runs); `locked_by` says which command holds it, because rows may show objects the apply
has not recorded yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.drift import DriftReport
    from docklock.engine.context import Context
    from docklock.load import Workspace
    from docklock.objects import DesiredObject
    from docklock.state import LockInfo, State
    from docklock.status import StatusReport


@dataclass(frozen=True)
class Inputs:
    """What the read-only commands (status, drift) start from."""

    workspace: Workspace
    desired: tuple[DesiredObject, ...]
    state: State
    locked_by: LockInfo | None = None  # a command holding the state lock right now


def load_inputs(ctx: Context) -> Inputs:
    """Specs (loaded and rendered), recorded state, and the lock's holder (no lock)."""
    from docklock.render import render_workspace
    from docklock.state import StateStore

    ws = ctx.load()
    rendered = render_workspace(ws)
    store = StateStore(ctx.paths)
    state = store.read(cluster=ws.cluster_name)
    return Inputs(ws, rendered.objects, state, store.active_holder())


@dataclass(frozen=True)
class StatusView:
    """`status` / `get services`: the report and the lock's holder."""

    inputs: Inputs
    report: StatusReport

    @property
    def locked_by(self) -> LockInfo | None:
        return self.inputs.locked_by

    def to_dict(self) -> dict[str, Any]:
        body = self.report.to_dict()
        body["locked_by"] = (self.locked_by.to_dict() if self.locked_by is not None
                             else None)
        return body


def status(ctx: Context, *, kinds: tuple[str, ...] = (), namespace: str | None = None
           ) -> StatusView:
    """One row per resource from ONE Podman list call (objects of this workspace only:
    another workspace's with the same cluster name are left out, ADR 0010). `kinds`
    and `namespace` filter the rows (None: every namespace)."""
    from docklock.plan import owned_view
    from docklock.status import compute_status

    inputs = load_inputs(ctx)
    ws = inputs.workspace
    with ctx.connect(ws) as runtime:
        live = owned_view(runtime.list_live(ws.cluster_name), inputs.state)
    report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
    return StatusView(inputs, report.only(kinds=kinds, namespace=namespace))


@dataclass(frozen=True)
class HealthView:
    """`cluster health`: readiness, the drift verdict and Podman's answer."""

    inputs: Inputs
    report: StatusReport
    drift: DriftReport
    podman_url: str
    podman_source: str
    podman_version: str
    ping_seconds: float

    @property
    def healthy(self) -> bool:
        """Every desired replica ready AND no drift: health and drift never disagree."""
        return self.report.healthy and not self.drift.has_drift

    def to_dict(self) -> dict[str, Any]:
        body = self.report.to_dict()
        body["healthy"] = self.healthy
        body["drift"] = self.drift.to_dict()
        locked = self.inputs.locked_by
        body["locked_by"] = locked.to_dict() if locked is not None else None
        body["podman"] = {"url": self.podman_url, "source": self.podman_source,
                          "version": self.podman_version,
                          "ping_ms": round(self.ping_seconds * 1000, 1)}
        return body


def health(ctx: Context, *, detailed: bool = False) -> HealthView:
    """The same live view and the same judge as `drift` (docklock.drift.read_live and
    detect_drift); `detailed` runs each running container's healthcheck once."""
    from docklock.drift import detect_drift, read_live
    from docklock.plan import kinds_in_use
    from docklock.status import compute_status, refresh_health

    inputs = load_inputs(ctx)
    ws = inputs.workspace
    with ctx.connect(ws) as runtime:
        rtt = runtime.ping()
        version = runtime.version()
        live, kinds = read_live(runtime, ws.cluster_name, inputs.state,
                                kinds_in_use(inputs.desired, inputs.state))
        drift = detect_drift(inputs.state, live, cluster=ws.cluster_name, live_kinds=kinds)
        report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
        if detailed:
            report = refresh_health(runtime, report)
        url, source = runtime.url, runtime.source
    return HealthView(inputs, report, drift, url, source, version, rtt)
