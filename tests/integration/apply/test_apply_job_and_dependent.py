"""Issue 11 C10 on real Podman: a Job and the Service that dependsOn it (condition
completed) change in one apply. The schedule used to report a cycle (the service's old
container was removed only after its replacement settled, the job's old run had to go
after its dependents, and the replacement waited for the new run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from applyhelp import apply_ok, cli, cname, ids, statuses, write_specs
from conftest import PodmanHarness
from test_apply_jobs import MIGRATE_OK, specs, workspace

pytestmark = pytest.mark.podman


def test_changing_a_job_and_its_dependent_together_applies(podman: PodmanHarness,
                                                           tmp_path: Path) -> None:
    c = "tc10"
    ws = workspace(tmp_path / "ws", c, podman.image)
    apply_ok(podman, ws)
    job, api = cname(c, "migrate"), cname(c, "api")
    before = ids(podman, c)

    # Both change: the job's command and the service's env.
    changed = specs(podman.image, migrate=MIGRATE_OK.replace("migration ok", "migration v2"))
    changed = changed.replace("  stopTimeout: 0\n", "  stopTimeout: 0\n  env: {V: '2'}\n")
    write_specs(ws, changed)
    plan = cli(podman, ws, "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "2 to add, 0 to change, 2 to destroy" in plan.stdout, plan.stdout

    done = cli(podman, ws, "apply", "--auto-approve")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cycle" not in done.stdout + done.stderr
    assert "Apply complete: 2 added, 0 changed, 2 destroyed." in done.stdout
    after = ids(podman, c)
    assert set(after) == {job, api}  # no `-old-` leftovers
    assert after[job] != before[job]
    assert after[api] != before[api]
    assert statuses(podman, c) == {job: "exited", api: "running"}
    assert "migration v2" in podman.podman("logs", job).stdout
    again = cli(podman, ws, "plan", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
