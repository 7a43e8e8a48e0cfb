"""`docklock restart` against real Podman: a rolling, health-gated restart in place
(same containers, new start times), one ledger entry per replica plus a signed
checkpoint, and a roll that stops at the first replica that does not become healthy."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness
from verbshelp import HEALTH, Ran, container_ids, ledger, run_in, started_at, workspace

pytestmark = pytest.mark.podman

CLUSTER = "vrestart"
HTTPD = '[httpd, -f, -p, "8080", -h, /www]'
# Healthy until /tmp/broken exists: then a restart comes back without a web server.
FLAKY = '[sh, -c, "[ -e /tmp/broken ] && exec sleep 600; exec httpd -f -p 8080 -h /www"]'


def service(name: str, image: str, command: str, replicas: int) -> str:
    return f"""\
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: {name}}}
spec:
  image: {image}
  command: {command}
  replicas: {replicas}
  stopTimeout: 0
  healthcheck: {HEALTH}
"""


def specs(image: str) -> str:
    return "---\n".join([
        service("api", image, HTTPD, 2), service("flaky", image, FLAKY, 2),
        f"""\
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: once}}
spec:
  image: {image}
  command: [echo, once]
"""])


@pytest.fixture(scope="module")
def ws(podman_harness: PodmanHarness, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[Path]:
    root = workspace(tmp_path_factory.mktemp("restart") / "ws", CLUSTER,
                     specs(podman_harness.image))
    from verbshelp import dl

    done = dl(podman_harness, root, "apply", "--auto-approve", timeout=240)
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    yield root
    podman_harness.remove_all()


Cli = Callable[..., Ran]


@pytest.fixture
def cli(podman_harness: PodmanHarness, ws: Path, capfd: pytest.CaptureFixture[str]) -> Cli:
    def call(*args: str) -> Ran:
        return run_in(podman_harness, ws, *args, capfd=capfd)

    return call


def name(service: str, i: int) -> str:
    return f"{CLUSTER}-default-{service}-{i}"


def restart_entries(ws: Path) -> list[dict[str, object]]:
    return [e["payload"] for e in ledger(ws)
            if e["type"] == "change" and e["payload"].get("action") == "restart"]


def test_restart_rolls_every_replica_in_place_and_records_it(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    ids = container_ids(podman_harness, CLUSTER)
    before = {i: started_at(podman_harness, name("api", i)) for i in (1, 2)}
    state_before = (ws / ".docklock" / "state.json").read_bytes()
    done = cli("restart", "api")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Restarted Service/default/api: 2 replica(s), each healthy."
    progress = done.stderr.splitlines()
    assert progress[0] == f"{name('api', 1)}: restarting"
    assert progress[1].startswith(f"{name('api', 1)}: healthy after ")
    assert progress[2] == f"{name('api', 2)}: restarting"
    # In place: the same containers (ids), started again; state is not rewritten.
    assert container_ids(podman_harness, CLUSTER) == ids
    assert all(started_at(podman_harness, name("api", i)) != before[i] for i in (1, 2))
    assert (ws / ".docklock" / "state.json").read_bytes() == state_before
    entries = restart_entries(ws)
    # Write-ahead, as apply: each replica's intent (pending) is recorded before it is
    # stopped, its outcome after.
    assert [(e["key"], e["status"], e.get("health")) for e in entries] == [
        (f"container:{name('api', 1)}", "pending", None),
        (f"container:{name('api', 1)}", "done", "healthy"),
        (f"container:{name('api', 2)}", "pending", None),
        (f"container:{name('api', 2)}", "done", "healthy")]
    assert entries[0]["existing_id"] == ids[name("api", 1)]
    assert entries[1]["id"] == ids[name("api", 1)]
    # Signed: the latest checkpoint covers the restart entries, and the ledger verifies.
    from docklock.ledger.store import Checkpoint

    lines = (ws / ".docklock" / "ledger" / "checkpoints.jsonl").read_bytes().splitlines()
    assert Checkpoint.from_line(lines[-1]).size == len(ledger(ws))
    verify = cli("ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_restart_of_one_replica_leaves_the_others(podman_harness: PodmanHarness,
                                                  cli: Cli) -> None:
    first = started_at(podman_harness, name("api", 1))
    second = started_at(podman_harness, name("api", 2))
    done = cli("restart", "Service/default/api", "--replica", "2", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert [r["container"] for r in body["restarted"]] == [name("api", 2)]
    assert body["ok"] is True
    assert started_at(podman_harness, name("api", 1)) == first
    assert started_at(podman_harness, name("api", 2)) != second


def test_restart_stops_at_a_replica_that_does_not_become_healthy(
        podman_harness: PodmanHarness, ws: Path, cli: Cli) -> None:
    broke = cli("exec", "flaky", "--replica", "1", "--", "touch", "/tmp/broken")
    assert broke.returncode == 0, broke.stderr
    second = started_at(podman_harness, name("flaky", 2))
    done = cli("restart", "flaky", "--health-timeout", "20s")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith(
        f"error: restart of Service/default/flaky stopped: container {name('flaky', 1)} did "
        "not become healthy (unhealthy after ")
    assert f"not restarted: {name('flaky', 2)}" in errors[0]
    # The roll stopped: replica 2 was not touched.
    assert started_at(podman_harness, name("flaky", 2)) == second
    last = restart_entries(ws)[-1]
    assert last["key"] == f"container:{name('flaky', 1)}"
    assert last["status"] == "failed"
    assert last["health"] == "unhealthy"


def test_restart_refuses_jobs_unknown_names_and_a_held_lock(ws: Path, cli: Cli) -> None:
    from docklock.state import StateStore
    from docklock.workspace import find_workspace

    entries = len(ledger(ws))
    job = cli("restart", "once")
    assert job.returncode == 1
    assert job.stderr.strip() == (
        "error: Job/default/once is a Job: it runs once and is not restarted (hint: run it "
        "again with `docklock run Job/default/once`)")
    unknown = cli("restart", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: no Service or Job named 'nope' in namespace "
                                     "default")
    bad_replica = cli("restart", "api", "--replica", "0")
    assert bad_replica.returncode == 1
    assert "has no replica 0" in bad_replica.stderr
    with StateStore(find_workspace(ws)).lock(command="test holds it"):
        locked = cli("restart", "api")
    assert locked.returncode == 1
    assert "test holds it" in locked.stderr
    assert len(locked.stderr.strip().splitlines()) == 1
    assert len(ledger(ws)) == entries  # nothing recorded, nothing restarted
