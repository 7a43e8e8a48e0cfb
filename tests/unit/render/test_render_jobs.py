"""Render of Jobs: one run-once container each, caged with the Job's seed, with its
inputs bound read-only from the workspace and its outputs folder under .docklock/jobs/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from docklock.cage.determinism import random_source_name
from docklock.cage.jobs import JobError, job_folder
from docklock.errors import SpecError, WorkspaceError
from docklock.model import Address, Resource
from docklock.objects import (
    LABEL_ADDRESS,
    LABEL_CAGE,
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    LABEL_REPLICA,
    ContainerConfig,
    Mount,
    ObjectKind,
)
from docklock.render import (
    JOB_CONFIG,
    KIND_JOB,
    LABEL_KIND,
    JobSettings,
    is_job,
    is_job_labels,
    is_rendered_kind,
    job_outputs_folder,
    job_settings,
    recorded_exit_code,
    render,
)
from docklock.workspace import WorkspacePaths

MIGRATE = "container:demo-default-migrate-1"


def doc(kind: str, name: str, spec: dict[str, Any] | None = None) -> Resource:
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name, "namespace": "default"},
                               "spec": spec or {}})


def job(**spec: Any) -> Resource:
    body: dict[str, Any] = {"image": "localhost/demo/app:1",
                            "command": ["sh", "-c", "echo v1 > /shared/schema"]}
    body.update(spec)
    return doc("Job", "migrate", body)


STACK = [
    doc("Image", "app", {"ref": "localhost/demo/app:1", "context": "images/app"}),
    doc("Network", "backend"),
    doc("Volume", "shared"),
    job(networks=["backend"], volumes=[{"name": "shared", "path": "/shared"}]),
    doc("Service", "api", {"image": "localhost/demo/busybox:1", "replicas": 2,
                           "volumes": [{"name": "shared", "path": "/shared"}],
                           "dependsOn": [{"name": "migrate", "kind": "Job",
                                          "condition": "completed"}]}),
]


def test_a_job_renders_one_run_once_container() -> None:
    objs = render(STACK, cluster="demo").by_key()
    obj = objs[MIGRATE]
    assert obj.kind is ObjectKind.CONTAINER
    assert (obj.name, obj.replica, obj.address) == (
        "demo-default-migrate-1", 1, Address("Job", "default", "migrate"))
    labels = obj.config["labels"]
    assert labels == {LABEL_MANAGED_BY: "docklock", LABEL_CLUSTER: "demo",
                      LABEL_ADDRESS: "Job/default/migrate", LABEL_CAGE: "standard",
                      LABEL_KIND: KIND_JOB, LABEL_REPLICA: "1",
                      LABEL_CONFIG_HASH: obj.config_hash}
    assert is_job(obj.config)
    assert is_job_labels(labels)
    assert not is_job(objs["container:demo-default-api-1"].config)
    assert obj.config["restart"] == "no"  # it runs once; apply decides about re-runs
    assert obj.config["command"] == ["sh", "-c", "echo v1 > /shared/schema"]
    assert obj.config["mounts"] == [Mount("volume", "demo-default-shared",
                                          "/shared").to_dict()]
    assert obj.config["networks"] == ["demo-default-backend"]
    assert job_settings(obj.config) == JobSettings(timeout=300, outputs=None)
    assert job_settings(objs["container:demo-default-api-1"].config) is None
    # Same property as services: the hash is ContainerConfig's over the config alone.
    assert ContainerConfig.from_dict(obj.config).config_hash() == obj.config_hash
    assert is_rendered_kind("Job")


def test_job_wiring_and_dependents() -> None:
    objs = render(STACK, cluster="demo").by_key()
    assert objs[MIGRATE].depends_on == ("image:localhost/demo/app:1",
                                        "network:demo-default-backend",
                                        "volume:demo-default-shared")
    # Every replica of a service that dependsOn the job waits for its container.
    for i in (1, 2):
        assert objs[f"container:demo-default-api-{i}"].depends_on == (
            "volume:demo-default-shared", MIGRATE)


def test_a_job_may_depend_on_a_service() -> None:
    objs = render([doc("Service", "db", {"image": "x"}),
                   job(dependsOn=[{"name": "db", "condition": "started"}])],
                  cluster="demo").by_key()
    assert objs[MIGRATE].depends_on == ("container:demo-default-db-1",)


@pytest.mark.parametrize(("change", "changes_hash"), [
    ({"command": ["sh", "-c", "exit 0"]}, True),
    ({"env": {"MODE": "dev"}}, True),
    ({"cage": "hardened"}, True),
    ({"resources": {"memory": "64Mi"}}, True),
    ({"timeout": 5}, False),  # how long apply waits is not a reason to run it again
    ({"seed": 9}, False),  # the seed only matters to a deterministic cage
])
def test_job_config_hash(change: dict[str, Any], changes_hash: bool) -> None:
    before = render([job()], cluster="demo").by_key()[MIGRATE]
    after = render([job(**change)], cluster="demo").by_key()[MIGRATE]
    assert (before.config_hash != after.config_hash) is changes_hash
    if "timeout" in change:
        assert after.config[JOB_CONFIG]["timeout"] == 5


def test_deterministic_job_is_caged_with_its_own_seed(tmp_path: Path) -> None:
    cages = tmp_path / ".docklock" / "cages"
    out = render([job(cage="deterministic", seed=7, networks=["backend"]),
                  doc("Network", "backend"),
                  doc("Service", "svc", {"image": "x", "cage": "deterministic"})],
                 cluster="demo", cages_dir=cages).by_key()
    obj = out[MIGRATE]
    cage = obj.config["cage"]
    assert cage["level"] == "deterministic"
    assert ["DOCKLOCK_SEED", "7", False] in obj.config["env"]
    assert cage["random_source"] == str(cages / random_source_name(7))
    assert obj.config["networks"] == []  # the cage has no network
    # A service in the same cage is not given the job's seed (the cage cache is per seed).
    assert ["DOCKLOCK_SEED", "0", False] in out["container:demo-default-svc-1"].config["env"]
    other = render([job(cage="deterministic", seed=8)], cluster="demo",
                   cages_dir=cages).by_key()[MIGRATE]
    assert other.config_hash != obj.config_hash


def test_inputs_and_outputs_are_bound_from_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "001.sql").write_text("create table t;\n")
    paths = WorkspacePaths(tmp_path)
    res = job(inputs=[{"path": "migrations", "mount": "/in"}], outputs="/out")
    obj = render([res], cluster="demo", paths=paths).by_key()[MIGRATE]
    outputs = job_outputs_folder(paths, res.address)
    assert outputs == job_folder(paths, res.address) / "apply-outputs"
    assert str(outputs).startswith(str(tmp_path / ".docklock" / "jobs"))
    assert obj.config["mounts"] == [
        Mount("bind", str(tmp_path / "migrations"), "/in", read_only=True).to_dict(),
        Mount("bind", str(outputs), "/out").to_dict()]
    assert job_settings(obj.config) == JobSettings(300, str(outputs))
    assert not outputs.exists()  # render is pure: apply makes the folder


def test_inputs_are_confined_and_must_exist(tmp_path: Path) -> None:
    paths = WorkspacePaths(tmp_path)
    with pytest.raises(WorkspaceError):
        render([job(inputs=[{"path": "../etc/passwd", "mount": "/in"}])], cluster="demo",
               paths=paths)
    with pytest.raises(JobError, match="does not exist"):
        render([job(inputs=[{"path": "nope.txt", "mount": "/in"}])], cluster="demo",
               paths=paths)
    with pytest.raises(SpecError, match="needs its workspace"):
        render([job(outputs="/out")], cluster="demo")


def test_recorded_exit_code() -> None:
    assert recorded_exit_code({"run": {"exit_code": 3}}) == 3
    assert recorded_exit_code({"run": {"exit_code": 0}}) == 0
    assert recorded_exit_code({}) is None
