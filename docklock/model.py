"""Typed, immutable resources built from validated spec documents.

Invariant: `Resource.from_dict` is only called on documents that already passed the
kind's JSON Schema (docklock.load does that), so it applies defaults but does not
re-check types. Every class round-trips: `X.from_dict(x.to_dict()) == x`.
Addresses look like `Service/default/web`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from docklock.errors import Location

API_VERSION = "docklock.io/v1"
DEFAULT_NAMESPACE = "default"


class Kind(StrEnum):
    CLUSTER = "Cluster"
    SERVICE = "Service"
    JOB = "Job"
    IMAGE = "Image"
    NETWORK = "Network"
    VOLUME = "Volume"
    CAGE_PROFILE = "CageProfile"
    POLICY = "Policy"


class Condition(StrEnum):
    STARTED = "started"
    HEALTHY = "healthy"
    COMPLETED = "completed"


@dataclass(frozen=True, order=True)
class Address:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @classmethod
    def parse(cls, text: str, *, default_kind: str = "Service") -> Address:
        """Parse `Kind/ns/name`, `Kind/name` (default namespace) or a bare `name`."""
        parts = text.split("/")
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        if len(parts) == 2:
            return cls(parts[0], DEFAULT_NAMESPACE, parts[1])
        if len(parts) == 1 and parts[0]:
            return cls(default_kind, DEFAULT_NAMESPACE, parts[0])
        raise ValueError(f"not an address: {text!r} (expected Kind/namespace/name)")


def _t(items: Any) -> tuple[Any, ...]:
    return tuple(items or ())


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v not in ((), {})}


@dataclass(frozen=True)
class Metadata:
    name: str
    namespace: str = DEFAULT_NAMESPACE
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metadata:
        return cls(
            name=d["name"],
            namespace=d.get("namespace", DEFAULT_NAMESPACE),
            labels=dict(d.get("labels", {})),
            annotations=dict(d.get("annotations", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


# ---------------------------------------------------------------- service parts


@dataclass(frozen=True)
class Dependency:
    name: str
    kind: str = "Service"
    condition: Condition = Condition.STARTED

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dependency:
        return cls(d["name"], d.get("kind", "Service"), Condition(d.get("condition", "started")))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "condition": self.condition.value}


@dataclass(frozen=True)
class Port:
    container: int
    host: int | None = None
    protocol: str = "tcp"
    hostIp: str = "127.0.0.1"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Port:
        return cls(d["container"], d.get("host"), d.get("protocol", "tcp"),
                   d.get("hostIp", "127.0.0.1"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"container": self.container, "host": self.host,
                           "protocol": self.protocol, "hostIp": self.hostIp})


@dataclass(frozen=True)
class EnvVar:
    """An environment value; `sensitive` values are masked in every output."""

    name: str
    value: str
    sensitive: bool = False

    @classmethod
    def from_spec(cls, name: str, raw: Any) -> EnvVar:
        if isinstance(raw, Mapping):
            return cls(name, str(raw.get("value", "")), bool(raw.get("sensitive", False)))
        return cls(name, str(raw))

    def to_spec(self) -> Any:
        if self.sensitive:
            return {"value": self.value, "sensitive": True}
        return self.value


def _env_from(d: Mapping[str, Any] | None) -> tuple[EnvVar, ...]:
    return tuple(EnvVar.from_spec(k, v) for k, v in sorted((d or {}).items()))


def _env_to(env: tuple[EnvVar, ...]) -> dict[str, Any]:
    return {e.name: e.to_spec() for e in env}


@dataclass(frozen=True)
class VolumeMount:
    name: str
    path: str
    readOnly: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VolumeMount:
        return cls(d["name"], d["path"], bool(d.get("readOnly", False)))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path}
        if self.readOnly:
            out["readOnly"] = True
        return out


@dataclass(frozen=True)
class Healthcheck:
    command: tuple[str, ...]
    interval: str = "2s"
    timeout: str = "5s"
    retries: int = 5
    startPeriod: str = "0s"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Healthcheck:
        return cls(_t(d["command"]), d.get("interval", "2s"), d.get("timeout", "5s"),
                   int(d.get("retries", 5)), d.get("startPeriod", "0s"))

    def to_dict(self) -> dict[str, Any]:
        return {"command": list(self.command), "interval": self.interval,
                "timeout": self.timeout, "retries": self.retries,
                "startPeriod": self.startPeriod}


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory: str | None = None  # e.g. 64Mi, 1Gi, 512M
    pids: int | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Limits:
        d = d or {}
        return cls(d.get("cpus"), d.get("memory"), d.get("pids"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"cpus": self.cpus, "memory": self.memory, "pids": self.pids})


@dataclass(frozen=True)
class Capability:
    name: str
    reason: str = ""

    @classmethod
    def from_spec(cls, raw: Any) -> Capability:
        if isinstance(raw, Mapping):
            return cls(str(raw["name"]).upper(), str(raw.get("reason", "")))
        return cls(str(raw).upper())

    def to_spec(self) -> Any:
        return {"name": self.name, "reason": self.reason} if self.reason else self.name


# ---------------------------------------------------------------- kinds' specs


@dataclass(frozen=True)
class UpdateStrategy:
    """How a Service's containers are replaced (`spec.update`).

    `overlap`: whether a new container may start before the old one is removed. By
    default it may unless the service mounts a named volume (a stateful service: two
    writers on one volume can corrupt it), which is replaced destroy-first; `overlap:
    true` opts such a service into create-before-destroy (docs/adr/0016).
    """

    overlap: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> UpdateStrategy:
        return cls(bool((d or {}).get("overlap", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"overlap": self.overlap}


@dataclass(frozen=True)
class ServiceSpec:
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    replicas: int = 1
    cage: str | None = None  # None: the cluster's securityLevel
    dependsOn: tuple[Dependency, ...] = ()
    ports: tuple[Port, ...] = ()
    env: tuple[EnvVar, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    healthcheck: Healthcheck | None = None
    resources: Limits = field(default_factory=Limits)
    user: str | None = None
    workdir: str | None = None
    capAdd: tuple[Capability, ...] = ()
    restart: str = "no"
    stopTimeout: int = 10
    init: bool = True  # catatonit as PID 1 (podman --init)
    update: UpdateStrategy = field(default_factory=UpdateStrategy)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceSpec:
        hc = d.get("healthcheck")
        return cls(
            image=d["image"],
            command=_t(d.get("command")),
            entrypoint=_t(d.get("entrypoint")),
            replicas=int(d.get("replicas", 1)),
            cage=d.get("cage"),
            dependsOn=tuple(Dependency.from_dict(x) for x in d.get("dependsOn", ())),
            ports=tuple(Port.from_dict(x) for x in d.get("ports", ())),
            env=_env_from(d.get("env")),
            networks=_t(d.get("networks")),
            volumes=tuple(VolumeMount.from_dict(x) for x in d.get("volumes", ())),
            healthcheck=Healthcheck.from_dict(hc) if hc else None,
            resources=Limits.from_dict(d.get("resources")),
            user=d.get("user"),
            workdir=d.get("workdir"),
            capAdd=tuple(Capability.from_spec(x) for x in d.get("capAdd", ())),
            restart=d.get("restart", "no"),
            stopTimeout=int(d.get("stopTimeout", 10)),
            init=bool(d.get("init", True)),
            update=UpdateStrategy.from_dict(d.get("update")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "image": self.image,
            "command": list(self.command) or None,
            "entrypoint": list(self.entrypoint) or None,
            "replicas": self.replicas,
            "cage": self.cage,
            "dependsOn": [x.to_dict() for x in self.dependsOn] or None,
            "ports": [x.to_dict() for x in self.ports] or None,
            "env": _env_to(self.env) or None,
            "networks": list(self.networks) or None,
            "volumes": [x.to_dict() for x in self.volumes] or None,
            "healthcheck": self.healthcheck.to_dict() if self.healthcheck else None,
            "resources": self.resources.to_dict() or None,
            "user": self.user,
            "workdir": self.workdir,
            "capAdd": [c.to_spec() for c in self.capAdd] or None,
            "restart": self.restart,
            "stopTimeout": self.stopTimeout,
            # Defaults left out, so documents written before these fields existed
            # round-trip unchanged.
            "init": None if self.init else False,
            "update": self.update.to_dict() if self.update != UpdateStrategy() else None,
        })


@dataclass(frozen=True)
class JobInput:
    path: str  # workspace-relative host path, mounted read-only
    mount: str  # path inside the container

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobInput:
        return cls(d["path"], d["mount"])

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "mount": self.mount}


FAKETIME_MODES: tuple[str, ...] = ("auto", "always", "never")


@dataclass(frozen=True)
class JobClock:
    """The wall clock a Job sees in the deterministic cage (docs/determinism.md).

    `epoch` (seconds since 1970, UTC) is where the clock starts; None: the job's
    SOURCE_DATE_EPOCH, else 1980-01-01. `step` is how far it moves on every read ("0s"
    freezes it). `faketime` decides the libfaketime preload: auto (when the image has
    glibc's loader and a libc as new as the preload needs), always, never. `monotonic`
    is "real" (the host's monotonic and boot-time clocks) or "pinned" (they move like
    the wall clock): a pinned monotonic clock hangs timed waits (Event.wait(t),
    queue.get(timeout=t)) until the job's timeout, so only programs that never wait with
    a timeout should pin it.
    """

    epoch: int | None = None
    step: str = "1ms"
    faketime: str = "auto"
    monotonic: str = "real"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> JobClock:
        d = d or {}
        epoch = d.get("epoch")
        return cls(None if epoch is None else int(epoch), str(d.get("step", "1ms")),
                   str(d.get("faketime", "auto")), str(d.get("monotonic", "real")))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"epoch": self.epoch,
                           "step": self.step if self.step != "1ms" else None,
                           "faketime": self.faketime if self.faketime != "auto" else None,
                           "monotonic": self.monotonic if self.monotonic != "real" else None})


@dataclass(frozen=True)
class JobSpec:
    image: str
    command: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cage: str | None = None
    seed: int = 0
    env: tuple[EnvVar, ...] = ()
    inputs: tuple[JobInput, ...] = ()
    outputs: str | None = None  # folder inside the container captured after the run
    timeout: int = 300
    dependsOn: tuple[Dependency, ...] = ()
    networks: tuple[str, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    resources: Limits = field(default_factory=Limits)
    user: str | None = None
    workdir: str | None = None
    clock: JobClock = field(default_factory=JobClock)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobSpec:
        return cls(
            image=d["image"],
            command=_t(d.get("command")),
            entrypoint=_t(d.get("entrypoint")),
            cage=d.get("cage"),
            seed=int(d.get("seed", 0)),
            env=_env_from(d.get("env")),
            inputs=tuple(JobInput.from_dict(x) for x in d.get("inputs", ())),
            outputs=d.get("outputs"),
            timeout=int(d.get("timeout", 300)),
            dependsOn=tuple(Dependency.from_dict(x) for x in d.get("dependsOn", ())),
            networks=_t(d.get("networks")),
            volumes=tuple(VolumeMount.from_dict(x) for x in d.get("volumes", ())),
            resources=Limits.from_dict(d.get("resources")),
            user=d.get("user"),
            workdir=d.get("workdir"),
            clock=JobClock.from_dict(d.get("clock")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "image": self.image,
            "command": list(self.command) or None,
            "entrypoint": list(self.entrypoint) or None,
            "cage": self.cage,
            "seed": self.seed,
            "env": _env_to(self.env) or None,
            "inputs": [x.to_dict() for x in self.inputs] or None,
            "outputs": self.outputs,
            "timeout": self.timeout,
            "dependsOn": [x.to_dict() for x in self.dependsOn] or None,
            "networks": list(self.networks) or None,
            "volumes": [x.to_dict() for x in self.volumes] or None,
            "resources": self.resources.to_dict() or None,
            "user": self.user,
            "workdir": self.workdir,
            "clock": self.clock.to_dict() or None,
        })


@dataclass(frozen=True)
class ImageSpec:
    """An image built locally: `ref` is the tag services use in `image:`."""

    ref: str
    context: str  # workspace-relative folder
    containerfile: str = "Containerfile"
    buildArgs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageSpec:
        return cls(d["ref"], d["context"], d.get("containerfile", "Containerfile"),
                   dict(d.get("buildArgs", {})))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "context": self.context,
                               "containerfile": self.containerfile}
        if self.buildArgs:
            out["buildArgs"] = dict(self.buildArgs)
        return out


@dataclass(frozen=True)
class NetworkSpec:
    driver: str = "bridge"
    internal: bool = False
    subnet: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetworkSpec:
        return cls(d.get("driver", "bridge"), bool(d.get("internal", False)), d.get("subnet"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"driver": self.driver, "internal": self.internal,
                           "subnet": self.subnet})


@dataclass(frozen=True)
class VolumeSpec:
    driver: str = "local"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VolumeSpec:
        return cls(d.get("driver", "local"))

    def to_dict(self) -> dict[str, Any]:
        return {"driver": self.driver}


@dataclass(frozen=True)
class CageProfileSpec:
    """A named cage that extends a built-in level."""

    extends: str = "hardened"
    denySyscalls: tuple[str, ...] = ()
    allowSyscalls: tuple[str, ...] = ()
    capAdd: tuple[Capability, ...] = ()
    memory: str | None = None
    pids: int | None = None
    env: tuple[EnvVar, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CageProfileSpec:
        return cls(
            extends=d.get("extends", "hardened"),
            denySyscalls=_t(d.get("denySyscalls")),
            allowSyscalls=_t(d.get("allowSyscalls")),
            capAdd=tuple(Capability.from_spec(x) for x in d.get("capAdd", ())),
            memory=d.get("memory"),
            pids=d.get("pids"),
            env=_env_from(d.get("env")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "extends": self.extends,
            "denySyscalls": list(self.denySyscalls) or None,
            "allowSyscalls": list(self.allowSyscalls) or None,
            "capAdd": [c.to_spec() for c in self.capAdd] or None,
            "memory": self.memory,
            "pids": self.pids,
            "env": _env_to(self.env) or None,
        })


@dataclass(frozen=True)
class PolicySpec:
    """BISO rules and exceptions kept as validated plain data; docklock.policy interprets them.

    `exceptions` ({rule, address, reason, expires}) accept a risk for any active rule by
    id, built-in pack rules included; a document may hold only exceptions.
    """

    rules: tuple[Mapping[str, Any], ...] = ()
    exceptions: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicySpec:
        return cls(tuple(dict(r) for r in d.get("rules", ())),
                   tuple(dict(e) for e in d.get("exceptions", ())))

    def to_dict(self) -> dict[str, Any]:
        # Valid documents round-trip exactly (each list, when given, is non-empty); an
        # empty spec keeps `rules: []` so the schema reports what is missing.
        out: dict[str, Any] = {}
        if self.rules or not self.exceptions:
            out["rules"] = [dict(r) for r in self.rules]
        if self.exceptions:
            out["exceptions"] = [dict(e) for e in self.exceptions]
        return out


@dataclass(frozen=True)
class Node:
    name: str
    url: str | None = None  # None: the local default Podman

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Node:
        return cls(d["name"], d.get("url"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"name": self.name, "url": self.url})


@dataclass(frozen=True)
class WitnessRef:
    """One witness of the ledger: its add-checkpoint URL prefix and cosigner vkey."""

    url: str
    key: str  # <name>+<hex key id>+<base64(0x04 || Ed25519 public key)>

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WitnessRef:
        return cls(d["url"], d["key"])

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "key": self.key}


@dataclass(frozen=True)
class LedgerSpec:
    """`spec.ledger`: the witnesses that cosign checkpoints; `quorum` None means all."""

    witnesses: tuple[WitnessRef, ...] = ()
    quorum: int | None = None

    @property
    def required(self) -> int:
        return len(self.witnesses) if self.quorum is None else self.quorum

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LedgerSpec:
        return cls(tuple(WitnessRef.from_dict(w) for w in d.get("witnesses", ())),
                   d.get("quorum"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"witnesses": [w.to_dict() for w in self.witnesses] or None,
                           "quorum": self.quorum})


@dataclass(frozen=True)
class BackendSpec:
    """`spec.backend`: where state, its lock and the ledger live (docklock.backend).

    `connectionEnv` is the NAME of the environment variable holding the libpq
    conninfo/URI, never the conninfo itself, so docklock.yaml (committed to git) holds
    no password. It may be set with `type: local` too: it is then the source of
    `docklock state migrate --to local`. `workspace` keys this workspace's rows in a
    shared database; None means the cluster's name (metadata.name).
    """

    type: str = "local"  # local | postgres
    connectionEnv: str | None = None
    workspace: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BackendSpec:
        return cls(d.get("type", "local"), d.get("connectionEnv"), d.get("workspace"))

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({"type": self.type, "connectionEnv": self.connectionEnv,
                           "workspace": self.workspace})


@dataclass(frozen=True)
class ClusterSpec:
    """The workspace file docklock.yaml is itself a Cluster document."""

    specs: tuple[str, ...] = ("specs",)
    securityLevel: str = "standard"
    nodes: tuple[Node, ...] = ()
    policies: tuple[str, ...] = ()
    podmanUrl: str | None = None
    ledger: LedgerSpec | None = None
    backend: BackendSpec | None = None  # None: local, as before spec.backend existed

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClusterSpec:
        return cls(
            specs=_t(d.get("specs", ("specs",))),
            securityLevel=d.get("securityLevel", "standard"),
            nodes=tuple(Node.from_dict(n) for n in d.get("nodes", ())),
            policies=_t(d.get("policies")),
            podmanUrl=d.get("podmanUrl"),
            ledger=LedgerSpec.from_dict(d["ledger"]) if "ledger" in d else None,
            backend=BackendSpec.from_dict(d["backend"]) if "backend" in d else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return _drop_none({
            "specs": list(self.specs),
            "securityLevel": self.securityLevel,
            "nodes": [n.to_dict() for n in self.nodes] or None,
            "policies": list(self.policies) or None,
            "podmanUrl": self.podmanUrl,
            "ledger": self.ledger.to_dict() if self.ledger is not None else None,
            "backend": self.backend.to_dict() if self.backend is not None else None,
        })


Spec = (ServiceSpec | JobSpec | ImageSpec | NetworkSpec | VolumeSpec | CageProfileSpec
        | PolicySpec | ClusterSpec)

SPEC_TYPES: dict[str, Any] = {
    Kind.SERVICE.value: ServiceSpec,
    Kind.JOB.value: JobSpec,
    Kind.IMAGE.value: ImageSpec,
    Kind.NETWORK.value: NetworkSpec,
    Kind.VOLUME.value: VolumeSpec,
    Kind.CAGE_PROFILE.value: CageProfileSpec,
    Kind.POLICY.value: PolicySpec,
    Kind.CLUSTER.value: ClusterSpec,
}


@dataclass(frozen=True)
class Resource:
    """One validated document. `location` is where the document starts (not compared)."""

    kind: str
    metadata: Metadata
    spec: Spec
    api_version: str = API_VERSION
    location: Location | None = field(default=None, compare=False)

    @property
    def address(self) -> Address:
        return Address(self.kind, self.metadata.namespace, self.metadata.name)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], location: Location | None = None) -> Resource:
        kind = d["kind"]
        spec_type = SPEC_TYPES[kind]
        return cls(
            kind=kind,
            metadata=Metadata.from_dict(d["metadata"]),
            spec=spec_type.from_dict(d.get("spec") or {}),
            api_version=d.get("apiVersion", API_VERSION),
            location=location,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": self.metadata.to_dict(),
            "spec": self.spec.to_dict(),
        }
