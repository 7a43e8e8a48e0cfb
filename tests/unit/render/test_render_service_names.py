"""Service names, init and update settings (issue 12 items 2, 7a, 7b): render, create
kwargs and drift, without Podman. The Podman proof is tests/integration/names/."""

from __future__ import annotations

from typing import Any

import pytest

from docklock.cage import podman_create_kwargs
from docklock.drift import DriftKind, detect_drift
from docklock.model import Address, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    ContainerConfig,
    ContainerDetail,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.render import container_config, render, update_settings
from docklock.state import RecordedObject, State

IMG = "localhost/demo/busybox:1"


def doc(kind: str, name: str, spec: dict[str, Any], ns: str = "default") -> Resource:
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name, "namespace": ns}, "spec": spec})


def containers(*resources: Resource, level: str = "standard") -> dict[str, DesiredObject]:
    rendered = render(list(resources), cluster="demo", security_level=level)
    return {o.name: o for o in rendered.objects if o.kind is ObjectKind.CONTAINER}


def test_every_replica_shares_the_service_name_and_namespace_alias() -> None:
    objs = containers(doc("Network", "back", {}, ns="shop"),
                      doc("Service", "db", {"image": IMG, "replicas": 2,
                                            "networks": ["back"]}, ns="shop"))
    for name in ("demo-shop-db-1", "demo-shop-db-2"):
        cfg = container_config(objs[name])
        assert cfg.aliases == ("db", "db.shop")
        kwargs = podman_create_kwargs(cfg)
        assert kwargs["networks"] == {"demo-shop-back": {"aliases": ["db", "db.shop"]}}


def test_no_alias_without_a_dns_network() -> None:
    # Podman's default network has no DNS, a deterministic cage has no network at all,
    # and a Job is not a service: none of them gets an alias (nor a new config hash).
    objs = containers(
        doc("Service", "plain", {"image": IMG}),
        doc("Network", "back", {}),
        doc("Service", "sealed", {"image": IMG, "cage": "deterministic",
                                  "networks": ["back"]}),
        doc("Job", "once", {"image": IMG, "command": ["true"], "networks": ["back"]}))
    for name in ("demo-default-plain-1", "demo-default-sealed-1", "demo-default-once-1"):
        cfg = container_config(objs[name])
        assert cfg.aliases == (), name
        assert "aliases" not in cfg.hashed_fields()
        networks = podman_create_kwargs(cfg).get("networks") or {}
        assert all(opts == {} for opts in networks.values()), name


def test_services_run_an_init_jobs_do_not() -> None:
    objs = containers(doc("Service", "web", {"image": IMG}),
                      doc("Service", "own", {"image": IMG, "init": False}),
                      doc("Job", "once", {"image": IMG, "command": ["true"]}))
    assert podman_create_kwargs(container_config(objs["demo-default-web-1"]))["init"] is True
    for name in ("demo-default-own-1", "demo-default-once-1"):
        cfg = container_config(objs[name])
        assert "init" not in podman_create_kwargs(cfg)
        assert "init" not in cfg.hashed_fields()


def test_the_new_fields_leave_older_hashes_alone() -> None:
    # A config without aliases or init hashes exactly as before these fields existed.
    old_style = ContainerConfig(name="x-1", image=IMG)
    fields = old_style.hashed_fields()
    assert "aliases" not in fields
    assert "init" not in fields
    assert ContainerConfig.from_dict(old_style.to_dict()) == old_style
    new = ContainerConfig(name="x-1", image=IMG, aliases=("x", "x.default"), init=True)
    assert new.config_hash() != old_style.config_hash()
    assert ContainerConfig.from_dict(new.to_dict()) == new


@pytest.mark.parametrize(("spec", "stateful", "overlap"), [
    ({}, False, False),
    ({"volumes": [{"name": "data", "path": "/data"}]}, True, False),
    ({"volumes": [{"name": "data", "path": "/data"}], "update": {"overlap": True}}, True, True),
])
def test_update_settings_are_rendered_and_not_hashed(spec: dict[str, Any], stateful: bool,
                                                     overlap: bool) -> None:
    base = {"image": IMG, **spec}
    obj = containers(doc("Volume", "data", {}), doc("Service", "db", base))["demo-default-db-1"]
    got = update_settings(obj.config)
    assert (got.stateful, got.overlap) == (stateful, overlap)
    assert got.may_overlap is (overlap or not stateful)
    flipped = {**base, "update": {"overlap": not overlap}}
    other = containers(doc("Volume", "data", {}), doc("Service", "db", flipped))
    assert other["demo-default-db-1"].config_hash == obj.config_hash


def test_update_settings_of_a_config_rendered_before_them() -> None:
    legacy = {"mounts": [{"type": "volume", "source": "v", "target": "/d"}]}
    assert update_settings(legacy).stateful is True
    assert update_settings({"mounts": []}).may_overlap is True


# ---------------------------------------------------------------- drift of aliases

LIVE_ID = "b" * 64
NET = "demo-default-back"
CFG = ContainerConfig(name="demo-default-db-1", image=IMG, networks=(NET,),
                      aliases=("db", "db.default"), init=True)


def judge(aliases: tuple[str, ...]) -> list[tuple[DriftKind, tuple[str, ...], tuple[str, ...]]]:
    address = "Service/default/db"
    rec = RecordedObject("container:demo-default-db-1", ObjectKind.CONTAINER,
                         "demo-default-db-1", LIVE_ID, "h1", CFG.to_dict(), None)
    state = State(lineage="L", serial=1, cluster="demo").with_object(address, rec)
    lv = LiveObject("container:demo-default-db-1", ObjectKind.CONTAINER, "demo-default-db-1",
                    LIVE_ID[:12], {LABEL_MANAGED_BY: "docklock", LABEL_CLUSTER: "demo",
                                   LABEL_ADDRESS: address, LABEL_CONFIG_HASH: "h1"},
                    "running", networks=(NET,),
                    detail=ContainerDetail(aliases={NET: aliases}))
    report = detect_drift(state, LiveState({lv.key: lv}, 1), cluster="demo")
    return [(i.kind, i.fields, i.details) for i in report.items]


def test_the_service_aliases_docklock_gave_are_not_drift() -> None:
    assert judge(("db", "db.default", LIVE_ID[:12])) == []


def test_a_lost_or_an_extra_alias_is_drift() -> None:
    [(kind, fields, details)] = judge((LIVE_ID[:12],))
    assert (kind, fields) == (DriftKind.CHANGED, ("aliases",))
    assert "alias db, db.default missing" in details[0]
    [(kind, fields, details)] = judge(("db", "db.default", "cache", LIVE_ID[:12]))
    assert (kind, fields) == (DriftKind.CHANGED, ("aliases",))
    assert "alias cache added outside DockLock" in details[0]


def test_address_of_replicas_is_the_service() -> None:
    objs = containers(doc("Network", "back", {}),
                      doc("Service", "db", {"image": IMG, "replicas": 2, "networks": ["back"]}))
    assert {o.address for o in objs.values()} == {Address.parse("Service/default/db")}
