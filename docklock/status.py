"""Status: what runs now, per resource, from one labelled list call (pure).

Owns `compute_status` (desired objects + recorded state + live containers → one row
per resource: replicas ready/desired, health, ports, cage) and its table/JSON forms.
No Podman call happens here; `docklock status` lists the cluster's containers once and
passes the LiveState in. Networks and volumes are reported from the recorded state, so
the one call stays one.

A replica is ready when it runs and, if it has a healthcheck, its last check passed.
Podman without systemd never re-runs healthchecks on its own, so "healthy" is the last
result apply (or `docklock cluster health --detailed`) obtained.

A Job's row describes its run-once container: `completed` (exited 0: ready 1/1, the
one good end), `failed` (exited non-zero), `in-progress` (running), `pending` (not
created or not started yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from docklock.errors import PodmanError
from docklock.model import Address, Kind
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CAGE,
    LABEL_REPLICA,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
    clip,
)
from docklock.render import is_job, is_job_labels
from docklock.state import State

if TYPE_CHECKING:
    from docklock.runtime.podman import PodmanRuntime

STATUS_FORMAT = 1
STATUS_CLIP = 60  # health output in a table cell: shorter than in apply messages


@dataclass(frozen=True)
class ReplicaStatus:
    name: str
    replica: int | None
    id: str
    status: str  # running | exited | created | missing | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)
    ready: bool
    ports: tuple[str, ...] = ()
    exit_code: int | None = None
    health_output: str = ""  # filled by `cluster health --detailed` only

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "replica": self.replica, "id": self.id,
                "status": self.status, "health": self.health, "ready": self.ready,
                "ports": list(self.ports), "exit_code": self.exit_code,
                "health_output": self.health_output}


@dataclass(frozen=True)
class ResourceStatus:
    address: str
    kind: str
    namespace: str
    name: str
    desired: int  # replicas asked for by the specs (0 if only recorded/live)
    ready: int
    running: int
    # running | degraded | down | present | missing | orphaned | pending; a Job:
    # completed | failed | in-progress | pending (| orphaned)
    status: str
    health: str  # healthy | unhealthy | starting | - (no healthcheck) | mixed
    ports: tuple[str, ...] = ()
    cage: str = ""
    replicas: tuple[ReplicaStatus, ...] = ()

    @property
    def ok(self) -> bool:
        if self.kind == Kind.JOB.value:
            return self.status == "completed"
        return self.status in ("running", "present")

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "kind": self.kind, "namespace": self.namespace,
                "name": self.name, "desired": self.desired, "ready": self.ready,
                "running": self.running, "status": self.status, "health": self.health,
                "ports": list(self.ports), "cage": self.cage,
                "replicas": [r.to_dict() for r in self.replicas]}


@dataclass(frozen=True)
class StatusReport:
    cluster: str
    resources: tuple[ResourceStatus, ...]
    api_calls: int = 0
    serial: int = 0
    format: int = STATUS_FORMAT

    @property
    def healthy(self) -> bool:
        return all(r.ok for r in self.resources)

    def only(self, *, kinds: Sequence[str] = (), namespace: str | None = None) -> StatusReport:
        rows = tuple(r for r in self.resources
                     if (not kinds or r.kind in kinds)
                     and (namespace is None or r.namespace == namespace))
        return StatusReport(self.cluster, rows, self.api_calls, self.serial, self.format)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "cluster": self.cluster, "serial": self.serial,
                "healthy": self.healthy, "api_calls": self.api_calls,
                "resources": [r.to_dict() for r in self.resources]}


def _ready(obj: LiveObject) -> bool:
    return obj.status == "running" and obj.health in ("", "healthy")


def _health_summary(replicas: Sequence[ReplicaStatus]) -> str:
    # A stopped container keeps its last health result ("healthy"): it is stale, and
    # "down / healthy" would mislead, so only running replicas count.
    states = {r.health for r in replicas if r.status == "running"}
    if not states or states == {""}:
        return "-"
    if len(states) == 1:
        return next(iter(states))
    if "unhealthy" in states:
        return "unhealthy"
    return "mixed"


def _cage_of(objs: Sequence[DesiredObject], live: Sequence[LiveObject]) -> str:
    for o in objs:
        cage = o.config.get("cage")
        if isinstance(cage, Mapping):
            name, level = str(cage.get("name", "")), str(cage.get("level", ""))
            return name if not level or level == name else f"{name} ({level})"
    for lv in live:
        if lv.labels.get(LABEL_CAGE):
            return lv.labels[LABEL_CAGE]
    return ""


def _replica_index(obj: LiveObject) -> int | None:
    raw = obj.labels.get(LABEL_REPLICA, "")
    return int(raw) if raw.isdigit() else None


def compute_status(desired: Sequence[DesiredObject], state: State, live: LiveState, *,
                   cluster: str) -> StatusReport:
    """One row per resource address known to the specs, the state or Podman."""
    by_address: dict[str, list[DesiredObject]] = {}
    for o in desired:
        by_address.setdefault(str(o.address), []).append(o)
    recorded: dict[str, dict[str, Any]] = {}
    for address, res in state.resources.items():
        recorded[address] = dict(res.objects)
    live_by_address: dict[str, list[LiveObject]] = {}
    for lv in live.objects.values():
        if lv.kind is ObjectKind.CONTAINER:
            live_by_address.setdefault(lv.address or lv.labels.get(LABEL_ADDRESS, ""),
                                       []).append(lv)
    addresses = sorted(set(by_address) | set(recorded) | set(live_by_address) - {""})
    rows: list[ResourceStatus] = []
    for address in addresses:
        try:
            addr = Address.parse(address)
        except ValueError:
            addr = Address("?", "?", address)
        want = sorted(by_address.get(address, []), key=lambda o: (o.replica or 0, o.key))
        lives = live_by_address.get(address, [])
        kinds = {o.kind for o in want} | {r.kind for r in recorded.get(address, {}).values()}
        if any(is_job(o.config) for o in want) or (
                not want and any(is_job_labels(lv.labels) for lv in lives)):
            rows.append(_job_row(addr, address, want, lives))
        elif lives or ObjectKind.CONTAINER in kinds:
            rows.append(_container_row(addr, address, want, lives))
        else:
            rows.append(_simple_row(addr, address, want, recorded.get(address, {})))
    return StatusReport(cluster, tuple(rows), live.api_calls, state.serial)


def _container_row(addr: Address, address: str, want: Sequence[DesiredObject],
                   lives: Sequence[LiveObject]) -> ResourceStatus:
    live_by_name = {lv.name: lv for lv in lives}
    replicas: list[ReplicaStatus] = []
    for o in want:
        if o.kind is not ObjectKind.CONTAINER:
            continue
        lv = live_by_name.pop(o.name, None)
        if lv is None:
            replicas.append(ReplicaStatus(o.name, o.replica, "", "missing", "", False))
        else:
            replicas.append(ReplicaStatus(lv.name, o.replica, lv.id, lv.status, lv.health,
                                          _ready(lv), lv.ports, lv.exit_code))
    extra = sorted(live_by_name.values(), key=lambda lv: (_replica_index(lv) or 0, lv.name))
    replicas.extend(ReplicaStatus(lv.name, _replica_index(lv), lv.id, lv.status, lv.health,
                                  _ready(lv), lv.ports, lv.exit_code) for lv in extra)
    desired = sum(1 for o in want if o.kind is ObjectKind.CONTAINER)
    ready = sum(1 for r in replicas[:desired] if r.ready) if desired else 0
    running = sum(1 for r in replicas if r.status == "running")
    if desired == 0:
        status = "orphaned"
    elif ready == desired and len(replicas) == desired:
        status = "running"
    elif ready == 0 and running == 0:
        status = "down"
    else:
        status = "degraded"
    ports = tuple(dict.fromkeys(p for r in replicas for p in r.ports))
    return ResourceStatus(address, addr.kind, addr.namespace, addr.name, desired, ready,
                          running, status, _health_summary(replicas), ports,
                          _cage_of(want, lives), tuple(replicas))


_JOB_FINISHED = frozenset({"exited", "stopped"})
_JOB_NOT_STARTED = frozenset({"created", "configured", "initialized"})


def _job_state(lv: LiveObject | None) -> str:
    if lv is None or lv.status in _JOB_NOT_STARTED:
        return "pending"
    if lv.status in _JOB_FINISHED:
        return "completed" if (lv.exit_code or 0) == 0 else "failed"
    if lv.status in ("running", "paused", "restarting"):
        return "in-progress"
    return "failed"  # dead, removing, unknown: the next apply runs it again


def _job_row(addr: Address, address: str, want: Sequence[DesiredObject],
             lives: Sequence[LiveObject]) -> ResourceStatus:
    """A Job: its run-once container, judged by how its run ended (not by running)."""
    live_by_name = {lv.name: lv for lv in lives}
    replicas: list[ReplicaStatus] = []
    status = "orphaned"
    for o in want:
        lv = live_by_name.pop(o.name, None)
        status = _job_state(lv)
        if lv is None:
            replicas.append(ReplicaStatus(o.name, o.replica, "", "missing", "", False))
        else:
            replicas.append(ReplicaStatus(lv.name, o.replica, lv.id, lv.status, "",
                                          status == "completed", lv.ports, lv.exit_code))
    replicas.extend(ReplicaStatus(lv.name, _replica_index(lv), lv.id, lv.status, "",
                                  False, lv.ports, lv.exit_code)
                    for lv in sorted(live_by_name.values(), key=lambda x: x.name))
    desired = len(want)
    ready = sum(1 for r in replicas[:desired] if r.ready)
    running = sum(1 for r in replicas if r.status == "running")
    return ResourceStatus(address, addr.kind, addr.namespace, addr.name, desired, ready,
                          running, status, "-", (), _cage_of(want, lives), tuple(replicas))


def _simple_row(addr: Address, address: str, want: Sequence[DesiredObject],
                recorded: Mapping[str, Any]) -> ResourceStatus:
    desired = len(want)
    present = len(recorded)
    if desired and present >= desired:
        status = "present"
    elif desired:
        status = "pending" if present == 0 else "missing"
    else:
        status = "orphaned"
    return ResourceStatus(address, addr.kind, addr.namespace, addr.name, desired,
                          min(present, desired) if desired else 0, 0, status, "-")


def render_status_table(report: StatusReport, *, show_namespace: bool = True,
                        detailed: bool = False) -> str:
    """A kubectl-style table; `detailed` adds one line per replica."""
    if not report.resources:
        return f"No resources in cluster {report.cluster}.\n"
    head = (["NAMESPACE"] if show_namespace else []) + [
        "KIND", "NAME", "READY", "STATUS", "HEALTH", "PORTS", "CAGE"] + (
        ["LAST CHECK"] if detailed else [])
    rows: list[list[str]] = []
    for r in report.resources:
        ready = f"{r.ready}/{r.desired}"
        row = ([r.namespace] if show_namespace else []) + [
            r.kind, r.name, ready, r.status, r.health, ",".join(r.ports) or "-",
            r.cage or "-"] + ([""] if detailed else [])
        rows.append(row)
        if detailed:
            for rep in r.replicas:
                detail = ([""] if show_namespace else []) + [
                    "", f"└ {rep.name}", "yes" if rep.ready else "no",
                    rep.status + (f" ({rep.exit_code})" if rep.exit_code not in (None, 0)
                                  else ""),
                    rep.health or "-", ",".join(rep.ports) or "-", "",
                    clip(rep.health_output, STATUS_CLIP) if rep.health_output else ""]
                rows.append(detail)
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip()
             for x in [head, *rows]]
    return "\n".join(lines) + "\n"


def refresh_health(runtime: PodmanRuntime, report: StatusReport) -> StatusReport:
    """Run each running container's healthcheck once and recompute readiness from it
    (`cluster health --detailed`: what is true now, not what apply last saw)."""
    rows: list[ResourceStatus] = []
    for r in report.resources:
        if not r.replicas:
            rows.append(r)
            continue
        reps: list[ReplicaStatus] = []
        for old in r.replicas:
            rep = old
            if old.status == "running" and old.health:
                try:
                    res = runtime.run_healthcheck(old.name)
                    rep = replace(old, health=res.status or old.health,
                                  health_output=res.output,
                                  ready=res.running and res.status == "healthy")
                except PodmanError as exc:
                    rep = replace(old, health_output=exc.message)
            reps.append(rep)
        ready = sum(1 for x in reps[:r.desired] if x.ready) if r.desired else 0
        status = r.status
        if r.desired and r.status in ("running", "degraded", "down"):
            status = ("running" if ready == r.desired and len(reps) == r.desired
                      else "down" if ready == 0 else "degraded")
        rows.append(replace(r, replicas=tuple(reps), ready=ready, status=status))
    return StatusReport(report.cluster, tuple(rows), report.api_calls, report.serial)
