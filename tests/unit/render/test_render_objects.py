"""Render: resources -> desired Podman objects, names, labels, hashes, dependencies."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from docklock.errors import CageError, SpecError, WorkspaceError
from docklock.model import ImageSpec, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CAGE,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    LABEL_REPLICA,
    ContainerConfig,
    ObjectKind,
)
from docklock.render import context_digester, render
from docklock.workspace import WorkspacePaths


def doc(kind: str, name: str, spec: dict[str, Any] | None = None,
        namespace: str = "default") -> Resource:
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name, "namespace": namespace},
                               "spec": spec or {}})


STACK = [
    doc("Image", "app", {"ref": "localhost/demo/app:1", "context": "images/app"}),
    doc("Network", "backend", {"internal": True}),
    doc("Volume", "data"),
    doc("Service", "api", {"image": "localhost/demo/app:1", "replicas": 2,
                           "networks": ["backend"], "volumes": [{"name": "data",
                                                                 "path": "/data"}],
                           "env": {"MODE": "prod",
                                   "PASSWORD": {"value": "s3cret", "sensitive": True}}}),
    doc("Service", "web", {"image": "localhost/demo/busybox:1", "networks": ["backend"],
                           "dependsOn": [{"name": "api", "condition": "healthy"}],
                           "ports": [{"container": 8080, "host": 18080}]}),
    doc("Job", "report", {"image": "localhost/demo/app:1", "networks": ["backend"]}),
]


def test_objects_names_and_keys() -> None:
    out = render(STACK, cluster="demo")
    assert [o.key for o in out.objects] == [
        "container:demo-default-api-1", "container:demo-default-api-2",
        "container:demo-default-report-1", "container:demo-default-web-1",
        "image:localhost/demo/app:1", "network:demo-default-backend",
        "volume:demo-default-data",
    ]
    # The Job renders one run-once container (tests/unit/render/test_render_jobs.py);
    # the objects it uses are resources of their own.
    assert out.warnings == ()


def test_container_labels_and_hash_match_the_shared_config_hash() -> None:
    objs = render(STACK, cluster="demo").by_key()
    api2 = objs["container:demo-default-api-2"]
    labels = api2.config["labels"]
    assert labels[LABEL_MANAGED_BY] == "docklock"
    assert labels[LABEL_CLUSTER] == "demo"
    assert labels[LABEL_ADDRESS] == "Service/default/api"
    assert labels[LABEL_REPLICA] == "2"
    assert api2.replica == 2
    assert labels[LABEL_CAGE] == "standard"
    assert labels[LABEL_CONFIG_HASH] == api2.config_hash
    # The hash is exactly ContainerConfig.config_hash() of the rendered config, so
    # runtime or drift can recompute it from a config alone.
    assert ContainerConfig.from_dict(api2.config).config_hash() == api2.config_hash
    assert objs["container:demo-default-api-1"].config_hash != api2.config_hash
    assert api2.sensitive == ("env.PASSWORD",)


def test_network_volume_image_configs() -> None:
    objs = render(STACK, cluster="demo").by_key()
    net = objs["network:demo-default-backend"]
    assert net.name == "demo-default-backend"
    assert net.config["internal"] is True
    assert net.config["driver"] == "bridge"
    assert net.config["labels"][LABEL_CONFIG_HASH] == net.config_hash
    assert objs["volume:demo-default-data"].config["driver"] == "local"
    img = objs["image:localhost/demo/app:1"]
    assert img.name == "localhost/demo/app:1"
    assert img.config["context"] == "images/app"


def test_depends_on_points_at_image_network_volume_and_dependency_containers() -> None:
    objs = render(STACK, cluster="demo").by_key()
    assert objs["container:demo-default-api-1"].depends_on == (
        "image:localhost/demo/app:1", "network:demo-default-backend",
        "volume:demo-default-data")
    # web's image is not built here, so no image dependency; it waits for both api replicas.
    assert objs["container:demo-default-web-1"].depends_on == (
        "network:demo-default-backend", "container:demo-default-api-1",
        "container:demo-default-api-2")


def test_two_clusters_on_one_host_never_collide() -> None:
    a = {o.name for o in render(STACK, cluster="alpha").objects
         if o.kind is not ObjectKind.IMAGE}
    b = {o.name for o in render(STACK, cluster="beta").objects
         if o.kind is not ObjectKind.IMAGE}
    assert a
    assert not a & b


def test_render_is_deterministic_whatever_the_document_order() -> None:
    first = render(STACK, cluster="demo")
    shuffled = list(STACK)
    random.Random(7).shuffle(shuffled)
    assert render(shuffled, cluster="demo") == first


@pytest.mark.parametrize(("change", "changes_hash"), [
    ({"command": ["sleep", "9"]}, True),
    ({"env": {"MODE": "dev"}}, True),
    ({"ports": [{"container": 80, "host": 8080}]}, True),
    ({"resources": {"memory": "64Mi"}}, True),
    ({"cage": "hardened"}, True),
    ({"restart": "always"}, True),
    ({"replicas": 3}, False),  # more replicas: new objects, existing ones unchanged
    ({"dependsOn": [{"name": "x"}]}, False),  # order only, not the container itself
])
def test_config_hash_covers_exactly_the_fields_that_matter(
        change: dict[str, Any], changes_hash: bool) -> None:
    base = {"image": "localhost/x:1", "command": ["sleep", "1"], "env": {"MODE": "prod"}}
    before = render([doc("Service", "s", base)], cluster="c").by_key()
    after = render([doc("Service", "s", {**base, **change}), doc("Service", "x",
                                                                  {"image": "i"})],
                   cluster="c").by_key()
    key = "container:c-default-s-1"
    assert (before[key].config_hash != after[key].config_hash) is changes_hash


def test_metadata_labels_do_not_change_the_hash() -> None:
    a = render([doc("Service", "s", {"image": "i"})], cluster="c").objects[0]
    res = Resource.from_dict({"kind": "Service", "metadata": {"name": "s",
                                                              "labels": {"tier": "x"}},
                              "spec": {"image": "i"}})
    assert render([res], cluster="c").objects[0].config_hash == a.config_hash


def test_cage_floor_and_deterministic_settings() -> None:
    svc = doc("Service", "s", {"image": "i", "networks": ["n"], "env": {"TZ": "Europe/Paris"},
                               "cage": "deterministic"})
    objs = render([svc, doc("Network", "n")], cluster="c",
                  security_level="hardened").by_key()
    cfg = objs["container:c-default-s-1"].config
    assert cfg["cage"]["level"] == "deterministic"
    assert cfg["networks"] == []  # network none
    env = {e[0]: e[1] for e in cfg["env"]}
    assert env["TZ"] == "UTC"  # the cage's pinned value wins over the spec's
    assert cfg["memory"] is not None
    assert cfg["pids_limit"] is not None
    with pytest.raises(CageError, match=r"Service/default/w.*weaker"):
        render([doc("Service", "w", {"image": "i", "cage": "standard"})], cluster="c",
               security_level="hardened")


def test_cage_profile_from_the_workspace() -> None:
    prof = doc("CageProfile", "tight", {"extends": "hardened", "memory": "32Mi",
                                        "capAdd": ["NET_BIND_SERVICE"]})
    svc = doc("Service", "s", {"image": "i", "cage": "tight", "capAdd": ["CHOWN"]})
    cfg = render([prof, svc], cluster="c").objects[0].config
    assert cfg["cage"]["name"] == "tight"
    assert cfg["cage"]["level"] == "hardened"
    assert cfg["memory"] == "32Mi"
    assert cfg["cage"]["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]


def test_undeclared_network_is_a_warning_not_a_dependency() -> None:
    out = render([doc("Service", "s", {"image": "i", "networks": ["ghost"]})], cluster="c")
    assert out.objects[0].depends_on == ()
    assert out.objects[0].config["networks"] == ["c-default-ghost"]
    assert "ghost" in out.warnings[0]


def test_context_digest_follows_the_build_context(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    ctx = tmp_path / "images" / "app"
    ctx.mkdir(parents=True)
    (ctx / "Containerfile").write_text("FROM scratch\n")
    spec = ImageSpec("localhost/app:1", "images/app")
    first = context_digester(paths)(spec)
    assert first == context_digester(paths)(spec)
    (ctx / "Containerfile").write_text("FROM scratch\nCOPY x /\n")
    assert context_digester(paths)(spec) != first
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        context_digester(paths)(ImageSpec("localhost/app:1", "../elsewhere"))
    with pytest.raises(SpecError, match="not a folder"):
        context_digester(paths)(ImageSpec("localhost/app:1", "images/none"))
