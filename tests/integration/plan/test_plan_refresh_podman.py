"""`plan` with live refresh against real Podman: one list call, drift found, timing.

A converged cluster of 100 containers is created through the runtime from rendered
objects (as apply would), recorded in state, then planned with refresh: one Podman API
call, no changes, under a second. Out-of-band stop/remove/recreate is then reported.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import PodmanHarness

from docklock.model import Resource
from docklock.objects import ContainerConfig, DesiredObject, ObjectKind
from docklock.plan import Action, Plan, PlanOptions, Reason, build_plan
from docklock.render import Rendered, render
from docklock.runtime import PodmanRuntime, connect
from docklock.state import RecordedObject, State

CLUSTER = "plantest"
N = 100


@pytest.fixture
def rt(podman: PodmanHarness) -> Iterator[PodmanRuntime]:
    with connect(podman.url) as runtime:
        yield runtime


def _rendered(image: str, *, networks: bool = False) -> Rendered:
    docs = []
    if networks:
        docs.append({"kind": "Network", "metadata": {"name": "backend"}, "spec": {}})
    for i in range(N):
        spec: dict[str, object] = {"image": image, "command": ["sleep", "600"],
                                   "stopTimeout": 1}
        if networks:
            spec["networks"] = ["backend"]
        docs.append({"kind": "Service", "metadata": {"name": f"svc{i:03d}"}, "spec": spec})
    return render([Resource.from_dict(d) for d in docs], cluster=CLUSTER)


def _apply(rt: PodmanRuntime, rendered: Rendered, image: str) -> State:
    """Create and start every object as apply would, and record it."""
    image_id = rt.image_id(image)
    state = State(lineage="it-lineage", serial=1, cluster=CLUSTER)
    for obj in rendered.objects:
        if obj.kind is ObjectKind.NETWORK:
            oid = rt.create_network(obj.name, dict(obj.config["labels"]))
            state = state.with_object(str(obj.address), RecordedObject.from_desired(
                obj, id=oid, created="t"))
    containers = [o for o in rendered.objects if o.kind is ObjectKind.CONTAINER]

    def create(obj: DesiredObject) -> str:
        cid = rt.create_container(ContainerConfig.from_dict(obj.config))
        rt.start_container(obj.name)
        return cid

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(create, containers))
    for obj, cid in zip(containers, ids, strict=True):
        state = state.with_object(str(obj.address), RecordedObject.from_desired(
            obj, id=cid, created="t", image_id=image_id))
    return state


def _plan(rt: PodmanRuntime, rendered: Rendered, state: State) -> tuple[Plan, int, float]:
    start = time.perf_counter()
    plan, calls = build_plan(rendered.objects, state, cluster=CLUSTER, spec_digest="d",
                             options=PlanOptions(refresh=True), reader=rt)
    return plan, calls, time.perf_counter() - start


def test_converged_cluster_of_100_is_one_list_call(podman: PodmanHarness,
                                                   rt: PodmanRuntime) -> None:
    rendered = _rendered(podman.image)
    state = _apply(rt, rendered, podman.image)
    assert len(podman.containers()) == N

    before = rt.api_calls
    plan, calls, elapsed = _plan(rt, rendered, state)
    assert calls == 2  # the images (issue 11 C13) and the containers, one call each
    assert rt.api_calls - before == 2
    assert not plan.has_changes, [c.to_dict() for c in plan.changes if c.is_change]
    assert plan.summary.noop == N
    assert all(c.live is not None for c in plan.changes)
    assert elapsed < 1.0, f"plan on 100 live containers took {elapsed:.2f}s"

    # Out of band: one stopped, one removed, one recreated with another config.
    podman.podman("stop", "-t", "0", f"{CLUSTER}-default-svc001-1")
    podman.podman("rm", "-f", "-t", "0", f"{CLUSTER}-default-svc002-1")
    podman.podman("rm", "-f", "-t", "0", f"{CLUSTER}-default-svc003-1")
    podman.podman("run", "-d", "--name", f"{CLUSTER}-default-svc003-1",
                  "--label", f"io.docklock.cluster={CLUSTER}",
                  "--label", "io.docklock.managed-by=docklock",
                  "--label", "io.docklock.address=Service/default/svc003",
                  "--label", "io.docklock.lineage=it-lineage",
                  "--label", "io.docklock.config-hash=handmade", podman.image, "sleep", "600")
    # And a labelled stray of this workspace (its lineage) nobody recorded.
    podman.podman("create", "--name", f"{CLUSTER}-default-stray-1",
                  "--label", f"io.docklock.cluster={CLUSTER}",
                  "--label", "io.docklock.managed-by=docklock",
                  "--label", "io.docklock.lineage=it-lineage",
                  "--label", "io.docklock.address=Service/default/stray", podman.image)
    # Another workspace's stray (same cluster name, its own lineage) is not ours at all.
    podman.podman("create", "--name", f"{CLUSTER}-default-theirs-1",
                  "--label", f"io.docklock.cluster={CLUSTER}",
                  "--label", "io.docklock.managed-by=docklock",
                  "--label", "io.docklock.lineage=another-lineage",
                  "--label", "io.docklock.address=Service/default/theirs", podman.image)

    plan, calls, _ = _plan(rt, rendered, state)
    assert calls == 2
    got = {c.name: (c.action, c.reasons) for c in plan.changes if c.is_change}
    assert got == {
        f"{CLUSTER}-default-svc001-1": (Action.UPDATE, (Reason.STOPPED_OUT_OF_BAND,)),
        f"{CLUSTER}-default-svc002-1": (Action.CREATE, (Reason.MISSING_LIVE,)),
        f"{CLUSTER}-default-svc003-1": (Action.REPLACE, (Reason.CHANGED_OUT_OF_BAND,)),
        f"{CLUSTER}-default-stray-1": (Action.DELETE, (Reason.NOT_IN_SPECS, Reason.ADOPTED)),
    }


def test_networks_in_use_add_one_call_not_one_per_container(podman: PodmanHarness,
                                                           rt: PodmanRuntime) -> None:
    rendered = _rendered(podman.image, networks=True)
    state = _apply(rt, rendered, podman.image)
    plan, calls, _ = _plan(rt, rendered, state)
    assert calls == 3  # images + containers + networks, whatever the number of containers
    assert not plan.has_changes
    podman.podman("rm", "-af", "-t", "0")
    podman.podman("network", "rm", f"{CLUSTER}-default-backend")
    plan, calls, _ = _plan(rt, rendered, state)
    changes = {c.key: c for c in plan.changes}
    net = changes[f"network:{CLUSTER}-default-backend"]
    assert (net.action, net.reasons) == (Action.CREATE, (Reason.MISSING_LIVE,))
    assert {c.action for k, c in changes.items() if k.startswith("container:")} == \
        {Action.CREATE}
