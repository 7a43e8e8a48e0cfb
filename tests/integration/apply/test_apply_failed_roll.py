"""Issue 11 D18 on real Podman: a failed rolling replace must not take the service down.

One replica, create-before-destroy: the new container fails (its command exits at once),
so the first apply leaves the old one running under its retired name `...-1-old-<id>`.
The second apply fails the same way; it used to remove the retired container anyway
(a plain delete with nothing to wait for) and leave the service at 0/1. The retired
container may only go once a replacement of the same service is settled."""

from __future__ import annotations

from pathlib import Path

import pytest
from applyhelp import HTTPD, apply_ok, cli, cname, make_workspace, service, statuses, write_specs
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

CRASH = '[sh, -c, "echo broken; exit 3"]'


def test_failed_replace_keeps_the_old_replica_until_a_new_one_is_healthy(
        podman: PodmanHarness, tmp_path: Path) -> None:
    c = "tc18"
    ws = make_workspace(tmp_path / "ws", c, service("web", podman.image))
    apply_ok(podman, ws)
    web = cname(c, "web")
    good_id = podman.podman("inspect", web, "--format", "{{.Id}}").stdout.strip()

    def running() -> list[str]:
        return sorted(n for n, s in statuses(podman, c).items() if s == "running")

    write_specs(ws, service("web", podman.image, command=CRASH, health=False))
    for attempt in (1, 2):
        done = cli(podman, ws, "apply", "--auto-approve")
        assert done.returncode == 1, f"attempt {attempt}:\n{done.stdout}\n{done.stderr}"
        assert "exited with code 3" in done.stderr, done.stderr
        # the old, working container still runs, renamed aside
        assert running() == [f"{web}-old-{good_id[:12]}"], (attempt, statuses(podman, c),
                                                            done.stdout, done.stderr)

    # Fixed spec: the replacement becomes healthy, then (only then) the old one goes.
    write_specs(ws, service("web", podman.image, command=HTTPD, env={"V": "'3'"}))
    fixed = apply_ok(podman, ws)
    assert running() == [web], fixed.stdout
    assert list(statuses(podman, c)) == [web]
    again = cli(podman, ws, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
