"""Drift: what changed in Podman behind DockLock's back (a read-only comparison).

Owns `detect_drift`, a pure function of the recorded state, the live state (one
labelled list call per kind) and, optionally, the desired objects rendered from the
specs; and the text rendering of its `DriftReport`.

Three views are kept apart (Terraform's "prior state" vs "refreshed state"):
- drift proper, `DriftReport.items`: live Podman differs from what the last apply
  recorded — an object removed, a container stopped, an object changed out of band
  (config-hash label, id, image), or a labelled object no apply recorded ("unmanaged",
  e.g. a `podman run` that copied our labels, or a crash between create and save);
- pending changes, `DriftReport.pending`: the specs differ from the recorded state
  (not applied yet). They are reported but are not drift: git already knows them;
- a Job's run-once container is meant to exit: exited 0 is not drift, running is not
  either (it is on its way), exited non-zero is `failed` (the next apply re-runs it),
  and created but never started is `stopped`;
- nothing here writes: no state, no Podman call (the caller lists live objects).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from docklock.objects import (
    LABEL_ADDRESS,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
    is_managed,
    looks_like_id,
    same_id,
    short_id,
)
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


class PendingKind(StrEnum):
    NOT_APPLIED = "not-applied"  # in the specs, not recorded
    SPEC_CHANGED = "spec-changed"  # desired config hash differs from the record
    NOT_IN_SPECS = "not-in-specs"  # recorded, no longer in the specs


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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "key": self.key,
                "object_kind": self.object_kind.value, "name": self.name,
                "address": self.address, "details": list(self.details),
                "recorded_id": self.recorded_id, "live_id": self.live_id,
                "live_status": self.live_status}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftItem:
        return cls(DriftKind(d["kind"]), d["key"], ObjectKind(d["object_kind"]), d["name"],
                   d["address"], tuple(d.get("details", ())), d.get("recorded_id"),
                   d.get("live_id"), d.get("live_status", ""))


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
    checked = 0
    for key in sorted(recorded):
        address, rec = recorded[key]
        if rec.kind not in kinds:
            continue
        checked += 1
        lv = live.objects.get(key)
        if lv is None:
            items.append(DriftItem(DriftKind.REMOVED, key, rec.kind, rec.name, address,
                                   (f"recorded {rec.kind.value} {short_id(rec.id)} is gone "
                                    "from Podman",), rec.id, None, ""))
            continue
        details: list[str] = []
        if lv.config_hash and lv.config_hash != rec.config_hash:
            details.append(f"config-hash label {short_id(lv.config_hash)}, recorded "
                           f"{short_id(rec.config_hash)}")
        if not same_id(lv.id, rec.id):
            details.append(f"id {short_id(lv.id)}, recorded {short_id(rec.id)} (re-created "
                           "outside DockLock)")
        if rec.kind is ObjectKind.CONTAINER:
            image = _image_drift(rec, lv)
            if image:
                details.append(image)
            live_address = lv.labels.get(LABEL_ADDRESS)
            if live_address and live_address != address:
                details.append(f"address label {live_address}, recorded {address}")
        if details:
            items.append(DriftItem(DriftKind.CHANGED, key, rec.kind, rec.name, address,
                                   tuple(details), rec.id, lv.id, lv.status))
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
                                   rec.id, lv.id, lv.status))
    for key in sorted(live.objects):
        lv = live.objects[key]
        if key in recorded or lv.kind not in kinds or not is_managed(lv.labels, cluster):
            continue
        items.append(DriftItem(DriftKind.UNMANAGED, key, lv.kind, lv.name,
                               lv.labels.get(LABEL_ADDRESS, ""),
                               ("carries this cluster's DockLock labels but no apply "
                                "recorded it",), None, lv.id, lv.status))
    pending = _pending(desired, recorded) if desired is not None else ()
    return DriftReport(cluster, tuple(items), pending, checked, tuple(sorted(kinds)),
                       live.api_calls, state.serial)


def _job_drift(key: str, address: str, rec: RecordedObject,
               lv: LiveObject) -> DriftItem | None:
    """A job container is judged by how its run ended, not by whether it runs."""
    if lv.status in _JOB_FINISHED:
        code = lv.exit_code or 0
        if code == 0:
            return None
        return DriftItem(DriftKind.FAILED, key, rec.kind, rec.name, address,
                         (f"job exited with code {code}",), rec.id, lv.id, lv.status)
    if lv.status in _JOB_ON_ITS_WAY:
        return None
    return DriftItem(DriftKind.STOPPED, key, rec.kind, rec.name, address,
                     (f"job container is {lv.status or 'in an unknown state'}, never ran "
                      "to completion",), rec.id, lv.id, lv.status)


def _pending(desired: Sequence[DesiredObject],
             recorded: Mapping[str, tuple[str, RecordedObject]]) -> tuple[PendingItem, ...]:
    out: list[PendingItem] = []
    wanted = {o.key: o for o in desired}
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
            out.append(PendingItem(PendingKind.NOT_IN_SPECS, key, rec_obj.kind, rec_obj.name,
                                   address))
    return tuple(out)


_WORD = {DriftKind.REMOVED: "removed", DriftKind.STOPPED: "stopped",
         DriftKind.CHANGED: "changed out of band", DriftKind.UNMANAGED: "unmanaged",
         DriftKind.FAILED: "failed"}
_PENDING_WORD = {PendingKind.NOT_APPLIED: "in the specs, not applied yet",
                 PendingKind.SPEC_CHANGED: "spec changed since the last apply",
                 PendingKind.NOT_IN_SPECS: "recorded but no longer in the specs"}


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
