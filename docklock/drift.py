"""Drift: what changed in Podman behind DockLock's back (a read-only comparison).

Owns `detect_drift`, a pure function of the recorded state, the live state (one
labelled list call per kind) and, optionally, the desired objects rendered from the
specs; and the text rendering of its `DriftReport`.

Three views are kept apart (Terraform's "prior state" vs "refreshed state"):
- drift proper, `DriftReport.items`: live Podman differs from what the last apply
  recorded — an object removed, a container stopped, an object changed out of band
  (config-hash label, id, image, name, network membership and aliases, published
  ports, mounts, limits), unhealthy, or a labelled object no apply recorded
  ("unmanaged", e.g. a `podman run` that copied our labels, or a crash between create
  and save);
- pending changes, `DriftReport.pending`: the specs differ from the recorded state
  (not applied yet). They are reported but are not drift: git already knows them;
- a Job's run-once container is meant to exit: exited 0 is not drift, running is not
  either (it is on its way), exited non-zero is `failed` (the next apply re-runs it),
  and created but never started is `stopped`;
- nothing here writes: no state; the only Podman reads go through `read_live`, the one
  live view that `drift` and `cluster health` share (so they agree by construction).

Which field drift can see, and from where (Podman 4.3, measured):
- the list call: running state, health, name, image, config-hash label, network
  membership (`podman network connect|disconnect`), published ports, mount
  destinations;
- an inspect of each running recorded container (`read_live(..., inspect=True)`):
  network aliases (`network connect --alias`), the restart policy and memory/CPU/pids
  limits as Podman's container config holds them. Podman 4.3's `podman update`
  changes the cgroup but neither inspect nor stats report the new value, so there it
  is not observable; later Podman versions record it in the config and drift then
  reports it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from docklock.objects import (
    LABEL_ADDRESS,
    ContainerConfig,
    ContainerDetail,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
    is_managed,
    looks_like_id,
    same_id,
    short_id,
)
from docklock.plan import LiveReader as PlanReader
from docklock.render import is_job, is_job_labels
from docklock.state import RecordedObject, State

DRIFT_FORMAT = 1
_UP = frozenset({"running"})
_JOB_FINISHED = frozenset({"exited", "stopped"})
_JOB_ON_ITS_WAY = frozenset({"running"})


class DriftKind(StrEnum):
    REMOVED = "removed"  # recorded, gone from Podman
    STOPPED = "stopped"  # recorded container no longer running
    CHANGED = "changed"  # live config hash, id or image differs from the record
    UNMANAGED = "unmanaged"  # labelled with this cluster but not in state
    FAILED = "failed"  # a job's container exited non-zero
    UNHEALTHY = "unhealthy"  # runs, but its last healthcheck failed


class PendingKind(StrEnum):
    NOT_APPLIED = "not-applied"  # in the specs, not recorded
    SPEC_CHANGED = "spec-changed"  # desired config hash differs from the record
    NOT_IN_SPECS = "not-in-specs"  # recorded, no longer in the specs
    SCALED_DOWN = "scaled-down"  # a recorded replica beyond the service's `replicas`


@dataclass(frozen=True)
class DriftItem:
    kind: DriftKind
    key: str
    object_kind: ObjectKind
    name: str
    address: str
    details: tuple[str, ...] = ()
    recorded_id: str | None = None
    live_id: str | None = None
    live_status: str = ""
    # The fields that differ, e.g. ("networks", "ports"): what a script keys on.
    fields: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key,
                "object_kind": self.object_kind.value, "name": self.name,
                "address": self.address, "details": list(self.details),
                "fields": list(self.fields),
                "recorded_id": self.recorded_id, "live_id": self.live_id,
                "live_status": self.live_status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftItem:
        return cls(DriftKind(d["kind"]), d["key"], ObjectKind(d["object_kind"]), d["name"],
                   d["address"], tuple(d.get("details", ())), d.get("recorded_id"),
                   d.get("live_id"), d.get("live_status", ""), tuple(d.get("fields", ())))


@dataclass(frozen=True)
class PendingItem:
    kind: PendingKind
    key: str
    object_kind: ObjectKind
    name: str
    address: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key,
                "object_kind": self.object_kind.value, "name": self.name,
                "address": self.address}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PendingItem:
        return cls(PendingKind(d["kind"]), d["key"], ObjectKind(d["object_kind"]), d["name"],
                   d["address"])


@dataclass(frozen=True)
class DriftReport:
    """The outcome of one drift check. `has_drift` decides the exit code (2)."""

    cluster: str
    items: tuple[DriftItem, ...] = ()
    pending: tuple[PendingItem, ...] = ()
    checked: int = 0  # recorded objects compared with Podman
    live_kinds: tuple[ObjectKind, ...] = ()
    api_calls: int = 0
    serial: int = 0
    format: int = DRIFT_FORMAT
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def has_drift(self) -> bool:
        return bool(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "cluster": self.cluster, "drift": self.has_drift,
                "serial": self.serial, "checked": self.checked,
                "live_kinds": [k.value for k in self.live_kinds],
                "api_calls": self.api_calls,
                "counts": {k.value: sum(1 for i in self.items if i.kind is k)
                           for k in DriftKind},
                "items": [i.to_dict() for i in self.items],
                "pending": [p.to_dict() for p in self.pending]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        return cls(d["cluster"], tuple(DriftItem.from_dict(i) for i in d.get("items", ())),
                   tuple(PendingItem.from_dict(p) for p in d.get("pending", ())),
                   int(d.get("checked", 0)),
                   tuple(ObjectKind(k) for k in d.get("live_kinds", ())),
                   int(d.get("api_calls", 0)), int(d.get("serial", 0)),
                   int(d.get("format", DRIFT_FORMAT)))


def same_image_ref(a: str, b: str) -> bool:
    """`busybox:1` and `localhost/busybox:1` name the same image for drift purposes."""
    if not a or not b or a == b:
        return True
    return a.endswith("/" + b) or b.endswith("/" + a)


def _image_drift(rec: RecordedObject, live: LiveObject) -> str | None:
    if not live.image:
        return None
    if looks_like_id(live.image):
        if rec.image_id and not same_id(live.image, rec.image_id):
            return (f"runs image {short_id(live.image)}, recorded image "
                    f"{short_id(rec.image_id)}")
        return None
    wanted = str(rec.config.get("image", "")) if rec.config else ""
    if wanted and not same_image_ref(live.image, wanted):
        return f"runs image {live.image}, recorded {wanted}"
    return None


def detect_drift(
    state: State,
    live: LiveState,
    *,
    cluster: str,
    desired: Sequence[DesiredObject] | None = None,
    live_kinds: Collection[ObjectKind] | None = None,
) -> DriftReport:
    """Compare recorded state with live Podman (and the specs, for `pending`).

    `live_kinds` says which object kinds the live view listed (default: containers
    only, the one list call); a recorded object of another kind is not judged.
    """
    kinds = frozenset(live_kinds) if live_kinds is not None else frozenset(
        {ObjectKind.CONTAINER})
    recorded = state.objects_by_key()
    items: list[DriftItem] = []
    renamed_to: set[str] = set()  # live keys already reported as a recorded object renamed
    checked = 0
    for key in sorted(recorded):
        address, rec = recorded[key]
        if rec.kind not in kinds:
            continue
        checked += 1
        lv = live.objects.get(key)
        if lv is None:
            moved = _renamed(rec, live, recorded, kinds, cluster)
            if moved is not None:
                renamed_to.add(moved.key)
                items.append(DriftItem(
                    DriftKind.CHANGED, key, rec.kind, rec.name, address,
                    (f"renamed to {moved.name} outside DockLock (`podman rename`)",),
                    rec.id, moved.id, moved.status, ("name",)))
                continue
            items.append(DriftItem(DriftKind.REMOVED, key, rec.kind, rec.name, address,
                                   (f"recorded {rec.kind.value} {short_id(rec.id)} is gone "
                                    "from Podman",), rec.id, None, ""))
            continue
        found: list[tuple[str, str]] = []  # (field, what differs)
        if lv.config_hash and lv.config_hash != rec.config_hash:
            found.append(("config-hash", f"config-hash label {short_id(lv.config_hash)}, "
                                         f"recorded {short_id(rec.config_hash)}"))
        if not same_id(lv.id, rec.id):
            found.append(("id", f"id {short_id(lv.id)}, recorded {short_id(rec.id)} "
                                "(re-created outside DockLock)"))
        if rec.kind is ObjectKind.CONTAINER:
            image = _image_drift(rec, lv)
            if image:
                found.append(("image", image))
            live_address = lv.labels.get(LABEL_ADDRESS)
            if live_address and live_address != address:
                found.append(("address", f"address label {live_address}, recorded {address}"))
            if same_id(lv.id, rec.id):  # a re-created container differs everywhere anyway
                found.extend(container_field_drift(rec, lv))
        if found:
            items.append(DriftItem(DriftKind.CHANGED, key, rec.kind, rec.name, address,
                                   tuple(d for _, d in found), rec.id, lv.id, lv.status,
                                   tuple(dict.fromkeys(f for f, _ in found))))
        if rec.kind is not ObjectKind.CONTAINER:
            continue
        if is_job(rec.config) or is_job_labels(lv.labels):
            job = _job_drift(key, address, rec, lv)
            if job is not None:
                items.append(job)
        elif lv.status not in _UP:
            code = f" (exit code {lv.exit_code})" if lv.exit_code is not None else ""
            items.append(DriftItem(DriftKind.STOPPED, key, rec.kind, rec.name, address,
                                   (f"container is {lv.status or 'not running'}{code}",),
                                   rec.id, lv.id, lv.status, ("status",)))
        elif lv.health == "unhealthy":
            items.append(DriftItem(DriftKind.UNHEALTHY, key, rec.kind, rec.name, address,
                                   ("container runs but its last healthcheck failed",),
                                   rec.id, lv.id, lv.status, ("health",)))
    for key in sorted(live.objects):
        lv = live.objects[key]
        if (key in recorded or key in renamed_to or lv.kind not in kinds
                or not is_managed(lv.labels, cluster)):
            continue
        items.append(DriftItem(DriftKind.UNMANAGED, key, lv.kind, lv.name,
                               lv.labels.get(LABEL_ADDRESS, ""),
                               ("carries this cluster's DockLock labels but no apply "
                                "recorded it",), None, lv.id, lv.status))
    pending = _pending(desired, recorded) if desired is not None else ()
    return DriftReport(cluster, tuple(items), pending, checked, tuple(sorted(kinds)),
                       live.api_calls, state.serial)


def _renamed(rec: RecordedObject, live: LiveState,
             recorded: Mapping[str, tuple[str, RecordedObject]],
             kinds: Collection[ObjectKind], cluster: str) -> LiveObject | None:
    """The live object that is `rec` under another name (same id), if any."""
    if not rec.id:
        return None
    for key in sorted(live.objects):
        lv = live.objects[key]
        if (key not in recorded and lv.kind is rec.kind and lv.kind in kinds and lv.id
                and same_id(lv.id, rec.id) and is_managed(lv.labels, cluster)):
            return lv
    return None


def _recorded_container(rec: RecordedObject) -> ContainerConfig | None:
    """The container config apply created `rec` from (None for a partial record)."""
    try:
        return ContainerConfig.from_dict(rec.config)
    except (KeyError, TypeError, ValueError):
        return None


def container_field_drift(rec: RecordedObject, lv: LiveObject) -> list[tuple[str, str]]:
    """(field, what differs) for each field Podman lets someone change after create.

    Judged against the recorded config (what apply asked Podman for), and only for
    fields the live view observed (None / no detail: not judged).
    """
    cfg = _recorded_container(rec)
    if cfg is None:
        return []
    found: list[tuple[str, str]] = []
    if lv.networks is not None:
        found.extend(("networks", d) for d in _network_drift(cfg, lv.networks))
    if lv.ports is not None and lv.status in _UP:
        # A stopped container publishes nothing: that is "stopped", not a port change.
        found.extend(("ports", d) for d in _port_drift(cfg, lv.ports))
    if lv.mounts is not None:
        missing = sorted({m.target for m in cfg.mounts} - set(lv.mounts))
        if missing:
            found.append(("mounts", f"{', '.join(missing)} not mounted (recorded)"))
    if lv.detail is not None:
        found.extend(_detail_drift(cfg, lv, lv.detail))
    return found


def _network_drift(cfg: ContainerConfig, live: Sequence[str]) -> list[str]:
    have = set(live)
    if cfg.cage.network_none:
        extra = sorted(have - {"none"})
        return [f"connected to network {', '.join(extra)}, but its cage allows no "
                "network"] if extra else []
    if not cfg.networks:
        # Created on Podman's default network, whose name Podman's configuration decides.
        if len(have) == 1:
            return []
        return [f"connected to {len(have)} networks ({', '.join(sorted(have)) or 'none'}), "
                "created on Podman's default network only"]
    out: list[str] = []
    missing = sorted(set(cfg.networks) - have)
    extra = sorted(have - set(cfg.networks))
    if missing:
        out.append(f"not connected to network {', '.join(missing)} (recorded; "
                   "disconnected outside DockLock)")
    if extra:
        out.append(f"connected to network {', '.join(extra)}, not recorded (connected "
                   "outside DockLock)")
    return out


def _port_key(text: str) -> tuple[str, str, str, str] | None:
    """`127.0.0.1:8080->80/tcp` → (host ip, host port, container port, protocol)."""
    left, sep, right = text.partition("->")
    if not sep:
        return None
    host_ip, _, host_port = left.rpartition(":")
    container, _, proto = right.partition("/")
    return host_ip, host_port, container, proto or "tcp"


def _port_drift(cfg: ContainerConfig, live: Sequence[str]) -> list[str]:
    if cfg.cage.network_none:
        return [f"publishes {p}, but its cage allows no network" for p in live]
    have = [k for k in (_port_key(p) for p in live) if k is not None]
    out: list[str] = []
    for p in cfg.ports:
        want = (p.hostIp, "" if p.host is None else str(p.host), str(p.container), p.protocol)
        match = next((k for k in have if k[2:] == want[2:] and k[0] == want[0]
                      and (not want[1] or k[1] == want[1])), None)
        if match is None:
            host = f"{p.hostIp}:{p.host}" if p.host is not None else p.hostIp
            out.append(f"port {host}->{p.container}/{p.protocol} not published (recorded)")
        else:
            have.remove(match)
    out.extend(f"publishes {ip}:{hp}->{cp}/{proto}, not recorded"
               for ip, hp, cp, proto in have)
    return out


def _detail_drift(cfg: ContainerConfig, lv: LiveObject,
                  detail: ContainerDetail) -> list[tuple[str, str]]:
    from docklock.cage.podman_args import CPU_PERIOD_US
    from docklock.errors import DockLockError
    from docklock.units import memory_bytes

    found: list[tuple[str, str]] = []
    memory = cfg.memory or cfg.cage.memory
    try:
        want_memory = memory_bytes(memory) if memory else 0
    except DockLockError:
        want_memory = detail.memory  # a record drift cannot read: not judged
    if detail.memory != want_memory:
        found.append(("memory", f"memory limit {detail.memory or 'none'}, recorded "
                                f"{want_memory or 'none'} (`podman update`)"))
    want_quota = int(cfg.cpus * CPU_PERIOD_US) if cfg.cpus else 0
    if detail.cpu_quota != want_quota and (want_quota or detail.cpu_quota > 0):
        found.append(("cpus", f"CPU quota {detail.cpu_quota or 'none'}, recorded "
                              f"{want_quota or 'none'} (`podman update`)"))
    want_pids = cfg.pids_limit or cfg.cage.pids_limit
    if want_pids and detail.pids_limit != want_pids:
        found.append(("pids", f"pids limit {detail.pids_limit}, recorded {want_pids}"))
    want_restart = cfg.restart.partition(":")[0]
    have_restart = detail.restart or "no"
    if (want_restart or "no") != have_restart:
        found.append(("restart", f"restart policy {have_restart}, recorded "
                                 f"{want_restart or 'no'}"))
    # Podman's automatic aliases, and the service names DockLock gave it (docs/adr/0016).
    own = {cfg.name, lv.id[:12], *cfg.aliases}
    for net in sorted(detail.aliases):
        extra = sorted(set(detail.aliases[net]) - own)
        if extra:
            found.append(("aliases", f"network {net}: alias {', '.join(extra)} added "
                                     "outside DockLock"))
        missing = [a for a in cfg.aliases if a not in detail.aliases[net]]
        if missing and net in cfg.networks:
            found.append(("aliases", f"network {net}: alias {', '.join(missing)} missing "
                                     "(recorded; reconnected outside DockLock)"))
    return found


class LiveReader(PlanReader, Protocol):
    """What `read_live` needs from a Podman connection (PodmanRuntime has it): plan's
    refresh plus the inspect of what no list shows."""

    def container_details(
            self, names: Iterable[str]) -> tuple[dict[str, ContainerDetail], int]: ...


def read_live(reader: LiveReader, cluster: str, state: State,
              kinds: Collection[ObjectKind], *,
              inspect: bool = True) -> tuple[LiveState, frozenset[ObjectKind]]:
    """The live view `drift` and `cluster health` judge: plan's refresh (one list call
    per kind in use) plus, with `inspect`, one inspect per running recorded container
    for the fields no list shows (aliases, limits). `LiveState.api_calls` counts all."""
    from docklock.plan import owned_view, refresh_live

    live, listed = refresh_live(reader, cluster, kinds)
    # Another workspace with the same cluster name (its own lineage) is not drift here.
    live = owned_view(live, state)
    if not inspect:
        return live, listed
    recorded = {rec.name for _, rec in state.objects_by_key().values()
                if rec.kind is ObjectKind.CONTAINER}
    names = sorted(lv.name for lv in live.objects.values()
                   if lv.kind is ObjectKind.CONTAINER and lv.name in recorded
                   and lv.status in _UP)
    if not names:
        return live, listed
    details, calls = reader.container_details(names)
    objects = {key: (replace(lv, detail=details[lv.name])
                     if lv.kind is ObjectKind.CONTAINER and lv.name in details else lv)
               for key, lv in live.objects.items()}
    return LiveState(objects, live.api_calls + calls), listed


def _job_drift(key: str, address: str, rec: RecordedObject,
               lv: LiveObject) -> DriftItem | None:
    """A job container is judged by how its run ended, not by whether it runs."""
    if lv.status in _JOB_FINISHED:
        code = lv.exit_code or 0
        if code == 0:
            return None
        return DriftItem(DriftKind.FAILED, key, rec.kind, rec.name, address,
                         (f"job exited with code {code}",), rec.id, lv.id, lv.status,
                         ("exit-code",))
    if lv.status in _JOB_ON_ITS_WAY:
        return None
    return DriftItem(DriftKind.STOPPED, key, rec.kind, rec.name, address,
                     (f"job container is {lv.status or 'in an unknown state'}, never ran "
                      "to completion",), rec.id, lv.id, lv.status, ("status",))


def _pending(desired: Sequence[DesiredObject],
             recorded: Mapping[str, tuple[str, RecordedObject]]) -> tuple[PendingItem, ...]:
    out: list[PendingItem] = []
    wanted = {o.key: o for o in desired}
    addresses = {str(o.address) for o in desired}
    for key in sorted(wanted):
        obj = wanted[key]
        rec = recorded.get(key)
        if rec is None:
            out.append(PendingItem(PendingKind.NOT_APPLIED, key, obj.kind, obj.name,
                                   str(obj.address)))
        elif rec[1].config_hash != obj.config_hash:
            out.append(PendingItem(PendingKind.SPEC_CHANGED, key, obj.kind, obj.name,
                                   str(obj.address)))
    for key in sorted(recorded):
        if key not in wanted:
            address, rec_obj = recorded[key]
            kind = (PendingKind.SCALED_DOWN if rec_obj.kind is ObjectKind.CONTAINER
                    and address in addresses else PendingKind.NOT_IN_SPECS)
            out.append(PendingItem(kind, key, rec_obj.kind, rec_obj.name, address))
    return tuple(out)


_WORD = {DriftKind.REMOVED: "removed", DriftKind.STOPPED: "stopped",
         DriftKind.CHANGED: "changed out of band", DriftKind.UNMANAGED: "unmanaged",
         DriftKind.FAILED: "failed", DriftKind.UNHEALTHY: "unhealthy"}
# Changes that keep the config-hash label: `plan` sees no change for them, so the way
# back is a forced re-create of the recorded address.
_REPLACE_FIELDS = frozenset({"networks", "aliases", "ports", "mounts", "memory", "cpus",
                             "pids", "restart", "health"})
_PENDING_WORD = {PendingKind.NOT_APPLIED: "in the specs, not applied yet",
                 PendingKind.SPEC_CHANGED: "spec changed since the last apply",
                 PendingKind.NOT_IN_SPECS: "recorded but no longer in the specs",
                 PendingKind.SCALED_DOWN: "scaled down, not applied yet"}


def render_drift_text(report: DriftReport) -> str:
    """Lines for a person: each drifted object with what differs, then pending changes."""
    lines: list[str] = []
    if report.has_drift:
        lines.append(f"Drift found in cluster {report.cluster}: {len(report.items)} "
                     f"object(s) differ from the recorded state.")
        lines.append("")
        for item in report.items:
            lines.append(f"  {_WORD[item.kind]:<20} {item.object_kind.value} {item.name} "
                         f"({item.address or 'no address label'})")
            lines.extend(f"  {'':<20}   {d}" for d in item.details)
        lines.append("")
        forced = sorted({i.address for i in report.items
                         if i.address and _REPLACE_FIELDS.intersection(i.fields)})
        if forced:
            lines.append("Plan shows no change for the changes made in place or an "
                         "unhealthy container (the config-hash label still matches): "
                         "re-create them with "
                         + " ".join(["`docklock apply"]
                                    + [f"--replace {a}" for a in forced]) + "`.")
        if len(forced) < len({i.address for i in report.items}) or not forced:
            lines.append("Run `docklock plan` to see how apply would restore them, or "
                         "`docklock apply` to do it.")
    else:
        lines.append(f"No drift: the {report.checked} recorded object(s) of cluster "
                     f"{report.cluster} match Podman.")
    if report.pending:
        lines.append("")
        lines.append(f"Pending (not drift): {len(report.pending)} spec change(s) not applied:")
        lines.extend(f"  {_PENDING_WORD[p.kind]:<36} {p.object_kind.value} {p.name} "
                     f"({p.address})" for p in report.pending)
    return "\n".join(lines) + "\n"
