"""Issue 11 C10: every plan that `plan` accepts must have an acyclic apply schedule.

The plans are made by the real diff (`docklock.plan.diff`), not written by hand: a random
"before" world (recorded in state and, more or less, live in Podman) and a random "after"
world (the specs) over images, networks, volumes, services with 1-2 replicas, a job, and
dependsOn edges with every condition. Every combination of create / update / replace /
delete / adopt, job and dependency-forced replaces, host ports (destroy-first) or none
(create-before-destroy), and destroy plans goes through `build_schedule` with and without
rename support; none may report a cycle, and every step's waits must name real steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docklock.apply import build_schedule, settle_modes
from docklock.model import Address, Condition
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_LINEAGE,
    LABEL_MANAGED_BY,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.plan import PlanOptions, diff
from docklock.render import KIND_JOB, LABEL_KIND
from docklock.state import RecordedObject, State
from docklock.state.model import RecordedResource

CLUSTER = "demo"
SERVICES = ("s0", "job", "s1", "s2")  # "job" renders as a Job's run-once container
BINDINGS = (("image", ObjectKind.IMAGE, "Image"), ("net", ObjectKind.NETWORK, "Network"),
            ("vol", ObjectKind.VOLUME, "Volume"))


@dataclass(frozen=True)
class Svc:
    """One service (or the job) in one world."""

    version: int  # changes the config hash
    replicas: int
    host_port: bool
    healthcheck: bool
    bindings: tuple[str, ...]  # subset of image/net/vol
    depends: tuple[tuple[str, Condition], ...]  # earlier services only


@dataclass(frozen=True)
class World:
    bindings: dict[str, int]  # binding name -> version (absent: not in this world)
    services: dict[str, Svc]


def _address(name: str) -> str:
    if name == "job":
        return "Job/default/job"
    for b, _, kind in BINDINGS:
        if b == name:
            return f"{kind}/default/{name}"
    return f"Service/default/{name}"


def _labels(name: str, version: int) -> dict[str, str]:
    # The lineage of the state below: live objects it does not record are adoptable.
    return {LABEL_MANAGED_BY: "docklock", LABEL_CLUSTER: CLUSTER, LABEL_LINEAGE: "l",
            LABEL_ADDRESS: _address(name), LABEL_CONFIG_HASH: f"h-{name}-{version}"}


def render(world: World) -> list[DesiredObject]:
    out: list[DesiredObject] = []
    keys: dict[str, list[str]] = {}
    for b, kind, _ in BINDINGS:
        if b in world.bindings:
            v = world.bindings[b]
            key = f"{kind.value}:{CLUSTER}-{b}"
            keys[b] = [key]
            out.append(DesiredObject(key, kind, Address.parse(_address(b)), f"{CLUSTER}-{b}",
                                     {"v": v}, f"h-{b}-{v}"))
    for name in SERVICES:
        svc = world.services.get(name)
        if svc is None:
            continue
        deps: list[str] = []
        for b in svc.bindings:
            deps.extend(keys.get(b, ()))
        for d, _ in svc.depends:
            deps.extend(keys.get(d, ()))
        labels = dict(_labels(name, svc.version))
        if name == "job":
            labels[LABEL_KIND] = KIND_JOB
        config: dict[str, object] = {"labels": labels, "v": svc.version}
        if svc.host_port:
            config["ports"] = [{"container": 80, "host": 18080 + SERVICES.index(name)}]
        if svc.healthcheck:
            config["healthcheck"] = {"command": ["true"]}
        keys[name] = []
        for i in range(1, svc.replicas + 1):
            cname = f"{CLUSTER}-default-{name}-{i}"
            key = f"container:{cname}"
            keys[name].append(key)
            out.append(DesiredObject(key, ObjectKind.CONTAINER, Address.parse(_address(name)),
                                     cname, config, f"h-{name}-{svc.version}", replica=i,
                                     depends_on=tuple(deps)))
    return out


def conditions(world: World) -> dict[tuple[str, str], Condition]:
    return {(_address(n), _address(d)): cond for n, svc in world.services.items()
            for d, cond in svc.depends if d in world.services}


@st.composite
def worlds(draw: st.DrawFn) -> World:
    bindings = {b: draw(st.integers(0, 1)) for b, _, _ in BINDINGS
                if draw(st.booleans())}
    services: dict[str, Svc] = {}
    for idx, name in enumerate(SERVICES):
        if not draw(st.integers(0, 4)):
            continue
        earlier = [n for n in SERVICES[:idx] if n in services]
        depends = tuple((d, draw(st.sampled_from(list(Condition))))
                        for d in earlier if draw(st.booleans()))
        services[name] = Svc(
            version=draw(st.integers(0, 1)),
            replicas=1 if name == "job" else draw(st.integers(1, 2)),
            host_port=False if name == "job" else draw(st.booleans()),
            healthcheck=draw(st.booleans()),
            bindings=tuple(b for b in bindings if draw(st.booleans())),
            depends=depends)
    return World(bindings, services)


LIVE_FATES = ("same", "missing", "stopped", "exited-ok", "exited-bad", "other-hash")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[DesiredObject], State, LiveState, PlanOptions,
                                         dict[tuple[str, str], Condition]]:
    before, after = draw(worlds()), draw(worlds())
    old = render(before)
    resources: dict[str, dict[str, RecordedObject]] = {}
    live: dict[str, LiveObject] = {}
    for obj in old:
        recorded = draw(st.integers(0, 5)) > 0  # sometimes live only: adopted
        if recorded:
            resources.setdefault(str(obj.address), {})[obj.key] = RecordedObject(
                obj.key, obj.kind, obj.name, f"id-{obj.key}", obj.config_hash,
                dict(obj.config), replica=obj.replica, depends_on=obj.depends_on)
        fate = draw(st.sampled_from(LIVE_FATES))
        if fate == "missing" and recorded:
            continue
        labels = dict(obj.config.get("labels") or _labels(obj.name, 0))
        labels[LABEL_ADDRESS] = str(obj.address)
        labels[LABEL_CONFIG_HASH] = obj.config_hash if fate != "other-hash" else "h-x"
        status = {"stopped": "exited", "exited-ok": "exited", "exited-bad": "exited"}.get(
            fate, "running" if obj.kind is ObjectKind.CONTAINER else "present")
        live[obj.key] = LiveObject(obj.key, obj.kind, obj.name, f"id-{obj.key}", labels,
                                   status, exit_code=1 if fate == "exited-bad" else 0)
    state = State(lineage="l", serial=3, cluster=CLUSTER,
                  resources={a: RecordedResource(o) for a, o in resources.items()})
    new = render(after)
    options = PlanOptions(destroy=draw(st.integers(0, 7)) == 0,
                          replace=tuple(sorted({str(o.address) for o in new
                                                if draw(st.integers(0, 5)) == 0})))
    if options.destroy:
        options = PlanOptions(destroy=True)
    return new, state, LiveState(live), options, conditions(after)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.booleans())
def test_every_accepted_plan_has_an_acyclic_schedule(
        scenario: tuple[list[DesiredObject], State, LiveState, PlanOptions,
                        dict[tuple[str, str], Condition]],
        rename: bool) -> None:
    desired, state, live, options, conds = scenario
    changes, _ = diff(desired, state, live, options=options, cluster=CLUSTER)
    settles = settle_modes(desired, conds)
    schedule = build_schedule(changes, conds, settles, create_before_destroy=rename)
    ids = {s.id for s in schedule.steps}
    assert all(w.node in ids for s in schedule.steps for w in s.waits)
    assert sum(len(w) for w in schedule.waves()) == len(schedule.steps)


def test_the_generator_reaches_the_combinations_that_matter() -> None:
    """The property above is only as good as what it generates: it must produce the
    C10 shape (a replaced job and a replaced create-before-destroy dependent), a
    dependency-forced replace and a destroy plan."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios())
    def collect(scenario: tuple[list[DesiredObject], State, LiveState, PlanOptions,
                                dict[tuple[str, str], Condition]]) -> None:
        desired, state, live, options, _ = scenario
        changes, _ = diff(desired, state, live, options=options, cluster=CLUSTER)
        by_key = {c.key: c for c in changes}
        for c in changes:
            seen.add(f"{c.kind.value}:{c.action.value}")
            if c.create_before_destroy:
                seen.add("cbd")
                if any(by_key.get(d) is not None and by_key[d].action.value == "replace"
                       and "job" in d for d in c.depends_on):
                    seen.add("cbd-after-job-replace")
            if "dependency-replaced" in [r.value for r in c.reasons]:
                seen.add("forced")
        if options.destroy:
            seen.add("destroy")

    collect()
    for want in ("container:create", "container:update", "container:replace",
                 "container:delete", "network:replace", "volume:replace", "image:replace",
                 "cbd", "cbd-after-job-replace", "forced", "destroy"):
        assert want in seen, want
