"""Drift as a pure comparison: recorded state x live objects (x specs for `pending`)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from docklock.drift import (
    DriftKind,
    DriftReport,
    PendingKind,
    detect_drift,
    render_drift_text,
    same_image_ref,
)
from docklock.model import Address, Port
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    CageSettings,
    ContainerConfig,
    ContainerDetail,
    DesiredObject,
    LiveObject,
    LiveState,
    Mount,
    ObjectKind,
)
from docklock.state import RecordedObject, State

C = "demo"
IMG = "localhost/demo/busybox:1"
ADDR = "Service/default/web"


def rec(name: str, *, id: str = "a" * 64, h: str = "h1", image_id: str | None = "f" * 64,
        kind: ObjectKind = ObjectKind.CONTAINER) -> RecordedObject:
    return RecordedObject(f"{kind.value}:{name}", kind, name, id, h, {"image": IMG}, image_id)


def state_of(*objs: RecordedObject, address: str = ADDR) -> State:
    st = State(lineage="L", serial=4, cluster=C)
    for o in objs:
        st = st.with_object(address, o)
    return st


def live(name: str, *, id: str = "a" * 12, h: str = "h1", status: str = "running",
         image: str = IMG, labels: Mapping[str, str] | None = None,
         kind: ObjectKind = ObjectKind.CONTAINER, exit_code: int | None = None) -> LiveObject:
    lab = {LABEL_MANAGED_BY: "docklock", LABEL_CLUSTER: C, LABEL_ADDRESS: ADDR,
           LABEL_CONFIG_HASH: h}
    lab.update(labels or {})
    return LiveObject(f"{kind.value}:{name}", kind, name, id, lab, status, "", image,
                      exit_code)


def live_state(*objs: LiveObject) -> LiveState:
    return LiveState({o.key: o for o in objs}, 1)


def kinds(report: DriftReport) -> list[tuple[DriftKind, str]]:
    return [(i.kind, i.name) for i in report.items]


def test_clean() -> None:
    report = detect_drift(state_of(rec("web-1")), live_state(live("web-1")), cluster=C)
    assert not report.has_drift
    assert report.checked == 1
    assert "No drift" in render_drift_text(report)


def test_removed() -> None:
    report = detect_drift(state_of(rec("web-1"), rec("web-2")), live_state(live("web-1")),
                          cluster=C)
    assert kinds(report) == [(DriftKind.REMOVED, "web-2")]
    text = render_drift_text(report)
    assert "removed" in text
    assert "web-2" in text


def test_stopped_with_exit_code() -> None:
    report = detect_drift(state_of(rec("web-1")),
                          live_state(live("web-1", status="exited", exit_code=137)), cluster=C)
    assert kinds(report) == [(DriftKind.STOPPED, "web-1")]
    assert report.items[0].details == ("container is exited (exit code 137)",)


@pytest.mark.parametrize(("lv", "detail"), [
    (live("web-1", h="h2"), "config-hash label h2, recorded h1"),
    (live("web-1", id="b" * 12), "re-created outside DockLock"),
    (live("web-1", image="localhost/other:2"), "runs image localhost/other:2"),
    (live("web-1", image="e" * 64), "runs image eeeeeeeeeeee"),
    (live("web-1", labels={LABEL_ADDRESS: "Service/default/api"}), "address label"),
])
def test_changed_out_of_band(lv: LiveObject, detail: str) -> None:
    report = detect_drift(state_of(rec("web-1")), live_state(lv), cluster=C)
    assert kinds(report) == [(DriftKind.CHANGED, "web-1")]
    assert any(detail in d for d in report.items[0].details), report.items[0].details


def test_image_name_forms_are_not_drift() -> None:
    assert same_image_ref("demo/busybox:1", "localhost/demo/busybox:1")
    assert not same_image_ref("busybox:1", "busybox:2")
    report = detect_drift(state_of(rec("web-1")),
                          live_state(live("web-1", image=IMG.removeprefix("localhost/"))),
                          cluster=C)
    assert not report.has_drift


def test_unmanaged_container_claiming_our_labels() -> None:
    squatter = live("ghost-1", labels={LABEL_ADDRESS: "Service/default/ghost"})
    other_cluster = live("theirs-1", labels={LABEL_CLUSTER: "elsewhere"})
    report = detect_drift(state_of(rec("web-1")),
                          live_state(live("web-1"), squatter, other_cluster), cluster=C)
    assert kinds(report) == [(DriftKind.UNMANAGED, "ghost-1")]
    assert report.items[0].address == "Service/default/ghost"


def test_networks_are_judged_only_when_listed() -> None:
    net = rec("demo-default-backend", id="n" * 64, kind=ObjectKind.NETWORK)
    st = state_of(rec("web-1"), net)
    only_containers = detect_drift(st, live_state(live("web-1")), cluster=C)
    assert not only_containers.has_drift
    with_networks = detect_drift(st, live_state(live("web-1")), cluster=C,
                                 live_kinds=[ObjectKind.CONTAINER, ObjectKind.NETWORK])
    assert kinds(with_networks) == [(DriftKind.REMOVED, "demo-default-backend")]


def desired(name: str, h: str) -> DesiredObject:
    return DesiredObject(f"container:{name}", ObjectKind.CONTAINER,
                         Address.parse(ADDR), name, {}, h, replica=1)


def test_pending_spec_changes_are_listed_but_are_not_drift() -> None:
    st = state_of(rec("web-1"), rec("web-2"))
    report = detect_drift(st, live_state(live("web-1"), live("web-2")), cluster=C,
                          desired=[desired("web-1", "h1"), desired("web-2", "h9"),
                                   desired("web-3", "h1")])
    assert not report.has_drift
    assert [(p.kind, p.name) for p in report.pending] == [
        (PendingKind.SPEC_CHANGED, "web-2"), (PendingKind.NOT_APPLIED, "web-3")]
    # web-2's service is still rendered (web-1): it was scaled down, not removed.
    gone = detect_drift(st, live_state(live("web-1"), live("web-2")), cluster=C,
                        desired=[desired("web-1", "h1")])
    assert [(p.kind, p.name) for p in gone.pending] == [(PendingKind.SCALED_DOWN, "web-2")]
    assert "scaled down" in render_drift_text(gone)
    removed = detect_drift(st, live_state(live("web-1"), live("web-2")), cluster=C,
                           desired=[])
    assert [(p.kind, p.name) for p in removed.pending] == [
        (PendingKind.NOT_IN_SPECS, "web-1"), (PendingKind.NOT_IN_SPECS, "web-2")]
    assert "Pending (not drift)" in render_drift_text(gone)


def test_report_round_trips() -> None:
    report = detect_drift(state_of(rec("web-1"), rec("web-2")),
                          live_state(live("web-1", status="exited")), cluster=C,
                          desired=[desired("web-3", "h")])
    back = DriftReport.from_dict(report.to_dict())
    assert back.items == report.items
    assert back.pending == report.pending
    assert report.to_dict()["counts"] == {"removed": 1, "stopped": 1, "changed": 0,
                                          "unmanaged": 0, "failed": 0, "unhealthy": 0}


# ---------------------------------------------------------------- fields changed in place
# (issue 11 C12: what `podman network connect|disconnect`, `rename`, `update` can alter)

FULL = ContainerConfig(
    name="web-1", image=IMG, networks=("demo-default-backend", "demo-default-front"),
    ports=(Port(8080, 18080),), mounts=(Mount("volume", "demo-default-data", "/data"),),
    memory="64Mi", cpus=0.5, pids_limit=128)
LIVE_ID = "a" * 64


def full_rec(cfg: ContainerConfig = FULL) -> RecordedObject:
    return RecordedObject("container:web-1", ObjectKind.CONTAINER, "web-1", LIVE_ID, "h1",
                          cfg.to_dict(), "f" * 64)


def full_live(**changes: object) -> LiveObject:
    base = replace_live(live("web-1", id=LIVE_ID[:12]),
                        networks=("demo-default-backend", "demo-default-front"),
                        ports=("127.0.0.1:18080->8080/tcp",), mounts=("/data",),
                        detail=ContainerDetail(
                            memory=64 * 1024 * 1024, cpu_quota=50_000, cpu_period=100_000,
                            pids_limit=128,
                            aliases={"demo-default-backend": (LIVE_ID[:12],),
                                     "demo-default-front": (LIVE_ID[:12],)}))
    return replace_live(base, **changes)


def replace_live(lv: LiveObject, **changes: object) -> LiveObject:
    import dataclasses
    return dataclasses.replace(lv, **changes)  # type: ignore[arg-type]


def test_a_converged_container_with_every_field_observed_is_clean() -> None:
    report = detect_drift(state_of(full_rec()), live_state(full_live()), cluster=C)
    assert not report.has_drift, report.items


@pytest.mark.parametrize(("changes", "field", "detail"), [
    ({"networks": ("demo-default-backend",)}, "networks",
     "not connected to network demo-default-front"),
    ({"networks": ("demo-default-backend", "demo-default-front", "podman")}, "networks",
     "connected to network podman, not recorded"),
    ({"ports": ()}, "ports", "port 127.0.0.1:18080->8080/tcp not published"),
    ({"ports": ("127.0.0.1:18080->8080/tcp", "0.0.0.0:9999->22/tcp")}, "ports",
     "publishes 0.0.0.0:9999->22/tcp, not recorded"),
    ({"mounts": ()}, "mounts", "/data not mounted"),
    ({"detail": ContainerDetail(memory=128 * 1024 * 1024, cpu_quota=50_000,
                                pids_limit=128)}, "memory", "memory limit 134217728"),
    ({"detail": ContainerDetail(memory=64 * 1024 * 1024, cpu_quota=100_000,
                                pids_limit=128)}, "cpus", "CPU quota 100000"),
    ({"detail": ContainerDetail(memory=64 * 1024 * 1024, cpu_quota=50_000,
                                pids_limit=4096)}, "pids", "pids limit 4096"),
    ({"detail": ContainerDetail(memory=64 * 1024 * 1024, cpu_quota=50_000, pids_limit=128,
                                aliases={"demo-default-front": ("api", LIVE_ID[:12])})},
     "aliases", "network demo-default-front: alias api added"),
    ({"detail": ContainerDetail(memory=64 * 1024 * 1024, cpu_quota=50_000, pids_limit=128,
                                restart="always")},
     "restart", "restart policy always, recorded no"),
])
def test_each_field_changed_in_place_is_drift(changes: dict[str, object], field: str,
                                              detail: str) -> None:
    report = detect_drift(state_of(full_rec()), live_state(full_live(**changes)), cluster=C)
    assert kinds(report) == [(DriftKind.CHANGED, "web-1")]
    item = report.items[0]
    assert item.fields == (field,)
    assert any(detail in d for d in item.details), item.details
    text = render_drift_text(report)
    assert f"--replace {ADDR}" in text  # plan would show nothing for these


def test_fields_not_observed_are_not_judged() -> None:
    bare = full_live(networks=None, mounts=None, detail=None)
    assert not detect_drift(state_of(full_rec()), live_state(bare), cluster=C).has_drift


def test_default_network_and_no_network_cages() -> None:
    plain = full_rec(ContainerConfig(name="web-1", image=IMG))
    on_default = full_live(networks=("podman",), ports=(), mounts=(), detail=None)
    assert not detect_drift(state_of(plain), live_state(on_default), cluster=C).has_drift
    cut_off = full_live(networks=(), ports=(), mounts=(), detail=None)
    report = detect_drift(state_of(plain), live_state(cut_off), cluster=C)
    assert report.items[0].fields == ("networks",)
    caged = full_rec(ContainerConfig(name="web-1", image=IMG,
                                     cage=CageSettings("deterministic", "deterministic",
                                                       network_none=True)))
    none = full_live(networks=(), ports=(), mounts=(), detail=None)
    assert not detect_drift(state_of(caged), live_state(none), cluster=C).has_drift
    joined = full_live(networks=("podman",), ports=(), mounts=(), detail=None)
    report = detect_drift(state_of(caged), live_state(joined), cluster=C)
    assert "cage allows no network" in report.items[0].details[0]


def test_renamed_container_is_one_item_naming_the_new_name() -> None:
    moved = replace_live(full_live(), key="container:web-renamed", name="web-renamed")
    report = detect_drift(state_of(full_rec()), live_state(moved), cluster=C)
    assert kinds(report) == [(DriftKind.CHANGED, "web-1")]
    assert report.items[0].fields == ("name",)
    assert "renamed to web-renamed" in report.items[0].details[0]


def test_unhealthy_running_container_is_drift() -> None:
    sick = replace_live(full_live(), health="unhealthy")
    report = detect_drift(state_of(full_rec()), live_state(sick), cluster=C)
    assert kinds(report) == [(DriftKind.UNHEALTHY, "web-1")]
    assert report.items[0].fields == ("health",)
    assert f"--replace {ADDR}" in render_drift_text(report)  # plan would not re-create it


def test_paused_container_is_stopped_drift() -> None:
    paused = replace_live(full_live(), status="paused")
    report = detect_drift(state_of(full_rec()), live_state(paused), cluster=C)
    assert kinds(report) == [(DriftKind.STOPPED, "web-1")]
    assert report.items[0].fields == ("status",)
    text = render_drift_text(report)
    assert "--replace" not in text  # plan starts it again: no forced re-create
    assert "Run `docklock plan`" in text
