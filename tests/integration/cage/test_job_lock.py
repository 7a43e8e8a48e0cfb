"""Several `docklock verify` (and a `run`) of one Job at once, on real Podman: the
per-job lock makes them take turns, so none fails, outputs are not moved over each other
and no `run-*` folder is left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cage_helpers import job_workspace
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

JOB = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: many}
spec:
  image: {image}
  # Enough files that moving the outputs folder takes a while.
  command: [sh, -c, "i=0; while [ $i -lt 1500 ]; do echo $i > /out/f$i; i=$((i+1)); done"]
  cage: deterministic
  outputs: /out
  timeout: 120
"""


def _docklock() -> str:
    return str(Path(sys.executable).parent / "docklock")


def test_concurrent_verifies_take_turns(podman: PodmanHarness, tmp_path: Path) -> None:
    job_workspace(tmp_path, "locks", JOB, podman.image)
    env = podman.cli_env()
    ran = run_cli(["run", "many", "-C", str(tmp_path)], env=env)
    assert ran.returncode == 0, ran.stderr

    procs = [subprocess.Popen([_docklock(), "verify", "many", "-C", str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    procs.append(subprocess.Popen([_docklock(), "run", "many", "-C", str(tmp_path)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(p.wait(timeout=240), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
    folder = tmp_path / ".docklock" / "jobs" / "Job.default.many"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("run-")) == []
    outputs = folder / "outputs"
    assert len(list(outputs.iterdir())) == 1500
    assert (outputs / "f1499").read_text() == "1499\n"
    assert not list(folder.glob("verify-*"))  # identical verifies keep no evidence


def test_an_unwritable_jobs_folder_is_a_clear_error(tmp_path: Path) -> None:
    """No Podman needed: the lock is taken before the job runs."""
    import os

    from docklock.cage.joblock import job_lock
    from docklock.cage.jobs import JobError
    from docklock.model import Address
    from docklock.workspace import WorkspacePaths

    paths = WorkspacePaths(tmp_path)
    jobs = paths.dot / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "Job.default.many.lock").mkdir()  # cannot be opened as the lock file
    with pytest.raises(JobError) as caught, job_lock(paths, Address("Job", "default", "many")):
        pass
    assert "cannot take the lock of Job/default/many" in caught.value.message
    assert caught.value.hint
    os.chmod(jobs, 0o755)
    with job_lock(paths, Address("Job", "default", "other")):
        pass
    assert jobs.stat().st_mode & 0o777 == 0o755  # an existing folder's mode is left alone


SLOW_JOB = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: slow}
spec:
  image: {image}
  command: [sh, -c, "echo partial > /out/a; sleep 3; echo done > /out/b"]
  cage: deterministic
  outputs: /out
  timeout: 60
"""


def test_a_killed_verify_leaves_no_outputs_folder_behind(podman: PodmanHarness,
                                                         tmp_path: Path) -> None:
    """kill -9 in the middle of a verify leaves its run-* folder and its container; the
    next run or verify of the job (holding the job's lock, so nothing else owns either)
    sweeps both."""
    import os
    import signal
    import time

    job_workspace(tmp_path, "locks", SLOW_JOB, podman.image)
    env = podman.cli_env()
    assert run_cli(["run", "slow", "-C", str(tmp_path)], env=env).returncode == 0
    folder = tmp_path / ".docklock" / "jobs" / "Job.default.slow"

    victim = subprocess.Popen([_docklock(), "verify", "slow", "-C", str(tmp_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not any((p / "a").exists() for p in folder.glob("run-*")):
        assert time.monotonic() < deadline, "the verify never started its job"
        assert victim.poll() is None, "the verify ended before it could be killed"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert list(folder.glob("run-*")), "kill -9 should have left the run folder"

    left = podman.podman("ps", "-a", "--filter", "label=io.docklock.job-run",
                         "--filter", "label=io.docklock.address=Job/default/slow",
                         "--format", "{{.Names}}").stdout.split()
    assert len(left) == 1, left  # the killed verify's container: never removed by it

    # Another workspace's run of a job with the same cluster and name: not ours to sweep.
    podman.podman("create", "--name", "other-workspace-run", "--label",
                  "io.docklock.job-run=x", "--label", "io.docklock.address=Job/default/slow",
                  "--label", "io.docklock.cluster=locks", "--label",
                  "io.docklock.workspace=/elsewhere", podman.image, "true")

    again = run_cli(["verify", "slow", "-C", str(tmp_path)], env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert list(folder.glob("run-*")) == []
    assert podman.podman("ps", "-a", "--filter", "label=io.docklock.job-run",
                         "--filter", "label=io.docklock.address=Job/default/slow",
                         "--format", "{{.Names}}").stdout.split() == ["other-workspace-run"]
    assert (folder / "outputs" / "b").read_text() == "done\n"  # the recorded run's, intact
