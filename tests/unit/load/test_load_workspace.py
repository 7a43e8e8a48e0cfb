"""load_workspace end to end: resources, digests, and every cross-resource check."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.errors import ValidationError, WorkspaceError
from docklock.load import load_cluster, load_workspace, spec_digest
from docklock.model import Address, ClusterSpec, ServiceSpec
from docklock.workspace import WorkspacePaths

# The make_workspace fixture (tests/unit/load/conftest.py) has this signature.
MakeWorkspace = Callable[..., WorkspacePaths]

WEB = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/demo/web:1
  dependsOn: [{name: api, condition: healthy}]
  networks: [backend]
  volumes: [{name: data, path: /data}]
  cage: locked
  ports: [{container: 80, host: 8080}]
"""
API = """\
apiVersion: docklock.io/v1
kind: Service
metadata: {name: api}
spec:
  image: localhost/demo/api:1
  healthcheck: {command: ["true"]}
---
kind: Network
metadata: {name: backend}
---
kind: Volume
metadata: {name: data}
---
kind: CageProfile
metadata: {name: locked}
spec: {extends: hardened}
---
kind: Image
metadata: {name: web-image}
spec: {ref: localhost/demo/web:1, context: images/web}
"""


def errors(make_workspace: MakeWorkspace, files: dict[str, str], **kw: str) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace(files, **kw))
    return [f"{d.location}: {d.message}" for d in info.value.diagnostics]


def test_a_valid_workspace(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/web.yaml": WEB, "specs/api.yaml": API,
                            "images/web/Containerfile": "FROM scratch\n"})
    ws = load_workspace(paths)
    assert ws.cluster_name == "test"
    assert ws.cluster_spec.securityLevel == "standard"
    assert [str(r.address) for r in ws.resources] == [
        "CageProfile/default/locked", "Image/default/web-image", "Network/default/backend",
        "Service/default/api", "Service/default/web", "Volume/default/data"]
    web = ws.by_address("web")
    assert isinstance(web.spec, ServiceSpec)
    assert web.spec.replicas == 1  # default applied by the model
    assert web.location is not None
    assert str(web.location) == "specs/web.yaml:1:1"
    assert ws.of_kind("Service") == (ws.by_address("api"), web)
    raw = (paths.root / "specs/web.yaml").read_bytes()
    assert ws.files["specs/web.yaml"] == hashlib.sha256(raw).hexdigest()
    assert set(ws.files) == {"docklock.yaml", "specs/api.yaml", "specs/web.yaml"}
    assert ws.spec_digest == spec_digest(ws.files)
    assert ws.graph is not None
    assert ws.graph.dependencies_of(web.address) == [
        Address("CageProfile", "default", "locked"), Address("Image", "default", "web-image"),
        Address("Network", "default", "backend"), Address("Service", "default", "api"),
        Address("Volume", "default", "data")]
    assert ws.get("Service/default/nope") is None


def test_spec_digest_changes_with_any_file(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/api.yaml": API.split("---", maxsplit=1)[0]})
    before = load_workspace(paths).spec_digest
    (paths.root / "specs/api.yaml").write_text(API.split("---", maxsplit=1)[0] + "# a comment\n")
    assert load_workspace(paths).spec_digest != before


def test_every_problem_is_collected_across_files(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {
        "specs/a.yaml": "kind: Service\nmetadata: {name: a}\nspec: {image: x, replicas: -1}\n",
        "specs/b.yaml": "kind: Service\nmetadata: {name: b}\nspec: {image: x, bogus: 1}\n",
        "specs/c.yaml": "kind: Service\nmetadata: {name: c}\n  bad: indent\n",
    })
    assert out == [
        "specs/a.yaml:3:18: -1 is less than the minimum of 0",
        "specs/b.yaml:3:18: unknown field 'bogus'",
        "specs/c.yaml:3:3: invalid YAML: expected <block end>, but found '<block mapping start>'",
    ]


def test_duplicate_addresses_name_both_ends(make_workspace: MakeWorkspace) -> None:
    svc = "kind: Service\nmetadata: {name: web}\nspec: {image: x}\n"
    out = errors(make_workspace, {"specs/a.yaml": svc, "specs/b.yaml": "\n\n" + svc})
    assert out == ["specs/b.yaml:4:12: duplicate Service/default/web: already defined at "
                   "specs/a.yaml:2:12"]


def test_same_name_in_other_namespace_or_kind_is_fine(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/a.yaml": (
        "kind: Service\nmetadata: {name: web}\nspec: {image: x}\n---\n"
        "kind: Service\nmetadata: {name: web, namespace: other}\nspec: {image: x}\n---\n"
        "kind: Network\nmetadata: {name: web}\n")})
    assert len(load_workspace(paths).resources) == 3


def test_dangling_references(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/web.yaml": WEB})
    assert out == [
        "specs/web.yaml:6:16: Service/default/web depends on Service/default/api, which is "
        "not defined",
        "specs/web.yaml:7:14: Service/default/web uses network Network/default/backend, which "
        "is not defined",
        "specs/web.yaml:8:14: Service/default/web mounts volume Volume/default/data, which is "
        "not defined",
        "specs/web.yaml:9:3: Service/default/web uses cage 'locked', which is neither a "
        "built-in level (standard, hardened, deterministic, military-grade) nor a CageProfile "
        "in namespace 'default'",
    ]


def test_reference_to_an_invalid_document_is_not_reported_twice(
        make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": (
        "kind: Service\nmetadata: {name: web}\nspec: {image: x, dependsOn: [{name: api}]}\n"
        "---\nkind: Service\nmetadata: {name: api}\nspec: {image: x, replicas: many}\n")})
    assert out == ['specs/a.yaml:7:18: expected an integer, got a string "many"']


def test_dependency_cycle_is_printed(make_workspace: MakeWorkspace) -> None:
    doc = "kind: Service\nmetadata: {name: %s}\nspec: {image: x, dependsOn: [{name: %s}]}\n"
    out = errors(make_workspace, {"specs/a.yaml": doc % ("a", "b"),
                                  "specs/b.yaml": doc % ("b", "c"),
                                  "specs/c.yaml": doc % ("c", "a")})
    assert out == ["specs/a.yaml:3:31: dependency cycle: Service/default/a -> "
                   "Service/default/b -> Service/default/c -> Service/default/a"]


def test_self_dependency_is_a_cycle(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": (
        "kind: Service\nmetadata: {name: a}\nspec: {image: x, dependsOn: [{name: a}]}\n")})
    assert out == ["specs/a.yaml:3:31: dependency cycle: Service/default/a -> "
                   "Service/default/a"]


def test_conditions_that_can_never_hold(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": (
        "kind: Service\nmetadata: {name: web}\nspec:\n  image: x\n  dependsOn:\n"
        "    - {name: api, condition: healthy}\n"
        "    - {name: api, condition: completed}\n"
        "    - {name: job, kind: Job, condition: healthy}\n"
        "---\nkind: Service\nmetadata: {name: api}\nspec: {image: x}\n"
        "---\nkind: Job\nmetadata: {name: job}\nspec: {image: x}\n")})
    assert out == [
        "specs/a.yaml:6:19: Service/default/web waits for Service/default/api to be healthy, "
        "but Service/default/api (at specs/a.yaml:12:1) has no healthcheck",
        "specs/a.yaml:7:19: Service/default/web waits for Service/default/api to be "
        "completed, but only jobs complete",
        "specs/a.yaml:8:30: Service/default/web waits for Job/default/job to be healthy, but "
        "jobs have no healthcheck",
    ]


def test_host_port_collisions_and_replicas(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": (
        "kind: Service\nmetadata: {name: a}\nspec:\n  image: x\n  replicas: 2\n"
        "  ports: [{container: 80, host: 8080}]\n---\n"
        "kind: Service\nmetadata: {name: b}\nspec:\n  image: x\n"
        "  ports: [{container: 80, host: 8080, hostIp: 0.0.0.0}, {container: 81, host: 8081}]\n"
        "---\nkind: Service\nmetadata: {name: c}\nspec:\n  image: x\n"
        "  ports: [{container: 80, host: 8081, protocol: udp}]\n")})
    assert out == [
        "specs/a.yaml:6:27: Service/default/a has replicas: 2 and fixed host port 8080: every "
        "replica would bind it",
        "specs/a.yaml:12:27: host port 0.0.0.0:8080/tcp of Service/default/b is already bound "
        "by Service/default/a at specs/a.yaml:6:27",
    ]


@pytest.mark.parametrize(("floor", "cage", "ok"), [
    ("hardened", "standard", False), ("hardened", "hardened", True),
    ("hardened", "deterministic", True), ("deterministic", "hardened", False),
    ("deterministic", "military-grade", True), ("military-grade", "deterministic", True),
    ("hardened", "soft", False), ("hardened", "strict", True),
])
def test_cage_floor(make_workspace: MakeWorkspace, floor: str, cage: str, ok: bool) -> None:
    files = {"specs/a.yaml": (
        f"kind: Service\nmetadata: {{name: a}}\nspec: {{image: x, cage: {cage}}}\n---\n"
        "kind: CageProfile\nmetadata: {name: soft}\nspec: {extends: standard}\n---\n"
        "kind: CageProfile\nmetadata: {name: strict}\nspec: {extends: deterministic}\n")}
    if ok:
        assert load_workspace(make_workspace(files, level=floor)).resources
        return
    out = errors(make_workspace, files, level=floor)
    assert len(out) == 1
    assert out[0].startswith("specs/a.yaml:3:18: Service/default/a asks for cage")
    # The floor is located at its key in docklock.yaml, not at the document's start.
    assert f"weaker than the cluster's securityLevel '{floor}' at docklock.yaml:4:8" in out[0]


def test_cage_floor_names_the_security_level_line(make_workspace: MakeWorkspace) -> None:
    """A commented docklock.yaml (as `docklock init` writes it): the error must point at
    the securityLevel line an operator edits, not at the file's first line."""
    cluster = ("# workspace\n# comments\napiVersion: docklock.io/v1\nkind: Cluster\n"
               "metadata:\n  name: x\nspec:\n  specs: [specs]\n  # floor\n"
               "  securityLevel: deterministic\n")
    files = {"specs/a.yaml": "kind: Service\nmetadata: {name: a}\n"
                             "spec: {image: x, cage: hardened}\n"}
    out = errors(make_workspace, files, cluster=cluster)
    assert len(out) == 1
    assert "securityLevel 'deterministic' at docklock.yaml:10:3" in out[0]


def test_unset_cage_takes_the_floor(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/a.yaml": "kind: Job\nmetadata: {name: j}\nspec: {image: x}\n"},
                           level="deterministic")
    assert load_workspace(paths).by_address("Job/j").spec.cage is None  # type: ignore[union-attr]


def test_paths_are_confined_to_the_workspace(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": (
        "kind: Image\nmetadata: {name: i}\nspec: {ref: r, context: ../outside}\n---\n"
        "kind: Image\nmetadata: {name: j}\nspec: {ref: s, context: images/none}\n---\n"
        "kind: Job\nmetadata: {name: job}\nspec:\n  image: x\n"
        "  inputs: [{path: specs/../../etc/passwd, mount: /in}, {path: specs/a.yaml, mount: /a}]\n"
    )})
    assert out[0].startswith("specs/a.yaml:3:16: build context '../outside' points outside "
                             "the workspace")
    assert out[1] == ("specs/a.yaml:7:16: build context 'images/none' does not exist (no such "
                      "folder in the workspace)")
    assert out[2].startswith("specs/a.yaml:13:13: job input 'specs/../../etc/passwd' points "
                             "outside the workspace")
    assert len(out) == 3


def test_duplicate_image_refs(make_workspace: MakeWorkspace) -> None:
    img = "kind: Image\nmetadata: {name: %s}\nspec: {ref: r:1, context: ctx}\n"
    out = errors(make_workspace, {"specs/a.yaml": img % "a" + "---\n" + img % "b",
                                  "ctx/Containerfile": "FROM scratch\n"})
    assert out == ["specs/a.yaml:7:8: Image/default/b builds 'r:1', which Image/default/a "
                   "(at specs/a.yaml:3:8) builds too"]


def test_cluster_documents_belong_in_docklock_yaml(make_workspace: MakeWorkspace) -> None:
    out = errors(make_workspace, {"specs/a.yaml": "kind: Cluster\nmetadata: {name: x}\n"})
    assert out == ["specs/a.yaml:1:1: Cluster/default/x: a Cluster document belongs in "
                   "docklock.yaml only"]


@pytest.mark.parametrize(("cluster", "message"), [
    ("kind: Service\nmetadata: {name: x}\nspec: {image: x}\n",
     "docklock.yaml:1:1: docklock.yaml must be a kind: Cluster document, not 'Service'"),
    ("kind: Cluster\nmetadata: {name: x}\nspec: {securityLevel: max}\n",
     "docklock.yaml:3:8: \"max\" is not one of: standard, hardened, deterministic, "
     "military-grade"),
    ("kind: Cluster\nmetadata: {name: x}\nspec: {specs: [nope]}\n",
     "docklock.yaml:3:8: spec folder 'nope' does not exist"),
    ("kind: Cluster\nmetadata: {name: x}\nspec: {specs: [../..]}\n",
     "docklock.yaml:3:8: spec folder '../..' points outside the workspace"),
    ("kind: Cluster\nmetadata: {name: x}\n---\nkind: Cluster\nmetadata: {name: y}\n",
     "docklock.yaml:4:1: docklock.yaml must hold exactly one document (kind: Cluster), "
     "found 2"),
])
def test_bad_workspace_files(make_workspace: MakeWorkspace, cluster: str, message: str) -> None:
    out = errors(make_workspace, {}, cluster=cluster)
    assert any(o.startswith(message) for o in out), out


def test_load_cluster_reads_docklock_yaml_only(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({"specs/broken.yaml": "kind: [unclosed\n"}, level="hardened")
    cluster = load_cluster(paths)  # the broken spec file is never read
    assert str(cluster.address) == "Cluster/default/test"
    assert isinstance(cluster.spec, ClusterSpec)
    assert cluster.spec.securityLevel == "hardened"


@pytest.mark.parametrize(("cluster", "message"), [
    ("kind: Cluster\nmetadata: {name: Bad_Name}\n", "docklock.yaml:2:"),
    ("kind: Cluster\nmetadata: {name: x}\nspec: {securityLevel: max}\n", "docklock.yaml:3:8"),
    ("kind: [unclosed\n", "docklock.yaml:"),
])
def test_load_cluster_checks_like_validate(make_workspace: MakeWorkspace, cluster: str,
                                           message: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_cluster(make_workspace({}, cluster=cluster))
    assert str(info.value.diagnostics[0].location).startswith(message), info.value.explain()
    with pytest.raises(ValidationError):
        load_workspace(make_workspace({}, cluster=cluster))


def test_load_cluster_outside_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a DockLock workspace"):
        load_cluster(WorkspacePaths(tmp_path))


def test_discovery_skips_hidden_folders_and_other_files(make_workspace: MakeWorkspace) -> None:
    svc = "kind: Service\nmetadata: {name: %s}\nspec: {image: x}\n"
    paths = make_workspace({"specs/a.yml": svc % "a", "specs/deep/er/b.yaml": svc % "b",
                            "specs/.hidden/c.yaml": svc % "c", "specs/notes.txt": "x",
                            "specs/.d.yaml": svc % "d"})
    ws = load_workspace(paths)
    assert [r.name for r in ws.resources] == ["a", "b"]
    assert sorted(ws.files) == ["docklock.yaml", "specs/a.yml", "specs/deep/er/b.yaml"]


def test_symlink_out_of_the_workspace_is_refused(make_workspace: MakeWorkspace,
                                                 tmp_path: object) -> None:
    paths = make_workspace({})
    outside = paths.root.parent / "outside.yaml"
    outside.write_text("kind: Network\nmetadata: {name: n}\n")
    (paths.root / "specs" / "link.yaml").symlink_to(outside)
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    assert "points outside the workspace" in info.value.diagnostics[0].message


def test_non_utf8_file(make_workspace: MakeWorkspace) -> None:
    paths = make_workspace({})
    (paths.root / "specs" / "bad.yaml").write_bytes(b"kind: Service\nname: \xff\n")
    with pytest.raises(ValidationError) as info:
        load_workspace(paths)
    assert str(info.value.diagnostics[0]).startswith(
        "specs/bad.yaml:2:7: error: the file is not UTF-8 text (byte 0xff)")
