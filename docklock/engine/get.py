"""Read-only views: `status`, `get services|pods|jobs|networks|volumes|all` and
`cluster health` (issue 12 item 4).

Each loads the specs (rendered) and the recorded state without the state lock (see
docklock/cli/cmd_status.py: status is what an operator watches while an apply runs),
reads Podman once per object kind it shows, and returns a frozen view; the CLI renders
it with docklock.status. `locked_by` names a command holding the lock right now.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docklock.engine.context import Context

if TYPE_CHECKING:
    from docklock.drift import DriftReport
    from docklock.engine.status import Inputs as StatusInputs
    from docklock.state import LockInfo
    from docklock.status import NamedRow, PodRow, StatusReport

GET_KINDS = ("services", "pods", "jobs", "networks", "volumes")


def load_inputs(ctx: Context) -> StatusInputs:
    """Specs (rendered), recorded state and the lock's holder, read without the lock
    (docklock.engine.status.load_inputs, shared with drift)."""
    from docklock.engine.status import load_inputs as load

    return load(ctx)


def node_name(url: str) -> str:
    """The NODE column: this host's name for a local socket (the default one or a private
    service's temporary one), else the host the URL names (ssh://, tcp://)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme in ("unix", "http+unix", ""):
        return socket.gethostname()
    return parts.hostname or url


def _lock_dict(info: LockInfo | None) -> dict[str, Any] | None:
    return None if info is None else info.to_dict()


@dataclass(frozen=True)
class StatusView:
    report: StatusReport
    inputs: StatusInputs

    @property
    def locked_by(self) -> dict[str, Any] | None:
        return _lock_dict(self.inputs.locked_by)


def status(ctx: Context, *, kinds: Sequence[str] = (),
           namespace: str | None = None) -> StatusView:
    """One row per resource (`kinds`/`namespace` narrow it), from one Podman list call."""
    from docklock.plan import owned_view
    from docklock.status import compute_status

    inputs = load_inputs(ctx)
    ws = inputs.workspace
    with ctx.connect(ws) as runtime:
        # Not another workspace's objects (same cluster name, its own lineage: ADR 0010).
        live = owned_view(runtime.list_live(ws.cluster_name), inputs.state)
    report = compute_status(inputs.desired, inputs.state, live, cluster=ws.cluster_name)
    return StatusView(report.only(kinds=tuple(kinds), namespace=namespace), inputs)


@dataclass(frozen=True)
class GetView:
    """What `get` lists; a kind not asked for is empty. `now` is when it was read (for
    AGE columns)."""

    cluster: str
    kinds: tuple[str, ...]
    services: StatusReport | None = None
    pods: tuple[PodRow, ...] = ()
    jobs: tuple[PodRow, ...] = ()
    networks: tuple[NamedRow, ...] = ()
    volumes: tuple[NamedRow, ...] = ()
    node: str = ""
    now: float = 0.0
    locked_by: dict[str, Any] | None = None
    api_calls: int = 0

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"format": 1, "cluster": self.cluster, "node": self.node,
                                "api_calls": self.api_calls, "locked_by": self.locked_by}
        if "services" in self.kinds and self.services is not None:
            body["services"] = [r.to_dict() for r in self.services.resources]
        if "pods" in self.kinds:
            body["pods"] = [p.to_dict(self.now) for p in self.pods]
        if "jobs" in self.kinds:
            body["jobs"] = [p.to_dict(self.now) for p in self.jobs]
        if "networks" in self.kinds:
            body["networks"] = [n.to_dict() for n in self.networks]
        if "volumes" in self.kinds:
            body["volumes"] = [n.to_dict() for n in self.volumes]
        return body


def get(ctx: Context, kinds: Sequence[str], *, namespace: str | None = None) -> GetView:
    """Rows of each kind in `kinds` (GET_KINDS); `namespace` None: every namespace.
    One list call per Podman object kind shown (containers, networks, volumes)."""
    from docklock.objects import ObjectKind
    from docklock.plan import owned_view
    from docklock.runtime.verbs import list_containers
    from docklock.status import compute_status, named_rows, pod_rows

    wanted = tuple(k for k in GET_KINDS if k in kinds)
    inputs = load_inputs(ctx)
    ws = inputs.workspace
    cluster = ws.cluster_name
    lineage = inputs.state.lineage
    services = None
    pods: tuple[PodRow, ...] = ()
    jobs: tuple[PodRow, ...] = ()
    networks: tuple[NamedRow, ...] = ()
    volumes: tuple[NamedRow, ...] = ()
    with ctx.connect(ws) as runtime:
        node = node_name(runtime.url)
        if "services" in wanted:
            live = owned_view(runtime.list_live(cluster), inputs.state)
            services = compute_status(inputs.desired, inputs.state, live,
                                      cluster=cluster).only(kinds=("Service",),
                                                            namespace=namespace)
        if "pods" in wanted or "jobs" in wanted:
            rows = pod_rows(list_containers(runtime, cluster), inputs.desired, lineage=lineage)
            rows = tuple(r for r in rows if namespace is None or r.namespace == namespace)
            pods = tuple(r for r in rows if r.kind != "Job") if "pods" in wanted else ()
            jobs = tuple(r for r in rows if r.kind == "Job") if "jobs" in wanted else ()
        if "networks" in wanted:
            live_n = owned_view(runtime.list_networks(cluster), inputs.state)
            networks = named_rows(ObjectKind.NETWORK, inputs.desired, inputs.state, live_n,
                                  namespace=namespace)
        if "volumes" in wanted:
            live_v = owned_view(runtime.list_volumes(cluster), inputs.state)
            volumes = named_rows(ObjectKind.VOLUME, inputs.desired, inputs.state, live_v,
                                 namespace=namespace)
        calls = runtime.api_calls
    return GetView(cluster, wanted, services, pods, jobs, networks, volumes, node,
                   time.time(), _lock_dict(inputs.locked_by), calls)


@dataclass(frozen=True)
class HealthView:
    report: StatusReport
    drift: DriftReport
    healthy: bool
    podman_url: str
    podman_source: str
    podman_version: str
    ping_ms: float
    inputs: StatusInputs = field(repr=False)

    @property
    def locked_by(self) -> dict[str, Any] | None:
        return _lock_dict(self.inputs.locked_by)


def cluster_health(ctx: Context, *, detailed: bool = False) -> HealthView:
    """Podman's reachability, every resource's readiness and drift: healthy only when
    every desired replica is ready AND drift finds nothing (the same live view and the
    same judge as `docklock drift`)."""
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
    healthy = report.healthy and not drift.has_drift
    return HealthView(report, drift, healthy, url, source, version, round(rtt * 1000, 1),
                      inputs)
