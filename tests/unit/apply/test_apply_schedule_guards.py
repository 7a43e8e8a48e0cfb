"""Issue 11 C10 and D18 on the schedule as data (no Podman).

C10: a destroy-first replace of a dependency and a create-before-destroy replace of its
dependent wait for each other unless the "remove dependents first" ordering yields.
D18: a container of a service that is deleted while the same service gets a new one
(a retired `-old-` container left by a failed replace) waits for the new one to settle,
and a replacement without a healthcheck must stay up a moment (Settle.STEADY) before the
container it replaces is removed.
"""

from __future__ import annotations

from test_apply_schedule import SVC, _cbd, change, ckey

from docklock.apply import Milestone, Phase, Settle, Wait, build_schedule, step_id
from docklock.model import Condition
from docklock.objects import ObjectKind
from docklock.plan import Action, Change, Reason

JOB = "Job/default/migrate"


def _job_replace() -> Change:
    return change("migrate", Action.REPLACE, address=JOB)


def _cbd_dependent() -> Change:
    c = _cbd("api", 1)
    return Change(**{**c.__dict__, "depends_on": (ckey("migrate"),)})


def test_replaced_job_and_create_before_destroy_dependent_have_a_schedule() -> None:
    conds = {(f"{SVC}api", JOB): Condition.COMPLETED}
    s = build_schedule([_job_replace(), _cbd_dependent()], conds,
                       {ckey("migrate"): Settle.COMPLETED, ckey("api"): Settle.RUNNING},
                       create_before_destroy=True)
    d_job, c_job = step_id(Phase.DESTROY, ckey("migrate")), step_id(Phase.CREATE, ckey("migrate"))
    c_api, d_api = step_id(Phase.CREATE, ckey("api")), step_id(Phase.DESTROY, ckey("api"))
    by = s.by_id()
    # the dependent's new container waits for the new job run to complete ...
    assert Wait(c_job, Milestone.DONE, f"dependsOn {JOB} (completed)") in by[c_api].waits
    # ... so the old job run cannot also wait for the old dependent to go
    assert all(w.node != d_api for w in by[d_job].waits)
    assert s.waves() == [[d_job], [c_job], [c_api], [d_api]]


def test_dependents_still_go_first_when_nothing_is_created() -> None:
    dep = change("migrate", Action.DELETE, address=JOB)
    api = change("api", Action.DELETE, deps=(ckey("migrate"),))
    s = build_schedule([dep, api], {}, {})
    assert s.waves() == [[step_id(Phase.DESTROY, ckey("api"))],
                         [step_id(Phase.DESTROY, ckey("migrate"))]]


def test_container_on_a_removed_network_is_destroyed_first_not_created_first() -> None:
    net = change("demo-default-backend", Action.REPLACE, kind=ObjectKind.NETWORK,
                 address="Network/default/backend")
    web = _cbd("web", 1)
    web = Change(**{**web.__dict__, "depends_on": (net.key,),
                    "reasons": (Reason.SPEC_CHANGED,)})
    s = build_schedule([net, web], {}, {}, create_before_destroy=True)
    assert [st.id for st in s.steps if st.key == web.key] == [
        step_id(Phase.DESTROY, web.key), step_id(Phase.CREATE, web.key)]
    assert not any(st.old_after_new for st in s.steps)
    assert s.waves() == [[step_id(Phase.DESTROY, web.key)],
                         [step_id(Phase.DESTROY, net.key)],
                         [step_id(Phase.CREATE, net.key)],
                         [step_id(Phase.CREATE, web.key)]]


def _retired(name: str) -> Change:
    c = change(name, Action.DELETE, reasons=(Reason.NOT_IN_SPECS, Reason.ADOPTED),
               before=False, live=True)
    key = f"{ckey(name)}-old-0123456789ab"
    return Change(**{**c.__dict__, "key": key, "name": key.split(":", 1)[1], "replica": 1})


def test_retired_container_waits_for_the_new_one_of_its_service() -> None:
    for new in (change("web", Action.UPDATE), change("web", Action.CREATE),
                change("web", Action.REPLACE), _cbd("web", 1)):
        old = _retired("web")
        s = build_schedule([new, old], {}, {ckey("web"): Settle.RUNNING},
                           create_before_destroy=True)
        by = s.by_id()
        create = step_id(Phase.CREATE, ckey("web"))
        assert Wait(create, Milestone.DONE, "replacement settled first") in \
            by[step_id(Phase.DESTROY, old.key)].waits, new.action
        # and the new one must prove it stays up before that
        assert by[create].settle is Settle.STEADY


def test_a_retired_container_of_another_service_does_not_wait() -> None:
    s = build_schedule([change("api", Action.CREATE), _retired("web")], {}, {})
    assert len(s.waves()) == 1


def test_plain_creates_and_healthchecked_replacements_keep_their_settle() -> None:
    s = build_schedule([change("web", Action.CREATE), _cbd("db", 1)], {},
                       {ckey("web"): Settle.RUNNING, ckey("db"): Settle.HEALTHY},
                       create_before_destroy=True)
    by = s.by_id()
    assert by[step_id(Phase.CREATE, ckey("web"))].settle is Settle.RUNNING
    assert by[step_id(Phase.CREATE, ckey("db"))].settle is Settle.HEALTHY
    s = build_schedule([_cbd("web", 1)], {}, {ckey("web"): Settle.RUNNING},
                       create_before_destroy=True)
    assert s.by_id()[step_id(Phase.CREATE, ckey("web"))].settle is Settle.STEADY
