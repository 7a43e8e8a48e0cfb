"""Golden text/JSON/markdown output of a small plan, determinism, round trips, freshness.

Regenerate the golden files after an intended change with
DOCKLOCK_UPDATE_GOLDEN=1 pytest tests/unit/plan/test_plan_output.py (and review the diff).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from plan_helpers import (
    CLUSTER,
    apply_live_changes,
    live_from,
    recorded,
    render_docs,
    resources,
)

from docklock.errors import StalePlanError
from docklock.model import Address
from docklock.objects import DesiredObject, ObjectKind
from docklock.plan import (
    Action,
    GitInfo,
    Plan,
    PlanOptions,
    PolicyInfo,
    bind_desired,
    check_plan_current,
    diff,
    make_plan,
    render_json,
    render_markdown,
    render_text,
)
from docklock.render import constant_context_digest, render
from docklock.state import State

GOLDEN = Path(__file__).parent / "golden"

APPLIED: list[dict[str, Any]] = [
    {"kind": "Network", "name": "backend"},
    {"kind": "Service", "name": "api", "spec": {
        "image": "localhost/demo/app:1", "command": ["serve", "--port", "8080"],
        "networks": ["backend"],
        "env": {"MODE": "prod", "TOKEN": {"value": "s3cret", "sensitive": True}}}},
    {"kind": "Service", "name": "web", "spec": {
        "image": "localhost/demo/busybox:1", "networks": ["backend"],
        "dependsOn": [{"name": "api"}], "ports": [{"container": 8080, "host": 18080}]}},
    {"kind": "Service", "name": "legacy", "spec": {"image": "localhost/demo/busybox:1"}},
]
CURRENT: list[dict[str, Any]] = [
    {"kind": "Network", "name": "backend"},
    {"kind": "Service", "name": "api", "spec": {
        "image": "localhost/demo/app:1", "command": ["serve", "--port", "9090"],
        "networks": ["backend"],
        "env": {"MODE": "prod", "TOKEN": {"value": "n3w-s3cret", "sensitive": True}}}},
    {"kind": "Service", "name": "web", "spec": {
        "image": "localhost/demo/busybox:1", "networks": ["backend"],
        "dependsOn": [{"name": "api"}], "ports": [{"container": 8080, "host": 18080}]}},
    {"kind": "Service", "name": "worker", "spec": {
        "image": "localhost/demo/app:1", "command": ["work"], "networks": ["backend"],
        "env": {"QUEUE": "jobs", "KEY": {"value": "k3y", "sensitive": True}}}},
]


def golden_plan() -> Plan:
    desired = render_docs(CURRENT)
    state = recorded(render_docs(APPLIED).objects, lineage="5f0c3a9e-lineage", serial=7)
    live = apply_live_changes(live_from(state), [
        {"key": "container:demo-default-web-1", "status": "exited"}])
    return make_plan(
        desired.objects, state, live, cluster=CLUSTER, spec_digest="sha256:" + "d" * 64,
        files={"specs/app.yaml": "sha256:" + "a" * 64, "docklock.yaml": "sha256:" + "b" * 64},
        options=PlanOptions(), git=GitInfo("0123456789abcdef0123456789abcdef01234567", True),
        warnings=("example warning",), policy=PolicyInfo(None, ()),
        created="2026-01-02T03:04:05Z")


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("DOCKLOCK_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"{name} differs from the golden file"


def test_golden_text() -> None:
    check_golden("plan.txt", render_text(golden_plan()))


def test_golden_json() -> None:
    check_golden("plan.json", render_json(golden_plan()))


def test_golden_markdown() -> None:
    check_golden("plan.md", render_markdown(golden_plan()))


def test_golden_plan_has_every_kind_of_action() -> None:
    s = golden_plan().summary
    assert (s.create, s.update, s.replace, s.delete, s.noop) == (1, 1, 1, 1, 1)
    assert (s.add, s.change, s.destroy) == (2, 1, 2)


@pytest.mark.parametrize("render_fn", [render_text, render_json, render_markdown])
def test_no_output_carries_a_sensitive_value(render_fn: Any) -> None:
    text = render_fn(golden_plan())
    for secret in ("s3cret", "n3w-s3cret", "k3y"):
        assert secret not in text
    assert "(sensitive)" in text


def test_json_is_the_documented_shape() -> None:
    data = json.loads(render_json(golden_plan()))
    assert data["format"] == 1
    assert data["summary"] == {"add": 2, "change": 1, "destroy": 2, "create": 1,
                               "update": 1, "replace": 1, "delete": 1, "no-op": 1,
                               "adopt": 0}
    doc = (Path(__file__).resolve().parents[3] / "docs" / "plan-json.md").read_text()
    for key in (*data, *data["changes"][0]):
        assert f"`{key}`" in doc, f"{key} is not documented in docs/plan-json.md"


def test_text_paints_by_action() -> None:
    calls: list[tuple[str, str]] = []

    def paint(text: str, color: str) -> str:
        calls.append((text.strip(), color))
        return text

    render_text(golden_plan(), paint)
    colors = dict(calls)
    assert colors['+ container "demo-default-worker-1"'] == "green"
    assert colors['- container "demo-default-legacy-1"'] == "red"
    assert colors['-/+ container "demo-default-api-1"'] == "yellow"
    assert colors['~ container "demo-default-web-1"'] == "yellow"


def test_no_changes_message() -> None:
    desired = render_docs(CURRENT)
    plan = make_plan(desired.objects, recorded(desired.objects), None, cluster=CLUSTER,
                     spec_digest="x", options=PlanOptions(refresh=False))
    assert not plan.has_changes
    assert render_text(plan).strip() == \
        "No changes. Your infrastructure matches the configuration."
    assert "No changes." in render_markdown(plan)


def test_plan_round_trips_through_dict() -> None:
    plan = golden_plan()
    again = Plan.from_dict(json.loads(render_json(plan)))
    assert again == plan
    assert render_json(again) == render_json(plan)


def test_two_plans_in_a_row_have_identical_changes() -> None:
    first = golden_plan()
    second = golden_plan()
    assert [c.to_dict() for c in first.changes] == [c.to_dict() for c in second.changes]


def test_order_is_topological_then_address_whatever_the_input_order() -> None:
    docs = [*CURRENT, {"kind": "Volume", "name": "aaa"},
            {"kind": "Service", "name": "zed", "spec": {"image": "i", "replicas": 2}}]
    base = render(resources(docs), cluster=CLUSTER, context_digest=constant_context_digest)
    expected, _ = diff(base.objects, State.empty(CLUSTER))
    rng = random.Random(3)
    for _ in range(5):
        shuffled = list(docs)
        rng.shuffle(shuffled)
        objs = list(render(resources(shuffled), cluster=CLUSTER).objects)
        rng.shuffle(objs)
        changes, _ = diff(objs, State.empty(CLUSTER))
        assert changes == expected
    keys = [c.key for c in expected]
    position = {k: i for i, k in enumerate(keys)}
    for c in expected:
        for dep in c.depends_on:
            assert position[dep] < position[c.key], (dep, c.key)
    # Ties are broken by address: the api replicas before web and worker.
    assert keys.index("container:demo-default-api-1") < keys.index(
        "container:demo-default-web-1")
    # Addresses compare as text (Kind/namespace/name): Volume/... after Service/...
    assert keys[-3:] == ["container:demo-default-zed-1", "container:demo-default-zed-2",
                         "volume:demo-default-aaa"]


# ---------------------------------------------------------------- freshness


def test_plan_against_empty_state_is_stale_after_the_first_write() -> None:
    desired = render_docs(CURRENT)
    empty = State.empty(CLUSTER)
    plan = make_plan(desired.objects, empty, None, cluster=CLUSTER, spec_digest="s1")
    assert (plan.lineage, plan.serial) == (None, 0)
    check_plan_current(plan, empty, spec_digest="s1")
    after_apply = State(lineage="new-lineage", serial=1, cluster=CLUSTER)
    with pytest.raises(StalePlanError, match="made against lineage \\(empty state\\) serial 0"):
        check_plan_current(plan, after_apply, spec_digest="s1")


def test_plan_is_bound_to_serial_lineage_and_specs() -> None:
    desired = render_docs(CURRENT)
    state = recorded(desired.objects, lineage="L", serial=3)
    plan = make_plan(desired.objects, state, None, cluster=CLUSTER, spec_digest="s1",
                     files={"a.yaml": "1", "b.yaml": "2"})
    check_plan_current(plan, state, spec_digest="s1")
    with pytest.raises(StalePlanError, match="serial 3"):
        check_plan_current(plan, State(lineage="L", serial=4), spec_digest="s1")
    with pytest.raises(StalePlanError, match="lineage L"):
        check_plan_current(plan, State(lineage="M", serial=3), spec_digest="s1")
    with pytest.raises(StalePlanError, match=r"spec files changed since it was made \(b.yaml\)"):
        check_plan_current(plan, state, spec_digest="s2", files={"a.yaml": "1", "b.yaml": "3"})


def test_bind_desired_checks_every_hash() -> None:
    plan = golden_plan()
    desired = render_docs(CURRENT).objects
    bound = bind_desired(plan, desired)
    assert set(bound) == {c.key for c in plan.changes if c.after is not None}
    # The bound objects hold the real values the plan file does not.
    env = {e[0]: e[1] for e in bound["container:demo-default-api-1"].config["env"]}
    assert env["TOKEN"] == "n3w-s3cret"
    tampered = [o if o.key != "container:demo-default-worker-1" else
                DesiredObject(o.key, o.kind, o.address, o.name, o.config, "f" * 64)
                for o in desired]
    with pytest.raises(StalePlanError, match="worker-1 renders differently"):
        bind_desired(plan, tampered)


def test_state_of_another_cluster_is_refused() -> None:
    from docklock.plan import PlanError

    with pytest.raises(PlanError, match="belongs to cluster 'other'"):
        make_plan([], State(lineage="L", serial=1, cluster="other"), cluster=CLUSTER,
                  spec_digest="x")


def test_duplicate_object_names_are_refused() -> None:
    from docklock.plan import PlanError

    obj = DesiredObject("container:x", ObjectKind.CONTAINER, Address("Service", "a", "b"),
                        "x", {}, "h")
    with pytest.raises(PlanError, match="same Podman name"):
        diff([obj, obj], State.empty())


def test_noop_changes_are_kept_small() -> None:
    plan = golden_plan()
    noop = [c for c in plan.changes if c.action is Action.NOOP]
    assert noop
    assert all(c.before is not None and c.before.config is None and
                        c.after is not None and c.after.config is None for c in noop)
