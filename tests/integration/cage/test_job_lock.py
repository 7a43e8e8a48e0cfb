"""Several `docklock verify` (and a `run`) of one Job at once, on real Podman: the
per-job lock makes them take turns, so none fails, outputs are not moved over each other
and no `run-*` folder is left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: locks}
spec:
  specs: [specs]
  securityLevel: hardened
"""

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
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "job.yaml").write_text(JOB.replace("{image}", podman.image))
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
