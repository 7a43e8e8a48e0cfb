"""The apply schedule as data: which step waits for which, and the waves that follow."""

from __future__ import annotations

import pytest

from docklock.apply import (
    Milestone,
    Phase,
    Settle,
    Wait,
    build_schedule,
    dependency_conditions,
    health_timeout,
    settle_modes,
    step_id,
)
from docklock.errors import ApplyError
from docklock.model import Address, Condition, Resource
from docklock.objects import DesiredObject, ObjectKind
from docklock.plan import Action, After, Before, Change, Live, Reason

SVC = "Service/default/"


def ckey(name: str, i: int = 1) -> str:
    return f"container:demo-default-{name}-{i}"


def change(name: str, action: Action, *, i: int = 1, deps: tuple[str, ...] = (),
           kind: ObjectKind = ObjectKind.CONTAINER, address: str | None = None,
           reasons: tuple[Reason, ...] = (), live: bool = False,
           before: bool | None = None) -> Change:
    key = ckey(name, i) if kind is ObjectKind.CONTAINER else f"{kind.value}:{name}"
    has_before = before if before is not None else action in (
        Action.REPLACE, Action.DELETE, Action.UPDATE)
    return Change(
        key=key, kind=kind, address=address or f"{SVC}{name}", name=key.split(":", 1)[1],
        action=action, reasons=reasons or (Reason.NEW,),
        before=Before(f"id-{name}-{i}", "h0") if has_before else None,
        after=None if action is Action.DELETE else After("h1"),
        live=Live(f"live-{name}-{i}", "h1", "running") if live else None,
        replica=i if kind is ObjectKind.CONTAINER else None, depends_on=deps)


def three_tier(action: Action = Action.CREATE) -> list[Change]:
    return [change("db", action), change("api", action, deps=(ckey("db"),)),
            change("web", action, deps=(ckey("api"),))]


HEALTHY = {(f"{SVC}api", f"{SVC}db"): Condition.HEALTHY,
           (f"{SVC}web", f"{SVC}api"): Condition.HEALTHY}


def test_three_tier_creates_run_in_three_waves_gated_on_health() -> None:
    s = build_schedule(three_tier(), HEALTHY, {})
    assert s.waves() == [[step_id(Phase.CREATE, ckey("db"))],
                         [step_id(Phase.CREATE, ckey("api"))],
                         [step_id(Phase.CREATE, ckey("web"))]]
    api = s.by_id()[step_id(Phase.CREATE, ckey("api"))]
    assert api.waits == (Wait(step_id(Phase.CREATE, ckey("db")), Milestone.DONE,
                              f"dependsOn {SVC}db (healthy)"),)


def test_started_condition_waits_only_for_the_start() -> None:
    conds = {(f"{SVC}api", f"{SVC}db"): Condition.STARTED}
    s = build_schedule(three_tier()[:2], conds, {})
    api = s.by_id()[step_id(Phase.CREATE, ckey("api"))]
    assert [w.milestone for w in api.waits] == [Milestone.STARTED]


def test_missing_condition_defaults_to_started() -> None:
    s = build_schedule(three_tier()[:2], {}, {})
    api = s.by_id()[step_id(Phase.CREATE, ckey("api"))]
    assert api.waits[0].milestone is Milestone.STARTED


def test_independent_services_form_one_wave() -> None:
    changes = [change(f"s{i}", Action.CREATE) for i in range(30)]
    s = build_schedule(changes, {}, {})
    assert len(s.waves()) == 1
    assert len(s.waves()[0]) == 30


def test_noop_dependency_is_not_waited_for() -> None:
    changes = [change("db", Action.NOOP), change("api", Action.CREATE, deps=(ckey("db"),))]
    s = build_schedule(changes, HEALTHY, {})
    assert [st.id for st in s.steps] == [step_id(Phase.CREATE, ckey("api"))]
    assert s.steps[0].waits == ()


def test_adopted_noop_becomes_a_record_step_and_dependents_wait_for_it() -> None:
    changes = [change("db", Action.NOOP, reasons=(Reason.ADOPTED,), live=True, before=False),
               change("api", Action.CREATE, deps=(ckey("db"),))]
    s = build_schedule(changes, HEALTHY, {})
    rec = step_id(Phase.RECORD, ckey("db"))
    assert s.by_id()[rec].phase is Phase.RECORD
    assert s.by_id()[step_id(Phase.CREATE, ckey("api"))].waits[0].node == rec


def test_deletes_run_in_reverse_dependency_order() -> None:
    s = build_schedule(three_tier(Action.DELETE), {}, {})
    assert s.waves() == [[step_id(Phase.DESTROY, ckey("web"))],
                         [step_id(Phase.DESTROY, ckey("api"))],
                         [step_id(Phase.DESTROY, ckey("db"))]]


def test_network_is_created_before_and_removed_after_its_users() -> None:
    net = change("demo-default-backend", Action.CREATE, kind=ObjectKind.NETWORK,
                 address="Network/default/backend")
    app = change("app", Action.CREATE, deps=(net.key,))
    s = build_schedule([net, app], {}, {})
    assert s.waves() == [[step_id(Phase.CREATE, net.key)], [step_id(Phase.CREATE, app.key)]]
    gone = build_schedule([
        change("demo-default-backend", Action.DELETE, kind=ObjectKind.NETWORK,
               address="Network/default/backend"),
        change("app", Action.DELETE, deps=(net.key,))], {}, {})
    assert gone.waves() == [[step_id(Phase.DESTROY, app.key)],
                            [step_id(Phase.DESTROY, net.key)]]


def test_replace_is_destroy_then_create() -> None:
    s = build_schedule([change("db", Action.REPLACE)], {}, {})
    assert s.waves() == [[step_id(Phase.DESTROY, ckey("db"))],
                         [step_id(Phase.CREATE, ckey("db"))]]


def test_image_replace_is_a_rebuild_without_destroy() -> None:
    img = change("localhost/app:1", Action.REPLACE, kind=ObjectKind.IMAGE,
                 address="Image/default/app")
    s = build_schedule([img], {}, {})
    assert [st.phase for st in s.steps] == [Phase.CREATE]


def test_replicas_are_replaced_one_at_a_time() -> None:
    reps = [change("web", Action.REPLACE, i=i) for i in (1, 2, 3)]
    s = build_schedule(reps, {}, {ckey("web", i): Settle.HEALTHY for i in (1, 2, 3)})
    waves = s.waves()
    assert waves == [[step_id(Phase.DESTROY, ckey("web", 1))],
                     [step_id(Phase.CREATE, ckey("web", 1))],
                     [step_id(Phase.DESTROY, ckey("web", 2))],
                     [step_id(Phase.CREATE, ckey("web", 2))],
                     [step_id(Phase.DESTROY, ckey("web", 3))],
                     [step_id(Phase.CREATE, ckey("web", 3))]]
    d2 = s.by_id()[step_id(Phase.DESTROY, ckey("web", 2))]
    assert Wait(step_id(Phase.CREATE, ckey("web", 1)), Milestone.DONE,
                "rolling replace") in d2.waits


def test_new_replicas_are_created_in_parallel() -> None:
    adds = [change("web", Action.CREATE, i=i) for i in (2, 3)]
    s = build_schedule(adds, {}, {})
    assert len(s.waves()) == 1


def test_network_replace_skips_rolling_instead_of_deadlocking() -> None:
    net = change("demo-default-backend", Action.REPLACE, kind=ObjectKind.NETWORK,
                 address="Network/default/backend")
    reps = [change("web", Action.REPLACE, i=i, deps=(net.key,),
                   reasons=(Reason.DEPENDENCY_REPLACED,)) for i in (1, 2)]
    s = build_schedule([net, *reps], {}, {})
    ids = s.by_id()
    # Both replicas go before the network is removed; the network is back before either
    # replica is created again.
    net_destroy = ids[step_id(Phase.DESTROY, net.key)]
    assert {w.node for w in net_destroy.waits} == {
        step_id(Phase.DESTROY, ckey("web", 1)), step_id(Phase.DESTROY, ckey("web", 2))}
    assert all(w.why != "rolling replace" for st in s.steps for w in st.waits)
    assert len(s.waves()) == 4


def test_settle_is_attached_to_container_create_steps_only() -> None:
    changes = [change("db", Action.REPLACE)]
    s = build_schedule(changes, {}, {ckey("db"): Settle.HEALTHY})
    by = s.by_id()
    assert by[step_id(Phase.DESTROY, ckey("db"))].settle is Settle.NONE
    assert by[step_id(Phase.CREATE, ckey("db"))].settle is Settle.HEALTHY


def _res(name: str, deps: list[dict[str, str]], healthcheck: bool = False) -> Resource:
    spec: dict[str, object] = {"image": "img", "dependsOn": deps}
    if healthcheck:
        spec["healthcheck"] = {"command": ["true"]}
    return Resource.from_dict({"kind": "Service", "metadata": {"name": name}, "spec": spec})


def test_dependency_conditions_from_resources_keep_the_strongest() -> None:
    res = [_res("api", [{"name": "db", "condition": "healthy"},
                        {"name": "db", "condition": "started"}]),
           _res("web", [{"name": "api"}])]
    assert dependency_conditions(res) == {
        (f"{SVC}api", f"{SVC}db"): Condition.HEALTHY,
        (f"{SVC}web", f"{SVC}api"): Condition.STARTED,
    }


def _obj(name: str, *, healthcheck: bool) -> DesiredObject:
    config: dict[str, object] = {"name": name}
    if healthcheck:
        config["healthcheck"] = {"command": ["true"], "interval": "1s", "retries": 3,
                                 "timeout": "1s", "startPeriod": "0s"}
    return DesiredObject(ckey(name), ObjectKind.CONTAINER, Address("Service", "default", name),
                         name, config, "h", replica=1)


def test_settle_modes() -> None:
    conds = {(f"{SVC}report", f"{SVC}migrate"): Condition.COMPLETED}
    modes = settle_modes([_obj("db", healthcheck=True), _obj("web", healthcheck=False),
                          _obj("migrate", healthcheck=True)], conds)
    assert modes == {ckey("db"): Settle.HEALTHY, ckey("web"): Settle.RUNNING,
                     ckey("migrate"): Settle.COMPLETED}


@pytest.mark.parametrize(("hc", "override", "expected"), [
    (None, None, 47.0),  # defaults: (5 + 1) x (2s + 5s) + 5s
    ({"interval": "1s", "timeout": "1s", "retries": 3, "startPeriod": "0s"}, None, 13.0),
    ({"interval": "1s", "timeout": "1s", "retries": 1}, None, 10.0),  # floor
    ({"interval": "1s"}, 3.0, 3.0),
])
def test_health_timeout(hc: dict[str, object] | None, override: float | None,
                        expected: float) -> None:
    config = {"healthcheck": hc} if hc is not None else {}
    assert health_timeout(config, override) == pytest.approx(expected)


def test_a_cycle_is_refused() -> None:
    a = change("a", Action.CREATE, deps=(ckey("b"),))
    b = change("b", Action.CREATE, deps=(ckey("a"),))
    with pytest.raises(ApplyError, match="cycle"):
        build_schedule([a, b], {}, {})


def test_container_is_removed_only_after_its_new_image_is_built() -> None:
    img = change("localhost/app:1", Action.REPLACE, kind=ObjectKind.IMAGE,
                 address="Image/default/app")
    web = change("web", Action.REPLACE, deps=(img.key,),
                 reasons=(Reason.DEPENDENCY_REPLACED,))
    s = build_schedule([img, web], {}, {})
    assert s.waves() == [[step_id(Phase.CREATE, img.key)],
                         [step_id(Phase.DESTROY, web.key)],
                         [step_id(Phase.CREATE, web.key)]]


def _cbd(name: str, i: int) -> Change:
    c = change(name, Action.REPLACE, i=i)
    return Change(**{**c.__dict__, "create_before_destroy": True})


def test_create_before_destroy_starts_the_new_one_first_when_the_runtime_can_rename() -> None:
    reps = [_cbd("web", i) for i in (1, 2)]
    s = build_schedule(reps, {}, {}, create_before_destroy=True)
    c1, d1 = step_id(Phase.CREATE, ckey("web", 1)), step_id(Phase.DESTROY, ckey("web", 1))
    c2, d2 = step_id(Phase.CREATE, ckey("web", 2)), step_id(Phase.DESTROY, ckey("web", 2))
    assert [st.id for st in s.steps] == [c1, d1, c2, d2]
    by = s.by_id()
    assert by[d1].old_after_new
    assert not by[c1].old_after_new
    assert by[d1].waits == (Wait(c1, Milestone.DONE, "new one settled first"),)
    assert Wait(c1, Milestone.DONE, "rolling replace") in by[c2].waits
    assert s.waves() == [[c1], [d1, c2], [d2]]


def test_create_before_destroy_falls_back_without_rename() -> None:
    s = build_schedule([_cbd("web", 1)], {}, {}, create_before_destroy=False)
    assert [st.phase for st in s.steps] == [Phase.DESTROY, Phase.CREATE]
    assert not any(st.old_after_new for st in s.steps)
