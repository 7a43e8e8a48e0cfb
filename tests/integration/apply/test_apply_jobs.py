"""Jobs in plan/apply on the real Podman harness, through the CLI: a `migrate` Job fills
a shared volume, and the `api` Service that dependsOn it (condition completed) starts
only once it exited 0 (docker compose's `service_completed_successfully`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from applyhelp import (
    apply_ok,
    cli,
    cname,
    ids,
    make_workspace,
    recorded,
    state,
    statuses,
    write_specs,
)
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

MIGRATE_OK = ('[sh, -c, "cat /in/001.sql > /shared/schema && echo migrated > /out/done '
              '&& echo migration ok"]')
MIGRATE_BROKEN = '[sh, -c, "echo migration broke >&2; exit 1"]'
# api reads what migrate wrote, and dies (exit 4) if it is not there yet.
API = '[sh, -c, "cat /shared/schema || exit 4; exec sleep 600"]'


def specs(image: str, *, migrate: str = MIGRATE_OK, timeout: int = 60) -> str:
    return f"""\
apiVersion: docklock.io/v1
kind: Volume
metadata: {{name: shared}}
---
apiVersion: docklock.io/v1
kind: Job
metadata: {{name: migrate}}
spec:
  image: {image}
  command: {migrate}
  volumes: [{{name: shared, path: /shared}}]
  inputs: [{{path: migrations/001.sql, mount: /in/001.sql}}]
  outputs: /out
  timeout: {timeout}
---
apiVersion: docklock.io/v1
kind: Service
metadata: {{name: api}}
spec:
  image: {image}
  command: {API}
  stopTimeout: 0
  volumes: [{{name: shared, path: /shared}}]
  dependsOn: [{{name: migrate, kind: Job, condition: completed}}]
"""


def workspace(root: Path, cluster: str, image: str, *, migrate: str = MIGRATE_OK,
              timeout: int = 60) -> Path:
    ws = make_workspace(root, cluster, specs(image, migrate=migrate, timeout=timeout))
    (ws / "migrations").mkdir()
    (ws / "migrations" / "001.sql").write_text("create table accounts;\n")
    return ws


def inspect(harness: PodmanHarness, name: str, field: str) -> str:
    return harness.podman("inspect", name, "--format", "{{" + field + "}}").stdout.strip()


def job_run(ws: Path, cluster: str) -> dict[str, Any]:
    """How the job's last run ended, as apply recorded it in state (`config.run`)."""
    obj = state(ws)["resources"]["Job/default/migrate"]["objects"][
        f"container:{cname(cluster, 'migrate')}"]
    run: dict[str, Any] = obj["config"]["run"]
    return run


def rows(harness: PodmanHarness, ws: Path) -> dict[str, dict[str, Any]]:
    done = cli(harness, ws, "status", "--json")
    assert done.returncode == 0, done.stderr
    return {r["name"]: r for r in json.loads(done.stdout)["resources"]}


def test_job_runs_to_completion_before_its_dependent_then_converges(
        podman: PodmanHarness, tmp_path: Path) -> None:
    c = "tjob"
    ws = workspace(tmp_path / "ws", c, podman.image)
    job, api = cname(c, "migrate"), cname(c, "api")

    first = apply_ok(podman, ws)
    assert "Apply complete: 3 added, 0 changed, 0 destroyed." in first.stdout
    done = re.findall(r"^\+ container (\S+) \((\S+)\): created(, \w+)?", first.stdout,
                      re.MULTILINE)
    # migrate finished (completed) before api was even created
    assert [(n, a) for n, a, _ in done] == [(job, "Job/default/migrate"),
                                            (api, "Service/default/api")]
    assert done[0][2] == ", completed"
    assert statuses(podman, c) == {job: "exited", api: "running"}
    assert inspect(podman, job, ".State.ExitCode") == "0"
    assert int(inspect(podman, api, ".State.StartedAt.UnixNano")) > \
        int(inspect(podman, job, ".State.FinishedAt.UnixNano"))
    # api read what migrate wrote from the workspace input into the shared volume
    assert "create table accounts;" in podman.podman("logs", api).stdout
    # the outputs folder is bound from .docklock/jobs/, and the input was read-only
    out = ws / ".docklock" / "jobs" / "Job.default.migrate" / "apply-outputs"
    assert (out / "done").read_text() == "migrated\n"
    mounts = json.loads(inspect(podman, job, "json .Mounts"))
    by_dest = {m["Destination"]: m for m in mounts}
    assert by_dest["/in/001.sql"]["Source"] == str(ws / "migrations" / "001.sql")
    assert by_dest["/in/001.sql"]["RW"] is False
    assert by_dest["/out"]["Source"] == str(out)
    labels = json.loads(inspect(podman, job, "json .Config.Labels"))
    assert labels["io.docklock.kind"] == "job"
    # state holds the job, with the exit code of its run
    assert job_run(ws, c)["exit_code"] == 0

    # converged: a finished job is neither a change nor drift, and shows as completed
    again = cli(podman, ws, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    drift = cli(podman, ws, "drift")
    assert drift.returncode == 0, drift.stdout + drift.stderr
    table = rows(podman, ws)
    assert (table["migrate"]["kind"], table["migrate"]["status"],
            table["migrate"]["ready"], table["migrate"]["desired"]) == ("Job", "completed", 1, 1)
    assert table["api"]["status"] == "running"
    health = cli(podman, ws, "cluster", "health")
    assert health.returncode == 0, health.stdout + health.stderr
    before = ids(podman, c)
    finished = inspect(podman, job, ".State.FinishedAt")
    noop = apply_ok(podman, ws)
    assert "No changes." in noop.stdout
    assert ids(podman, c) == before
    assert inspect(podman, job, ".State.FinishedAt") == finished  # not run again

    # --replace runs it again on demand; api is left alone
    rerun = apply_ok(podman, ws, "--replace", "Job/default/migrate")
    assert "Apply complete: 1 added, 0 changed, 1 destroyed." in rerun.stdout
    after = ids(podman, c)
    assert after[job] != before[job]
    assert after[api] == before[api]
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0

    # destroy removes the finished job container like any other object
    gone = cli(podman, ws, "destroy", "--auto-approve")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert statuses(podman, c) == {}
    assert state(ws)["resources"] == {}


def test_apply_killed_while_a_job_runs_then_waits_for_it_instead_of_rerunning(
        podman: PodmanHarness, tmp_path: Path) -> None:
    c = "tjobkill"
    slow = '[sh, -c, "sleep 4; cat /in/001.sql > /shared/schema"]'
    ws = workspace(tmp_path / "ws", c, podman.image, migrate=slow)
    job, api = cname(c, "migrate"), cname(c, "api")
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    proc = subprocess.Popen([exe, "apply", "--auto-approve", "-C", str(ws)],
                            env=podman.cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if statuses(podman, c).get(job) == "running":
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert statuses(podman, c) == {job: "running"}
    started = inspect(podman, job, ".State.StartedAt")

    plan = cli(podman, ws, "plan", "--format", "json")
    assert plan.returncode == 0, plan.stderr
    changes = {ch["name"]: ch for ch in json.loads(plan.stdout)["changes"]}
    assert changes[job]["action"] == "update"
    assert changes[job]["reasons"][-1] == "job-incomplete"  # (adopted first if unrecorded)
    assert changes[job]["fields"] == [{"path": "status", "before": "running",
                                       "after": "completed", "sensitive": False}]
    resumed = apply_ok(podman, ws)
    assert "Apply complete: 1 added, 1 changed, 0 destroyed." in resumed.stdout
    # the same run was waited for, not a new one started
    assert inspect(podman, job, ".State.StartedAt") == started
    assert inspect(podman, job, ".State.ExitCode") == "0"
    assert statuses(podman, c) == {job: "exited", api: "running"}
    assert "create table accounts;" in podman.podman("logs", api).stdout
    assert job_run(ws, c)["exit_code"] == 0
    assert cli(podman, ws, "plan", "--detailed-exitcode").returncode == 0


def test_failed_job_fails_the_apply_and_blocks_its_dependent_until_fixed(
        podman: PodmanHarness, tmp_path: Path) -> None:
    c = "tjobfail"
    ws = workspace(tmp_path / "ws", c, podman.image, migrate=MIGRATE_BROKEN)
    job, api = cname(c, "migrate"), cname(c, "api")

    failed = cli(podman, ws, "apply", "--auto-approve")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Job/default/migrate" in failed.stderr
    assert "exited with code 1" in failed.stderr
    assert "migration broke" in failed.stderr  # the job's own last words
    # the volume and the job's container were created (it ran and failed): both count
    assert "Apply failed: 2 added, 0 changed, 0 destroyed; 1 failed, 1 not attempted." \
        in failed.stdout
    assert re.search(rf"{api} .*not attempted", failed.stdout), failed.stdout
    # api was never created; the job and the volume are recorded, with the exit code
    assert statuses(podman, c) == {job: "exited"}
    assert set(recorded(ws)) == {f"container:{job}", f"volume:{c}-default-shared"}
    assert job_run(ws, c)["exit_code"] == 1

    assert rows(podman, ws)["migrate"]["status"] == "failed"
    drift = cli(podman, ws, "drift", "--json")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert [(i["kind"], i["name"]) for i in json.loads(drift.stdout)["items"]] == [
        ("failed", job)]
    plan = cli(podman, ws, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    changes = {ch["name"]: ch for ch in json.loads(plan.stdout)["changes"]}
    assert (changes[job]["action"], changes[job]["reasons"]) == ("replace", ["job-failed"])
    assert (changes[api]["action"], changes[api]["reasons"]) == ("create", ["new"])

    write_specs(ws, specs(podman.image))
    fixed = apply_ok(podman, ws)
    assert "Apply complete: 2 added, 0 changed, 1 destroyed." in fixed.stdout
    assert statuses(podman, c) == {job: "exited", api: "running"}
    assert inspect(podman, job, ".State.ExitCode") == "0"
    assert "create table accounts;" in podman.podman("logs", api).stdout
    settled = cli(podman, ws, "plan", "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    assert cli(podman, ws, "drift").returncode == 0


def test_job_that_outlives_its_timeout_is_stopped_and_run_again_next_time(
        podman: PodmanHarness, tmp_path: Path) -> None:
    c = "tjobslow"
    ws = workspace(tmp_path / "ws", c, podman.image, migrate='[sleep, "60"]', timeout=2)
    job, api = cname(c, "migrate"), cname(c, "api")
    failed = cli(podman, ws, "apply", "--auto-approve")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Job/default/migrate" in failed.stderr
    assert "did not finish within 2s (stopped)" in failed.stderr
    assert "spec.timeout" in failed.stderr
    assert statuses(podman, c) == {job: "exited"}  # stopped, not left running
    assert job_run(ws, c)["timed_out"] is True
    plan = cli(podman, ws, "plan", "--detailed-exitcode", "--format", "json")
    assert plan.returncode == 2
    changes = {ch["name"]: ch for ch in json.loads(plan.stdout)["changes"]}
    assert changes[job]["reasons"] == ["job-failed"]
    assert api in changes
