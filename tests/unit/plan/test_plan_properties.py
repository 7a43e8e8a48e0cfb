"""Properties of diff() over random workspaces (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from plan_helpers import CLUSTER, live_from, recorded, render_docs

from docklock.objects import LiveState
from docklock.plan import Action, PlanOptions, Reason, diff
from docklock.state import State

names = st.sampled_from([f"s{i}" for i in range(8)])
service = st.fixed_dictionaries({
    "replicas": st.integers(1, 3),
    "command": st.lists(st.sampled_from(["a", "b", "c"]), max_size=2),
    "restart": st.sampled_from(["no", "always"]),
})
workspace = st.dictionaries(names, service, max_size=6)


def docs(ws: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"kind": "Service", "name": n, "spec": {"image": "localhost/x:1", **s}}
            for n, s in sorted(ws.items())]


@settings(max_examples=60, deadline=None)
@given(workspace)
def test_a_converged_workspace_plans_no_changes(ws: dict[str, dict[str, Any]]) -> None:
    desired = render_docs(docs(ws)).objects
    state = recorded(desired)
    for live in (None, LiveState(live_from(state))):
        changes, _ = diff(desired, state, live, cluster=CLUSTER)
        assert len(changes) == len(desired)
        assert all(c.action is Action.NOOP and c.reasons == () for c in changes)


@settings(max_examples=80, deadline=None)
@given(workspace, workspace)
def test_actions_follow_the_config_hashes(old: dict[str, dict[str, Any]],
                                          new: dict[str, dict[str, Any]]) -> None:
    before = {o.key: o for o in render_docs(docs(old)).objects}
    after = {o.key: o for o in render_docs(docs(new)).objects}
    changes, _ = diff(list(after.values()), recorded(before.values()), cluster=CLUSTER)
    got = {c.key: (c.action, c.reasons) for c in changes}
    assert set(got) == set(before) | set(after)
    for key, (action, reasons) in got.items():
        if key not in before:
            assert (action, reasons) == (Action.CREATE, (Reason.NEW,))
        elif key not in after:
            # A replica of a service still rendered was scaled down (issue 12 7f).
            kept = before[key].address in {o.address for o in after.values()}
            why = Reason.SCALED_DOWN if kept else Reason.NOT_IN_SPECS
            assert (action, reasons) == (Action.DELETE, (why,))
        elif before[key].config_hash != after[key].config_hash:
            assert (action, reasons) == (Action.REPLACE, (Reason.SPEC_CHANGED,))
        else:
            assert (action, reasons) == (Action.NOOP, ())


@settings(max_examples=40, deadline=None)
@given(workspace)
def test_destroy_deletes_exactly_what_is_recorded(ws: dict[str, dict[str, Any]]) -> None:
    desired = render_docs(docs(ws)).objects
    state = recorded(desired)
    changes, _ = diff(desired, state, options=PlanOptions(destroy=True), cluster=CLUSTER)
    deletes = [c for c in changes if c.action is Action.DELETE]
    assert {c.key for c in deletes} == {o.key for o in desired}
    empty, _ = diff(desired, State.empty(CLUSTER), options=PlanOptions(destroy=True))
    assert empty == ()
