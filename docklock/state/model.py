"""The recorded state: what the last apply left in Podman, as plain frozen data.

Recorded state is "what DockLock did"; live state (docklock.objects.LiveState) is "what
Podman has now". They are kept apart; drift is their difference.

Invariants:
- `State.from_dict(s.to_dict()) == s` for every state.
- A state that was never written has `lineage=None, serial=0` (see `State.empty`); the
  first write gives it a fresh UUID lineage and serial 1, so a plan made against the
  empty state is stale once anything was applied.
- Recorded configs never hold a sensitive value: `recorded_config` replaces each value
  marked sensitive with a salted SHA-256 digest (`sha256:<hex>`), enough for the diff to
  say "changed" without the state file holding the secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from docklock.errors import DockLockError, StateError
from docklock.objects import DesiredObject, ObjectKind, sha256_hex
from docklock.overrides import Override

STATE_FORMAT = 1
SENSITIVE_DIGEST_PREFIX = "sha256:"


def sensitive_digest(key: str, path: str, value: str) -> str:
    """Digest standing in for a sensitive value in state files (and in job witnesses
    when no workspace key is given, see docklock.cage.witness.env_record).

    Salted with the object key and the config path so equal secrets in two objects do
    not give equal digests. It is NOT a secret-keeping device against offline guessing
    of weak values; see docs/adr/0001-plan-actions.md.
    """
    body = "\0".join(("docklock-sensitive-v1", key, path, value)).encode("utf-8")
    return SENSITIVE_DIGEST_PREFIX + sha256_hex(body)


def _redact_env(entries: Any, key: str, prefix: str, also: frozenset[str]) -> Any:
    if not isinstance(entries, list):
        return entries
    out: list[Any] = []
    for entry in entries:
        if isinstance(entry, list) and len(entry) == 3:
            name, value, flag = entry
            path = f"{prefix}{name}"
            if flag or path in also:
                out.append([name, sensitive_digest(key, path, str(value)), True])
                continue
        out.append(entry)
    return out


def recorded_config(obj: DesiredObject) -> dict[str, Any]:
    """The config as state records it: sensitive env values replaced by digests.

    Sensitive values live in `config["env"]` and `config["cage"]["env"]` as
    `[name, value, sensitive]` triples (ContainerConfig.to_dict) and/or are named in
    `obj.sensitive` as `env.NAME` / `cage.env.NAME`.
    """
    config = dict(obj.config)
    also = frozenset(obj.sensitive)
    if "env" in config:
        config["env"] = _redact_env(config["env"], obj.key, "env.", also)
    cage = config.get("cage")
    if isinstance(cage, Mapping) and "env" in cage:
        cage = dict(cage)
        cage["env"] = _redact_env(cage["env"], obj.key, "cage.env.", also)
        config["cage"] = cage
    return config


@dataclass(frozen=True)
class RecordedObject:
    """One Podman object an apply created (or adopted), as recorded in state.

    `id` is Podman's id (image id for images, network id, volume name for volumes),
    `config_hash` the hash the object was created with (also on its config-hash label),
    `config` the rendered config with sensitive values replaced by digests,
    `image_id` for containers the id of the image they were created from.
    """

    key: str
    kind: ObjectKind
    name: str
    id: str
    config_hash: str
    config: Mapping[str, Any] = field(default_factory=dict)
    image_id: str | None = None
    replica: int | None = None
    created: str = ""  # ISO 8601 UTC
    depends_on: tuple[str, ...] = ()

    @classmethod
    def from_desired(cls, obj: DesiredObject, *, id: str, created: str,
                     image_id: str | None = None) -> RecordedObject:
        """What apply records after creating (or adopting) `obj` as Podman object `id`."""
        return cls(key=obj.key, kind=obj.kind, name=obj.name, id=id,
                   config_hash=obj.config_hash, config=recorded_config(obj),
                   image_id=image_id, replica=obj.replica, created=created,
                   depends_on=tuple(obj.depends_on))

    def to_dict(self) -> dict[str, Any]:
        """The state-file form; the key is the surrounding mapping's key."""
        return {
            "kind": self.kind.value, "name": self.name, "id": self.id,
            "config_hash": self.config_hash, "config": dict(self.config),
            "image_id": self.image_id, "replica": self.replica, "created": self.created,
            "depends_on": list(self.depends_on),
        }

    @classmethod
    def from_dict(cls, key: str, d: Mapping[str, Any]) -> RecordedObject:
        return cls(
            key=key, kind=ObjectKind(d["kind"]), name=str(d["name"]), id=str(d["id"]),
            config_hash=str(d["config_hash"]), config=dict(d.get("config") or {}),
            image_id=d.get("image_id"), replica=d.get("replica"),
            created=str(d.get("created", "")),
            depends_on=tuple(d.get("depends_on", ())),
        )


@dataclass(frozen=True)
class RecordedResource:
    """The objects one resource address owns, keyed by object key."""

    objects: Mapping[str, RecordedObject] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"objects": {k: self.objects[k].to_dict() for k in sorted(self.objects)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordedResource:
        objs = d.get("objects") or {}
        return cls({k: RecordedObject.from_dict(k, v) for k, v in objs.items()})


@dataclass(frozen=True)
class State:
    """The whole recorded state of one workspace (`.docklock/state.json`).

    `resources` maps a resource address (`Service/default/web`) to its objects. Updates
    return new State values (`with_object`, `without_object`); only StateStore writes.
    `overrides` are the desired values `docklock deploy` set in place of the specs'
    (docklock.overrides; sorted by address and field); a state file without the key
    has none, and a state without overrides is written without the key.
    """

    lineage: str | None = None
    serial: int = 0
    cluster: str | None = None
    resources: Mapping[str, RecordedResource] = field(default_factory=dict)
    format: int = STATE_FORMAT
    overrides: tuple[Override, ...] = ()

    @classmethod
    def empty(cls, cluster: str | None = None) -> State:
        """The state of a workspace never applied: no lineage, serial 0."""
        return cls(cluster=cluster)

    @property
    def is_empty(self) -> bool:
        return self.lineage is None

    def iter_objects(self) -> Iterator[tuple[str, RecordedObject]]:
        """(address, object) for every recorded object, addresses then keys sorted."""
        for address in sorted(self.resources):
            res = self.resources[address]
            for key in sorted(res.objects):
                yield address, res.objects[key]

    def objects_by_key(self) -> dict[str, tuple[str, RecordedObject]]:
        """key -> (address, object); keys are unique across a workspace."""
        return {obj.key: (addr, obj) for addr, res in self.resources.items()
                for obj in res.objects.values()}

    def object_count(self) -> int:
        return sum(len(r.objects) for r in self.resources.values())

    def with_object(self, address: str, obj: RecordedObject) -> State:
        """A copy with `obj` recorded under `address` (replacing a same-key object)."""
        res = self.resources.get(address, RecordedResource())
        objects = dict(res.objects)
        objects[obj.key] = obj
        resources = dict(self.resources)
        resources[address] = RecordedResource(objects)
        return replace(self, resources=resources)

    def without_object(self, address: str, key: str) -> State:
        """A copy without object `key`; an address left with no objects disappears."""
        res = self.resources.get(address)
        if res is None or key not in res.objects:
            return self
        objects = {k: v for k, v in res.objects.items() if k != key}
        resources = dict(self.resources)
        if objects:
            resources[address] = RecordedResource(objects)
        else:
            del resources[address]
        return replace(self, resources=resources)

    def with_overrides(self, overrides: tuple[Override, ...]) -> State:
        """A copy whose deploy overrides are `overrides` (sorted by address, field)."""
        return replace(self, overrides=tuple(sorted(overrides, key=lambda o: o.key)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format, "lineage": self.lineage, "serial": self.serial,
            "cluster": self.cluster,
            "resources": {a: self.resources[a].to_dict() for a in sorted(self.resources)},
        }
        if self.overrides:
            out["overrides"] = [o.to_dict() for o in self.overrides]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "state") -> State:
        """Build from the state-file form; anything malformed is a StateError."""
        try:
            fmt = d["format"]
            if not isinstance(fmt, int) or fmt < 1:
                raise ValueError(f"bad format {fmt!r}")
            if fmt > STATE_FORMAT:
                raise StateError(
                    f"{source} has format {fmt}; this DockLock reads up to {STATE_FORMAT}",
                    hint="upgrade DockLock; the state file was left untouched")
            lineage = d.get("lineage")
            serial = d["serial"]
            if not isinstance(serial, int) or serial < 0:
                raise ValueError(f"bad serial {serial!r}")
            if lineage is not None and not isinstance(lineage, str):
                raise ValueError(f"bad lineage {lineage!r}")
            resources = {str(a): RecordedResource.from_dict(r)
                         for a, r in (d.get("resources") or {}).items()}
            raw_overrides = d.get("overrides") or []
            if not isinstance(raw_overrides, list):
                raise ValueError(f"overrides is not a list: {raw_overrides!r}")
            overrides = tuple(sorted((Override.from_dict(o) for o in raw_overrides),
                                     key=lambda o: o.key))
            return cls(lineage=lineage, serial=serial, cluster=d.get("cluster"),
                       resources=resources, format=fmt, overrides=overrides)
        except StateError:
            raise
        except DockLockError as exc:  # a malformed override
            raise StateError(
                f"{source} is corrupt: {exc.message}",
                hint="DockLock will not overwrite it; restore it from state.json.backup "
                     "or fix it by hand",
            ) from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StateError(
                f"{source} is corrupt: {type(exc).__name__}: {exc}",
                hint="DockLock will not overwrite it; restore it from state.json.backup "
                     "or fix it by hand",
            ) from exc
