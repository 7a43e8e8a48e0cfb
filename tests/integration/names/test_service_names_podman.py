"""Service names, init and stateful replacement against real Podman (issue 12 items 2, 7a,
7b; docs/adr/0016).

- Two services on one Network: the client resolves `api` and `api.default` (aardvark-dns,
  the harness's networks have DNS enabled) to the addresses of BOTH api replicas, and
  fetches a page from `http://api:8080/` and `http://api.default:8080/`.
- Services run Podman's init: busybox httpd, which ignores SIGTERM as PID 1, stops in
  well under a second with the default `stopTimeout: 10`; with `init: false` the same
  container waits out its stopTimeout (the "before" figure).
- A service with a named volume is replaced destroy-first (Podman's event log shows the
  old container removed before the new one is created); `update.overlap: true` turns it
  back into create-before-destroy.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from conftest import PodmanHarness, run_cli

CLUSTER = "names"
HEALTH = ('{command: [wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"], interval: 1s, '
          'retries: 10, timeout: 2s}')


def workspace(root: Path, specs: str, *, level: str = "hardened") -> Path:
    (root / "specs").mkdir(parents=True, exist_ok=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {CLUSTER}}}\nspec: {{specs: [specs], securityLevel: {level}}}\n")
    (root / "specs" / "app.yaml").write_text(specs)
    return root


def service(name: str, image: str, *, replicas: int = 1, extra: str = "") -> str:
    return (f"apiVersion: docklock.io/v1\nkind: Service\nmetadata: {{name: {name}}}\n"
            f"spec:\n  image: {image}\n  command: [httpd, -f, -p, \"8080\", -h, /www]\n"
            f"  replicas: {replicas}\n  user: \"65534\"\n  healthcheck: {HEALTH}\n"
            f"{extra}")


def cli(podman: PodmanHarness, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "-C", str(ws)], env=podman.cli_env(), timeout=240)


def apply_ok(podman: PodmanHarness, ws: Path) -> str:
    done = cli(podman, ws, "apply", "--auto-approve")
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def exec_in(podman: PodmanHarness, name: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return podman.podman("exec", name, *cmd, check=False, timeout=60)


def addresses(podman: PodmanHarness, name: str, network: str) -> str:
    data = json.loads(podman.podman("inspect", name).stdout)[0]
    return str(data["NetworkSettings"]["Networks"][network]["IPAddress"])


def test_services_reach_each_other_by_name_and_namespace(podman: PodmanHarness,
                                                         tmp_path: Path) -> None:
    net = "apiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: backend}\n"
    specs = "---\n".join([
        net,
        service("api", podman.image, replicas=2, extra="  networks: [backend]\n"),
        service("client", podman.image, extra="  networks: [backend]\n"),
    ])
    ws = workspace(tmp_path / "ws", specs)
    apply_ok(podman, ws)
    network = f"{CLUSTER}-default-backend"
    api_ips = {addresses(podman, f"{CLUSTER}-default-api-{i}", network) for i in (1, 2)}
    assert len(api_ips) == 2
    client = f"{CLUSTER}-default-client-1"
    for name in ("api", "api.default"):
        found = exec_in(podman, client, "nslookup", name)
        assert found.returncode == 0, (name, found.stdout, found.stderr)
        # Both replicas answer to the shared alias.
        resolved = {ip for ip in api_ips if f"Address: {ip}" in found.stdout}
        assert resolved == api_ips, (name, found.stdout)
        page = exec_in(podman, client, "wget", "-q", "-O-", f"http://{name}:8080/")
        assert page.returncode == 0, (name, page.stderr)
        assert "DockLock demo" in page.stdout
    # A name that is not a service does not resolve (the check above can fail).
    assert exec_in(podman, client, "nslookup", "nosuch").returncode != 0
    # The aliases are part of the recorded config: a second plan is clean, and drift
    # (which inspects the aliases) finds nothing.
    plan = cli(podman, ws, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    drift = cli(podman, ws, "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr


def _stop_seconds(podman: PodmanHarness, name: str) -> float:
    start = time.monotonic()
    podman.podman("stop", name)
    return time.monotonic() - start


def test_init_lets_a_stop_take_well_under_the_stop_timeout(podman: PodmanHarness,
                                                           tmp_path: Path) -> None:
    specs = "---\n".join([
        # Default stopTimeout (10 s): with init the stop must not wait for it.
        service("fast", podman.image),
        service("slow", podman.image, extra="  init: false\n  stopTimeout: 2\n"),
    ])
    ws = workspace(tmp_path / "ws", specs)
    apply_ok(podman, ws)
    fast = f"{CLUSTER}-default-fast-1"
    data = json.loads(podman.podman("inspect", fast).stdout)[0]
    assert data["HostConfig"]["Init"] is True
    assert _stop_seconds(podman, fast) < 2.0
    slow = f"{CLUSTER}-default-slow-1"
    # Without init busybox httpd ignores SIGTERM as PID 1: Podman waits stopTimeout.
    assert _stop_seconds(podman, slow) >= 1.9


def _events(podman: PodmanHarness, since: str) -> list[tuple[str, str]]:
    out = podman.podman("events", "--since", since, "--stream=false",
                        "--filter", "type=container", "--filter", "event=create",
                        "--filter", "event=remove", "--format", "json").stdout
    found: list[tuple[str, str]] = []
    for line in out.splitlines():
        if line.strip():
            ev = json.loads(line)
            found.append((str(ev["Status"]), str(ev["ID"])))
    return found


def _replace_order(podman: PodmanHarness, ws: Path, specs: str, name: str) -> list[str]:
    """Apply `specs` (a changed service) and return 'create'/'remove' in event order for
    the old and the new container of `name`."""
    old = podman.podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
    since = str(int(time.time()) - 1)
    (ws / "specs" / "app.yaml").write_text(specs)
    apply_ok(podman, ws)
    new = podman.podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
    assert new != old
    # (`since` has one-second resolution: it may also catch the old one's creation.)
    order = [f"{status} {'old' if cid == old else 'new'}"
             for status, cid in _events(podman, since)
             if (status, cid) in (("remove", old), ("create", new))]
    assert sorted(order) == ["create new", "remove old"], order
    return order


def test_a_stateful_service_is_replaced_destroy_first(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    vol = "apiVersion: docklock.io/v1\nkind: Volume\nmetadata: {name: data}\n"
    mount = "  volumes: [{name: data, path: /data}]\n"
    ws = workspace(tmp_path / "ws", "---\n".join([
        vol, service("db", podman.image, extra=mount + "  env: {V: '1'}\n")]))
    apply_ok(podman, ws)
    name = f"{CLUSTER}-default-db-1"
    plan = cli(podman, ws, "plan")
    assert plan.returncode == 0
    changed = "---\n".join([vol, service("db", podman.image, extra=mount + "  env: {V: '2'}\n")])
    (ws / "specs" / "app.yaml").write_text(changed)
    shown = cli(podman, ws, "plan")
    assert "stateful (mounts a named volume)" in shown.stdout, shown.stdout
    assert "(create before destroy)" not in shown.stdout
    assert _replace_order(podman, ws, changed, name) == ["remove old", "create new"]
    # Opted in to overlap: the new container is created before the old one goes.
    overlap = "---\n".join([vol, service(
        "db", podman.image, extra=mount + "  env: {V: '3'}\n  update: {overlap: true}\n")])
    assert _replace_order(podman, ws, overlap, name) == ["create new", "remove old"]
