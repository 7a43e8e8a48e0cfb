"""Status: what runs now, per resource, from one labelled list call (pure).

Owns `compute_status` (desired objects + recorded state + live containers → one row
per resource: replicas ready/desired, health, ports, cage) and its table/JSON forms,
and the rows and tables of `get pods|jobs|networks|volumes` (`pod_rows`, `named_rows`,
`render_table`) and `describe` (`render_description`).
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

if TYPE_CHECKING:
    from docklock.runtime.podman import PodmanRuntime
    from docklock.runtime.verbs import ContainerRow
    from docklock.state import State

STATUS_FORMAT = 1
# The label `docklock run` puts on a Job's container (docklock.cage.jobs.LABEL_JOB_RUN,
# not imported: that module pulls in the cage code).
_LABEL_JOB_RUN = "io.docklock.job-run"
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


# ---------------------------------------------------------------- get pods / jobs


@dataclass(frozen=True)
class PodRow:
    """One container (a replica, or a Job's run-once container), like a kubectl pod."""

    name: str  # the Podman container name
    namespace: str
    kind: str
    resource: str  # the resource's name
    address: str
    replica: int | None
    id: str
    state: str  # Podman's: running | exited | created | paused | ...
    health: str
    ready: bool
    restarts: int = 0
    started_at: float = 0.0
    created_at: float = 0.0
    image: str = ""
    ports: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    cage: str = ""
    exit_code: int | None = None

    @property
    def status(self) -> str:
        """Running | Running (unhealthy) | Completed | Error (N) | Created | ..."""
        if self.state == "running":
            return "Running" if self.health in ("", "healthy") else f"Running ({self.health})"
        if self.state in ("exited", "stopped"):
            return "Completed" if not self.exit_code else f"Error ({self.exit_code})"
        return self.state.capitalize() or "Unknown"

    def age(self, now: float) -> float:
        since = self.started_at or self.created_at
        return max(0.0, now - since) if since else 0.0

    def to_dict(self, now: float = 0.0) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "kind": self.kind,
                "resource": self.resource, "address": self.address, "replica": self.replica,
                "id": self.id, "state": self.state, "status": self.status,
                "health": self.health, "ready": self.ready, "restarts": self.restarts,
                "started_at": self.started_at, "created_at": self.created_at,
                "age_seconds": round(self.age(now), 1) if now else None,
                "image": self.image, "ports": list(self.ports),
                "networks": list(self.networks), "cage": self.cage,
                "exit_code": self.exit_code}


def pod_rows(containers: Sequence[ContainerRow], desired: Sequence[DesiredObject], *,
             lineage: str | None = None) -> tuple[PodRow, ...]:
    """A PodRow per container of the cluster (another workspace's lineage left out),
    sorted by namespace, resource, replica."""
    from docklock.objects import LABEL_LINEAGE

    by_name = {o.name: o for o in desired if o.kind is ObjectKind.CONTAINER}
    by_address = {str(o.address): o for o in desired if o.kind is ObjectKind.CONTAINER}
    rows: list[PodRow] = []
    for c in containers:
        owner = c.labels.get(LABEL_LINEAGE)
        if owner not in (None, "") and owner != lineage:
            continue
        raw = c.labels.get(LABEL_ADDRESS, "")
        try:
            addr = Address.parse(raw)
        except ValueError:
            addr = Address("?", "?", raw or c.name)
        want = by_name.get(c.name)
        if want is None and c.labels.get(_LABEL_JOB_RUN):
            # A `docklock run` container (docklock-job-NS-NAME-RUNID): its Job's cage.
            want = by_address.get(raw)
        replica = _replica_index(LiveObject(c.name, ObjectKind.CONTAINER, c.name, c.id,
                                            c.labels))
        job = is_job_labels(c.labels)
        if job:
            ready = c.state in ("exited", "stopped") and not c.exit_code
        else:
            ready = c.state == "running" and c.health in ("", "healthy")
        rows.append(PodRow(
            c.name, addr.namespace, addr.kind, addr.name, str(addr), replica, c.id, c.state,
            c.health, ready, c.restarts, c.started_at, c.created_at, c.image, c.ports,
            c.networks, _cage_of([want] if want else [],
                                 [LiveObject(c.name, ObjectKind.CONTAINER, c.name, c.id,
                                             c.labels)]), c.exit_code))
    return tuple(sorted(rows, key=lambda r: (r.namespace, r.resource, r.replica or 0,
                                             r.name)))


def format_age(seconds: float) -> str:
    """kubectl's AGE: 45s, 12m, 3h, 5d (a dash when unknown)."""
    if seconds <= 0:
        return "-"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 2 * 3600:
        return f"{s // 60}m"
    if s < 48 * 3600:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def render_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip()
                     for x in [head, *rows]) + "\n"


def render_pods_table(rows: Sequence[PodRow], *, now: float, show_namespace: bool = False,
                      wide: bool = False, node: str = "") -> str:
    """NAME READY STATUS RESTARTS AGE (wide: + IMAGE PORTS NETWORKS NODE CAGE)."""
    if not rows:
        return "No pods found.\n"
    head = (["NAMESPACE"] if show_namespace else []) + [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE"] + (
        ["IMAGE", "PORTS", "NETWORKS", "NODE", "CAGE"] if wide else [])
    body = [([r.namespace] if show_namespace else []) + [
        r.name, "1/1" if r.ready else "0/1", r.status, str(r.restarts),
        format_age(r.age(now))] + ([r.image or "-", ",".join(r.ports) or "-",
                                    ",".join(r.networks) or "-", node or "-",
                                    r.cage or "-"] if wide else [])
            for r in rows]
    return render_table(head, body)


def render_jobs_table(rows: Sequence[PodRow], *, now: float, show_namespace: bool = False,
                      wide: bool = False) -> str:
    """NAME STATUS EXIT CAGE AGE (wide: + CONTAINER IMAGE)."""
    if not rows:
        return "No jobs found.\n"
    head = (["NAMESPACE"] if show_namespace else []) + [
        "NAME", "STATUS", "EXIT", "CAGE", "AGE"] + (["CONTAINER", "IMAGE"] if wide else [])
    body = [([r.namespace] if show_namespace else []) + [
        r.resource, r.status, "-" if r.exit_code is None else str(r.exit_code),
        r.cage or "-", format_age(r.age(now))] + ([r.name, r.image or "-"] if wide else [])
            for r in rows]
    return render_table(head, body)


# ---------------------------------------------------------------- get networks / volumes


@dataclass(frozen=True)
class NamedRow:
    """A network or a volume: asked for by the specs, recorded, there in Podman?"""

    kind: str  # network | volume
    namespace: str
    resource: str
    address: str
    podman_name: str
    status: str  # present | missing | pending | orphaned
    id: str = ""
    recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.resource,
                "address": self.address, "podman_name": self.podman_name,
                "status": self.status, "id": self.id, "recorded": self.recorded}


def named_rows(kind: ObjectKind, desired: Sequence[DesiredObject], state: State,
               live: LiveState, *, namespace: str | None = None) -> tuple[NamedRow, ...]:
    """One row per network (or volume) the specs, the state or Podman know (pure)."""
    want = {o.name: o for o in desired if o.kind is kind}
    recorded: dict[str, tuple[str, str]] = {}
    for address, res in state.resources.items():
        for obj in res.objects.values():
            if obj.kind is kind:
                recorded[obj.name] = (address, obj.id)
    there = {o.name: o for o in live.objects.values() if o.kind is kind}
    rows: list[NamedRow] = []
    for name in sorted(set(want) | set(recorded) | set(there)):
        if name in want:
            address = str(want[name].address)
        elif name in recorded:
            address = recorded[name][0]
        else:
            address = there[name].labels.get(LABEL_ADDRESS, "")
        try:
            addr = Address.parse(address)
        except ValueError:
            addr = Address(kind.value.capitalize(), "?", name)
        if namespace is not None and addr.namespace != namespace:
            continue
        if name not in want:
            status = "orphaned"
        elif name in there:
            status = "present"
        elif name in recorded:
            status = "missing"
        else:
            status = "pending"
        obj_id = there[name].id if name in there else recorded.get(name, ("", ""))[1]
        rows.append(NamedRow(kind.value, addr.namespace, addr.name, str(addr), name, status,
                             obj_id, name in recorded))
    return tuple(rows)


def render_named_table(rows: Sequence[NamedRow], *, what: str, show_namespace: bool = False,
                       wide: bool = False) -> str:
    """NAME PODMAN-NAME STATUS (wide: + ID RECORDED)."""
    if not rows:
        return f"No {what} found.\n"
    head = (["NAMESPACE"] if show_namespace else []) + ["NAME", "PODMAN NAME", "STATUS"] + (
        ["ID", "RECORDED"] if wide else [])
    body = [([r.namespace] if show_namespace else []) + [r.resource, r.podman_name, r.status]
            + ([_short(r.id, r.podman_name), "yes" if r.recorded else "no"] if wide else [])
            for r in rows]
    return render_table(head, body)


def _short(object_id: str, name: str) -> str:
    """A hex id cut to 12 like podman's tables; a volume's id is its name: a dash."""
    if not object_id or object_id == name:
        return "-"
    return object_id[:12]


# ---------------------------------------------------------------- output formats


def to_yaml(value: Any) -> str:
    """Block-style YAML of plain data (keys in the order given)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buf = io.StringIO()
    yaml.dump(value, buf)
    return buf.getvalue()


# ---------------------------------------------------------------- describe


def render_description(d: Mapping[str, Any], *, now: float = 0.0) -> str:
    """kubectl-describe-style text of `docklock.engine.describe.Description.to_dict()`."""
    out: list[str] = []

    def kv(key: str, value: Any, indent: int = 0) -> None:
        out.append(f"{' ' * indent}{key + ':':<18}"
                   f"{' ' if len(key) >= 17 else ''}{'' if value is None else value}")

    kv("Name", d.get("name"))
    kv("Namespace", d.get("namespace"))
    kv("Kind", d.get("kind"))
    kv("Address", d.get("address"))
    kv("Source", d.get("source") or "(not in the specs)")
    labels = d.get("labels") or {}
    kv("Labels", ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
    spec = d.get("spec")
    out.append("Spec:")
    if spec:
        out.extend("  " + line for line in to_yaml(spec).rstrip("\n").splitlines())
    else:
        out.append("  <none>")
    cage = d.get("cage")
    if cage:
        out.append("Cage:")
        for key in ("name", "level", "seccomp", "cap_drop", "cap_add", "no_new_privileges",
                    "read_only", "network_none", "tmpfs", "memory", "pids_limit", "cpus"):
            value = cage.get(key)
            if isinstance(value, list):
                value = ",".join(value) or "-"
            elif isinstance(value, dict):
                value = ",".join(f"{k}:{v}" for k, v in value.items()) or "-"
            kv(key.replace("_", " ").capitalize(), "-" if value is None else value, 2)
    out.append("Objects:")
    objects = d.get("objects") or []
    if not objects:
        out.append("  <none>")
    for obj in objects:
        digest = str(obj.get("config_hash") or "")[:12]
        out.append(f"  {obj.get('kind')} {obj.get('name')} (hash {digest})")
        for key, value in (obj.get("fields") or {}).items():
            shown = value
            if isinstance(value, list):
                shown = " ".join(str(v) for v in value) if key in ("command", "entrypoint") \
                    else ", ".join(str(v) for v in value)
            if shown in (None, "", [], {}):
                continue
            kv(key, shown, 4)
    replicas = d.get("replicas") or []
    out.append("Replicas:")
    if not replicas:
        out.append("  <none>")
    for rep in replicas:
        out.append(f"  {rep.get('name')}:")
        kv("Replica", "-" if rep.get("replica") is None else rep.get("replica"), 4)
        kv("Id", (rep.get("id") or "-")[:12], 4)
        status = rep.get("status") or "missing"
        if rep.get("exit_code") not in (None, 0):
            status += f" (exit {rep.get('exit_code')})"
        kv("Status", status, 4)
        kv("Health", rep.get("health") or "-", 4)
        kv("Started", rep.get("started") or "-", 4)
        kv("Restarts", rep.get("restarts", 0), 4)
        kv("Ports", ", ".join(rep.get("ports") or []) or "-", 4)
        ips = rep.get("ips") or {}
        kv("IPs", ", ".join(f"{k}={v}" for k, v in ips.items()) or "-", 4)
    entries = d.get("entries") or []
    out.append(f"Ledger (last {len(entries)}):")
    if not entries:
        out.append("  <none>")
    for e in entries:
        out.append(f"  #{e.get('seq')} {e.get('time')} {e.get('type')}: {e.get('summary')}")
    if d.get("ledger_problem"):
        out.append(f"  (ledger: {d['ledger_problem']})")
    return "\n".join(out) + "\n"
