"""Images built from a context, status / get services / cluster health, and the ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from applyhelp import apply_ok, cli, cname, ids, make_workspace, service, statuses, write_specs
from conftest import PodmanHarness

pytestmark = pytest.mark.podman


def _image_workspace(root: Path, base_image: str, page: str, extra: str = "") -> Path:
    ctx = root / "ws" / "images" / "site"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "Containerfile").write_text(
        f"FROM {base_image}\nCOPY index.html /www/index.html\n{extra}")
    (ctx / "index.html").write_text(page)
    specs = ("apiVersion: docklock.io/v1\nkind: Image\nmetadata: {name: site}\n"
             "spec: {ref: localhost/imgtest/site:1, context: images/site}\n---\n"
             + service("web", "localhost/imgtest/site:1"))
    return make_workspace(root / "ws", "imgs", specs)


def test_image_is_built_before_its_users_and_a_failed_rebuild_keeps_them(
        podman: PodmanHarness, tmp_path: Path) -> None:
    ws = _image_workspace(tmp_path, podman.image, "<p>built by docklock</p>\n")
    first = apply_ok(podman, ws)
    lines = [x for x in first.stdout.splitlines() if x.startswith("+ ")]
    assert lines[0].startswith("+ image localhost/imgtest/site:1 ")
    assert lines[1].startswith(f"+ container {cname('imgs', 'web')} ")
    health = cli(podman, ws, "cluster", "health", "--detailed")
    assert health.returncode == 0, health.stdout + health.stderr
    assert "built by docklock" in health.stdout  # the check's output: the built page
    before = ids(podman, "imgs")

    # A rebuild that fails: the running container is not touched.
    _image_workspace(tmp_path, podman.image, "<p>v2</p>\n", extra="RUN false\n")
    failed = cli(podman, ws, "apply", "--auto-approve")
    assert failed.returncode == 1
    assert "Image/default/site" in failed.stderr
    assert "building image localhost/imgtest/site:1" in failed.stderr
    assert ids(podman, "imgs") == before
    assert statuses(podman, "imgs") == {cname("imgs", "web"): "running"}

    _image_workspace(tmp_path, podman.image, "<p>v2</p>\n")
    apply_ok(podman, ws)
    assert ids(podman, "imgs") != before
    page = podman.podman("exec", cname("imgs", "web"), "cat", "/www/index.html").stdout
    assert page == "<p>v2</p>\n"


def test_status_get_services_and_cluster_health(podman: PodmanHarness,
                                                tmp_path: Path) -> None:
    specs = "---\n".join([
        service("db", podman.image, replicas=2),
        service("cache", podman.image, health=False, command='[sleep, "600"]'),
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: job, namespace: ops}\n"
        f"spec: {{image: {podman.image}, command: [sleep, '600'], stopTimeout: 0}}\n",
    ])
    ws = make_workspace(tmp_path / "ws", "stat", specs)
    apply_ok(podman, ws)

    table = cli(podman, ws, "status")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["NAMESPACE", "KIND", "NAME", "READY", "STATUS", "HEALTH",
                              "PORTS", "CAGE"]
    db = next(r for r in rows if " db " in r).split()
    assert db[3:6] == ["2/2", "running", "healthy"]

    svcs = cli(podman, ws, "get", "services", "--json")
    assert [r["name"] for r in json.loads(svcs.stdout)["resources"]] == ["cache", "db"]
    every = cli(podman, ws, "get", "services", "-A", "--json")
    names = {(r["namespace"], r["name"]) for r in json.loads(every.stdout)["resources"]}
    assert names == {("default", "cache"), ("default", "db"), ("ops", "job")}
    plain = cli(podman, ws, "get", "svc")
    assert "NAMESPACE" not in plain.stdout
    assert "cache" in plain.stdout

    healthy = cli(podman, ws, "cluster", "health", "--json")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert json.loads(healthy.stdout)["healthy"] is True
    podman.podman("stop", "-t", "0", cname("stat", "db", 2))
    degraded = cli(podman, ws, "cluster", "health")
    assert degraded.returncode == 2
    assert "NOT healthy" in degraded.stdout
    assert "degraded" in degraded.stdout


def test_apply_is_written_to_the_ledger(podman: PodmanHarness, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", "ledg", service("db", podman.image))
    apply_ok(podman, ws)
    write_specs(ws, service("db", podman.image, env={"V": "two"}))
    apply_ok(podman, ws)
    verify = cli(podman, ws, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    entries = [json.loads(line) for line in
               (ws / ".docklock" / "ledger" / "entries.jsonl").read_text().splitlines()]
    # Each step's intent is written ahead (status pending), the id Podman gave the new
    # container before the state records it (made), then the outcome (D19).
    db = f"container:{cname('ledg', 'db')}"
    assert [(e["type"], e["payload"].get("status"), e["payload"].get("step")) for e in entries] == [
        ("apply-start", None, None),
        ("change", "pending", f"create:{db}"), ("change", "made", f"create:{db}"),
        ("change", "done", None),
        ("apply-end", None, None),
        ("apply-start", None, None),
        ("change", "pending", f"create:{db}"), ("change", "made", f"create:{db}"),
        ("change", "pending", f"destroy:{db}"),
        ("change", "done", None),
        ("apply-end", None, None)]
    first_id = entries[2]["payload"]["id"]
    assert entries[3]["payload"]["id"] == first_id
    # The replace names the container it found before touching it, and what it made.
    assert entries[6]["payload"]["existing_id"] == first_id
    assert entries[7]["payload"]["id"] == entries[9]["payload"]["id"] != first_id
    assert entries[9]["payload"]["action"] == "replace"
    assert entries[9]["payload"]["existing_id"] == first_id
    assert entries[9]["payload"]["effects"] == ["renamed", "created", "started", "removed"]
    assert entries[10]["payload"]["ok"] is True
