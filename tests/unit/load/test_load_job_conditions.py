"""dependsOn a Job: `completed` and `started` are accepted, `healthy` is a located error
(docklock/load/crosscheck.py, `_references`), and a Job may itself wait for a service."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docklock.errors import ValidationError
from docklock.load import load_workspace
from docklock.model import Condition, Dependency, JobSpec, ServiceSpec
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]

JOB = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: migrate}
spec:
  image: localhost/demo/app:1
  command: [sh, -c, "true"]
  dependsOn: [{name: db, condition: started}]
---
apiVersion: docklock.io/v1
kind: Service
metadata: {name: db}
spec: {image: localhost/demo/app:1}
"""


def service(condition: str) -> str:
    return ("apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: api}\nspec:\n"
            "  image: localhost/demo/app:1\n"
            f"  dependsOn: [{{name: migrate, kind: Job, condition: {condition}}}]\n")


@pytest.mark.parametrize("condition", ["completed", "started"])
def test_completed_and_started_on_a_job_are_valid(make_workspace: MakeWorkspace,
                                                  condition: str) -> None:
    ws = load_workspace(make_workspace({"specs/job.yaml": JOB,
                                        "specs/api.yaml": service(condition)}))
    api = ws.by_address("api")
    assert isinstance(api.spec, ServiceSpec)
    assert api.spec.dependsOn == (Dependency("migrate", "Job", Condition(condition)),)
    job = ws.by_address("Job/migrate")
    assert isinstance(job.spec, JobSpec)
    assert job.spec.dependsOn == (Dependency("db", "Service", Condition.STARTED),)


def test_healthy_on_a_job_is_a_located_error(make_workspace: MakeWorkspace) -> None:
    with pytest.raises(ValidationError) as info:
        load_workspace(make_workspace({"specs/job.yaml": JOB,
                                       "specs/api.yaml": service("healthy")}))
    found = [f"{d.location}: {d.message}" for d in info.value.diagnostics]
    assert found == ["specs/api.yaml:6:42: Service/default/api waits for Job/default/migrate "
                     "to be healthy, but jobs have no healthcheck"]
    assert info.value.diagnostics[0].hint == "use condition completed for a job"
