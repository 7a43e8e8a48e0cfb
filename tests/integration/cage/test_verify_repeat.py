"""`docklock verify --repeat N` on real Podman: N verifies, one summary, exit 2 if any
round differs, with the rounds each differing field differed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cage_helpers import job_workspace
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

JOBS = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: steady}
spec:
  image: {image}
  command: [sh, -c, "head -c 16 /dev/urandom | od -An -tx1; cat /proc/uptime"]
  cage: deterministic
  seed: 5
  timeout: 60
---
apiVersion: docklock.io/v1
kind: Job
metadata: {name: clock}
spec:
  image: {image}
  # A static busybox reads the kernel clock directly: no cage pins it.
  command: [sh, -c, "adjtimex | grep time.tv_usec"]
  cage: deterministic
  timeout: 60
"""


@pytest.fixture
def workspace(podman: PodmanHarness, tmp_path: Path) -> Path:
    return job_workspace(tmp_path, "repeat", JOBS, podman.image)


def test_repeat_reports_every_round(podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    assert run_cli(["run", "steady", "-C", str(workspace)], env=env).returncode == 0
    verified = run_cli(["verify", "steady", "-C", str(workspace), "--repeat", "3"], env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert [line for line in verified.stdout.splitlines() if line.startswith("verify ")] == [
        "verify 1/3: identical", "verify 2/3: identical", "verify 3/3: identical"]
    assert "Job/default/steady: 3/3 verifies identical to its witness" in verified.stdout

    as_json = run_cli(["verify", "steady", "-C", str(workspace), "--repeat", "2", "--json"],
                      env=env)
    body = json.loads(as_json.stdout)
    assert as_json.returncode == 0
    assert body["identical"] is True
    assert body["identical_rounds"] == 2
    assert len(body["rounds"]) == 2
    assert all(r["identical"] for r in body["rounds"])


def test_repeat_names_the_rounds_that_differ(podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    assert run_cli(["run", "clock", "-C", str(workspace)], env=env).returncode == 0
    verified = run_cli(["verify", "clock", "-C", str(workspace), "--repeat", "2", "--json"],
                       env=env)
    assert verified.returncode == 2, verified.stdout + verified.stderr
    body = json.loads(verified.stdout)
    assert body["identical"] is False
    assert body["identical_rounds"] == 0
    assert body["differing_fields"] == {"stdout_digest": [1, 2]}
    assert "did not reproduce its witness in 2 of 2 verifies" in verified.stderr


def test_repeat_refuses_a_silly_count(podman: PodmanHarness, workspace: Path) -> None:
    bad = run_cli(["verify", "steady", "-C", str(workspace), "--repeat", "0"],
                  env=podman.cli_env())
    assert bad.returncode == 1
    assert "--repeat" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_verify_says_when_the_job_itself_changed(podman: PodmanHarness,
                                                 workspace: Path) -> None:
    env = podman.cli_env()
    assert run_cli(["run", "steady", "-C", str(workspace)], env=env).returncode == 0
    jobs = workspace / "specs" / "jobs.yaml"
    jobs.write_text(jobs.read_text().replace("seed: 5", "seed: 6"))
    verified = run_cli(["verify", "steady", "-C", str(workspace)], env=env)
    assert verified.returncode == 2
    note = next(line for line in verified.stdout.splitlines() if "note:" in line)
    assert "the job, or the cage this host gives it, changed since its witness" in note
    assert "seed" in note
    assert "stdout_digest" not in note  # an output, not part of the definition
    assert "stdout_digest" in verified.stderr  # the new seed's stream differs


VOLUME_JOB = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: fromvolume}
spec:
  image: {image}
  # A volume's content is not part of the witness: it makes the output differ on demand.
  command: [cat, /data/value]
  cage: deterministic
  volumes: [{name: data, path: /data, readOnly: true}]
  timeout: 60
---
apiVersion: docklock.io/v1
kind: Volume
metadata: {name: data}
"""


def test_an_identical_round_keeps_an_earlier_rounds_evidence(podman: PodmanHarness,
                                                             workspace: Path) -> None:
    from docklock.engine import Context
    from docklock.engine.run import run, verify

    (workspace / "specs" / "volume.yaml").write_text(
        VOLUME_JOB.replace("{image}", podman.image))
    podman.podman("volume", "create", "repeat-default-data")
    mountpoint = Path(podman.podman("volume", "inspect", "repeat-default-data",
                                    "--format", "{{.Mountpoint}}").stdout.strip())
    value = mountpoint / "value"
    ctx = Context.find(workspace, podman_url=podman.url)
    folder = workspace / ".docklock" / "jobs" / "Job.default.fromvolume"

    value.write_text("a\n")
    assert run(ctx, "fromvolume").ok
    value.write_text("b\n")
    differing = verify(ctx, "fromvolume")
    assert not differing.identical
    assert (folder / "verify-stdout").read_text() == "b\n"
    value.write_text("a\n")
    # What `verify --repeat` does after round 1: the earlier round's evidence stays.
    assert verify(ctx, "fromvolume", keep_older_evidence=True).identical
    assert (folder / "verify-stdout").read_text() == "b\n"
    # A plain verify that is identical removes evidence of earlier commands.
    assert verify(ctx, "fromvolume").identical
    assert not list(folder.glob("verify-*"))
