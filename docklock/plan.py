"""The plan: diff of desired objects against recorded (and optionally live) state.

This module owns the Plan data (Action, Reason, FieldDiff, Change, Plan with a format
version and to_dict/from_dict), the pure `diff()` that computes it, the freshness checks
apply uses on a saved plan, and the text/JSON/markdown renderers (pure: they return str).

Invariants:
- `diff()` is a pure function of (desired objects, recorded state, live state, options);
  two runs on the same input give identical `changes`, ordered topologically over
  `depends_on`, ties broken by (address, kind, replica, key).
- A plan never holds a sensitive value: configs and field diffs carry "(sensitive)"
  instead. Apply re-renders from the specs and checks each object's config hash against
  the plan (`bind_desired`), so the plan does not need the secret to be applied.
- Recorded and live state stay apart: `Change.before` is what state recorded,
  `Change.live` what Podman reported; drift is their difference.
- A Job's run-once container (render marks it io.docklock.kind=job) is converged when
  it exited 0 with the desired config hash: it is never "stopped out of band". Exited
  non-zero is a replace (`job-failed`: run it again); created or still running is an
  update (`job-incomplete`: start it if needed and wait for it); gone is a create.
See docs/adr/0001-plan-actions.md for why actions and reasons are what they are, and
docs/plan-json.md for the JSON form.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from docklock import __version__
from docklock._toposort import stable_toposort
from docklock.errors import (
    Diagnostic,
    DockLockError,
    Location,
    StalePlanError,
    ValidationError,
)
from docklock.model import Address
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_LINEAGE,
    LABEL_REPLICA,
    LABEL_WORKSPACE,
    DesiredObject,
    LiveImages,
    LiveObject,
    LiveState,
    ObjectKind,
    describe_owner,
    is_managed,
    looks_like_id,
    same_id,
    short_id,
    with_owner,
)
from docklock.render import (
    JOB_RESULT,
    UPDATE_CONFIG,
    Rendered,
    is_job,
    recorded_exit_code,
    update_settings,
)
from docklock.state.model import (
    RecordedObject,
    State,
    recorded_config,
)
from docklock.state.store import atomic_write_bytes, gc_paused, utc_now
from docklock.workspace import WorkspacePaths

if TYPE_CHECKING:
    from docklock.load import Workspace

PLAN_FORMAT = 1
SENSITIVE = "(sensitive)"

_KIND_RANK = {ObjectKind.IMAGE: 0, ObjectKind.VOLUME: 1, ObjectKind.NETWORK: 2,
              ObjectKind.CONTAINER: 3}
# Objects whose replacement forces the containers using them to be replaced too: a
# container is bound to the image id, network and volume it was created with.
_BINDING_KINDS = frozenset({ObjectKind.IMAGE, ObjectKind.NETWORK, ObjectKind.VOLUME})
_RUNNING = frozenset({"running"})
# A job container in one of these states has run to its end (its exit code counts);
# in these it has yet to (apply starts it if needed and waits).
_JOB_FINISHED = frozenset({"exited", "stopped"})
_JOB_UNFINISHED = frozenset({"created", "configured", "initialized", "running", "paused",
                             "restarting"})
JOB_COMPLETED = "completed"  # the `after` of a job update's status field


class PlanError(DockLockError):
    """The plan's options do not fit the workspace (e.g. a --target matching nothing)."""


class Action(StrEnum):
    """What apply does to one object (Terraform's plan actions, replace kept as one).

    `replace` is delete+create; `Change.create_before_destroy` says which order is
    allowed. `update` is only used where Podman changes the object in place; today that
    is starting a container that was stopped out of band, or letting a job container
    that has not finished run to completion.
    """

    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {Action.NOOP: " ", Action.CREATE: "+", Action.UPDATE: "~",
            Action.REPLACE: "-/+", Action.DELETE: "-"}


class Reason(StrEnum):
    """Why a change is planned; stable codes (docs/plan-json.md)."""

    NEW = "new"  # in the specs, never created
    SPEC_CHANGED = "spec-changed"  # desired config hash differs from the recorded one
    MISSING_LIVE = "missing-live"  # recorded, but Podman no longer has it
    CHANGED_OUT_OF_BAND = "changed-out-of-band"  # live hash label / id / image differs
    STOPPED_OUT_OF_BAND = "stopped-out-of-band"  # live container not running
    NOT_IN_SPECS = "not-in-specs"  # recorded (or labelled live) but no longer rendered
    SCALED_DOWN = "scaled-down"  # a replica beyond the service's `replicas` (still in specs)
    REPLACE_REQUESTED = "replace-requested"  # --replace
    ADOPTED = "adopted"  # live object with this cluster's labels, missing from state
    DEPENDENCY_REPLACED = "dependency-replaced"  # its image/network/volume is replaced
    DESTROY_REQUESTED = "destroy-requested"  # --destroy
    JOB_FAILED = "job-failed"  # a job container exited non-zero: run it again
    JOB_INCOMPLETE = "job-incomplete"  # a job container created or running, not finished


@dataclass(frozen=True)
class FieldDiff:
    """One changed config field. Paths: `image`, `command`, `env.NAME`, `cage.level`, ...

    `before`/`after` are None when the field is absent on that side; for sensitive
    fields both are "(sensitive)" (or None), never the value.
    """

    path: str
    before: Any
    after: Any
    sensitive: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after,
                "sensitive": self.sensitive}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FieldDiff:
        return cls(d["path"], d.get("before"), d.get("after"), bool(d.get("sensitive")))


@dataclass(frozen=True)
class Before:
    """The object as recorded in state (masked config; omitted for no-op changes)."""

    id: str
    config_hash: str
    image_id: str | None = None
    config: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "config_hash": self.config_hash, "image_id": self.image_id,
                "config": dict(self.config) if self.config is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Before:
        cfg = d.get("config")
        return cls(d["id"], d["config_hash"], d.get("image_id"),
                   dict(cfg) if cfg is not None else None)


@dataclass(frozen=True)
class After:
    """The desired object (masked config; omitted for no-op changes)."""

    config_hash: str
    config: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"config_hash": self.config_hash,
                "config": dict(self.config) if self.config is not None else None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> After:
        cfg = d.get("config")
        return cls(d["config_hash"], dict(cfg) if cfg is not None else None)


@dataclass(frozen=True)
class Live:
    """What Podman reported for the object at refresh time."""

    id: str
    config_hash: str = ""
    status: str = ""
    image: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "config_hash": self.config_hash, "status": self.status,
                "image": self.image}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Live:
        return cls(d["id"], d.get("config_hash", ""), d.get("status", ""),
                   d.get("image", ""))

    @classmethod
    def of(cls, obj: LiveObject) -> Live:
        return cls(obj.id, obj.config_hash, obj.status, obj.image)


@dataclass(frozen=True)
class Change:
    """The planned action for one Podman object.

    Meaning of `before` (recorded state), `after` (desired) and `live` per action:
    - no-op: before = recorded (None when adopted: then `live` names the object to
      record), after = desired; configs omitted to keep plans small.
    - create: before = None (new) or the recorded object Podman lost (missing-live;
      apply drops that record); after = desired.
    - update: before = recorded (None when adopted), after = desired; `fields` lists what
      changes in place (`status: <live status> -> running`, i.e. start it, or for a job
      `status: <live status> -> completed`, i.e. start it if needed and wait for exit 0).
    - replace: before = recorded (None when adopted with a different hash), after =
      desired; the object to remove is `existing_id` (live id when refreshed).
    - delete: before = recorded (None for a labelled live object never recorded:
      `live` names it), after = None.
    `live` is None when the plan was made with --no-refresh or Podman has no such object.
    """

    key: str
    kind: ObjectKind
    address: str
    name: str
    action: Action
    reasons: tuple[Reason, ...] = ()
    fields: tuple[FieldDiff, ...] = ()
    details: tuple[str, ...] = ()
    before: Before | None = None
    after: After | None = None
    live: Live | None = None
    replica: int | None = None
    depends_on: tuple[str, ...] = ()
    create_before_destroy: bool = False

    @property
    def is_change(self) -> bool:
        return self.action is not Action.NOOP

    @property
    def is_work(self) -> bool:
        """Something apply does: a change, or recording an adopted object (a no-op)."""
        return self.is_change or Reason.ADOPTED in self.reasons

    @property
    def existing_id(self) -> str | None:
        """The Podman id apply acts on for update/replace/delete (live wins)."""
        if self.live is not None:
            return self.live.id
        return self.before.id if self.before is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "kind": self.kind.value, "address": self.address,
            "name": self.name, "replica": self.replica, "action": self.action.value,
            "reasons": [r.value for r in self.reasons],
            "fields": [f.to_dict() for f in self.fields],
            "details": list(self.details),
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "live": self.live.to_dict() if self.live else None,
            "depends_on": list(self.depends_on),
            "create_before_destroy": self.create_before_destroy,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            key=d["key"], kind=ObjectKind(d["kind"]), address=d["address"], name=d["name"],
            action=Action(d["action"]),
            reasons=tuple(Reason(r) for r in d.get("reasons", ())),
            fields=tuple(FieldDiff.from_dict(f) for f in d.get("fields", ())),
            details=tuple(d.get("details", ())),
            before=Before.from_dict(d["before"]) if d.get("before") else None,
            after=After.from_dict(d["after"]) if d.get("after") else None,
            live=Live.from_dict(d["live"]) if d.get("live") else None,
            replica=d.get("replica"), depends_on=tuple(d.get("depends_on", ())),
            create_before_destroy=bool(d.get("create_before_destroy", False)),
        )


@dataclass(frozen=True)
class PlanOptions:
    destroy: bool = False
    targets: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()
    refresh: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"destroy": self.destroy, "targets": list(self.targets),
                "replace": list(self.replace), "refresh": self.refresh}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanOptions:
        return cls(bool(d.get("destroy", False)), tuple(d.get("targets", ())),
                   tuple(d.get("replace", ())), bool(d.get("refresh", True)))


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GitInfo:
        return cls(d["commit"], bool(d["dirty"]))


@dataclass(frozen=True)
class PolicyInfo:
    """The policy check the plan was made with (filled in by docklock.policy)."""

    digest: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyInfo:
        return cls(d.get("digest"), tuple(d.get("warnings", ())))


@dataclass(frozen=True)
class Summary:
    """Counts per action; add/change/destroy count a replace as add+destroy (Terraform)."""

    create: int = 0
    update: int = 0
    replace: int = 0
    delete: int = 0
    noop: int = 0
    adopt: int = 0

    @property
    def add(self) -> int:
        return self.create + self.replace

    @property
    def change(self) -> int:
        return self.update

    @property
    def destroy(self) -> int:
        return self.delete + self.replace

    @property
    def has_changes(self) -> bool:
        return self.create + self.update + self.replace + self.delete > 0

    def to_dict(self) -> dict[str, int]:
        return {"add": self.add, "change": self.change, "destroy": self.destroy,
                "create": self.create, "update": self.update, "replace": self.replace,
                "delete": self.delete, "no-op": self.noop, "adopt": self.adopt}

    @classmethod
    def of(cls, changes: Iterable[Change]) -> Summary:
        counts = dict.fromkeys(Action, 0)
        adopt = 0
        for c in changes:
            counts[c.action] += 1
            if c.action is Action.NOOP and Reason.ADOPTED in c.reasons:
                adopt += 1
        return cls(counts[Action.CREATE], counts[Action.UPDATE], counts[Action.REPLACE],
                   counts[Action.DELETE], counts[Action.NOOP], adopt)


@dataclass(frozen=True)
class Plan:
    """A reviewable, saveable plan, bound to the state and specs it was made from.

    `lineage`/`serial` are the state's at plan time (None/0 for a never-written state:
    the first apply writes serial 1, so the same plan is stale afterwards).
    `spec_digest` and `files` ({relpath: sha256}) bind it to the spec files.
    """

    cluster: str
    lineage: str | None
    serial: int
    spec_digest: str
    changes: tuple[Change, ...]
    files: Mapping[str, str] = field(default_factory=dict)
    options: PlanOptions = field(default_factory=PlanOptions)
    created: str = ""
    git: GitInfo | None = None
    warnings: tuple[str, ...] = ()
    policy: PolicyInfo = field(default_factory=PolicyInfo)
    docklock_version: str = __version__
    format: int = PLAN_FORMAT

    @property
    def summary(self) -> Summary:
        return Summary.of(self.changes)

    @property
    def has_changes(self) -> bool:
        return self.summary.has_changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "docklock_version": self.docklock_version,
            "cluster": self.cluster, "lineage": self.lineage, "serial": self.serial,
            "spec_digest": self.spec_digest,
            "files": {k: self.files[k] for k in sorted(self.files)},
            "git": self.git.to_dict() if self.git else None,
            "created": self.created, "options": self.options.to_dict(),
            "summary": self.summary.to_dict(),
            "changes": [c.to_dict() for c in self.changes],
            "warnings": list(self.warnings), "policy": self.policy.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        fmt = d.get("format")
        if fmt != PLAN_FORMAT:
            raise StalePlanError(f"plan format {fmt!r} is not supported (expected "
                                 f"{PLAN_FORMAT})", hint="make a new plan with this DockLock")
        try:
            return cls(
                cluster=d["cluster"], lineage=d.get("lineage"), serial=int(d["serial"]),
                spec_digest=d["spec_digest"],
                changes=tuple(Change.from_dict(c) for c in d.get("changes", ())),
                files=dict(d.get("files", {})),
                options=PlanOptions.from_dict(d.get("options", {})),
                created=d.get("created", ""),
                git=GitInfo.from_dict(d["git"]) if d.get("git") else None,
                warnings=tuple(d.get("warnings", ())),
                policy=PolicyInfo.from_dict(d.get("policy") or {}),
                docklock_version=d.get("docklock_version", ""), format=fmt,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StalePlanError(f"the plan is malformed: {type(exc).__name__}: {exc}",
                                 hint="make a new plan with `docklock plan --out`") from exc


# ====================================================================== freshness


def check_plan_current(plan: Plan, state: State, *, spec_digest: str,
                       files: Mapping[str, str] | None = None) -> None:
    """Raise StalePlanError unless `plan` was made against exactly this state and specs."""
    if plan.lineage != state.lineage or plan.serial != state.serial:
        made = f"lineage {plan.lineage or '(empty state)'} serial {plan.serial}"
        now = f"lineage {state.lineage or '(empty state)'} serial {state.serial}"
        raise StalePlanError(f"stale plan: made against {made}, state is now {now}",
                             hint="run `docklock plan --out FILE` again")
    if plan.spec_digest != spec_digest:
        changed = ""
        if files is not None:
            names = sorted(k for k in set(plan.files) | set(files)
                           if plan.files.get(k) != files.get(k))
            changed = f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
        raise StalePlanError(f"stale plan: the spec files changed since it was made{changed}",
                             hint="run `docklock plan --out FILE` again")


def bind_desired(plan: Plan, desired: Iterable[DesiredObject]) -> dict[str, DesiredObject]:
    """Match re-rendered desired objects to the plan's changes by key and config hash.

    Apply calls this after re-rendering the specs: the plan holds no secrets, so the
    real configs come from the render, and the hash check proves they are what the
    reviewer saw. Returns key -> desired object for every change with an `after`.
    """
    by_key = {o.key: o for o in desired}
    bound: dict[str, DesiredObject] = {}
    for change in plan.changes:
        if change.after is None:
            continue
        obj = by_key.get(change.key)
        if obj is None or obj.config_hash != change.after.config_hash:
            raise StalePlanError(
                f"stale plan: {change.key} renders differently than when planned",
                hint="the specs, cages or images changed; make a new plan")
        bound[change.key] = obj
    return bound


# ====================================================================== masking


def mask_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config for display and plan files: sensitive env values become "(sensitive)"."""
    out = dict(config)
    if "env" in out:
        out["env"] = _mask_env(out["env"])
    cage = out.get("cage")
    if isinstance(cage, Mapping) and "env" in cage:
        cage = dict(cage)
        cage["env"] = _mask_env(cage["env"])
        out["cage"] = cage
    return out


def _mask_env(entries: Any) -> Any:
    if not isinstance(entries, list):
        return entries
    return [[e[0], SENSITIVE, True] if isinstance(e, list) and len(e) == 3 and e[2] else e
            for e in entries]


def _mask_desired(obj: DesiredObject) -> dict[str, Any]:
    config = dict(obj.config)
    masked = mask_config(config)
    if obj.sensitive:
        for path in obj.sensitive:
            _mask_named(masked, path)
    return masked


def _mask_named(config: dict[str, Any], path: str) -> None:
    prefix, _, name = path.rpartition(".")
    holder: Any = config
    if prefix == "cage.env":
        holder = config.get("cage")
        if not isinstance(holder, dict):
            return
    elif prefix != "env":
        return
    entries = holder.get("env")
    if isinstance(entries, list):
        holder["env"] = [[name, SENSITIVE, True] if isinstance(e, list) and e and e[0] == name
                         else e for e in entries]


# ====================================================================== field diff

_Flat = dict[str, tuple[Any, bool]]  # path -> (value, sensitive)


def _flatten(config: Mapping[str, Any]) -> _Flat:
    flat: _Flat = {}
    for key, value in config.items():
        if key in ("labels", JOB_RESULT, UPDATE_CONFIG):
            # Labels hold the hash itself, a job's recorded result is how its last run
            # ended, and a service's update settings say how a replace runs: none is a
            # cause of change.
            continue
        if key == "env" and isinstance(value, list):
            _flatten_env(flat, "env.", value)
        elif isinstance(value, Mapping):
            for sub in sorted(value):
                sv = value[sub]
                if sub == "env" and isinstance(sv, list):
                    _flatten_env(flat, f"{key}.env.", sv)
                else:
                    flat[f"{key}.{sub}"] = (sv, False)
        else:
            flat[key] = (value, False)
    return flat


def _flatten_env(flat: _Flat, prefix: str, entries: list[Any]) -> None:
    for entry in entries:
        if isinstance(entry, list) and len(entry) >= 2:
            flat[f"{prefix}{entry[0]}"] = (entry[1], bool(entry[2]) if len(entry) > 2
                                           else False)


def field_diffs(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """Field-by-field differences of two recorded-form configs (sensitive = digests)."""
    fb, fa = _flatten(before), _flatten(after)
    diffs: list[FieldDiff] = []
    for path in sorted(set(fb) | set(fa)):
        b, a = fb.get(path), fa.get(path)
        if b is not None and a is not None and b[0] == a[0]:
            continue
        # Recorded-form configs flag sensitive values (and hold digests, not values).
        sensitive = bool((b and b[1]) or (a and a[1]))
        if sensitive:
            diffs.append(FieldDiff(path, SENSITIVE if b else None,
                                   SENSITIVE if a else None, True))
        else:
            diffs.append(FieldDiff(path, b[0] if b else None, a[0] if a else None))
    return tuple(diffs)


# ====================================================================== diff


class OwnershipError(PlanError):
    """Objects this workspace would create, adopt, replace or remove by name belong to
    someone else (another workspace's lineage, an older DockLock's unrecorded object, or
    not DockLock's at all). Every clash is listed; nothing was changed."""

    def __init__(self, clashes: Sequence[Clash]) -> None:
        self.clashes = tuple(clashes)
        first = self.clashes[0]
        n = len(self.clashes)
        summary = first.message if n == 1 else \
            f"{n} name clashes with objects this workspace does not own; first: " \
            f"{first.message}"
        super().__init__(summary, hint=first.hint)
        # One per clash, so `--format json` lists every one (docklock.cli reads it).
        self.diagnostics = tuple(Diagnostic(c.message, hint=c.hint) for c in self.clashes)

    def explain(self) -> str:
        lines = [f"error: {c.message} (hint: {c.hint})" for c in self.clashes]
        return "\n".join(lines)


@dataclass(frozen=True)
class Clash:
    """One Podman name this workspace needs that another owner holds."""

    key: str
    address: str
    owner: str  # describe_owner() of the live object
    message: str
    hint: str


_REMOVE_CMD = {ObjectKind.CONTAINER: "podman rm -f", ObjectKind.NETWORK: "podman network rm",
               ObjectKind.VOLUME: "podman volume rm", ObjectKind.IMAGE: "podman rmi"}


def owns(obj: LiveObject, lineage: str | None,
         recorded: tuple[str, RecordedObject] | None) -> bool:
    """Whether a live object (labelled with this cluster) is this workspace's.

    Labelled with a lineage: ours exactly when it is the state's lineage. Without one
    (made by a DockLock before lineage labels): ours only when this workspace's state
    records that very object (same key, kind and id); it gets the label when it is
    next re-created. Everything else belongs to someone else and is never adopted,
    replaced or removed.
    """
    label = obj.labels.get(LABEL_LINEAGE)
    if label:
        return lineage is not None and label == lineage
    if recorded is None:
        return False
    rec = recorded[1]
    return rec.kind is obj.kind and bool(rec.id) and bool(obj.id) and same_id(obj.id, rec.id)


_REMOVED_BY_NAME = frozenset({ObjectKind.NETWORK, ObjectKind.VOLUME, ObjectKind.IMAGE})


def foreign_images(images: LiveImages, desired: Mapping[str, DesiredObject],
                   recorded: Mapping[str, tuple[str, RecordedObject]],
                   lineage: str | None) -> dict[str, LiveObject]:
    """Refs this workspace builds (or recorded) that another workspace's build holds.

    Only images DockLock built count: building over a ref someone pulled or built by
    hand re-tags it, as a build always did. One of another lineage (or, without one,
    not the image this state records) is never rebuilt over or removed.
    """
    keys = {k for k, o in desired.items() if o.kind is ObjectKind.IMAGE}
    keys.update(k for k, (_a, r) in recorded.items() if r.kind is ObjectKind.IMAGE)
    out: dict[str, LiveObject] = {}
    for key in keys:
        ref = key.split(":", 1)[1]
        held = images.built_as(ref)
        if held is None:
            continue
        _tag, image_id, labels = held
        obj = LiveObject(key, ObjectKind.IMAGE, ref, image_id, labels, "present")
        if not owns(obj, lineage, recorded.get(key)):
            out[key] = obj
    return out


def split_owned(live: LiveState, lineage: str | None,
                recorded: Mapping[str, tuple[str, RecordedObject]]
                ) -> tuple[dict[str, LiveObject], dict[str, LiveObject]]:
    """(this workspace's live objects, everybody else's) by key; see `owns`."""
    ours: dict[str, LiveObject] = {}
    foreign: dict[str, LiveObject] = dict(live.others)
    for key, obj in live.objects.items():
        if owns(obj, lineage, recorded.get(key)):
            ours[key] = obj
        else:
            foreign[key] = obj
    return ours, foreign


def owned_view(live: LiveState, state: State) -> LiveState:
    """`live` without the objects another workspace's lineage label claims: what drift
    judges, so a workspace with the same cluster name is not drift here. Objects with
    no lineage label stay (plan refuses to act on them unless recorded; drift still
    reports one that claims this cluster as unmanaged)."""
    kept = {k: o for k, o in live.objects.items()
            if o.labels.get(LABEL_LINEAGE) in (None, "") or
            o.labels.get(LABEL_LINEAGE) == state.lineage}
    return LiveState(kept, live.api_calls)


def name_clashes(desired: Mapping[str, DesiredObject],
                 recorded: Mapping[str, tuple[str, RecordedObject]],
                 foreign: Mapping[str, LiveObject], refreshed: Collection[ObjectKind], *,
                 lineage: str | None, workspace: str | None = None) -> list[Clash]:
    """Names this workspace would act on that a foreign object holds.

    Every desired object (create, adopt or replace would hit the other owner's object),
    and recorded networks, volumes and images (Podman removes those by name; a recorded
    container is removed by its recorded id, so a foreign holder of its name is safe).
    """
    keys: dict[str, str] = {k: str(o.address) for k, o in desired.items()}
    for key, (address, rec) in recorded.items():
        if rec.kind in _REMOVED_BY_NAME:
            keys.setdefault(key, address)
    out: list[Clash] = []
    for key in sorted(keys):
        obj = foreign.get(key)
        # Foreign images are only there when the images were listed (foreign_images).
        if obj is None or (obj.kind not in refreshed and obj.kind is not ObjectKind.IMAGE):
            continue
        owner = describe_owner(obj.labels)
        ours = f"this workspace's lineage is {lineage}" if lineage else \
            "this workspace has no state yet"
        message = (f"{obj.kind.value} {obj.name} ({keys[key]}) already exists in Podman "
                   f"as {short_id(obj.id)} and belongs to someone else: {owner}; "
                   f"{ours}, so DockLock will not adopt, replace or remove it")
        remove = f"{_REMOVE_CMD[obj.kind]} {obj.name}"
        if workspace and obj.labels.get(LABEL_WORKSPACE) == workspace and \
                obj.labels.get(LABEL_LINEAGE):
            # This very folder made it under another lineage: its state was lost or
            # replaced. Adopting by folder would let a copied or re-initialised
            # workspace take over; recovering the state is the user's call.
            hint = ("this workspace's folder made it under lineage "
                    f"{obj.labels[LABEL_LINEAGE]}: the state file was lost or replaced; "
                    "restore .docklock/state.json (e.g. from state.json.backup) with "
                    f"that lineage, or remove the objects (`{remove}`) to start afresh")
        elif not is_managed(obj.labels, None):
            hint = (f"rename or remove that object (`{remove}`), or rename the resource "
                    "or its namespace")
        elif obj.labels.get(LABEL_LINEAGE):
            hint = ("two workspaces use the same Podman names: give this one another "
                    "cluster name (metadata.name in docklock.yaml) or the resource another "
                    "name or namespace; if the other workspace is gone, `docklock destroy` "
                    f"there or `{remove}`")
        else:
            hint = ("it carries no lineage label and this workspace's state does not "
                    f"record it: if it is this workspace's, remove it (`{remove}`) and "
                    "apply re-creates it; otherwise rename the resource or the cluster")
        out.append(Clash(key, keys[key], owner, message, hint))
    return out


def _is_ours(obj: LiveObject, cluster: str | None) -> bool:
    # Adoption needs the address label too: it says which resource the object is for.
    return is_managed(obj.labels, cluster) and bool(obj.labels.get(LABEL_ADDRESS))


@dataclass
class _Work:
    """Mutable scratch record for one key while diffing (never escapes diff())."""

    key: str
    kind: ObjectKind
    address: str
    name: str
    replica: int | None
    depends_on: tuple[str, ...]
    desired: DesiredObject | None
    recorded: RecordedObject | None
    live: LiveObject | None
    action: Action = Action.NOOP
    reasons: list[Reason] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    fields: tuple[FieldDiff, ...] = ()


def diff(
    desired: Sequence[DesiredObject],
    state: State,
    live: LiveState | None = None,
    *,
    options: PlanOptions | None = None,
    cluster: str | None = None,
    live_kinds: Collection[ObjectKind] | None = None,
    images: LiveImages | None = None,
    workspace: str | None = None,
    in_specs: Collection[str] | None = None,
) -> tuple[tuple[Change, ...], tuple[str, ...]]:
    """Compute every object's change. Returns (changes in apply order, warnings).

    `live` None means --no-refresh: decide from recorded state alone. `live_kinds` says
    which kinds the refresh listed (default: all); a recorded object of an unlisted
    kind is never called missing. `cluster` limits adoption to live objects labelled
    with this cluster. `in_specs` holds the addresses of every resource in the specs
    (default: those of `desired`): a container no longer rendered whose resource is
    still there is `scaled-down` rather than `not-in-specs` (which also covers
    `replicas: 0`, a service that renders no container at all).
    """
    opts = options or PlanOptions()
    desired_by_key: dict[str, DesiredObject] = {}
    for obj in desired:
        if obj.key in desired_by_key:
            raise PlanError(f"two objects render to the same Podman name {obj.key} "
                            f"({desired_by_key[obj.key].address} and {obj.address})",
                            hint="rename one of the resources")
        desired_by_key[obj.key] = obj
    recorded = state.objects_by_key()
    refreshed: frozenset[ObjectKind] = frozenset()
    live_objects: Mapping[str, LiveObject] = {}
    foreign: Mapping[str, LiveObject] = {}
    if live is not None:
        refreshed = frozenset(ObjectKind) if live_kinds is None else frozenset(live_kinds)
        live_objects, foreign = split_owned(live, state.lineage, recorded)
        if images is not None:
            foreign = {**foreign, **foreign_images(images, desired_by_key, recorded,
                                                   state.lineage)}
        clashes = name_clashes(desired_by_key if not opts.destroy else {}, recorded,
                               foreign, refreshed, lineage=state.lineage,
                               workspace=workspace)
        if clashes:
            raise OwnershipError(clashes)
    warnings: list[str] = []
    kept = (frozenset(in_specs) if in_specs is not None
            else frozenset(str(o.address) for o in desired_by_key.values()))

    work: dict[str, _Work] = {}
    for key, obj in desired_by_key.items():
        rec = recorded.get(key)
        work[key] = _Work(key, obj.kind, str(obj.address), obj.name, obj.replica,
                          tuple(obj.depends_on), obj, rec[1] if rec else None,
                          live_objects.get(key))
    for key, (address, robj) in recorded.items():
        if key not in work:
            work[key] = _Work(key, robj.kind, address, robj.name, robj.replica,
                              robj.depends_on, None, robj, live_objects.get(key))
    for key, lobj in live_objects.items():
        if key not in work and lobj.kind in refreshed and _is_ours(lobj, cluster):
            work[key] = _Work(key, lobj.kind, lobj.address, lobj.name,
                              _replica_of(lobj), (), None, None, lobj)

    replace_keys = _select(opts.replace, work, closure=None, what="--replace",
                           only_desired=True) if opts.replace else frozenset()

    if opts.destroy:
        # Only what exists (recorded or live) can be destroyed; the rest is not planned.
        work = {k: w for k, w in work.items() if w.recorded is not None or w.live is not None}
    for w in work.values():
        if opts.destroy:
            _decide_destroy(w, refreshed)
        else:
            _decide(w, refreshed, w.key in replace_keys, cluster, warnings)
            if (w.desired is None and w.kind is ObjectKind.CONTAINER
                    and w.address in kept):
                w.reasons[w.reasons.index(Reason.NOT_IN_SPECS)] = Reason.SCALED_DOWN

    order = _topological(work)
    if not opts.destroy:
        _cascade(order, work)

    if opts.targets:
        selected = _select(opts.targets, work,
                           closure="dependents" if opts.destroy else "dependencies",
                           what="--target", only_desired=False)
        order = [k for k in order if k in selected]

    return tuple(_to_change(work[k]) for k in order), tuple(sorted(warnings))


def _replica_of(obj: LiveObject) -> int | None:
    raw = obj.labels.get(LABEL_REPLICA)
    return int(raw) if raw and raw.isdigit() else None


def _decide_destroy(w: _Work, refreshed: frozenset[ObjectKind]) -> None:
    w.action = Action.DELETE
    w.reasons.append(Reason.DESTROY_REQUESTED)
    if w.recorded is None:
        w.reasons.append(Reason.ADOPTED)
        w.details.append("found in Podman with this cluster's labels but not in state")
    elif w.kind in refreshed and w.live is None:
        w.reasons.append(Reason.MISSING_LIVE)
        w.details.append("already gone from Podman; only the record is removed")
    w.desired = None


def _decide(w: _Work, refreshed: frozenset[ObjectKind], replace: bool,
            cluster: str | None, warnings: list[str]) -> None:
    d, r, lv = w.desired, w.recorded, w.live
    known = w.kind in refreshed  # did the refresh look at this kind?
    if d is None:
        w.action = Action.DELETE
        w.reasons.append(Reason.NOT_IN_SPECS)
        if r is None:
            w.reasons.append(Reason.ADOPTED)
            w.details.append("found in Podman with this cluster's labels but not in state")
        elif known and lv is None:
            w.reasons.append(Reason.MISSING_LIVE)
            w.details.append("already gone from Podman; only the record is removed")
        return

    if r is None:
        if lv is not None and _is_ours(lv, cluster):
            _decide_adopt(w, d, lv, replace)
            return
        # A live object of that name that is not ours never gets here: diff() stopped
        # with an OwnershipError naming its owner (name_clashes).
        w.action = Action.CREATE
        w.reasons.append(Reason.NEW)
        return

    if d.config_hash != r.config_hash:
        w.reasons.append(Reason.SPEC_CHANGED)
        w.fields = field_diffs(r.config, recorded_config(d)) if r.config else ()
        if not w.fields:
            w.details.append(f"config hash {short_id(r.config_hash)} -> "
                             f"{short_id(d.config_hash)}")
    if replace:
        w.reasons.append(Reason.REPLACE_REQUESTED)
    job = w.kind is ObjectKind.CONTAINER and is_job(d.config)
    stopped = False
    if known:
        if lv is None:
            w.reasons.insert(0, Reason.MISSING_LIVE)
            w.details.append(f"recorded {w.kind.value} {short_id(r.id)} is gone from Podman")
            w.action = Action.CREATE
            return
        oob = _out_of_band(w, r, lv)
        if oob:
            w.reasons.append(Reason.CHANGED_OUT_OF_BAND)
            w.details.extend(oob)
        if job:
            stopped = _judge_job(w, lv)
        elif w.kind is ObjectKind.CONTAINER and lv.status not in _RUNNING:
            stopped = True
            w.reasons.append(Reason.STOPPED_OUT_OF_BAND)
            w.details.append(f"live container is {lv.status or 'not running'}")
    elif job:
        # --no-refresh: the exit code apply recorded is all there is to go by.
        code = recorded_exit_code(r.config)
        if code not in (None, 0):
            w.reasons.append(Reason.JOB_FAILED)
            w.details.append(f"the job's last recorded run exited with code {code}")
    if any(x in w.reasons for x in (Reason.SPEC_CHANGED, Reason.REPLACE_REQUESTED,
                                    Reason.CHANGED_OUT_OF_BAND, Reason.JOB_FAILED)):
        w.action = Action.REPLACE
    elif stopped:
        w.action = Action.UPDATE
        w.fields = (FieldDiff("status", lv.status if lv else None,
                              JOB_COMPLETED if job else "running"),)
    else:
        w.action = Action.NOOP


def _judge_job(w: _Work, lv: LiveObject) -> bool:
    """Reasons for a live job container; True when it has yet to finish (an update)."""
    if lv.status in _JOB_FINISHED:
        code = lv.exit_code or 0
        if code != 0:
            w.reasons.append(Reason.JOB_FAILED)
            w.details.append(f"the job exited with code {code}")
        return False  # exited 0: converged, whatever the status word
    if lv.status in _JOB_UNFINISHED:
        w.reasons.append(Reason.JOB_INCOMPLETE)
        w.details.append(f"the job's container is {lv.status}, not finished")
        return True
    # dead, removing, or a state this DockLock does not know: run it again.
    w.reasons.append(Reason.JOB_FAILED)
    w.details.append(f"the job's container is {lv.status or 'in an unknown state'}")
    return False


def _out_of_band(w: _Work, r: RecordedObject, lv: LiveObject) -> list[str]:
    found: list[str] = []
    if lv.config_hash and lv.config_hash != r.config_hash:
        found.append(f"live config-hash {short_id(lv.config_hash)} differs from recorded "
                     f"{short_id(r.config_hash)}")
    if not same_id(lv.id, r.id):
        found.append(f"live id {short_id(lv.id)} differs from recorded {short_id(r.id)}")
    if (w.kind is ObjectKind.CONTAINER and r.image_id and lv.image
            and looks_like_id(lv.image) and not same_id(lv.image, r.image_id)):
        found.append(f"live image {short_id(lv.image)} differs from recorded "
                     f"{short_id(r.image_id)}")
    return found


def _decide_adopt(w: _Work, d: DesiredObject, lv: LiveObject, replace: bool) -> None:
    w.reasons.append(Reason.ADOPTED)
    w.details.append(f"found in Podman as {short_id(lv.id)} but not in state")
    if replace:
        w.reasons.append(Reason.REPLACE_REQUESTED)
    if lv.config_hash != d.config_hash:
        w.details.append(f"live config-hash {short_id(lv.config_hash) or '(none)'} differs "
                         f"from desired {short_id(d.config_hash)}")
        w.action = Action.REPLACE
    elif replace:
        w.action = Action.REPLACE
    elif w.kind is ObjectKind.CONTAINER and is_job(d.config):
        unfinished = _judge_job(w, lv)
        if Reason.JOB_FAILED in w.reasons:
            w.action = Action.REPLACE
        elif unfinished:
            w.fields = (FieldDiff("status", lv.status or None, JOB_COMPLETED),)
            w.action = Action.UPDATE
        else:
            w.action = Action.NOOP
    elif w.kind is ObjectKind.CONTAINER and lv.status not in _RUNNING:
        w.reasons.append(Reason.STOPPED_OUT_OF_BAND)
        w.details.append(f"live container is {lv.status or 'not running'}")
        w.fields = (FieldDiff("status", lv.status or None, "running"),)
        w.action = Action.UPDATE
    else:
        w.action = Action.NOOP


def _cascade(order: Sequence[str], work: Mapping[str, _Work]) -> None:
    """Replace objects bound to a replaced image/network/volume (in apply order)."""
    for key in order:
        w = work[key]
        if w.desired is None or w.action not in (Action.NOOP, Action.UPDATE):
            continue
        if w.recorded is None and w.live is None:
            continue
        for dep in w.depends_on:
            dw = work.get(dep)
            if dw is None or dw.kind not in _BINDING_KINDS:
                continue
            rebuilt = dw.action is Action.REPLACE or (
                dw.action is Action.CREATE and dw.recorded is not None)
            if rebuilt:
                w.action = Action.REPLACE
                w.reasons.append(Reason.DEPENDENCY_REPLACED)
                how = "replaced" if dw.action is Action.REPLACE else "re-created"
                w.details.append(f"{dep} is {how}")
                w.fields = tuple(f for f in w.fields if f.path != "status")
                break


def _sort_key(w: _Work) -> tuple[str, int, int, str]:
    return (w.address, _KIND_RANK.get(w.kind, 9),
            w.replica if w.replica is not None else -1, w.key)


def _topological(work: Mapping[str, _Work]) -> list[str]:
    """Kahn's algorithm over depends_on; ties by (address, kind, replica, key)."""
    deps = {key: [d for d in w.depends_on if d in work and d != key]
            for key, w in work.items()}
    order, leftover = stable_toposort(deps, lambda k: _sort_key(work[k]))
    # A cycle: the graph stage reports it; keep the plan total and deterministic.
    return order + leftover


def _select(patterns: Sequence[str], work: Mapping[str, _Work], *, closure: str | None,
            what: str, only_desired: bool) -> frozenset[str]:
    """Keys matched by addresses/keys/names in `patterns`, plus the asked closure."""
    by_address: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for key, w in work.items():
        if only_desired and w.desired is None:
            continue
        by_address.setdefault(w.address, []).append(key)
        by_name[w.name] = key
    seeds: set[str] = set()
    for pattern in patterns:
        matched: list[str] = []
        if pattern in work and (not only_desired or work[pattern].desired is not None):
            matched = [pattern]
        elif pattern in by_name:
            matched = [by_name[pattern]]
        else:
            try:
                addr = str(Address.parse(pattern))
            except ValueError:
                addr = pattern
            matched = by_address.get(addr, [])
        if not matched:
            raise PlanError(f"{what} {pattern} matches no object in the plan",
                            hint="use an address like Service/default/web, an object key "
                                 "like container:NAME, or a Podman name")
        seeds.update(matched)
    if closure is None:
        return frozenset(seeds)
    if closure == "dependencies":
        edges: dict[str, tuple[str, ...]] = {k: w.depends_on for k, w in work.items()}
    else:
        rev: dict[str, list[str]] = {}
        for k, w in work.items():
            for dep in w.depends_on:
                rev.setdefault(dep, []).append(k)
        edges = {k: tuple(v) for k, v in rev.items()}
    seen = set(seeds)
    stack = list(seeds)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt in work and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return frozenset(seen)


def _to_change(w: _Work) -> Change:
    full = w.action is not Action.NOOP
    before = None
    if w.recorded is not None:
        r = w.recorded
        before = Before(r.id, r.config_hash, r.image_id,
                        mask_config(r.config) if full else None)
    after = None
    if w.desired is not None and w.action is not Action.DELETE:
        after = After(w.desired.config_hash, _mask_desired(w.desired) if full else None)
    # A job is never created before its old run is removed: nothing serves from it, and
    # two runs of one job must not overlap. Nor is a stateful service's container (it
    # mounts a named volume: two writers could corrupt it) unless its spec says
    # `update.overlap: true`.
    cbd = (w.action is Action.REPLACE and w.kind is ObjectKind.CONTAINER
           and Reason.DEPENDENCY_REPLACED not in w.reasons
           and w.desired is not None and not _has_host_port(w.desired.config)
           and not is_job(w.desired.config))
    details = list(w.details)
    if cbd and w.desired is not None and not update_settings(w.desired.config).may_overlap:
        cbd = False
        details.append("stateful (mounts a named volume): the old container is removed "
                       "before the new one starts; spec.update.overlap: true lets them "
                       "overlap")
    return Change(
        key=w.key, kind=w.kind, address=w.address, name=w.name, action=w.action,
        reasons=tuple(w.reasons), fields=w.fields, details=tuple(details),
        before=before, after=after, live=Live.of(w.live) if w.live is not None else None,
        replica=w.replica, depends_on=w.depends_on, create_before_destroy=cbd,
    )


def _has_host_port(config: Mapping[str, Any]) -> bool:
    return any(isinstance(p, Mapping) and p.get("host") for p in config.get("ports", ()))


def make_plan(
    desired: Sequence[DesiredObject],
    state: State,
    live: LiveState | None = None,
    *,
    cluster: str,
    spec_digest: str,
    files: Mapping[str, str] | None = None,
    options: PlanOptions | None = None,
    git: GitInfo | None = None,
    warnings: Sequence[str] = (),
    policy: PolicyInfo | None = None,
    created: str = "",
    live_kinds: Collection[ObjectKind] | None = None,
    images: LiveImages | None = None,
    workspace: str | None = None,
    in_specs: Collection[str] | None = None,
) -> Plan:
    """diff() wrapped into a Plan bound to `state` and the spec digest."""
    opts = options or PlanOptions()
    if opts.refresh is False:
        live = None
    if state.cluster is not None and state.cluster != cluster:
        raise PlanError(f"the state belongs to cluster {state.cluster!r}, the workspace "
                        f"is cluster {cluster!r}",
                        hint="rename the cluster back, or move .docklock/state.json away "
                             "to start a new lineage")
    changes, diff_warnings = diff(desired, state, live, options=opts, cluster=cluster,
                                  live_kinds=live_kinds, images=images,
                                  workspace=workspace, in_specs=in_specs)
    return Plan(
        cluster=cluster, lineage=state.lineage, serial=state.serial,
        spec_digest=spec_digest, changes=changes, files=dict(files or {}), options=opts,
        created=created, git=git, warnings=(*warnings, *diff_warnings),
        policy=policy or PolicyInfo(),
    )


# ====================================================================== pipeline


class ListReader(Protocol):
    """What a labelled refresh (`refresh_live`) needs: drift and status use it too."""

    def list_live(self, cluster: str) -> LiveState: ...

    def list_networks(self, cluster: str) -> LiveState: ...

    def list_volumes(self, cluster: str) -> LiveState: ...


class LiveReader(Protocol):
    """The part of docklock.runtime.podman.PodmanRuntime a plan's refresh uses."""

    def list_live(self, cluster: str, *, unlabelled: bool = False) -> LiveState: ...

    def list_networks(self, cluster: str, *, unlabelled: bool = False) -> LiveState: ...

    def list_volumes(self, cluster: str, *, unlabelled: bool = False) -> LiveState: ...

    def list_images(self) -> LiveImages: ...


def kinds_in_use(desired: Iterable[DesiredObject], state: State) -> frozenset[ObjectKind]:
    """Object kinds the specs render or the state records."""
    kinds = {o.kind for o in desired}
    for res in state.resources.values():
        kinds.update(o.kind for o in res.objects.values())
    return frozenset(kinds)


_List = Callable[[str], LiveState]


def refresh_live(reader: ListReader, cluster: str,
                 kinds: Collection[ObjectKind]) -> tuple[LiveState, frozenset[ObjectKind]]:
    """List the cluster's live objects: one labelled list call per kind in use.

    Containers are always listed (one call, however many there are); networks and
    volumes only when the workspace has some. Images are not refreshed here: a
    container's image id on its list entry is what drift looks at. Returns the merged
    LiveState and the kinds it covers (pass both to diff()).
    """
    return _refresh(reader.list_live, reader.list_networks, reader.list_volumes,
                    cluster, kinds)


def refresh_everything(reader: LiveReader, cluster: str, kinds: Collection[ObjectKind]
                       ) -> tuple[LiveState, frozenset[ObjectKind]]:
    """As `refresh_live`, but each call lists every object of its kind (still one call
    per kind) so plan sees name clashes with objects that lack this cluster's label
    (they land in `LiveState.others`)."""
    return _refresh(lambda c: reader.list_live(c, unlabelled=True),
                    lambda c: reader.list_networks(c, unlabelled=True),
                    lambda c: reader.list_volumes(c, unlabelled=True), cluster, kinds)


def _refresh(containers: _List, networks: _List, volumes: _List, cluster: str,
             kinds: Collection[ObjectKind]) -> tuple[LiveState, frozenset[ObjectKind]]:
    parts = [containers(cluster)]
    listed = {ObjectKind.CONTAINER}
    if ObjectKind.NETWORK in kinds:
        parts.append(networks(cluster))
        listed.add(ObjectKind.NETWORK)
    if ObjectKind.VOLUME in kinds:
        parts.append(volumes(cluster))
        listed.add(ObjectKind.VOLUME)
    merged: dict[str, LiveObject] = {}
    others: dict[str, LiveObject] = {}
    for part in parts:
        merged.update(part.objects)
        others.update(part.others)
    return (LiveState(merged, sum(p.api_calls for p in parts), others=others),
            frozenset(listed))


# Where a missing image is reported: (resource address, JSON path) -> file:line:col.
Locate = Callable[[str, str], Location | None]


def images_to_check(desired: Iterable[DesiredObject]) -> dict[str, list[DesiredObject]]:
    """Image ref -> the containers that use it, for refs no Image resource builds."""
    built = {o.name for o in desired if o.kind is ObjectKind.IMAGE}
    used: dict[str, list[DesiredObject]] = {}
    for o in desired:
        if o.kind is ObjectKind.CONTAINER:
            ref = str(o.config.get("image", ""))
            if ref and ref not in built:
                used.setdefault(ref, []).append(o)
    return used


def check_images(desired: Sequence[DesiredObject], images: LiveImages, *,
                 locate: Locate | None = None) -> None:
    """Raise ValidationError (every missing image, located) unless every image the
    containers use is local or built by an Image resource.

    One diagnostic per resource (not per replica), at its `spec.image` when `locate`
    finds it. Apply would otherwise fail mid-way, after other objects were created.
    """
    diags: list[Diagnostic] = []
    for ref, users in sorted(images_to_check(desired).items()):
        if images.has(ref):
            continue
        for address in sorted({str(o.address) for o in users}):
            diags.append(Diagnostic(
                f"{address}: image {ref!r} is not in Podman's local images and no Image "
                "resource builds it",
                locate(address, "spec.image") if locate is not None else None,
                path="spec.image",
                hint=f"build or load it first (`podman build -t {ref} ...`, `podman load`, "
                     "`podman pull`), add an Image resource that builds it, or fix the "
                     "ref"))
    if diags:
        raise ValidationError(diags)


def build_plan(
    desired: Sequence[DesiredObject],
    state: State,
    *,
    cluster: str,
    spec_digest: str,
    files: Mapping[str, str] | None = None,
    options: PlanOptions | None = None,
    reader: LiveReader | None = None,
    git: GitInfo | None = None,
    warnings: Sequence[str] = (),
    policy: PolicyInfo | None = None,
    created: str = "",
    locate: Locate | None = None,
    workspace: str | None = None,
    in_specs: Collection[str] | None = None,
) -> tuple[Plan, int]:
    """Refresh (when `reader` is given and options.refresh) and diff into a Plan.

    The refresh lists every container (and network, volume in use) so name clashes
    with objects of other workspaces are seen, and, unless this is a destroy plan,
    the local images (one more call, only when a container uses an image no Image
    resource builds): a missing one is a ValidationError located by `locate`.
    Returns the plan and the number of Podman API calls the refresh cost.
    """
    opts = options or PlanOptions()
    live: LiveState | None = None
    live_kinds: frozenset[ObjectKind] | None = None
    calls = 0
    images: LiveImages | None = None
    if opts.refresh and reader is not None:
        outside = not opts.destroy and bool(images_to_check(desired))
        if outside or ObjectKind.IMAGE in kinds_in_use(desired, state):
            images = reader.list_images()
            calls += images.api_calls
        if outside and images is not None:
            check_images(desired, images, locate=locate)
        live, live_kinds = refresh_everything(reader, cluster,
                                              kinds_in_use(desired, state))
        calls += live.api_calls
    with gc_paused():
        plan = make_plan(desired, state, live, cluster=cluster, spec_digest=spec_digest,
                         files=files, options=opts, git=git, warnings=warnings,
                         policy=policy, created=created, live_kinds=live_kinds,
                         images=images, workspace=workspace, in_specs=in_specs)
    return plan, calls


def policy_info(ws: Workspace) -> PolicyInfo:
    """Run the policy gate for a plan: a deny failure raises ValidationError (every
    failure located); warnings and the report digest are recorded in the plan."""
    from docklock.policy.gate import check_workspace

    outcome = check_workspace(ws, locate_warnings=False)
    if outcome.errors:
        raise ValidationError(outcome.errors)
    digest = outcome.report.digest if outcome.report is not None else None
    return PolicyInfo(digest=digest, warnings=tuple(str(w) for w in outcome.warnings))


def workspace_locator(ws: Workspace) -> Locate:
    """file:line:col of a key in a resource's document (its YAML re-read on demand)."""
    from docklock.load.positions import PositionLookup

    lookup = PositionLookup(ws.paths)

    def locate(address: str, path: str) -> Location | None:
        resource = ws.get(address)
        if resource is None:
            return None
        return lookup(resource, path) or resource.location

    return locate


def plan_workspace(ws: Workspace, rendered: Rendered, state: State, *,
                   options: PlanOptions, reader: LiveReader | None,
                   policy: PolicyInfo | None) -> Plan:
    """The plan for a loaded, rendered workspace: what `plan` and `apply` both make."""
    plan, _ = build_plan(
        rendered.objects, state, reader=reader, cluster=ws.cluster_name,
        spec_digest=ws.spec_digest, files=ws.files, options=options,
        git=git_info(ws.paths.root),
        warnings=(*(str(w) for w in ws.warnings), *rendered.warnings),
        policy=policy, created=utc_now(), locate=workspace_locator(ws),
        workspace=str(ws.paths.root), in_specs={str(r.address) for r in ws.resources})
    return plan


def stamp_owner(desired: Mapping[str, DesiredObject], lineage: str,
                workspace: str | None) -> dict[str, DesiredObject]:
    """Bound desired objects with this workspace's owner labels (lineage, folder).

    Apply calls it after `claim_lineage`, so every object it creates, builds or
    re-creates carries the lineage; config hashes are unchanged (labels are in none).
    """
    return {k: with_owner(o, lineage, workspace) for k, o in desired.items()}


# ====================================================================== saved plans


def save_plan(plan: Plan, path: Path, paths: WorkspacePaths) -> None:
    """Write `plan` to `path` as a DSSE envelope signed with the workspace key.

    Never creates a key (issue 11 B8): without the private key this fails with a hint
    (`keys import`, or `keys init` / a first `apply` in a workspace with no docklock.pub).
    The file is written atomically and readable only by its owner.
    """
    from docklock.ledger import require_signer, sign_plan

    envelope = sign_plan(plan.to_dict(), require_signer(paths))
    data = json.dumps(envelope, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    atomic_write_bytes(path, data, mode=0o600)


def load_plan(path: Path, paths: WorkspacePaths) -> Plan:
    """Read a saved plan, verifying its signature with a key docklock.pub trusts to sign
    now: the current key or an active team signer (a plan CI or a teammate saved)."""
    from docklock.ledger import is_envelope, open_plan
    from docklock.ledger.keys import load_signing_keys

    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise PlanError(f"no plan file at {path}", hint="make one with `docklock plan --out`") \
            from None
    except ValueError as exc:
        raise StalePlanError(f"{path} is not a saved plan (not JSON: {exc})",
                             hint="make one with `docklock plan --out`") from exc
    if not is_envelope(document):
        raise StalePlanError(f"{path} is not a signed plan",
                             hint="apply only plans written by `docklock plan --out`")
    return Plan.from_dict(open_plan(document, load_signing_keys(paths)))


# ====================================================================== git


def git_info(root: Path) -> GitInfo | None:
    """The checkout's HEAD commit and whether the workspace folder has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=False)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=normal",
             "--", ".", ":(exclude).docklock"],
            capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return GitInfo(head.stdout.strip(), dirty)


# ====================================================================== renderers

Paint = Callable[[str, str], str]


def _no_paint(text: str, _color: str) -> str:
    return text


_COLOR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "yellow",
          Action.DELETE: "red", Action.NOOP: "dim"}
_VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated in place",
         Action.REPLACE: "must be replaced", Action.DELETE: "will be destroyed",
         Action.NOOP: "will be adopted into state"}


def _value(v: Any) -> str:
    if v is None:
        return "null"
    if v == SENSITIVE:
        return SENSITIVE
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def _create_fields(config: Mapping[str, Any]) -> list[tuple[str, Any, bool]]:
    """Non-empty fields shown for a create, in the config's own order."""
    rows: list[tuple[str, Any, bool]] = []
    for path, (value, sensitive) in _flatten(config).items():
        if value in (None, [], {}, ""):
            continue
        if path == "name" or (path.startswith("cage.")
                              and path not in ("cage.name", "cage.level")):
            # The name is in the block's header; of the cage, name and level are what
            # people read (the rest is in the JSON form).
            continue
        rows.append((path, SENSITIVE if sensitive else value, sensitive))
    return rows


def summary_line(plan: Plan) -> str:
    s = plan.summary
    if not s.has_changes:
        return "No changes. Your infrastructure matches the configuration."
    return f"Plan: {s.add} to add, {s.change} to change, {s.destroy} to destroy."


def render_text(plan: Plan, paint: Paint = _no_paint) -> str:
    """Terraform-style text: one block per change, then the summary line."""
    lines: list[str] = []
    shown = [c for c in plan.changes if c.is_work]
    if shown:
        lines.append("DockLock will perform the following actions:")
        lines.append("")
    for c in shown:
        lines.extend(_text_change(c, paint))
        lines.append("")
    for w in (*plan.warnings, *plan.policy.warnings):
        lines.append(paint("Warning: ", "yellow") + w)
    if plan.warnings or plan.policy.warnings:
        lines.append("")
    s = plan.summary
    if s.has_changes:
        lines.append(paint(summary_line(plan), "bold"))
    else:
        lines.append(paint(summary_line(plan), "green"))
    if s.adopt:
        lines.append(f"{s.adopt} object(s) found in Podman will be recorded in state.")
    return "\n".join(lines) + "\n"


def _text_change(c: Change, paint: Paint) -> list[str]:
    color = _COLOR[c.action]
    symbol = "=" if c.action is Action.NOOP else c.action.symbol
    verb = _VERB[c.action]
    if c.action is Action.REPLACE and c.create_before_destroy:
        verb += " (create before destroy)"
    out = [paint(f"  # {c.kind.value} {c.name} ({c.address}) {verb}", "bold")]
    head = f"{symbol:>3} {c.kind.value} {json.dumps(c.name)}"
    out.append(paint(head, color))
    if c.action is Action.CREATE and c.after is not None and c.after.config is not None:
        for path, value, _s in _create_fields(c.after.config):
            out.append(paint(f"      + {path} = {_value(value)}", "green"))
    for f in c.fields:
        if f.before is None:
            out.append(paint(f"      + {f.path} = {_value(f.after)}", "green"))
        elif f.after is None:
            out.append(paint(f"      - {f.path} = {_value(f.before)}", "red"))
        else:
            note = "  # forces replacement" if c.action is Action.REPLACE else ""
            out.append(paint(f"      ~ {f.path} = {_value(f.before)} -> {_value(f.after)}",
                             "yellow") + paint(note, "dim"))
    reasons = ", ".join(r.value for r in c.reasons)
    out.append(paint(f"    reasons: {reasons}", "dim"))
    for d in c.details:
        out.append(paint(f"      {d}", "dim"))
    return out


def render_json(plan: Plan) -> str:
    """The stable JSON form (docs/plan-json.md): `Plan.to_dict()`, indented, sorted keys."""
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_MD_ICON = {Action.CREATE: "🟢 create", Action.UPDATE: "🟡 update",
            Action.REPLACE: "🟠 replace", Action.DELETE: "🔴 delete", Action.NOOP: "⚪ adopt"}


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(plan: Plan) -> str:
    """A pull-request comment: summary table, change table, and the text plan folded."""
    s = plan.summary
    lines = [f"### DockLock plan for `{_md_cell(plan.cluster)}`", ""]
    git = ""
    if plan.git is not None:
        git = f" at `{plan.git.commit[:12]}`" + (" (dirty)" if plan.git.dirty else "")
    lines.append(f"State serial {plan.serial}{git}.")
    lines.append("")
    lines.append(f"**{summary_line(plan)}**")
    lines.append("")
    lines.append("| create | update | replace | delete | no-op |")
    lines.append("|---:|---:|---:|---:|---:|")
    lines.append(f"| {s.create} | {s.update} | {s.replace} | {s.delete} | {s.noop} |")
    shown = [c for c in plan.changes if c.is_work]
    if shown:
        lines += ["", "| Action | Object | Address | Reasons | Changed fields |",
                  "|---|---|---|---|---|"]
        for c in shown:
            fields = ", ".join(f"`{_md_cell(f.path)}`" for f in c.fields) or ""
            lines.append(
                f"| {_MD_ICON[c.action]} | `{c.kind.value} {_md_cell(c.name)}` | "
                f"`{_md_cell(c.address)}` | {', '.join(r.value for r in c.reasons)} | "
                f"{fields} |")
    warnings = (*plan.warnings, *plan.policy.warnings)
    if warnings:
        lines += ["", "**Warnings**", ""]
        lines += [f"- {_md_cell(w)}" for w in warnings]
    if shown:
        lines += ["", "<details><summary>Details</summary>", "", "```diff"]
        for c in shown:
            lines.extend(_diff_block(c))
        lines += ["```", "", "</details>"]
    return "\n".join(lines) + "\n"


def _diff_block(c: Change) -> list[str]:
    # `diff` fences colour lines by their first character: + green, - red, ! orange.
    marker = {Action.CREATE: "+", Action.DELETE: "-", Action.REPLACE: "!",
              Action.UPDATE: "!", Action.NOOP: " "}[c.action]
    out = [f"{marker} {c.action.value} {c.kind.value} {c.name} ({c.address})"
           f"  # {', '.join(r.value for r in c.reasons)}"]
    for f in c.fields:
        if f.before is None:
            out.append(f"+     {f.path} = {_value(f.after)}")
        elif f.after is None:
            out.append(f"-     {f.path} = {_value(f.before)}")
        else:
            out.append(f"-     {f.path} = {_value(f.before)}")
            out.append(f"+     {f.path} = {_value(f.after)}")
    return out


RENDERERS: dict[str, Callable[[Plan], str]] = {
    "json": render_json,
    "markdown": render_markdown,
    "text": render_text,
}
