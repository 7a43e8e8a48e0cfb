"""Render resources into the concrete Podman objects they stand for (desired objects).

Each stage of DockLock is a function from data to data; this one is
`resources -> desired objects`. It does not talk to Podman and writes nothing. The only
thing it reads is an Image's build context, to digest it (through `context_digest`,
injectable so tests and benches can pass a constant).

Naming (stable: changing it would replace every object):
- image     key `image:<ref>`, Podman name = the ref the services use
- network   `<cluster>-<namespace>-<name>`
- volume    `<cluster>-<namespace>-<name>`
- container one per replica, `<cluster>-<namespace>-<name>-<i>` with i = 1..replicas
  (1-based like docker compose's `project-web-1`), label io.docklock.replica = i. On
  each of its networks every replica answers to the DNS aliases `<name>` and
  `<name>.<namespace>` (compose's service names), and it runs Podman's init as PID 1
  unless the spec says `init: false`; `config["update"]` (not hashed) tells plan
  whether a replace may overlap old and new (docs/adr/0016).
- job       one run-once container `<cluster>-<namespace>-<name>-1` (docker compose's
  one-shot service): label io.docklock.kind = job, the Job's cage resolved with its
  seed, inputs bound read-only from the workspace, its outputs folder bound from
  `.docklock/jobs/<Job.ns.name>/apply-outputs`, and `config["job"]` holding what apply
  needs to run it to completion (timeout, outputs folder; not hashed). A job container
  that exited 0 with the desired config hash is converged; see docs/adr/0001.
  `docklock run` runs the same Job apart from apply, in containers of its own.

Every object's config hash covers exactly the fields that decide whether the object
must change; labels (which carry the hash) are excluded. `depends_on` lists the keys
that must exist first: a container's image (when built here), networks, volumes, and
the containers of the services and jobs it dependsOn. A job's bind mounts name host
paths, so moving the workspace re-runs its jobs; the content of its inputs is not
hashed (like a compose bind mount): `--replace Job/ns/name` re-runs it on demand.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from docklock.cage import resolve_cage
from docklock.cage.jobs import input_mounts, job_folder
from docklock.errors import CageError, SpecError
from docklock.model import (
    Address,
    CageProfileSpec,
    ClusterSpec,
    EnvVar,
    ImageSpec,
    JobSpec,
    Kind,
    NetworkSpec,
    Resource,
    ServiceSpec,
    VolumeSpec,
)
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CAGE,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    LABEL_PREFIX,
    LABEL_REPLICA,
    MANAGED_BY,
    CageSettings,
    ContainerConfig,
    DesiredObject,
    Mount,
    ObjectKind,
    canonical_json,
    container_name,
    object_key,
    podman_name,
    sha256_hex,
)
from docklock.state.store import gc_paused
from docklock.workspace import WorkspacePaths

# podman_name and container_name live in docklock.objects (cage.jobs needs them too, and
# render imports cage.jobs) and are re-exported here for older imports.
__all__ = [
    "FIRST_REPLICA", "JOB_CONFIG", "JOB_OUTPUTS", "JOB_RESULT", "KIND_JOB", "LABEL_KIND",
    "UPDATE_CONFIG", "ContextDigest", "JobSettings", "Rendered", "UpdateSettings",
    "WorkspaceLike", "base_labels",
    "constant_context_digest", "container_config", "container_name", "context_digester",
    "is_job", "is_job_labels", "is_rendered_kind", "job_outputs_folder", "job_settings",
    "podman_name", "recorded_exit_code", "render", "render_workspace",
    "resolve_cage_settings", "service_aliases", "update_settings",
]

FIRST_REPLICA = 1
LABEL_KIND = LABEL_PREFIX + "kind"  # "job" on a Job's run-once container
KIND_JOB = "job"
JOB_CONFIG = "job"  # config key of a job container's run settings (not hashed)
JOB_RESULT = "run"  # recorded config key: how the job's run ended (apply writes it)
JOB_OUTPUTS = "apply-outputs"  # the outputs folder of apply's runs, in the job folder
UPDATE_CONFIG = "update"  # config key of a service container's update settings (not hashed)

ContextDigest = Callable[[ImageSpec], str]


class WorkspaceLike(Protocol):
    """What render needs from docklock.load's Workspace."""

    @property
    def paths(self) -> WorkspacePaths: ...

    @property
    def cluster_name(self) -> str: ...

    @property
    def cluster_spec(self) -> ClusterSpec: ...

    @property
    def resources(self) -> Sequence[Resource]: ...


@dataclass(frozen=True)
class Rendered:
    """The desired objects of a workspace, sorted by key, and render warnings."""

    objects: tuple[DesiredObject, ...]
    warnings: tuple[str, ...] = ()

    def by_key(self) -> dict[str, DesiredObject]:
        return {o.key: o for o in self.objects}


def base_labels(cluster: str, address: Address) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CLUSTER: cluster,
            LABEL_ADDRESS: str(address)}


# ---------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobSettings:
    """What apply needs to run a job container to completion (`config["job"]`).

    `outputs` is the host folder bound at the Job's `spec.outputs` (None without one);
    apply empties it before each run. Neither field is in the config hash: a new
    timeout does not re-run a job that already completed.
    """

    timeout: int = 300
    outputs: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "outputs": self.outputs}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobSettings:
        return cls(int(d.get("timeout", 300)), d.get("outputs"))


@dataclass(frozen=True)
class UpdateSettings:
    """How plan may replace a service's container (`config["update"]`, not hashed).

    `stateful`: the container mounts a named volume; `overlap`: the spec's
    `update.overlap`. A stateful container is replaced destroy-first unless `overlap`.
    """

    overlap: bool = False
    stateful: bool = False

    @property
    def may_overlap(self) -> bool:
        return self.overlap or not self.stateful

    def to_dict(self) -> dict[str, Any]:
        return {"overlap": self.overlap, "stateful": self.stateful}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UpdateSettings:
        return cls(bool(d.get("overlap", False)), bool(d.get("stateful", False)))


def update_settings(config: Mapping[str, Any]) -> UpdateSettings:
    """A container config's update settings; a config rendered before they existed
    (recorded, or a saved plan) is judged by its mounts."""
    raw = config.get(UPDATE_CONFIG)
    if isinstance(raw, Mapping):
        return UpdateSettings.from_dict(raw)
    mounts = config.get("mounts") or ()
    return UpdateSettings(stateful=any(isinstance(m, Mapping) and m.get("type") == "volume"
                                       for m in mounts))


def service_aliases(res: Resource) -> tuple[str, str]:
    """The network aliases every replica of a Service shares: name and name.namespace."""
    return res.name, f"{res.name}.{res.namespace}"


def is_job_labels(labels: Mapping[str, str]) -> bool:
    """Whether a container's labels mark a Job's run-once container."""
    return labels.get(LABEL_KIND) == KIND_JOB


def is_job(config: Mapping[str, Any]) -> bool:
    """Whether a rendered (or recorded) container config is a Job's run-once container."""
    labels = config.get("labels")
    return isinstance(labels, Mapping) and is_job_labels(labels)


def job_settings(config: Mapping[str, Any]) -> JobSettings | None:
    """A job container's run settings; None for anything else."""
    if not is_job(config):
        return None
    raw = config.get(JOB_CONFIG)
    return JobSettings.from_dict(raw) if isinstance(raw, Mapping) else JobSettings()


def recorded_exit_code(config: Mapping[str, Any]) -> int | None:
    """The exit code apply recorded for a job's last run (None: not recorded)."""
    result = config.get(JOB_RESULT)
    if isinstance(result, Mapping) and isinstance(result.get("exit_code"), int):
        return int(result["exit_code"])
    return None


def job_outputs_folder(paths: WorkspacePaths, address: Address) -> Path:
    """Where apply's runs of a Job keep their outputs (`docklock run` keeps its own)."""
    return job_folder(paths, address) / JOB_OUTPUTS


# ---------------------------------------------------------------- cages


def resolve_cage_settings(name: str | None, *, floor: str,
                          profiles: Mapping[str, CageProfileSpec], cages_dir: Path | None,
                          cap_add: Sequence[str] = (), seed: int | None = None
                          ) -> CageSettings:
    """The one call site of the cage resolver (pure; cage files are written by apply).
    `seed` is a Job's (it feeds a deterministic cage's random stream)."""
    return resolve_cage(name, floor=floor, profiles=profiles, cages_dir=cages_dir,
                        cap_add=cap_add, seed=seed)


# ---------------------------------------------------------------- image contexts


def context_digester(paths: WorkspacePaths) -> ContextDigest:
    """Digest an Image's build context: every file's relative path, mode bit and content."""
    cache: dict[tuple[str, str], str] = {}

    def digest(spec: ImageSpec) -> str:
        key = (spec.context, spec.containerfile)
        if key not in cache:
            cache[key] = _digest_context(paths, spec)
        return cache[key]

    return digest


def _digest_context(paths: WorkspacePaths, spec: ImageSpec) -> str:
    root = paths.confine(spec.context, what="image context")
    if not root.is_dir():
        raise SpecError(f"image {spec.ref}: build context {spec.context!r} is not a folder",
                        hint="context is a folder relative to the workspace")
    paths.confine(str(Path(spec.context) / spec.containerfile), what="containerfile")
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                h.update(f"L {rel} {os.readlink(full)}\n".encode())
                continue
            fh = hashlib.sha256(full.read_bytes()).hexdigest()
            mode = "x" if os.access(full, os.X_OK) else "-"
            h.update(f"F {rel} {mode} {fh}\n".encode())
    return "sha256:" + h.hexdigest()


def constant_context_digest(spec: ImageSpec) -> str:
    """A context digest from the spec alone (tests and benches with no context folder)."""
    return "spec:" + sha256_hex(canonical_json(spec.to_dict()))


# ---------------------------------------------------------------- render


def render_workspace(ws: WorkspaceLike, *,
                     context_digest: ContextDigest | None = None) -> Rendered:
    """Render a loaded workspace (cages under .docklock/cages, contexts digested)."""
    return render(ws.resources, cluster=ws.cluster_name,
                  security_level=ws.cluster_spec.securityLevel,
                  cages_dir=ws.paths.cages,
                  context_digest=context_digest or context_digester(ws.paths),
                  paths=ws.paths)


def render(resources: Sequence[Resource], *, cluster: str,
           security_level: str = "standard", cages_dir: Path | None = None,
           context_digest: ContextDigest = constant_context_digest,
           paths: WorkspacePaths | None = None) -> Rendered:
    """Every resource's desired objects, sorted by key. Pure apart from context_digest
    and looking up job inputs; `paths` (the workspace) is needed only by Jobs with
    inputs or outputs."""
    r = _Renderer(resources, cluster, security_level, cages_dir, context_digest,
                  paths=paths)
    with gc_paused():
        return r.run()


class _Renderer:
    def __init__(self, resources: Sequence[Resource], cluster: str, floor: str,
                 cages_dir: Path | None, context_digest: ContextDigest, *,
                 paths: WorkspacePaths | None) -> None:
        self.resources = resources
        self.cluster = cluster
        self.floor = floor
        self.cages_dir = cages_dir
        self.context_digest = context_digest
        self.paths = paths
        self.warnings: list[str] = []
        self.profiles = {r.name: r.spec for r in resources
                         if isinstance(r.spec, CageProfileSpec)}
        self.images = {r.spec.ref: r for r in resources if isinstance(r.spec, ImageSpec)}
        self.networks = {(r.namespace, r.name) for r in resources
                         if isinstance(r.spec, NetworkSpec)}
        self.volumes = {(r.namespace, r.name) for r in resources
                        if isinstance(r.spec, VolumeSpec)}
        # Resolved once per (cage name, capabilities, seed): thousands of services share
        # a handful of cages.
        self._cages: dict[tuple[str | None, tuple[str, ...], int | None], CageSettings] = {}

    def run(self) -> Rendered:
        objects: list[DesiredObject] = []
        by_address: dict[Address, list[str]] = {}
        pending: list[tuple[Resource, ServiceSpec | JobSpec]] = []
        for res in self.resources:
            spec = res.spec
            if isinstance(spec, ImageSpec):
                obj = self._image(res, spec)
            elif isinstance(spec, NetworkSpec):
                obj = self._network(res, spec)
            elif isinstance(spec, VolumeSpec):
                obj = self._volume(res, spec)
            else:
                if isinstance(spec, (ServiceSpec, JobSpec)):
                    pending.append((res, spec))
                continue
            objects.append(obj)
            by_address.setdefault(res.address, []).append(obj.key)
        # Containers name their replicas up front so dependsOn can point at any service
        # or job regardless of document order.
        for res, spec in pending:
            replicas = spec.replicas if isinstance(spec, ServiceSpec) else 1
            by_address[res.address] = [
                object_key(ObjectKind.CONTAINER,
                           container_name(self.cluster, res.namespace, res.name, i))
                for i in range(FIRST_REPLICA, FIRST_REPLICA + replicas)]
        for res, spec in pending:
            if isinstance(spec, ServiceSpec):
                objects.extend(self._containers(res, spec, by_address))
            else:
                objects.append(self._job(res, spec, by_address))
        objects.sort(key=lambda o: o.key)
        return Rendered(tuple(objects), tuple(self.warnings))

    # ------------------------------------------------------------ simple objects

    def _simple(self, res: Resource, kind: ObjectKind, name: str,
                body: dict[str, Any]) -> DesiredObject:
        config_hash = sha256_hex(canonical_json(body))
        labels = base_labels(self.cluster, res.address)
        labels[LABEL_CONFIG_HASH] = config_hash
        config = {**body, "labels": labels}
        return DesiredObject(key=object_key(kind, name), kind=kind, address=res.address,
                             name=name, config=config, config_hash=config_hash)

    def _image(self, res: Resource, spec: ImageSpec) -> DesiredObject:
        body = {"ref": spec.ref, "context": spec.context,
                "containerfile": spec.containerfile,
                "build_args": dict(sorted(spec.buildArgs.items())),
                "context_digest": self.context_digest(spec)}
        return self._simple(res, ObjectKind.IMAGE, spec.ref, body)

    def _network(self, res: Resource, spec: NetworkSpec) -> DesiredObject:
        name = podman_name(self.cluster, res.namespace, res.name)
        body = {"name": name, "driver": spec.driver, "internal": spec.internal,
                "subnet": spec.subnet}
        return self._simple(res, ObjectKind.NETWORK, name, body)

    def _volume(self, res: Resource, spec: VolumeSpec) -> DesiredObject:
        name = podman_name(self.cluster, res.namespace, res.name)
        return self._simple(res, ObjectKind.VOLUME, name, {"name": name,
                                                          "driver": spec.driver})

    # ------------------------------------------------------------ containers

    def _cage(self, res: Resource, name: str | None, caps: tuple[str, ...],
              seed: int | None = None) -> CageSettings:
        key = (name, caps, seed)
        if key not in self._cages:
            try:
                cage = resolve_cage_settings(name, floor=self.floor, profiles=self.profiles,
                                             cages_dir=self.cages_dir, cap_add=caps,
                                             seed=seed)
            except CageError as exc:
                raise CageError(f"{res.address}: {exc.message}",
                                location=exc.location or res.location,
                                hint=exc.hint) from exc
            self._cages[key] = _digest_once(cage)
        return self._cages[key]

    def _wiring(self, res: Resource, spec: ServiceSpec | JobSpec,
                by_address: Mapping[Address, list[str]]
                ) -> tuple[list[str], list[str], list[Mount]]:
        """(dependency keys, Podman network names, volume mounts) of a service or job."""
        ns = res.namespace
        depends: list[str] = []
        if spec.image in self.images:
            depends.append(object_key(ObjectKind.IMAGE, spec.image))
        networks: list[str] = []
        for net in spec.networks:
            pname = podman_name(self.cluster, ns, net)
            networks.append(pname)
            if (ns, net) in self.networks:
                depends.append(object_key(ObjectKind.NETWORK, pname))
            else:
                self.warnings.append(f"{res.address}: network {net!r} is not declared as "
                                     f"a Network resource in namespace {ns}")
        mounts: list[Mount] = []
        for vm in spec.volumes:
            pname = podman_name(self.cluster, ns, vm.name)
            mounts.append(Mount("volume", pname, vm.path, vm.readOnly))
            if (ns, vm.name) in self.volumes:
                depends.append(object_key(ObjectKind.VOLUME, pname))
            else:
                self.warnings.append(f"{res.address}: volume {vm.name!r} is not declared as "
                                     f"a Volume resource in namespace {ns}")
        for dep in spec.dependsOn:
            target = Address(dep.kind, ns, dep.name)
            depends.extend(by_address.get(target, ()))
        return depends, networks, mounts

    def _containers(self, res: Resource, spec: ServiceSpec,
                    by_address: Mapping[Address, list[str]]) -> list[DesiredObject]:
        ns = res.namespace
        cage = self._cage(res, spec.cage, tuple(sorted({c.name for c in spec.capAdd})))
        depends, networks, mounts = self._wiring(res, spec, by_address)
        env = _merge_env(spec.env, cage.env)
        sensitive = tuple(f"env.{e.name}" for e in env if e.sensitive)
        if cage.network_none:
            networks = []
        # Compose's service names: every replica answers to the service's name on each
        # of its networks (no networks: Podman's default one, which has no DNS).
        aliases = service_aliases(res) if networks else ()
        # Everything but the name is shared by the replicas: serialise it once.
        template = ContainerConfig(
            name="", image=spec.image, command=spec.command, entrypoint=spec.entrypoint,
            env=env, ports=spec.ports, networks=tuple(networks), mounts=tuple(mounts),
            healthcheck=spec.healthcheck, user=spec.user, workdir=spec.workdir,
            cpus=spec.resources.cpus, memory=spec.resources.memory or cage.memory,
            pids_limit=spec.resources.pids or cage.pids_limit, restart=spec.restart,
            stop_timeout=spec.stopTimeout, cage=cage, aliases=aliases, init=spec.init)
        hashed = template.hashed_fields()
        full = template.to_dict()
        # Not hashed: a new rollout setting changes how the next replace runs, not the
        # container.
        full[UPDATE_CONFIG] = UpdateSettings(
            overlap=spec.update.overlap,
            stateful=any(m.type == "volume" for m in mounts)).to_dict()
        deps = tuple(dict.fromkeys(depends))  # de-duplicated, order kept
        labels = base_labels(self.cluster, res.address)
        labels[LABEL_CAGE] = cage.name
        out: list[DesiredObject] = []
        for i in range(FIRST_REPLICA, FIRST_REPLICA + spec.replicas):
            name = container_name(self.cluster, ns, res.name, i)
            hashed["name"] = name
            config_hash = sha256_hex(canonical_json(hashed))
            config = dict(full)
            config["name"] = name
            config["labels"] = {**labels, LABEL_REPLICA: str(i),
                                LABEL_CONFIG_HASH: config_hash}
            out.append(DesiredObject(
                key=object_key(ObjectKind.CONTAINER, name), kind=ObjectKind.CONTAINER,
                address=res.address, name=name, config=config, config_hash=config_hash,
                replica=i, depends_on=deps, sensitive=sensitive))
        return out

    def _job(self, res: Resource, spec: JobSpec,
             by_address: Mapping[Address, list[str]]) -> DesiredObject:
        """A Job's one run-once container: apply runs it to completion (exit 0)."""
        ns = res.namespace
        from docklock.cage.replay import resource_job_cage

        cage = resource_job_cage(self._cage(res, spec.cage, (), seed=spec.seed), res,
                                 self.cages_dir)
        depends, networks, mounts = self._wiring(res, spec, by_address)
        outputs: str | None = None
        if spec.inputs or spec.outputs:
            if self.paths is None:
                raise SpecError(f"{res.address}: a Job with inputs or outputs needs its "
                                "workspace to render", location=res.location,
                                hint="render through render_workspace (or pass paths=)")
            mounts[:0] = input_mounts(res, self.paths)
            if spec.outputs:
                outputs = str(job_outputs_folder(self.paths, res.address))
                mounts.append(Mount("bind", outputs, spec.outputs))
        env = _merge_env(spec.env, cage.env)
        if cage.network_none:
            networks = []
        name = container_name(self.cluster, ns, res.name, FIRST_REPLICA)
        config = ContainerConfig(
            name=name, image=spec.image, command=spec.command, entrypoint=spec.entrypoint,
            env=env, networks=tuple(networks), mounts=tuple(mounts), user=spec.user,
            workdir=spec.workdir, cpus=spec.resources.cpus,
            memory=spec.resources.memory or cage.memory,
            pids_limit=spec.resources.pids or cage.pids_limit, restart="no", cage=cage)
        config_hash = sha256_hex(canonical_json(config.hashed_fields()))
        body = config.to_dict()
        body["labels"] = {**base_labels(self.cluster, res.address), LABEL_CAGE: cage.name,
                          LABEL_KIND: KIND_JOB, LABEL_REPLICA: str(FIRST_REPLICA),
                          LABEL_CONFIG_HASH: config_hash}
        body[JOB_CONFIG] = JobSettings(spec.timeout, outputs).to_dict()
        return DesiredObject(
            key=object_key(ObjectKind.CONTAINER, name), kind=ObjectKind.CONTAINER,
            address=res.address, name=name, config=body, config_hash=config_hash,
            replica=FIRST_REPLICA, depends_on=tuple(dict.fromkeys(depends)),
            sensitive=tuple(f"env.{e.name}" for e in env if e.sensitive))


class _DigestOnce(CageSettings):
    """A CageSettings whose digest is computed once (it is asked twice per service).

    Only ever used inside render's template ContainerConfig; it never escapes into a
    DesiredObject (configs are plain data), so its distinct class does not matter.
    """

    @functools.cached_property
    def _digest(self) -> str:
        digest: str = CageSettings.digest.__get__(self)
        return digest

    @property
    def digest(self) -> str:
        return self._digest


def _digest_once(cage: CageSettings) -> _DigestOnce:
    return _DigestOnce(**{f.name: getattr(cage, f.name) for f in dataclasses.fields(cage)})


def _merge_env(spec_env: Sequence[EnvVar], pinned: Sequence[EnvVar]) -> tuple[EnvVar, ...]:
    """The spec's env with the cage's pinned values winning, sorted by name."""
    merged = {e.name: e for e in spec_env}
    merged.update({e.name: e for e in pinned})
    return tuple(merged[k] for k in sorted(merged))


def container_config(obj: DesiredObject) -> ContainerConfig:
    """The typed ContainerConfig of a rendered container (what runtime creates)."""
    if obj.kind is not ObjectKind.CONTAINER:
        raise TypeError(f"{obj.key} is not a container")
    return ContainerConfig.from_dict(obj.config)


def is_rendered_kind(kind: str) -> bool:
    """Kinds that become Podman objects in a plan (a Job: its run-once container)."""
    return kind in (Kind.SERVICE.value, Kind.JOB.value, Kind.IMAGE.value,
                    Kind.NETWORK.value, Kind.VOLUME.value)
