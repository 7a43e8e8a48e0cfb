"""Issue 11 C14 on real Podman: each Podman error apply reports has a hint that names the
real cause, not a neighbouring one.

- a host port already taken (by a process outside Podman, or by another container) is
  reported as the port, with who holds it - not as a name clash;
- a name taken by a container DockLock does not manage names that container and says
  it is not DockLock's - instead of sending the user to `drift` (which says "No drift");
- an image or a network that disappeared between plan and apply says which, and what to
  do about it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from applyhelp import cli, make_workspace, service
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

SLEEPER = '[sleep, "600"]'


@pytest.fixture
def held_port() -> Iterator[int]:
    """A TCP port this test process listens on (all addresses), so Podman cannot bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))  # clash with Podman's bind
        sock.listen(1)
        yield int(sock.getsockname()[1])


def _error_lines(out: str) -> str:
    return "\n".join(line for line in out.splitlines() if "rror" in line or "hint" in line)


def test_host_port_held_by_a_process_is_named_with_its_owner(
        podman: PodmanHarness, tmp_path: Path, held_port: int) -> None:
    ws = make_workspace(tmp_path / "ws", "tc14p", service(
        "web", podman.image, command=SLEEPER, health=False,
        extra=f"  ports: [{{container: 8080, host: {held_port}}}]\n"))
    done = cli(podman, ws, "apply", "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    err = _error_lines(done.stderr)
    assert f"host port {held_port}" in err, err
    assert "name" not in err.split("hint:", 1)[1].split(")")[0], err  # not a name clash
    assert "drift" not in err, err
    assert "ss -ltnp" in err, err
    assert f"process pid {os.getpid()}" in err, err  # the holder: this very test process


def test_host_port_held_by_another_container_names_it(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = int(probe.getsockname()[1])
    podman.podman("run", "-d", "--name", "squatter", "-p", f"{port}:80", podman.image,
                  "sleep", "600")
    ws = make_workspace(tmp_path / "ws", "tc14q", service(
        "web", podman.image, command=SLEEPER, health=False,
        extra=f"  ports: [{{container: 8080, host: {port}}}]\n"))
    done = cli(podman, ws, "apply", "--auto-approve")
    assert done.returncode == 1, done.stdout + done.stderr
    err = _error_lines(done.stderr)
    assert f"host port {port}" in err, err
    assert "squatter" in err, err
    assert "not managed by DockLock" in err, err


def test_name_taken_by_an_unmanaged_container_names_it(podman: PodmanHarness,
                                                        tmp_path: Path) -> None:
    c = "tc14n"
    ws = make_workspace(tmp_path / "ws", c, service("web", podman.image, command=SLEEPER,
                                                    health=False))
    assert cli(podman, ws, "keys", "init").returncode == 0
    planned = cli(podman, ws, "plan", "--out", str(ws / "p.plan"))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    # Between plan and apply, someone starts a container of their own under that name.
    name = f"{c}-default-web-1"
    podman.podman("create", "--name", name, podman.image, "sleep", "600")
    done = cli(podman, ws, "apply", str(ws / "p.plan"))
    assert done.returncode == 1, done.stdout + done.stderr
    err = _error_lines(done.stderr)
    assert "drift" not in err, err
    assert f"container {name}" in err
    assert "not managed by DockLock" in err, err
    assert "podman rm" in err or "rename" in err, err


def test_image_removed_between_plan_and_apply_is_named(podman: PodmanHarness,
                                                        tmp_path: Path) -> None:
    image = "localhost/tc14/gone:1"
    podman.podman("tag", podman.image, image)
    ws = make_workspace(tmp_path / "ws", "tc14i", service("web", image, command=SLEEPER,
                                                          health=False))
    assert cli(podman, ws, "keys", "init").returncode == 0
    planned = cli(podman, ws, "plan", "--out", str(ws / "p.plan"))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    podman.podman("untag", image, image)
    done = cli(podman, ws, "apply", str(ws / "p.plan"))
    assert done.returncode == 1, done.stdout + done.stderr
    err = _error_lines(done.stderr)
    assert image in err, err
    assert "podman pull" in err or "podman build" in err or "podman load" in err, err


NETWORK = """\
---
apiVersion: docklock.io/v1
kind: Network
metadata: {name: backend}
"""


def test_network_removed_between_plan_and_apply_is_named(podman: PodmanHarness,
                                                          tmp_path: Path) -> None:
    c = "tc14w"
    web = service("web", podman.image, command=SLEEPER, health=False,
                  extra="  networks: [backend]\n")
    ws = make_workspace(tmp_path / "ws", c, web + NETWORK)
    done = cli(podman, ws, "apply", "--auto-approve", "--target", "Network/default/backend")
    assert done.returncode == 0, done.stdout + done.stderr
    planned = cli(podman, ws, "plan", "--out", str(ws / "p.plan"))
    assert planned.returncode == 0, planned.stdout + planned.stderr
    net = f"{c}-default-backend"
    podman.podman("network", "rm", net)
    done = cli(podman, ws, "apply", str(ws / "p.plan"))
    assert done.returncode == 1, done.stdout + done.stderr
    err = _error_lines(done.stderr)
    assert f"network {net}" in err, err
    assert "docklock plan" in err or "docklock apply" in err, err
