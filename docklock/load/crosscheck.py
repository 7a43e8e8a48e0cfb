"""Checks across documents: each problem names both ends with their positions.

Runs on resources that passed their schemas. Finds duplicate addresses, references to
resources that do not exist (dependsOn, networks, volumes, cage profiles), dependency
conditions that can never hold, cages weaker than the cluster's security floor, host
port collisions, fixed host ports with replicas > 1, duplicate Image refs, and spec
paths (Image context, Job inputs) that leave the workspace or do not exist, a
deterministic Job's SOURCE_DATE_EPOCH that cannot start its clock, and a
docklock.yaml `spec.podmanUrl` that cannot be parsed. Dependency cycles are found by
docklock.graph. Image references that match no Image resource are not errors: the image
may already be in local storage (plan and apply check that).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from docklock.errors import Diagnostic, Location, WorkspaceError
from docklock.graph import GRAPH_KINDS, DanglingReference, analyse
from docklock.load.schema import format_path
from docklock.load.yaml import PathItem, RawDocument, parse_yaml_precise
from docklock.model import (
    Address,
    CageProfileSpec,
    Condition,
    ImageSpec,
    JobSpec,
    Kind,
    Resource,
    ServiceSpec,
)
from docklock.workspace import WORKSPACE_FILE, WorkspacePaths

LEVELS = {"standard": 0, "hardened": 1, "deterministic": 2}
LEVEL_ALIASES = {"military-grade": "deterministic"}
WILDCARD_IPS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - comparing, not binding

Locate = Callable[[RawDocument, Sequence[PathItem]], Location]


def canonical_level(name: str) -> str | None:
    """`military-grade` → `deterministic`; None for a name that is not a built-in level."""
    name = LEVEL_ALIASES.get(name, name)
    return name if name in LEVELS else None


def cage_level(cage: str | None, namespace: str, floor: str,
               profiles: Mapping[Address, Resource]) -> str | None:
    """The built-in level a workload's `cage` amounts to (None: an unknown cage)."""
    if cage is None:
        return canonical_level(floor)
    level = canonical_level(cage)
    if level is not None:
        return level
    profile = profiles.get(Address(Kind.CAGE_PROFILE.value, namespace, cage))
    if profile is None:
        return None
    assert isinstance(profile.spec, CageProfileSpec)
    return canonical_level(profile.spec.extends)


@dataclass(frozen=True)
class Item:
    resource: Resource
    doc: RawDocument


@dataclass
class _Context:
    locate: Locate
    out: list[Diagnostic]
    paths: WorkspacePaths
    resources: Mapping[Address, Resource]
    by_address: Mapping[Address, Item]
    cluster: Resource | None
    floor: str
    invalid: frozenset[Address]


def crosscheck(items: Sequence[Item], cluster: Resource | None, paths: WorkspacePaths,
               locate: Locate, *, invalid: frozenset[Address] = frozenset(),
               dangling: Sequence[DanglingReference] | None = None) -> list[Diagnostic]:
    """Every cross-resource problem of `items` (duplicates are checked first and dropped).

    `invalid` holds addresses of documents that failed their schema: references to them
    are not reported again as missing. `dangling` is docklock.graph.analyse's list of
    references to missing resources (computed here when not given).
    """
    out: list[Diagnostic] = []
    unique = _duplicates(items, locate, out)
    by_address = {it.resource.address: it for it in unique}
    resources = {a: it.resource for a, it in by_address.items()}
    deployable = {a: r for a, r in resources.items() if a.kind in GRAPH_KINDS}
    if dangling is None:
        dangling = analyse(deployable.values())[2]
    missing: dict[Address, list[DanglingReference]] = {}
    for d in dangling:
        missing.setdefault(d.source, []).append(d)
    floor = "standard"
    if cluster is not None:
        floor = cluster.spec.securityLevel  # type: ignore[union-attr]
    ctx = _Context(locate, out, paths, resources, by_address, cluster, floor, invalid)
    if cluster is not None:
        _podman_url(ctx, cluster)
    for it in unique:
        r = it.resource
        if r.kind == Kind.CLUSTER.value:
            out.append(Diagnostic(
                f"{r.address}: a Cluster document belongs in docklock.yaml only",
                locate(it.doc, ("kind",)), path="kind",
                hint="move its settings into the workspace's docklock.yaml"))
        elif isinstance(r.spec, (ServiceSpec, JobSpec)):
            _references(ctx, it, deployable, missing.get(r.address, []))
            _cage(ctx, it)
            _networkless_cage(ctx, it)
            if isinstance(r.spec, JobSpec):
                _job_paths(ctx, it, r.spec)
                _job_clock(ctx, it, r.spec)
        elif isinstance(r.spec, ImageSpec):
            _image_paths(ctx, it, r.spec)
    _image_refs(unique, locate, out)
    _ports(unique, locate, out)
    return out


def _podman_url(ctx: _Context, cluster: Resource) -> None:
    """`spec.podmanUrl` must parse (the schema only checks its scheme): `http://[::1`
    would otherwise fail in every command that connects, far from its cause."""
    url = getattr(cluster.spec, "podmanUrl", None)
    if not url:
        return
    # Imported here: podman-py is heavy and only needed when a URL is set.
    from docklock.runtime.podman import URL_HINT, url_problem

    problem = url_problem(url)
    if not problem:
        return
    ctx.out.append(Diagnostic(f"spec.podmanUrl {url!r} is not a valid URL ({problem})",
                              _cluster_where(ctx, cluster, "spec", "podmanUrl"),
                              path="spec.podmanUrl", hint=URL_HINT))


def _cluster_where(ctx: _Context, cluster: Resource, *path: PathItem) -> Location:
    """Where a key of docklock.yaml is: the Cluster carries only its document's start, so
    the file is re-read for the key's line (only on error paths, so this costs nothing
    when the workspace is valid)."""
    where = cluster.location or Location(WORKSPACE_FILE)
    with contextlib.suppress(OSError):
        positions = parse_yaml_precise(ctx.paths.config.read_text(encoding="utf-8"),
                                       WORKSPACE_FILE).positions
        hit = positions.locate(0, path) if positions else None
        if hit is not None:
            where = Location(WORKSPACE_FILE, hit[0], hit[1])
    return where


def _where(it: Item, locate: Locate, *path: PathItem) -> Location:
    return locate(it.doc, path)


def _duplicates(items: Sequence[Item], locate: Locate, out: list[Diagnostic]) -> list[Item]:
    first: dict[Address, Item] = {}
    unique = []
    for it in items:
        a = it.resource.address
        if a in first:
            other = _where(first[a], locate, "metadata", "name")
            out.append(Diagnostic(
                f"duplicate {a}: already defined at {other}",
                _where(it, locate, "metadata", "name"), path="metadata.name",
                hint="names must be unique per kind and namespace"))
        else:
            first[a] = it
            unique.append(it)
    return unique


def _suggest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return f"did you mean {close[0]!r}?" if close else ""


def _references(ctx: _Context, it: Item, deployable: Mapping[Address, Resource],
                dangling: Sequence[DanglingReference]) -> None:
    locate, out, by_address = ctx.locate, ctx.out, ctx.by_address
    r = it.resource
    spec = r.spec
    assert isinstance(spec, (ServiceSpec, JobSpec))
    for d in dangling:
        if d.target in ctx.invalid:
            continue  # its own schema errors are reported
        names = [a.name for a in deployable if a.kind == d.target.kind
                 and a.namespace == d.target.namespace]
        if d.reason == "dependsOn":
            path: tuple[PathItem, ...] = ("spec", "dependsOn", d.index, "name")
            what = f"depends on {d.target}"
        elif d.reason == "network":
            path = ("spec", "networks", d.index)
            what = f"uses network {d.target}"
        else:
            path = ("spec", "volumes", d.index, "name")
            what = f"mounts volume {d.target}"
        hint = _suggest(d.target.name, names) or f"define a {d.target.kind} named " \
                                                 f"{d.target.name!r} in namespace " \
                                                 f"{d.target.namespace!r}"
        out.append(Diagnostic(f"{r.address} {what}, which is not defined",
                              _where(it, locate, *path), path=_fmt(path), hint=hint))
    for i, dep in enumerate(spec.dependsOn):
        target = Address(dep.kind, r.namespace, dep.name)
        path = ("spec", "dependsOn", i, "condition")
        if dep.condition is Condition.COMPLETED and dep.kind != Kind.JOB.value:
            out.append(Diagnostic(
                f"{r.address} waits for {target} to be completed, but only jobs complete",
                _where(it, locate, *path), path=_fmt(path),
                hint="use condition started or healthy for a service, or kind: Job"))
        elif dep.condition is Condition.HEALTHY:
            if dep.kind == Kind.JOB.value:
                out.append(Diagnostic(
                    f"{r.address} waits for {target} to be healthy, but jobs have no "
                    "healthcheck", _where(it, locate, *path), path=_fmt(path),
                    hint="use condition completed for a job"))
                continue
            other = by_address.get(target)
            if other is not None and isinstance(other.resource.spec, ServiceSpec) \
                    and other.resource.spec.healthcheck is None:
                out.append(Diagnostic(
                    f"{r.address} waits for {target} to be healthy, but {target} "
                    f"(at {_where(other, locate, 'spec')}) has no healthcheck",
                    _where(it, locate, *path), path=_fmt(path),
                    hint=f"add spec.healthcheck to {target}, or use condition started"))


def _cage(ctx: _Context, it: Item) -> None:
    locate, out, floor, resources = ctx.locate, ctx.out, ctx.floor, ctx.resources
    r = it.resource
    spec = r.spec
    assert isinstance(spec, (ServiceSpec, JobSpec))
    if spec.cage is None:
        return
    level = cage_level(spec.cage, r.namespace, floor, resources)
    if level is None:
        profiles = [a.name for a in resources if a.kind == Kind.CAGE_PROFILE.value
                    and a.namespace == r.namespace]
        out.append(Diagnostic(
            f"{r.address} uses cage {spec.cage!r}, which is neither a built-in level "
            f"({', '.join([*LEVELS, *LEVEL_ALIASES])}) nor a CageProfile in namespace "
            f"{r.namespace!r}", _where(it, locate, "spec", "cage"), path="spec.cage",
            hint=_suggest(spec.cage, [*LEVELS, *LEVEL_ALIASES, *profiles])))
        return
    floor_level = canonical_level(floor) or "standard"
    if LEVELS[level] < LEVELS[floor_level]:
        via = ""
        profile = ctx.by_address.get(Address(Kind.CAGE_PROFILE.value, r.namespace, spec.cage))
        if profile is not None:
            via = f" (CageProfile at {_where(profile, locate, 'spec', 'extends')} " \
                  f"extends {level})"
        cluster = ctx.cluster
        floor_at = "" if cluster is None \
            else f" at {_cluster_where(ctx, cluster, 'spec', 'securityLevel')}"
        out.append(Diagnostic(
            f"{r.address} asks for cage {spec.cage!r}{via}, weaker than the cluster's "
            f"securityLevel {floor!r}{floor_at}", _where(it, locate, "spec", "cage"),
            path="spec.cage",
            hint=f"use {floor_level} or stronger, or lower spec.securityLevel in "
                 f"{WORKSPACE_FILE}"))


# Levels whose containers run with `--network none` (docklock.cage.levels: network_none):
# published ports and network memberships cannot take effect there.
NETWORKLESS_LEVELS = frozenset({"deterministic"})


def _networkless_cage(ctx: _Context, it: Item) -> None:
    """Ports and networks of a workload in a cage without networking are errors.

    Render drops them (the cage runs with network none), so a spec that asks for both
    would apply "successfully" with nothing published: the container is unreachable
    while status says healthy. Reported at the `ports:`/`networks:` key, naming the cage
    (and the CageProfile or cluster floor that made it networkless).
    """
    r = it.resource
    spec = r.spec
    assert isinstance(spec, (ServiceSpec, JobSpec))
    ports = spec.ports if isinstance(spec, ServiceSpec) else ()
    if not ports and not spec.networks:
        return
    level = cage_level(spec.cage, r.namespace, ctx.floor, ctx.resources)
    if level not in NETWORKLESS_LEVELS:
        return
    if spec.cage is None:
        why = f"the cluster's securityLevel {ctx.floor!r} (no spec.cage)"
    elif canonical_level(spec.cage) is not None:
        why = f"cage {spec.cage!r}"
    else:
        why = f"cage {spec.cage!r} (a CageProfile extending {level})"
    for key, what, hint in (
            ("ports", "publishes ports", "remove spec.ports, or use a cage with networking "
                                         "(standard, hardened, or a CageProfile extending "
                                         "one of them)"),
            ("networks", "joins networks", "remove spec.networks, or use a cage with "
                                           "networking (standard, hardened, or a CageProfile "
                                           "extending one of them)")):
        if not getattr(spec, key, ()):
            continue
        ctx.out.append(Diagnostic(
            f"{r.address} {what}, but {why} runs with no network (network none): "
            f"they would be silently dropped", _where(it, ctx.locate, "spec", key),
            path=f"spec.{key}", hint=hint))


def _confined(ctx: _Context, it: Item, relative: str, what: str,
              path: tuple[PathItem, ...], *, want_dir: bool) -> None:
    locate, out = ctx.locate, ctx.out
    try:
        target = ctx.paths.confine(relative, what=what)
    except WorkspaceError as exc:
        out.append(Diagnostic(exc.message, _where(it, locate, *path), path=_fmt(path),
                              hint=exc.hint))
        return
    ok = target.is_dir() if want_dir else target.exists()
    if not ok:
        kind = "folder" if want_dir else "path"
        out.append(Diagnostic(f"{what} {relative!r} does not exist (no such {kind} in the "
                              "workspace)", _where(it, locate, *path), path=_fmt(path)))


def _image_paths(ctx: _Context, it: Item, spec: ImageSpec) -> None:
    before = len(ctx.out)
    _confined(ctx, it, spec.context, "build context", ("spec", "context"), want_dir=True)
    if len(ctx.out) == before:
        joined = f"{spec.context.rstrip('/')}/{spec.containerfile}"
        _confined(ctx, it, joined, "containerfile", ("spec", "containerfile"), want_dir=False)


def _job_paths(ctx: _Context, it: Item, spec: JobSpec) -> None:
    for i, item in enumerate(spec.inputs):
        _confined(ctx, it, item.path, "job input", ("spec", "inputs", i, "path"),
                  want_dir=False)


def _job_clock(ctx: _Context, it: Item, spec: JobSpec) -> None:
    """A deterministic Job's clock start (spec.clock.epoch, else SOURCE_DATE_EPOCH) must
    be usable: plan and run refuse what docklock.cage.replay.clock_epoch refuses, so
    validate says it first, at the env entry."""
    r = it.resource
    if cage_level(spec.cage, r.namespace, ctx.floor, ctx.resources) != "deterministic":
        return
    from docklock.cage.replay import clock_epoch
    from docklock.errors import CageError

    try:
        clock_epoch(spec)
    except CageError as exc:
        path: tuple[PathItem, ...] = ("spec", "env", "SOURCE_DATE_EPOCH")
        ctx.out.append(Diagnostic(f"{r.address}: {exc.message}", _where(it, ctx.locate, *path),
                                  path=_fmt(path), hint=exc.hint))


def _image_refs(items: Sequence[Item], locate: Locate, out: list[Diagnostic]) -> None:
    seen: dict[str, Item] = {}
    for it in items:
        spec = it.resource.spec
        if isinstance(spec, ImageSpec):
            if spec.ref in seen:
                out.append(Diagnostic(
                    f"{it.resource.address} builds {spec.ref!r}, which "
                    f"{seen[spec.ref].resource.address} (at "
                    f"{_where(seen[spec.ref], locate, 'spec', 'ref')}) builds too",
                    _where(it, locate, "spec", "ref"), path="spec.ref",
                    hint="give each Image resource its own ref"))
            else:
                seen[spec.ref] = it


def _ports(items: Sequence[Item], locate: Locate, out: list[Diagnostic]) -> None:
    bound: dict[tuple[str, int], list[tuple[str, Item, int]]] = {}
    for it in items:
        spec = it.resource.spec
        if not isinstance(spec, ServiceSpec):
            continue
        for i, port in enumerate(spec.ports):
            if port.host is None:
                continue
            path = ("spec", "ports", i, "host")
            if spec.replicas > 1:
                out.append(Diagnostic(
                    f"{it.resource.address} has replicas: {spec.replicas} and fixed host "
                    f"port {port.host}: every replica would bind it",
                    _where(it, locate, *path), path=_fmt(path),
                    hint="drop `host` (no host port) or set replicas: 1"))
            key = (port.protocol, port.host)
            for ip, other, j in bound.get(key, []):
                if ip == port.hostIp or ip in WILDCARD_IPS or port.hostIp in WILDCARD_IPS:
                    out.append(Diagnostic(
                        f"host port {port.hostIp}:{port.host}/{port.protocol} of "
                        f"{it.resource.address} is already bound by "
                        f"{other.resource.address} at "
                        f"{_where(other, locate, 'spec', 'ports', j, 'host')}",
                        _where(it, locate, *path), path=_fmt(path),
                        hint="each host port can be published once"))
                    break
            bound.setdefault(key, []).append((port.hostIp, it, i))


def _fmt(path: Sequence[PathItem]) -> str:
    return format_path(path)
