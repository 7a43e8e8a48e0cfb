"""Concrete Podman objects: what render produces, what state records, what runtime reads.

These are the shared vocabulary of render → plan → apply → runtime. A desired object is
pure data with a config hash over exactly the fields that decide whether the object must
change (like docker compose's config-hash label). Live objects are what one labelled
list call to Podman returns. Nothing here talks to Podman or touches files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import Any

from docklock.model import Address, EnvVar, Healthcheck, Port
from docklock.units import duration_ns

LABEL_PREFIX = "io.docklock."
LABEL_MANAGED_BY = LABEL_PREFIX + "managed-by"
LABEL_CLUSTER = LABEL_PREFIX + "cluster"
LABEL_ADDRESS = LABEL_PREFIX + "address"
LABEL_REPLICA = LABEL_PREFIX + "replica"
LABEL_CONFIG_HASH = LABEL_PREFIX + "config-hash"
LABEL_CAGE = LABEL_PREFIX + "cage"
# Which workspace owns the object: its state lineage (a uuid drawn on the first state
# write) and, for people reading `podman inspect`, the workspace folder. Neither is in
# any config hash, so adding them never replaces an object.
LABEL_LINEAGE = LABEL_PREFIX + "lineage"
LABEL_WORKSPACE = LABEL_PREFIX + "workspace"
MANAGED_BY = "docklock"


class ObjectKind(StrEnum):
    IMAGE = "image"
    NETWORK = "network"
    VOLUME = "volume"
    CONTAINER = "container"


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces) used for every hash and signature."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, frozenset)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Env a deterministic Job's cage sets that describes this host rather than the job (the
# glibc version the host's libfaketime needs, read by the launcher): left out of the
# cage's digest and of the witness's compared env; the witness's environment records it.
HOST_ENV: frozenset[str] = frozenset({"DOCKLOCK_FAKETIME_GLIBC"})


@dataclass(frozen=True)
class ReplaySettings:
    """What the deterministic cage adds for a Job (docs/determinism.md, ADR 0018).

    Built by docklock.cage.replay.job_cage; applied by docklock.cage.podman_args. Host
    paths (`launcher`, `preload`, `proc_dir`) are where this host keeps the files; the
    digest leaves them out and keeps what decides the run: the launcher's content, the
    synthetic files' content, the clock and what is masked.
    """

    epoch: int  # seconds since 1970 where the fake wall clock starts
    clock_step: str  # how far it moves per read ("0s": frozen)
    faketime: str  # auto | always | never
    cpus: int  # what the synthetic /proc and /sys files say
    memory_bytes: int
    proc_digest: str  # SHA-256 over the synthetic files (names and bytes)
    synthetic: Mapping[str, str] = field(default_factory=dict)  # container path -> file name
    masked: tuple[str, ...] = ()  # container paths shown empty
    launcher: str | None = None  # host path of docklock-launch (None: none for this arch)
    launcher_digest: str | None = None
    preload: str | None = None  # host path of libfaketime (None: not used or not here)
    proc_dir: str | None = None  # host folder with the synthetic files
    preload_glibc: str | None = None  # newest GLIBC_x.y the preload needs from the image
    monotonic: str = "real"  # real | pinned: whether libfaketime fakes the monotonic clock

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch, "clock_step": self.clock_step, "faketime": self.faketime,
            "cpus": self.cpus, "memory_bytes": self.memory_bytes,
            "proc_digest": self.proc_digest, "synthetic": dict(self.synthetic),
            "masked": list(self.masked), "launcher": self.launcher,
            "launcher_digest": self.launcher_digest, "preload": self.preload,
            "proc_dir": self.proc_dir, "monotonic": self.monotonic,
        } | ({"preload_glibc": self.preload_glibc} if self.preload_glibc else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReplaySettings:
        return cls(
            epoch=int(d["epoch"]), clock_step=str(d["clock_step"]),
            faketime=str(d["faketime"]), cpus=int(d["cpus"]),
            memory_bytes=int(d["memory_bytes"]), proc_digest=str(d["proc_digest"]),
            synthetic=dict(d.get("synthetic", {})), masked=tuple(d.get("masked", ())),
            launcher=d.get("launcher"), launcher_digest=d.get("launcher_digest"),
            preload=d.get("preload"), proc_dir=d.get("proc_dir"),
            preload_glibc=d.get("preload_glibc"),
            # Recorded before the choice existed: libfaketime faked the monotonic clock.
            monotonic=str(d.get("monotonic", "pinned")),
        )

    def digest_body(self) -> dict[str, Any]:
        body = self.to_dict()
        for host_path in ("launcher", "preload", "proc_dir"):
            body.pop(host_path)
        body["preload"] = self.preload is not None  # whether, not where
        body.pop("preload_glibc", None)  # a fact of this host's libfaketime, not the cage
        # "1s" and "1000ms" are one clock: a cosmetic edit must not replace the job.
        body["clock_step"] = duration_ns(self.clock_step)
        return body


@dataclass(frozen=True)
class CageSettings:
    """The effective cage of one container, resolved from a level or a CageProfile.

    `digest` covers every field including the seccomp profile's content digest, so a
    change of profile content changes the container's config hash (a planned replace).
    """

    name: str  # the level or CageProfile name asked for
    level: str  # effective built-in level: standard | hardened | deterministic
    cap_drop: tuple[str, ...] = ("ALL",)
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = True
    read_only: bool = False
    tmpfs: Mapping[str, str] = field(default_factory=dict)  # path -> mount options
    seccomp_profile_path: str | None = None  # None: Podman's default profile
    seccomp_digest: str | None = None
    network_none: bool = False
    hostname: str | None = None
    pids_limit: int | None = None
    memory: str | None = None
    env: tuple[EnvVar, ...] = ()  # pinned env, overrides the spec's
    timezone: str | None = None
    umask: str | None = None
    random_source: str | None = None  # host file bound over /dev/urandom and /dev/random
    denied_syscalls: tuple[str, ...] = ()
    # A deterministic Job's second-generation pins; None for every other container, and
    # then absent from to_dict, so older cages keep their digests.
    replay: ReplaySettings | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "level": self.level,
            "cap_drop": list(self.cap_drop), "cap_add": list(self.cap_add),
            "no_new_privileges": self.no_new_privileges, "read_only": self.read_only,
            "tmpfs": dict(self.tmpfs), "seccomp_profile_path": self.seccomp_profile_path,
            "seccomp_digest": self.seccomp_digest, "network_none": self.network_none,
            "hostname": self.hostname, "pids_limit": self.pids_limit, "memory": self.memory,
            "env": [[e.name, e.value, e.sensitive] for e in self.env],
            "timezone": self.timezone, "umask": self.umask,
            "random_source": self.random_source,
            "denied_syscalls": list(self.denied_syscalls),
        } | ({"replay": self.replay.to_dict()} if self.replay is not None else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CageSettings:
        return cls(
            name=d["name"], level=d["level"],
            cap_drop=tuple(d.get("cap_drop", ())), cap_add=tuple(d.get("cap_add", ())),
            no_new_privileges=bool(d.get("no_new_privileges", True)),
            read_only=bool(d.get("read_only", False)), tmpfs=dict(d.get("tmpfs", {})),
            seccomp_profile_path=d.get("seccomp_profile_path"),
            seccomp_digest=d.get("seccomp_digest"),
            network_none=bool(d.get("network_none", False)), hostname=d.get("hostname"),
            pids_limit=d.get("pids_limit"), memory=d.get("memory"),
            env=tuple(EnvVar(n, v, s) for n, v, s in d.get("env", ())),
            timezone=d.get("timezone"), umask=d.get("umask"),
            random_source=d.get("random_source"),
            denied_syscalls=tuple(d.get("denied_syscalls", ())),
            replay=ReplaySettings.from_dict(d["replay"]) if d.get("replay") else None,
        )

    @property
    def digest(self) -> str:
        body = self.to_dict()
        # The host path of the profile is an artefact of where the workspace lives; the
        # content digest is what matters for "did the cage change".
        body.pop("seccomp_profile_path")
        body.pop("random_source")
        if self.replay is not None:
            body["replay"] = self.replay.digest_body()
            body["env"] = [e for e in body["env"] if e[0] not in HOST_ENV]
        return sha256_hex(canonical_json(body))


@dataclass(frozen=True)
class Mount:
    type: str  # volume | bind | tmpfs
    source: str
    target: str
    read_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "source": self.source, "target": self.target,
                "read_only": self.read_only}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Mount:
        return cls(d["type"], d["source"], d["target"], bool(d.get("read_only", False)))


@dataclass(frozen=True)
class ContainerConfig:
    """Everything needed to create one container; runtime maps it to podman-py.

    `aliases` are the DNS names the container answers to on each of its `networks`
    besides its own name (a Service's replicas share `<service>` and
    `<service>.<namespace>`); `init` runs Podman's init (catatonit) as PID 1 so the
    command gets SIGTERM and zombies are reaped. Both enter the config hash only when
    set, so the hash of a container without them (a Job, a network-less service) is
    what it was before they existed (docs/adr/0016).
    """

    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    env: tuple[EnvVar, ...] = ()
    ports: tuple[Port, ...] = ()
    networks: tuple[str, ...] = ()  # Podman network names
    mounts: tuple[Mount, ...] = ()
    healthcheck: Healthcheck | None = None
    user: str | None = None
    workdir: str | None = None
    cpus: float | None = None
    memory: str | None = None
    pids_limit: int | None = None
    restart: str = "no"
    stop_timeout: int = 10
    cage: CageSettings = field(default_factory=lambda: CageSettings("standard", "standard"))
    labels: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # network aliases, on every network in `networks`
    init: bool = False

    def hashed_fields(self) -> dict[str, Any]:
        """The fields whose change means a new container (labels excluded: they hold the hash)."""
        fields: dict[str, Any] = {
            "name": self.name, "image": self.image,
            "command": list(self.command), "entrypoint": list(self.entrypoint),
            "env": [[e.name, e.value] for e in self.env],
            "ports": [p.to_dict() for p in self.ports],
            "networks": list(self.networks), "mounts": [m.to_dict() for m in self.mounts],
            "healthcheck": self.healthcheck.to_dict() if self.healthcheck else None,
            "user": self.user, "workdir": self.workdir, "cpus": self.cpus,
            "memory": self.memory, "pids_limit": self.pids_limit, "restart": self.restart,
            "stop_timeout": self.stop_timeout, "cage": self.cage.digest,
        }
        # Only when set: older containers (and jobs) keep the hash they were created with.
        if self.aliases:
            fields["aliases"] = list(self.aliases)
        if self.init:
            fields["init"] = True
        return fields

    def config_hash(self) -> str:
        return sha256_hex(canonical_json(self.hashed_fields()))

    def to_dict(self) -> dict[str, Any]:
        d = self.hashed_fields()
        d["env"] = [[e.name, e.value, e.sensitive] for e in self.env]
        d["cage"] = self.cage.to_dict()
        d["labels"] = dict(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ContainerConfig:
        hc = d.get("healthcheck")
        return cls(
            name=d["name"], image=d["image"], command=tuple(d.get("command", ())),
            entrypoint=tuple(d.get("entrypoint", ())),
            env=tuple(EnvVar(n, v, s) for n, v, s in d.get("env", ())),
            ports=tuple(Port.from_dict(p) for p in d.get("ports", ())),
            networks=tuple(d.get("networks", ())),
            mounts=tuple(Mount.from_dict(m) for m in d.get("mounts", ())),
            healthcheck=Healthcheck.from_dict(hc) if hc else None,
            user=d.get("user"), workdir=d.get("workdir"), cpus=d.get("cpus"),
            memory=d.get("memory"), pids_limit=d.get("pids_limit"),
            restart=d.get("restart", "no"), stop_timeout=int(d.get("stop_timeout", 10)),
            cage=CageSettings.from_dict(d["cage"]), labels=dict(d.get("labels", {})),
            aliases=tuple(d.get("aliases", ())), init=bool(d.get("init", False)),
        )


@dataclass(frozen=True)
class DesiredObject:
    """One concrete Podman object a resource renders to.

    `key` is unique across the workspace: `<object kind>:<podman name>`. `config` is the
    object's full configuration as plain data (ContainerConfig.to_dict() for containers),
    `config_hash` decides update/replace, `depends_on` lists keys that must exist first.
    """

    key: str
    kind: ObjectKind
    address: Address  # the resource it came from
    name: str  # the Podman name
    config: Mapping[str, Any]
    config_hash: str
    replica: int | None = None
    depends_on: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()  # config paths to mask, e.g. "env.PASSWORD"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "kind": self.kind.value, "address": str(self.address),
            "name": self.name, "config": dict(self.config), "config_hash": self.config_hash,
            "replica": self.replica, "depends_on": list(self.depends_on),
            "sensitive": list(self.sensitive),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DesiredObject:
        return cls(
            key=d["key"], kind=ObjectKind(d["kind"]), address=Address.parse(d["address"]),
            name=d["name"], config=dict(d["config"]), config_hash=d["config_hash"],
            replica=d.get("replica"), depends_on=tuple(d.get("depends_on", ())),
            sensitive=tuple(d.get("sensitive", ())),
        )


@dataclass(frozen=True)
class LiveObject:
    """What Podman reports for one object carrying DockLock labels (or a named object)."""

    key: str
    kind: ObjectKind
    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    status: str = ""  # containers: created | running | exited | ... ; others: "present"
    health: str = ""  # healthy | unhealthy | starting | "" (no healthcheck)
    image: str = ""
    exit_code: int | None = None
    ports: tuple[str, ...] = ()
    # Containers, from the same list call: network names and mount destinations
    # (None: the listing did not report them, so drift does not judge them).
    networks: tuple[str, ...] | None = None
    mounts: tuple[str, ...] | None = None
    # Containers, from an inspect (drift and `cluster health` only): what `podman
    # update` / `network connect --alias` can change and the list does not show.
    detail: ContainerDetail | None = None

    @property
    def config_hash(self) -> str:
        return self.labels.get(LABEL_CONFIG_HASH, "")

    @property
    def address(self) -> str:
        return self.labels.get(LABEL_ADDRESS, "")


@dataclass(frozen=True)
class ContainerDetail:
    """Fields of one live container that only an inspect shows.

    `memory` in bytes, `cpu_quota`/`cpu_period` in microseconds and `pids_limit` as
    Podman reports them (0: no limit); `aliases` maps each network to the aliases the
    container has on it, Podman's automatic ones included.
    """

    memory: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    pids_limit: int = 0
    restart: str = ""
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveState:
    """One node's live view: every object keyed like DesiredObject.key."""

    objects: Mapping[str, LiveObject] = field(default_factory=dict)
    api_calls: int = 0  # how many Podman API calls the refresh cost (tested)
    # Objects the same list calls found WITHOUT this cluster's label (another cluster's,
    # or not DockLock's at all), keyed the same way: plan checks them for name clashes
    # and never acts on them. Empty when the listing was filtered by label.
    others: Mapping[str, LiveObject] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveImages:
    """The local images, from ONE list call: their ids, tags and repo digests."""

    ids: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()  # fully qualified, e.g. localhost/demo/app:1
    digests: frozenset[str] = frozenset()  # name@sha256:...
    api_calls: int = 0
    # Images DockLock built (managed-by label): tag -> (image id, labels), so plan can
    # tell whose build holds a ref (another workspace's is never rebuilt or removed).
    built: Mapping[str, tuple[str, Mapping[str, str]]] = field(default_factory=dict)

    def built_as(self, ref: str) -> tuple[str, str, Mapping[str, str]] | None:
        """(tag, id, labels) of the DockLock-built image holding `ref`, if any."""
        tagged = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        for tag in sorted(self.built):
            if tag == tagged or tag.endswith("/" + tagged):
                image_id, labels = self.built[tag]
                return tag, image_id, labels
        return None

    def has(self, ref: str) -> bool:
        """Whether `ref` (as a spec writes it) names a local image.

        Lenient on purpose, like Podman's short-name lookup in local storage: `app:1`
        matches `localhost/app:1` or `<any registry>/app:1`, a ref without a tag means
        `:latest`. A false "present" only defers the failure to apply (today's
        behaviour); a false "missing" would block a plan that works.
        """
        if looks_like_id(ref):
            bare = ref.removeprefix("sha256:")
            return any(i.removeprefix("sha256:").startswith(bare) for i in self.ids)
        if "@" in ref:
            digest = ref.split("@", 1)[1]
            return any(d == ref or d.endswith("@" + digest) for d in self.digests)
        tagged = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        return tagged in self.tags or any(t.endswith("/" + tagged) for t in self.tags)


def object_key(kind: ObjectKind, name: str) -> str:
    return f"{kind.value}:{name}"


# ------------------------------------------------------------------ names, ids, labels


def podman_name(cluster: str, namespace: str, name: str) -> str:
    """The Podman name of a network or volume: `<cluster>-<namespace>-<name>`."""
    return f"{cluster}-{namespace}-{name}"


def container_name(cluster: str, namespace: str, name: str, replica: int) -> str:
    """The Podman name of one replica's container: `<cluster>-<namespace>-<name>-<n>`."""
    return f"{cluster}-{namespace}-{name}-{replica}"


def same_id(a: str, b: str) -> bool:
    """Podman ids compare by prefix: a list gives short ids, inspect long ones."""
    a, b = a.removeprefix("sha256:"), b.removeprefix("sha256:")
    if not a or not b:
        return True  # nothing to compare
    n = min(len(a), len(b))
    return a == b if n < 12 else a[:n] == b[:n]


def looks_like_id(text: str) -> bool:
    """An image id (hex, at least 12 digits) rather than a name like `busybox:1`."""
    t = text.removeprefix("sha256:")
    return len(t) >= 12 and all(ch in "0123456789abcdef" for ch in t)


def short_id(text: str | None) -> str:
    """The 12-digit form Podman prints (`sha256:` dropped); "" for no id. Volume "ids"
    are their names, and a cut name would mislead: only hex ids are shortened."""
    bare = (text or "").removeprefix("sha256:")
    return bare[:12] if looks_like_id(bare) else bare


def clip(text: str, limit: int = 200) -> str:
    """One line (whitespace runs collapsed) of at most `limit` characters, for messages."""
    one = " ".join(text.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def owner_labels(lineage: str, workspace: str | None) -> dict[str, str]:
    """The labels that say which workspace owns an object (see LABEL_LINEAGE)."""
    labels = {LABEL_LINEAGE: lineage}
    if workspace:
        labels[LABEL_WORKSPACE] = workspace
    return labels


def with_owner(obj: DesiredObject, lineage: str, workspace: str | None) -> DesiredObject:
    """`obj` with the owner labels added to its config's labels (hash unchanged:
    labels are in no config hash)."""
    labels = {**dict(obj.config.get("labels") or {}), **owner_labels(lineage, workspace)}
    return replace(obj, config={**obj.config, "labels": labels})


def describe_owner(labels: Mapping[str, str]) -> str:
    """Who a live object belongs to, for messages: cluster, lineage, workspace."""
    if labels.get(LABEL_MANAGED_BY) != MANAGED_BY:
        return "not managed by DockLock"
    parts = [f"cluster {labels.get(LABEL_CLUSTER, '?')!r}"]
    lineage = labels.get(LABEL_LINEAGE)
    parts.append(f"lineage {lineage}" if lineage else
                 "no lineage label (made by an older DockLock)")
    if labels.get(LABEL_WORKSPACE):
        parts.append(f"workspace {labels[LABEL_WORKSPACE]}")
    if labels.get(LABEL_ADDRESS):
        parts.append(f"resource {labels[LABEL_ADDRESS]}")
    return "DockLock " + ", ".join(parts)


def is_managed(labels: Mapping[str, str], cluster: str | None) -> bool:
    """Whether a live object's labels say DockLock manages it for `cluster`.

    `cluster=None` accepts any cluster. Callers add their own stricter checks (an
    address label at all, or a particular one).
    """
    return (labels.get(LABEL_MANAGED_BY) == MANAGED_BY
            and (cluster is None or labels.get(LABEL_CLUSTER) == cluster))


def is_owned(labels: Mapping[str, str], cluster: str, lineage: str | None) -> bool:
    """Managed for `cluster` AND labelled with this workspace's lineage: the only live
    objects apply may take over without a record (a crash between create and the state
    write). Another workspace with the same cluster name has another lineage."""
    return (lineage is not None and is_managed(labels, cluster)
            and labels.get(LABEL_LINEAGE) == lineage)
