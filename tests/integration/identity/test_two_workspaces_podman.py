"""Two workspaces with the same cluster name on one Podman (issue 11 B7).

Workspace A and workspace B are both cluster `twin`. Every object DockLock makes carries
its workspace's state lineage; neither workspace adopts, replaces or destroys the
other's objects. Podman names are `<cluster>-<namespace>-<name>[-<i>]`, so B using A's
resource names is a plan-time error naming A (cluster, lineage, folder); B with the same
resources in its own namespace applies, both plan "no changes", and each destroy removes
exactly its own objects (checked by Podman ids before and after).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PodmanHarness, run_cli

CLUSTER = "twin"

CLUSTER_DOC = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: twin}
spec:
  specs: [specs]
  securityLevel: standard
"""

STACK = """\
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend, namespace: NS}
---
apiVersion: docklock.io/v1
kind: Volume
metadata: {name: data, namespace: NS}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web, namespace: NS}
spec:
  image: IMAGE
  command: [sleep, "600"]
  replicas: 2
  stopTimeout: 1
  networks: [backend]
  volumes: [{name: data, path: /data}]
---
apiVersion: docklock.io/v1
kind: Image
metadata: {name: app, namespace: NS}
spec:
  ref: localhost/twin/app-NS:1
  context: app
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: app, namespace: NS}
spec:
  image: localhost/twin/app-NS:1
  command: [sleep, "600"]
  stopTimeout: 1
"""


def _workspace(root: Path, image: str, namespace: str) -> Path:
    root.mkdir()
    (root / "docklock.yaml").write_text(CLUSTER_DOC)
    (root / "specs").mkdir()
    (root / "app").mkdir()
    (root / "app" / "Containerfile").write_text(f"FROM {image}\n")
    _stack(root, image, namespace)
    return root


def _stack(root: Path, image: str, namespace: str) -> None:
    (root / "specs" / "stack.yaml").write_text(
        STACK.replace("IMAGE", image).replace("NS", namespace))


def _objects(podman: PodmanHarness) -> dict[str, str]:
    """Every object labelled with the cluster: `kind:name` -> id (volumes: name)."""
    label = f"label=io.docklock.cluster={CLUSTER}"
    out: dict[str, str] = {}
    for line in podman.podman("ps", "-a", "--no-trunc", "--filter", label, "--format",
                              "{{.Names}} {{.ID}}").stdout.splitlines():
        name, cid = line.split()
        out[f"container:{name}"] = cid
    for line in podman.podman("network", "ls", "--no-trunc", "--filter", label, "--format",
                              "{{.Name}} {{.ID}}").stdout.splitlines():
        name, nid = line.split()
        out[f"network:{name}"] = nid
    for line in podman.podman("volume", "ls", "--filter", label, "--format",
                              "{{.Name}}").stdout.splitlines():
        out[f"volume:{line.strip()}"] = line.strip()
    for line in podman.podman("images", "--no-trunc", "--filter", label, "--format",
                              "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.splitlines():
        ref, iid = line.split()
        out[f"image:{ref}"] = iid
    return out


def _lineage_of(podman: PodmanHarness, container: str) -> str:
    out = podman.podman("inspect", "--format", "{{json .Config.Labels}}", container)
    return str(json.loads(out.stdout).get("io.docklock.lineage", ""))


def _state_lineage(ws: Path) -> str:
    return str(json.loads((ws / ".docklock" / "state.json").read_text())["lineage"])


def _ok(done: subprocess.CompletedProcess[str], code: int = 0) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)


def test_two_workspaces_same_cluster_name_never_touch_each_other(
        podman: PodmanHarness, tmp_path: Path) -> None:
    env = podman.cli_env()
    a = _workspace(tmp_path / "a", podman.image, "default")
    b = _workspace(tmp_path / "b", podman.image, "default")  # A's names exactly

    _ok(run_cli(["apply", "-C", str(a), "--auto-approve"], env=env))
    a_objects = _objects(podman)
    assert sorted(a_objects) == [
        "container:twin-default-app-1", "container:twin-default-web-1",
        "container:twin-default-web-2", "image:localhost/twin/app-default:1",
        "network:twin-default-backend", "volume:twin-default-data"]
    lineage_a = _state_lineage(a)
    assert _lineage_of(podman, "twin-default-web-1") == lineage_a

    # B with the same names: a plan-time error naming A's objects and their owner, for
    # plan and for apply (which plans first); nothing of A's is touched.
    for args in (["plan"], ["apply", "--auto-approve"]):
        clash = run_cli([*args, "-C", str(b)], env=env)
        _ok(clash, 1)
        err = clash.stderr
        assert err.count("error: ") == 6, err  # every clash at once
        for name in ("container twin-default-web-1", "container twin-default-web-2",
                     "container twin-default-app-1", "image localhost/twin/app-default:1",
                     "network twin-default-backend", "volume twin-default-data"):
            assert name in err, (name, err)
        assert f"lineage {lineage_a}" in err
        assert f"workspace {a}" in err
        assert "cluster 'twin'" in err
        assert "another cluster name" in err  # the hint
    assert _objects(podman) == a_objects
    assert not (b / ".docklock" / "state.json").exists() or \
        not json.loads((b / ".docklock" / "state.json").read_text())["resources"]

    # B with the same resources in its own namespace: no clash, its own objects.
    _stack(b, podman.image, "b")
    _ok(run_cli(["apply", "-C", str(b), "--auto-approve"], env=env))
    lineage_b = _state_lineage(b)
    assert lineage_b != lineage_a
    both = _objects(podman)
    b_objects = {k: v for k, v in both.items() if k not in a_objects}
    assert sorted(b_objects) == [
        "container:twin-b-app-1", "container:twin-b-web-1", "container:twin-b-web-2",
        "image:localhost/twin/app-b:1", "network:twin-b-backend", "volume:twin-b-data"]
    assert {k: both[k] for k in a_objects} == a_objects  # A's ids unchanged
    assert _lineage_of(podman, "twin-b-web-1") == lineage_b

    # Both converged: neither adopts nor deletes the other's objects.
    for ws in (a, b):
        _ok(run_cli(["plan", "-C", str(ws), "--detailed-exitcode"], env=env))
        plan = run_cli(["plan", "-C", str(ws), "--format", "json"], env=env)
        _ok(plan)
        changes = json.loads(plan.stdout)["changes"]
        assert {c["action"] for c in changes} == {"no-op"}
        assert all(c["reasons"] == [] for c in changes)
        mine = a_objects if ws == a else b_objects
        assert sorted(c["key"] for c in changes) == sorted(mine)
    assert _objects(podman) == both
    # Nor is the other workspace drift (one cluster name, two lineages), nor a row of
    # this one's status.
    for ws, ns in ((a, "default"), (b, "b")):
        _ok(run_cli(["drift", "-C", str(ws)], env=env))
        status = run_cli(["status", "-C", str(ws), "--json"], env=env)
        _ok(status)
        rows = json.loads(status.stdout)["resources"]
        assert {r["namespace"] for r in rows} == {ns}, rows

    # A's destroy removes exactly A's objects; B's are untouched and still converged.
    _ok(run_cli(["destroy", "-C", str(a), "--auto-approve"], env=env))
    assert _objects(podman) == b_objects
    _ok(run_cli(["plan", "-C", str(b), "--detailed-exitcode"], env=env))

    # B's destroy removes the rest.
    _ok(run_cli(["destroy", "-C", str(b), "--auto-approve"], env=env))
    assert _objects(podman) == {}


def test_objects_of_an_older_docklock_recorded_in_state_stay_ours(
        podman: PodmanHarness, tmp_path: Path) -> None:
    """Upgrade: containers without the lineage label that this workspace's state records
    (same ids) are ours: no changes, and destroy removes them."""
    env = podman.cli_env()
    ws = _workspace(tmp_path / "old", podman.image, "default")
    _ok(run_cli(["apply", "-C", str(ws), "--auto-approve"], env=env))
    before = _objects(podman)
    # Re-create what an older DockLock would have left: the same objects without the
    # lineage and workspace labels, recorded in state under their new ids.
    state_path = ws / ".docklock" / "state.json"
    state = json.loads(state_path.read_text())
    for name in ("twin-default-web-1", "twin-default-web-2"):
        labels = json.loads(podman.podman("inspect", "--format", "{{json .Config.Labels}}",
                                          name).stdout)
        labels.pop("io.docklock.lineage")
        labels.pop("io.docklock.workspace")
        podman.podman("rm", "-f", "-t", "0", name)
        args = ["run", "-d", "--name", name, "--network", "twin-default-backend",
                "-v", "twin-default-data:/data"]
        for k, v in sorted(labels.items()):
            args += ["--label", f"{k}={v}"]
        cid = podman.podman(*args, podman.image, "sleep", "600").stdout.strip()
        state["resources"]["Service/default/web"]["objects"][f"container:{name}"]["id"] = cid
    assert {k for k, v in _objects(podman).items() if v != before[k]} == {
        "container:twin-default-web-1", "container:twin-default-web-2"}
    state_path.write_text(json.dumps(state))
    plan = run_cli(["plan", "-C", str(ws), "--format", "json"], env=env)
    _ok(plan)
    changes = json.loads(plan.stdout)["changes"]
    assert {(c["action"], tuple(c["reasons"])) for c in changes} == {("no-op", ())}
    assert set(_objects(podman)) == set(before)
    _ok(run_cli(["destroy", "-C", str(ws), "--auto-approve"], env=env))
    assert _objects(podman) == {}
