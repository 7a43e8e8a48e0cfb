"""Jobs in apply, drift and status, as pure data: a job's run-once container settles
`completed`, gates its dependents, and is judged by how its run ended."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from docklock.apply import (
    Milestone,
    Phase,
    Settle,
    build_schedule,
    dependency_conditions,
    settle_modes,
    step_id,
)
from docklock.drift import DriftKind, detect_drift, render_drift_text
from docklock.model import Condition, Resource
from docklock.objects import (
    LABEL_CLUSTER,
    LABEL_MANAGED_BY,
    DesiredObject,
    LiveObject,
    LiveState,
    ObjectKind,
)
from docklock.plan import Action, diff
from docklock.render import render
from docklock.state import RecordedObject, State
from docklock.status import compute_status, render_status_table

C = "demo"
JOB = "container:demo-default-migrate-1"
API = "container:demo-default-api-1"


def doc(kind: str, name: str, spec: dict[str, Any]) -> Resource:
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": kind,
                               "metadata": {"name": name}, "spec": spec})


def stack(condition: str = "completed") -> list[Resource]:
    return [
        doc("Job", "migrate", {"image": "img", "command": ["true"], "timeout": 30}),
        doc("Service", "api", {"image": "img", "dependsOn": [
            {"name": "migrate", "kind": "Job", "condition": condition}]}),
    ]


def desired(condition: str = "completed") -> list[DesiredObject]:
    return list(render(stack(condition), cluster=C).objects)


def applied() -> State:
    st = State(lineage="L", serial=2, cluster=C)
    for obj in desired():
        st = st.with_object(str(obj.address), RecordedObject.from_desired(
            obj, id=f"id-{obj.name}", created="2026-01-01T00:00:00Z"))
    return st


def live(obj: DesiredObject, status: str, exit_code: int | None = None) -> LiveObject:
    labels = dict(obj.config["labels"])
    return LiveObject(obj.key, ObjectKind.CONTAINER, obj.name, f"id-{obj.name}", labels,
                      status, "", "", exit_code)


def live_view(job_status: str, job_exit: int | None) -> LiveState:
    objs = {o.key: o for o in desired()}
    return LiveState({JOB: live(objs[JOB], job_status, job_exit),
                      API: live(objs[API], "running")}, 1)


# ------------------------------------------------------------------ apply schedule


def test_a_job_always_settles_completed() -> None:
    modes = settle_modes(desired("started"), dependency_conditions(stack("started")))
    assert modes == {JOB: Settle.COMPLETED, API: Settle.RUNNING}


@pytest.mark.parametrize(("condition", "milestone"), [
    ("completed", Milestone.DONE),  # exited 0
    ("started", Milestone.STARTED),  # started, whatever comes of it
])
def test_dependents_wait_for_the_job_by_condition(condition: str,
                                                  milestone: Milestone) -> None:
    objs = desired(condition)
    changes, _ = diff(objs, State.empty(C), cluster=C)
    conditions = dependency_conditions(stack(condition))
    assert conditions[("Service/default/api", "Job/default/migrate")] is Condition(condition)
    s = build_schedule(changes, conditions, settle_modes(objs, conditions))
    by = s.by_id()
    job_step = by[step_id(Phase.CREATE, JOB)]
    assert job_step.settle is Settle.COMPLETED
    waits = by[step_id(Phase.CREATE, API)].waits
    assert [(w.node, w.milestone) for w in waits] == [(job_step.id, milestone)]
    assert waits[0].why == f"dependsOn Job/default/migrate ({condition})"
    assert s.waves() == [[job_step.id], [step_id(Phase.CREATE, API)]]


def test_a_converged_job_does_not_hold_back_its_dependents() -> None:
    # The job exited 0 earlier; the service was removed out of band and is re-created
    # at once, without running the job again.
    objs = desired()
    view = live_view("exited", 0)
    gone = LiveState({JOB: view.objects[JOB]}, 1)
    changes, _ = diff(objs, applied(), gone, cluster=C)
    actions = {c.key: c.action for c in changes}
    assert actions == {JOB: Action.NOOP, API: Action.CREATE}
    conditions = dependency_conditions(stack())
    s = build_schedule(changes, conditions, settle_modes(objs, conditions))
    assert [st.id for st in s.steps] == [step_id(Phase.CREATE, API)]
    assert s.steps[0].waits == ()


def test_a_failed_job_is_destroyed_then_run_again_before_its_dependent() -> None:
    objs = desired()
    view = live_view("exited", 1)
    changes, _ = diff(objs, applied(), LiveState({JOB: view.objects[JOB]}, 1), cluster=C)
    conditions = dependency_conditions(stack())
    s = build_schedule(changes, conditions, settle_modes(objs, conditions),
                       create_before_destroy=True)
    assert s.waves() == [[step_id(Phase.DESTROY, JOB)], [step_id(Phase.CREATE, JOB)],
                         [step_id(Phase.CREATE, API)]]


# ------------------------------------------------------------------ drift


@pytest.mark.parametrize(("status", "code", "expected", "detail"), [
    ("exited", 0, None, ""),
    ("running", None, None, ""),  # on its way to completion
    ("exited", 3, DriftKind.FAILED, "job exited with code 3"),
    ("created", None, DriftKind.STOPPED, "never ran to completion"),
])
def test_job_drift(status: str, code: int | None, expected: DriftKind | None,
                   detail: str) -> None:
    report = detect_drift(applied(), live_view(status, code), cluster=C)
    if expected is None:
        assert not report.has_drift, report.items
        return
    assert [(i.kind, i.name) for i in report.items] == [(expected, "demo-default-migrate-1")]
    assert detail in report.items[0].details[0]
    assert report.to_dict()["counts"][expected.value] == 1
    if expected is DriftKind.FAILED:
        assert "failed" in render_drift_text(report)


def test_a_removed_job_is_drift() -> None:
    view = live_view("exited", 0)
    report = detect_drift(applied(), LiveState({API: view.objects[API]}, 1), cluster=C)
    assert [(i.kind, i.name) for i in report.items] == [
        (DriftKind.REMOVED, "demo-default-migrate-1")]


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(("status", "code", "row", "ready", "ok"), [
    ("exited", 0, "completed", 1, True),
    ("exited", 1, "failed", 0, False),
    ("running", None, "in-progress", 0, False),
    ("created", None, "pending", 0, False),
])
def test_job_status_rows(status: str, code: int | None, row: str, ready: int,
                         ok: bool) -> None:
    report = compute_status(desired(), applied(), live_view(status, code), cluster=C)
    rows = {r.name: r for r in report.resources}
    job = rows["migrate"]
    assert (job.kind, job.status, job.ready, job.desired, job.health) == (
        "Job", row, ready, 1, "-")
    assert job.ok is ok
    assert report.healthy is ok  # api runs; the job decides
    assert job.replicas[0].exit_code == code
    table = render_status_table(report)
    line = next(x for x in table.splitlines() if "migrate" in x)
    assert line.split()[:5] == ["default", "Job", "migrate", f"{ready}/1", row]


def test_job_not_created_yet_is_pending() -> None:
    report = compute_status(desired(), State.empty(C), LiveState({}, 1), cluster=C)
    job = next(r for r in report.resources if r.name == "migrate")
    assert (job.status, job.replicas[0].status) == ("pending", "missing")


def test_orphaned_job_container() -> None:
    obj = next(o for o in desired() if o.key == JOB)
    lv = live(obj, "exited", 0)
    lv = replace(lv, labels={**lv.labels, LABEL_MANAGED_BY: "docklock", LABEL_CLUSTER: C})
    report = compute_status([], State.empty(C), LiveState({JOB: lv}, 1), cluster=C)
    assert [(r.kind, r.status) for r in report.resources] == [("Job", "orphaned")]
