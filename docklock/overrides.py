"""Deploy overrides: desired values set by `docklock deploy` instead of the spec files.

`docklock deploy --file F --replicas N` sets the replicas of the Services in F without
editing F (CUE and commented YAML cannot be rewritten faithfully; see
docs/adr/0014-deploy-overrides.md). The overrides are kept in the recorded state
(`State.overrides`), so every later plan, apply, status and drift sees the same desired
replicas until `docklock deploy --file F --reset` (or a deploy with the spec's own value)
clears them.

This module is pure: no Podman, no files. Invariants:
- `Override.from_dict(o.to_dict()) == o`; an Override is valid when constructed (field
  known, value an integer within the schema's bounds, address a Service address).
- `overlay(ws, overrides)` returns `ws` itself when nothing applies, and otherwise a
  Workspace whose overridden Services carry the override's value (dataclasses.replace;
  the loaded workspace is never changed). An override naming a resource no longer in
  the specs is ignored: the resource is gone, so is its desired count.
- At most one override per (address, field); `merge` keeps that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from docklock.errors import Diagnostic, SpecError

if TYPE_CHECKING:
    from docklock.load import Workspace
    from docklock.model import Resource

FIELDS = ("replicas",)
# The Service schema's bounds for replicas (schemas/service.schema.json).
MIN_REPLICAS = 0
MAX_REPLICAS = 1000
OVERRIDABLE_KIND = "Service"


class OverrideError(SpecError):
    """An override that cannot be stored or applied (bad value, wrong kind, conflict)."""


@dataclass(frozen=True)
class Override:
    """One desired value that replaces the spec's: `address`'s `field` is `value`.

    `by` is who set it (the ledger's actor, e.g. `alice@host`), `at` when (ISO 8601 UTC).
    """

    address: str
    field: str
    value: int
    by: str = ""
    at: str = ""

    def __post_init__(self) -> None:
        check_value(self.field, self.value)
        kind = self.address.split("/", 1)[0]
        if self.address.count("/") != 2 or kind != OVERRIDABLE_KIND:
            raise OverrideError(f"cannot override {self.address!r}: only the replicas of a "
                                "Service (Service/namespace/name) can be overridden",
                                hint="name a Service address, e.g. Service/default/web")

    @property
    def key(self) -> tuple[str, str]:
        return (self.address, self.field)

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "field": self.field, "value": self.value,
                "by": self.by, "at": self.at}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Override:
        """Build from the state-file form; OverrideError (a SpecError) when malformed."""
        try:
            value = d["value"]
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"value {value!r} is not an integer")
            return cls(address=str(d["address"]), field=str(d["field"]), value=value,
                       by=str(d.get("by", "")), at=str(d.get("at", "")))
        except (KeyError, TypeError, AttributeError) as exc:
            raise OverrideError(f"malformed override {d!r}: {type(exc).__name__}: {exc}",
                                hint="remove it with `docklock deploy --file F --reset`") \
                from exc

    def describe(self) -> str:
        return f"{self.address} {self.field} {self.value}"


def check_value(field: str, value: int) -> None:
    """OverrideError unless `value` is a valid `field` (replicas within the schema's
    bounds, as the spec would need)."""
    if field not in FIELDS:
        raise OverrideError(f"cannot override {field!r}",
                            hint=f"overridable: {', '.join(FIELDS)}")
    if isinstance(value, bool) or not isinstance(value, int) \
            or not MIN_REPLICAS <= value <= MAX_REPLICAS:
        raise OverrideError(f"replicas must be a whole number from {MIN_REPLICAS} to "
                            f"{MAX_REPLICAS}, not {value!r}",
                            hint="the same bounds as spec.replicas of a Service")


@dataclass(frozen=True)
class OverrideChange:
    """How one deploy changes a desired value: `before` is what was in effect (a
    previous override or the spec), `after` what will be, `spec` the spec's value."""

    address: str
    field: str
    before: int
    after: int
    spec: int

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        note = " (the spec's value: override cleared)" if self.after == self.spec else ""
        return f"{self.address} {self.field} {self.before} -> {self.after}{note}"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "field": self.field, "before": self.before,
                "after": self.after, "spec": self.spec}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OverrideChange:
        return cls(str(d["address"]), str(d["field"]), int(d["before"]), int(d["after"]),
                   int(d["spec"]))


def spec_value(resource: Resource, field: str) -> int:
    """The value of `field` in the spec of `resource` (a Service)."""
    from docklock.model import ServiceSpec

    spec = resource.spec
    if not isinstance(spec, ServiceSpec):
        raise OverrideError(f"{resource.address} is a {resource.kind}: only Services have "
                            f"{field}", hint="--replicas applies to the Services in the file")
    return int(getattr(spec, field))


def by_key(overrides: Iterable[Override]) -> dict[tuple[str, str], Override]:
    return {o.key: o for o in overrides}


def merge(current: Sequence[Override], resources: Sequence[Resource], *,
          replicas: int | None, reset: bool, by: str, at: str) -> tuple[Override, ...]:
    """The overrides after a deploy of `resources` (the resources of one spec file).

    `reset` removes the overrides of these resources; `replicas` sets the replicas of
    each Service among them (a value equal to the spec's removes the override instead:
    the spec says it already). Other resources' overrides are kept as they are.
    """
    result = by_key(current)
    touched = [r for r in resources if r.kind == OVERRIDABLE_KIND]
    if replicas is not None:
        check_value("replicas", replicas)
        if not touched:
            raise OverrideError("--replicas sets the replicas of Services, and this file "
                                "defines none", hint="pass a file that defines a Service")
    for res in touched:
        key = (str(res.address), "replicas")
        if reset:
            result.pop(key, None)
        elif replicas is not None:
            if replicas == spec_value(res, "replicas"):
                result.pop(key, None)
            elif key not in result or result[key].value != replicas:  # keep who set it first
                result[key] = Override(str(res.address), "replicas", replicas, by=by, at=at)
    return tuple(result[k] for k in sorted(result))


def changes(ws: Workspace, before: Sequence[Override],
            after: Sequence[Override]) -> tuple[OverrideChange, ...]:
    """Every (address, field) whose effective value or override differs between
    `before` and `after`, for resources in `ws`, sorted by address."""
    old, new = by_key(before), by_key(after)
    out: list[OverrideChange] = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        res = ws.get(key[0])
        if res is None:
            continue
        spec = spec_value(res, key[1])
        was = old[key].value if key in old else spec
        will = new[key].value if key in new else spec
        if was == will and (key in old) == (key in new):
            continue  # only who/when changed
        out.append(OverrideChange(key[0], key[1], was, will, spec))
    return tuple(out)


def in_effect(ws: Workspace, overrides: Sequence[Override]) -> tuple[OverrideChange, ...]:
    """The overrides that apply to `ws`, as spec value -> override value."""
    out: list[OverrideChange] = []
    for o in sorted(overrides, key=lambda o: o.key):
        res = ws.get(o.address)
        if res is None or res.kind != OVERRIDABLE_KIND:
            continue
        out.append(OverrideChange(o.address, o.field, spec_value(res, o.field), o.value,
                                  spec_value(res, o.field)))
    return tuple(out)


def effect_lines(effects: Sequence[OverrideChange]) -> list[str]:
    """`Overrides in effect: Service/default/api replicas 3 (spec: 2)`, one per override
    (what plan and deploy print above a plan; `effects` from `in_effect`)."""
    return [f"Overrides in effect: {c.address} {c.field} {c.after} (spec: {c.spec})"
            for c in effects]


def overlay(ws: Workspace, overrides: Sequence[Override]) -> Workspace:
    """`ws` with the overrides' values in place of the specs' (see the module doc).

    An override that cannot hold for the spec as it is now (replicas > 1 of a Service
    publishing a fixed host port) is an OverrideError located at the Service's document.
    """
    import copy
    from dataclasses import replace

    from docklock.model import ServiceSpec

    if not overrides:
        return ws
    wanted = by_key(overrides)
    resources = list(ws.resources)
    notes: list[Diagnostic] = []
    changed = False
    for gone in overrides:
        if ws.get(gone.address) is None:
            notes.append(Diagnostic(
                f"deploy override of {gone.address} {gone.field} ignored: it is not in the "
                "specs",
                hint="the next `docklock deploy` removes it from the state",
                severity="warning"))
    for i, res in enumerate(resources):
        o = wanted.get((str(res.address), "replicas"))
        if o is None or not isinstance(res.spec, ServiceSpec):
            continue
        if res.spec.replicas == o.value:
            continue
        fixed = [p.host for p in res.spec.ports if p.host is not None]
        if o.value > 1 and fixed:
            where = res.location
            raise OverrideError(
                f"{res.address} publishes fixed host port {fixed[0]}: it cannot run "
                f"{o.value} replicas (deploy override set by {o.by or 'someone'} at "
                f"{o.at or '?'})", location=where,
                hint=f"drop `host` from its ports, or clear the override: docklock deploy "
                     f"--file {where.file if where else 'FILE'} --reset")
        resources[i] = replace(res, spec=replace(res.spec, replicas=o.value))
        changed = True
        file = res.location.file if res.location else "FILE"
        # A warning of the loaded workspace: plan (text, markdown, JSON) shows it, so a
        # reviewer sees that the specs alone do not say what runs.
        notes.append(Diagnostic(
            f"deploy override in effect: {res.address} replicas {o.value} (spec: "
            f"{res.spec.replicas}; set by {o.by or '?'} at {o.at or '?'})",
            location=res.location,
            hint=f"`docklock deploy --file {file} --reset` returns to the spec",
            severity="warning"))
    if not changed and not notes:
        return ws
    graph = ws.graph
    if graph is not None and changed:
        graph = copy.copy(graph)
        graph.resources = {**graph.resources, **{r.address: r for r in resources}}
    return replace(ws, resources=tuple(resources), graph=graph,
                   warnings=(*ws.warnings, *notes))
