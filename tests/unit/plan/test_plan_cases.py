"""Golden table for the diff: each file in cases/ is "specs + recorded + live -> plan".

Case format (YAML):
  specs:        short documents {kind, name, namespace?, spec} rendered as desired
  applied:      documents whose render was applied (the recorded state); "specs" = same;
                absent = no state (a never-applied workspace)
  contexts / applied_contexts: image context versions {folder: version}
  state_remove: object keys dropped from the recorded state (lost records)
  recorded_exit: {key: exit code} apply recorded for job containers' last runs
  live:         true = refresh against what the apply created (services running, jobs
                exited 0); false/absent = --no-refresh
  live_changes: out-of-band edits: {key, remove|status|hash|id|image|exit_code} or
                {add: {...}}
  options:      {destroy, targets, replace}
  expect:       key -> {action, reasons (exact, in order), fields?, cbd?}
  others:       action of every key not in expect ("no-op" default; "absent": not in plan)
  warnings:     substrings expected in the plan warnings (exactly that many warnings)
  error:        substring of the PlanError message instead of a plan
"""

from __future__ import annotations

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
    with_recorded_exit,
)
from ruamel.yaml import YAML

from docklock.plan import SENSITIVE, Action, PlanError, PlanOptions, diff
from docklock.state import State

CASES = Path(__file__).parent / "cases"


def load_cases() -> list[Any]:
    yaml = YAML(typ="safe")
    return [pytest.param(yaml.load(p.read_text()), id=p.stem)
            for p in sorted(CASES.glob("*.yaml"))]


def run_case(case: dict[str, Any]) -> tuple[Any, ...]:
    desired = render_docs(case["specs"], contexts=case.get("contexts"))
    applied = case.get("applied")
    if applied is None:
        state = State.empty(CLUSTER)
    else:
        docs = case["specs"] if applied == "specs" else applied
        state = recorded(render_docs(docs, contexts=case.get("applied_contexts")).objects)
    for key, code in (case.get("recorded_exit") or {}).items():
        state = with_recorded_exit(state, key, code)
    live = None
    if case.get("live"):
        live = apply_live_changes(live_from(state), case.get("live_changes") or ())
    for key in case.get("state_remove") or ():
        address = state.objects_by_key()[key][0]
        state = state.without_object(address, key)
    opts = case.get("options") or {}
    options = PlanOptions(destroy=bool(opts.get("destroy")),
                          targets=tuple(opts.get("targets") or ()),
                          replace=tuple(opts.get("replace") or ()),
                          refresh=live is not None)
    # Every resource in the specs, as plan_workspace passes it (a service scaled to 0
    # renders no container but is still there).
    in_specs = {str(r.address) for r in resources(case["specs"])}
    return diff(desired.objects, state, live, options=options, cluster=CLUSTER,
                in_specs=in_specs)


@pytest.mark.parametrize("case", load_cases())
def test_plan_case(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(PlanError, match=case["error"]):
            run_case(case)
        return
    changes, warnings = run_case(case)
    by_key = {c.key: c for c in changes}
    assert len(by_key) == len(changes), "a key appears twice in the plan"
    expect: dict[str, Any] = case.get("expect") or {}
    for key, want in expect.items():
        assert key in by_key, f"{key} missing from the plan: {sorted(by_key)}"
        got = by_key[key]
        assert got.action.value == want["action"], (key, got.reasons, got.details)
        assert [r.value for r in got.reasons] == want["reasons"], (key, got.details)
        if "fields" in want:
            assert [f.path for f in got.fields] == want["fields"], (key, got.fields)
        if "cbd" in want:
            assert got.create_before_destroy is want["cbd"], key
    others = case.get("others", "no-op")
    rest = [c for c in changes if c.key not in expect]
    if others == "absent":
        assert rest == [], [c.key for c in rest]
    else:
        assert all(c.action is Action(others) and c.reasons == () for c in rest), \
            [(c.key, c.action.value, c.reasons) for c in rest if c.action.value != others]
    want_warnings = case.get("warnings") or []
    assert len(warnings) == len(want_warnings), warnings
    for text, got_w in zip(want_warnings, warnings, strict=True):
        assert text in got_w
    # Nothing anywhere in a change carries a sensitive value.
    for c in changes:
        assert "s3cret" not in repr(c.to_dict())
        assert "t0ps3cret" not in repr(c.to_dict())
        for f in c.fields:
            if f.sensitive:
                assert {f.before, f.after} <= {SENSITIVE, None}


def test_every_action_and_reason_is_covered_by_a_case() -> None:
    from docklock.plan import Reason

    seen_actions: set[str] = set()
    seen_reasons: set[str] = set()
    for param in load_cases():
        case = param.values[0]
        for want in (case.get("expect") or {}).values():
            seen_actions.add(want["action"])
            seen_reasons.update(want["reasons"])
        if case.get("others", "no-op") == "no-op" and "error" not in case:
            seen_actions.add("no-op")
    assert seen_actions == {a.value for a in Action}
    assert seen_reasons == {r.value for r in Reason}
