"""`docklock run` / `docklock verify` / `docklock cage show` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: cagetest}
spec:
  specs: [specs]
  securityLevel: hardened
"""

WEAK = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: weak}
spec:
  image: {image}
  command: ["true"]
  cage: standard
"""

JOBS = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: random}
spec:
  image: {image}
  command:
    - sh
    - -c
    - >-
      head -c 32 /dev/urandom | od -An -tx1; hostname; env | sort;
      sort /in/words.txt > /out/sorted.txt
  cage: deterministic
  seed: 7
  inputs: [{path: data/words.txt, mount: /in/words.txt}]
  outputs: /out
  timeout: 60
---
apiVersion: docklock.io/v1
kind: Job
metadata: {name: clock}
spec:
  image: {image}
  # busybox's date has no %N: adjtimex reads the clock to the microsecond
  command: [sh, -c, "date +%s; adjtimex | grep time.tv_usec"]
  cage: deterministic
  timeout: 60
---
apiVersion: docklock.io/v1
kind: CageProfile
metadata: {name: tight}
spec:
  extends: hardened
  denySyscalls: [chmod, fchmodat]
  memory: 64Mi
  pids: 32
"""


@pytest.fixture
def workspace(podman: PodmanHarness, tmp_path: Path) -> Path:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "jobs.yaml").write_text(JOBS.replace("{image}", podman.image))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "words.txt").write_text("pear\napple\n")
    return tmp_path


def test_run_then_verify_a_deterministic_job(podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    ran = run_cli(["run", "random", "-C", str(workspace)], env=env)
    assert ran.returncode == 0, ran.stderr
    assert "docklock-cage" in ran.stdout  # the job's own stdout is shown
    witness_file = workspace / ".docklock" / "witness" / "Job.default.random.json"
    witness = json.loads(witness_file.read_text())
    assert witness["exit_code"] == 0
    assert witness["seed"] == 7
    assert witness["image_digest"].startswith("sha256:")
    assert set(witness["inputs"]) == {"/in/words.txt"}
    assert set(witness["outputs"]) == {"sorted.txt"}
    kept = workspace / ".docklock" / "jobs" / "Job.default.random" / "outputs" / "sorted.txt"
    assert kept.read_text() == "apple\npear\n"

    verified = run_cli(["verify", "Job/default/random", "-C", str(workspace)], env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "identical" in verified.stdout

    # Both commands were written to the ledger as witness entries.
    entries = (workspace / ".docklock" / "ledger" / "entries.jsonl").read_text().splitlines()
    events = [json.loads(e)["payload"]["event"] for e in entries
              if json.loads(e)["type"] == "witness"]
    assert events == ["run", "verify"]

    # Changing an input is a difference verify names.
    (workspace / "data" / "words.txt").write_text("plum\n")
    changed = run_cli(["verify", "random", "-C", str(workspace), "--json"], env=env)
    assert changed.returncode == 2
    report = json.loads(changed.stdout)
    fields = {d["field"] for d in report["differences"]}
    assert {"inputs//in/words.txt", "outputs/sorted.txt"} <= fields


def test_verify_names_the_clock(podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    assert run_cli(["run", "clock", "-C", str(workspace)], env=env).returncode == 0
    verified = run_cli(["verify", "clock", "-C", str(workspace)], env=env)
    assert verified.returncode == 2, verified.stdout + verified.stderr
    assert "stdout_digest" in verified.stdout
    assert "differing fields: stdout_digest" in verified.stderr


def test_verify_without_a_witness_is_an_error(podman: PodmanHarness, workspace: Path) -> None:
    verified = run_cli(["verify", "clock", "-C", str(workspace)], env=podman.cli_env())
    assert verified.returncode == 1
    assert "no witness recorded for Job/default/clock" in verified.stderr


def test_a_job_weaker_than_the_floor_is_refused(podman: PodmanHarness,
                                                workspace: Path) -> None:
    (workspace / "specs" / "weak.yaml").write_text(WEAK.replace("{image}", podman.image))
    ran = run_cli(["run", "weak", "-C", str(workspace)], env=podman.cli_env())
    assert ran.returncode == 1
    assert "weaker than the cluster's securityLevel 'hardened'" in ran.stderr
    assert podman.containers("io.docklock.address=Job/default/weak") == []


def test_cage_show_level_and_profile(workspace: Path) -> None:
    shown = run_cli(["cage", "show", "hardened"], env={"NO_COLOR": "1", "PATH": "/usr/bin"},
                    cwd=Path("/"))
    assert shown.returncode == 0, shown.stderr
    assert "read-only" in shown.stdout
    assert "mount" in shown.stdout
    assert "ENOSYS: clone3" in shown.stdout

    profile = run_cli(["cage", "show", "tight", "-C", str(workspace), "--json"],
                      env={"NO_COLOR": "1", "PATH": "/usr/bin"})
    assert profile.returncode == 0, profile.stderr
    data = json.loads(profile.stdout)
    assert data["level"] == "hardened"
    assert data["denied_syscalls"]["chmod"] == "EPERM"
    assert data["denied_syscalls"]["unshare"] == "EPERM"
    assert data["settings"]["memory"] == "64Mi"
    assert data["settings"]["seccomp_profile_path"].startswith(str(workspace))

    alias = run_cli(["cage", "show", "military-grade", "--json"],
                    env={"NO_COLOR": "1", "PATH": "/usr/bin"}, cwd=Path("/"))
    assert json.loads(alias.stdout)["level"] == "deterministic"
    assert json.loads(alias.stdout)["denied_syscalls"]["getrandom"] == "ENOSYS"

    unknown = run_cli(["cage", "show", "nope"], env={"NO_COLOR": "1", "PATH": "/usr/bin"},
                      cwd=workspace)
    assert unknown.returncode == 1
    assert "unknown cage 'nope'" in unknown.stderr
