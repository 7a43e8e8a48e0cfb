"""The crash campaign's commonest finding, made deterministic: SIGKILL apply right after
Podman created a container, before apply wrote what it got (the new id), then let the next
apply finish. Every container Podman ever had for the workspace must be named by its full
id in a ledger change entry (issue 11 "every Podman change recorded"): the adopted one
when it is taken into state, and the one a replace or delete removes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from campaignhelp import (
    HEALTH,
    HTTPD,
    Watched,
    audit,
    campaign_envs,
    cli,
    live_containers,
    make_workspace,
    show,
    unrecorded_changes,
    write_specs,
)
from conftest import PodmanHarness

pytestmark = [pytest.mark.podman, pytest.mark.campaign]

CLUSTER = "campadopt"


def web(gen: str) -> str:
    return f"""\
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: web}}
spec:
  image: IMAGE
  command: {HTTPD}
  stopTimeout: 0
  env: {{GEN: "{gen}"}}
  healthcheck: {HEALTH}
"""


@pytest.mark.parametrize("then", ["same-spec", "spec-changed-again"])
def test_container_created_by_a_killed_apply_is_recorded_by_its_id(
        podman: PodmanHarness, tmp_path: Path, then: str) -> None:
    envs = campaign_envs(podman, tmp_path / "private")
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat(timespec="seconds")
    # Each case its own cluster: the events window reaches back 2 s, into the other's.
    cluster = CLUSTER + ("a" if then == "same-spec" else "b")
    ws = make_workspace(tmp_path / "ws", cluster, web("a").replace("IMAGE", podman.image))
    first = cli(ws, envs.url, "apply", "--auto-approve")
    assert first.returncode == 0, show(first)
    (old,) = [c.id for c in live_containers(podman, cluster)]

    # Roll web: Podman renames the old container aside and creates the new one; the
    # apply then waits for it to be healthy (a second or more) before recording it.
    write_specs(ws, web("b").replace("IMAGE", podman.image))
    run = Watched(ws, envs.url)
    fresh = ""
    deadline = time.monotonic() + 120
    while not fresh and time.monotonic() < deadline and run.proc.poll() is None:
        fresh = next((c.id for c in live_containers(podman, cluster) if c.id != old
                      and "-old-" not in c.name), "")
    assert fresh, "the apply never created the new container:\n" + "".join(run.out + run.err)
    assert run.kill_at(0.0), "the apply finished before it could be killed"
    run.finish()

    if then == "spec-changed-again":  # the killed apply's container is replaced at once
        write_specs(ws, web("c").replace("IMAGE", podman.image))
    final = cli(ws, envs.url, "apply", "--auto-approve")
    assert final.returncode == 0, show(final)
    assert unrecorded_changes(podman, ws, cluster, since=since) == []
    assert audit(podman, ws, cluster, envs.url, since=since, tag=envs.tag) == []
