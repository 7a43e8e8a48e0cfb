"""Document-level exceptions (`spec.exceptions`) and the spec.policies entries allowed.

Any Policy document may except any active rule by id, built-in pack rules included; an
expired exception no longer applies and is reported; an exception naming no active rule,
and a spec.policies entry that is not `builtin:<pack>`, are validation errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from docklock.errors import Location, ValidationError
from docklock.model import ClusterSpec, PolicySpec, Resource
from docklock.policy import PolicyReport, Status, active_rules, evaluate

TODAY = date(2025, 6, 1)


def svc(name: str, ns: str = "default", **spec: Any) -> Resource:
    spec.setdefault("image", "localhost/app:1")
    return Resource.from_dict({"kind": "Service", "metadata": {"name": name, "namespace": ns},
                               "spec": spec}, Location(f"specs/{name}.yaml", 1, 1))


def doc(name: str = "accepted", *, rules: list[dict[str, Any]] | None = None,
        exceptions: list[dict[str, Any]] | None = None) -> Resource:
    spec: dict[str, Any] = {}
    if rules:
        spec["rules"] = rules
    if exceptions:
        spec["exceptions"] = exceptions
    return Resource.from_dict({"kind": "Policy", "metadata": {"name": name}, "spec": spec},
                              Location(f"specs/{name}.yaml", 2, 1))


def exc(rule: str = "run-as-non-root", address: str = "Service/default/web",
        **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "address": address, "reason": "vendor image", **extra}


NEEDS_LABEL = {"id": "needs-label", "enforcement": "warn", "match": {"kinds": ["Service"]},
               "assert": {"properties": {"metadata": {"required": ["labels"]}}}}


def run(resources: list[Resource], policies: list[Resource], *,
        packs: tuple[str, ...] = ("builtin:baseline",), today: date = TODAY) -> PolicyReport:
    return evaluate(resources, cluster=ClusterSpec(securityLevel="hardened"), packs=packs,
                    policies=policies, today=today)


def status_of(report: PolicyReport, rule: str, address: str) -> Status:
    [res] = [r for r in report.results if r.rule == rule and r.address == address]
    return res.status


# ---------------------------------------------------------------- model


@pytest.mark.parametrize("spec", [
    {"rules": [NEEDS_LABEL]},
    {"exceptions": [exc()]},
    {"rules": [NEEDS_LABEL], "exceptions": [exc(expires="2030-01-01")]},
], ids=["rules-only", "exceptions-only", "both"])
def test_policy_spec_round_trips(spec: dict[str, Any]) -> None:
    model = PolicySpec.from_dict(spec)
    assert model.to_dict() == spec
    assert PolicySpec.from_dict(model.to_dict()) == model


def test_policy_spec_exceptions_default_to_none() -> None:
    assert PolicySpec.from_dict({"rules": [NEEDS_LABEL]}).exceptions == ()


# ---------------------------------------------------------------- applying


@dataclass(frozen=True)
class Case:
    name: str
    resources: list[Resource]
    policies: list[Resource]
    rule: str
    address: str
    status: Status
    expired: bool | None = None  # None: no exception attached to the result
    packs: tuple[str, ...] = ("builtin:baseline",)
    today: date = TODAY


CASES = [
    Case("builtin-rule-excepted", [svc("web")], [doc(exceptions=[exc()])],
         "run-as-non-root", "Service/default/web", Status.EXCEPTED, expired=False),
    Case("builtin-rule-through-framework-pack", [svc("web")], [doc(exceptions=[exc()])],
         "run-as-non-root", "Service/default/web", Status.EXCEPTED, expired=False,
         packs=("builtin:hipaa",)),
    Case("expiry-day-still-applies", [svc("web")],
         [doc(exceptions=[exc(expires="2025-06-01")])],
         "run-as-non-root", "Service/default/web", Status.EXCEPTED, expired=False),
    Case("expired-fails-again", [svc("web")], [doc(exceptions=[exc(expires="2025-05-31")])],
         "run-as-non-root", "Service/default/web", Status.FAIL, expired=True),
    Case("short-address", [svc("web")], [doc(exceptions=[exc(address="web")])],
         "run-as-non-root", "Service/default/web", Status.EXCEPTED, expired=False),
    Case("glob-address", [svc("tmp-1", "dev")],
         [doc(exceptions=[exc(address="Service/dev/tmp-*")])],
         "run-as-non-root", "Service/dev/tmp-1", Status.EXCEPTED, expired=False),
    Case("other-address-untouched", [svc("api")], [doc(exceptions=[exc()])],
         "run-as-non-root", "Service/default/api", Status.FAIL),
    Case("other-rule-untouched", [svc("web", image="localhost/app")],
         [doc(exceptions=[exc()])],
         "image-pinned", "Service/default/web", Status.FAIL),
    Case("passing-resource-stays-pass", [svc("web", user="1000")],
         [doc(exceptions=[exc(expires="2020-01-01")])],
         "run-as-non-root", "Service/default/web", Status.PASS),
    Case("user-rule-from-another-document", [svc("web")],
         [doc("rules", rules=[NEEDS_LABEL]),
          doc(exceptions=[exc(rule="needs-label")])],
         "needs-label", "Service/default/web", Status.EXCEPTED, expired=False, packs=()),
    Case("warn-rule-expired-warns", [svc("web")],
         [doc("rules", rules=[NEEDS_LABEL]),
          doc(exceptions=[exc(rule="needs-label", expires="2025-01-01")])],
         "needs-label", "Service/default/web", Status.WARN, expired=True, packs=()),
    Case("unexpired-beats-expired-on-the-rule", [svc("web")],
         [doc("rules", rules=[{**NEEDS_LABEL, "exceptions": [
             {"address": "web", "reason": "old", "expires": "2024-01-01"}]}]),
          doc(exceptions=[exc(rule="needs-label", expires="2026-01-01")])],
         "needs-label", "Service/default/web", Status.EXCEPTED, expired=False, packs=()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_document_exceptions_apply_to_the_named_rule(case: Case) -> None:
    report = run(case.resources, case.policies, packs=case.packs, today=case.today)
    [res] = [r for r in report.results
             if r.rule == case.rule and r.address == case.address]
    assert res.status is case.status
    if case.expired is None:
        assert res.exception is None
    else:
        assert res.exception is not None
        assert res.exception.expired is case.expired


def test_expired_exception_is_reported_in_summary_and_diagnostics() -> None:
    report = run([svc("web")], [doc(exceptions=[exc(expires="2025-05-31")])])
    assert report.summary.expired_exceptions == 1
    assert "1 expired exception" in report.summary.line()
    [diag] = [d for d in report.to_diagnostics() if "run-as-non-root" in d.message]
    assert diag.severity == "error"
    assert "exception expired 2025-05-31" in diag.message
    assert "renew the exception" in diag.hint


def test_granting_document_is_recorded_and_changes_the_digest() -> None:
    excepted = run([svc("web")], [doc(exceptions=[exc()])])
    [res] = [r for r in excepted.results if r.status is Status.EXCEPTED]
    assert res.exception is not None
    assert res.exception.source == "Policy/default/accepted"
    assert res.to_dict()["exception"]["source"] == "Policy/default/accepted"
    info = excepted.rule("run-as-non-root")
    assert info.source == "builtin:baseline"  # the rule is still the pack's
    plain = run([svc("web")], [])
    assert plain.rule("run-as-non-root").digest != info.digest
    assert plain.digest != excepted.digest
    assert excepted.ok
    assert not plain.ok


def test_builtin_failure_hint_names_spec_exceptions() -> None:
    [diag] = [d for d in run([svc("web")], []).to_diagnostics()
              if "run-as-non-root" in d.message]
    assert "spec.exceptions: [{rule: run-as-non-root, address: Service/default/web" in diag.hint


# ---------------------------------------------------------------- errors


ERRORS: list[tuple[str, list[Resource], tuple[str, ...], str, str, str]] = [
    # (case, policies, packs, message fragment, JSON path, hint fragment)
    ("unknown-rule", [doc(exceptions=[exc(rule="no-such-rule")])], ("builtin:baseline",),
     "names rule no-such-rule, which is not an active rule", "spec.exceptions[0].rule",
     "docklock policy check"),
    ("pack-not-enabled", [doc(exceptions=[exc()])], (),
     "names rule run-as-non-root, which is not an active rule", "spec.exceptions[0].rule",
     "builtin:baseline, which is not enabled"),
    ("second-entry", [doc(exceptions=[exc(), exc(rule="typo")])], ("builtin:baseline",),
     "names rule typo", "spec.exceptions[1].rule", "remove the exception"),
    ("impossible-date", [doc(exceptions=[exc(expires="2025-02-30")])], ("builtin:baseline",),
     "exception for rule run-as-non-root: '2025-02-30' is not a date",
     "spec.exceptions[0].expires", "YYYY-MM-DD"),
    ("bad-address", [doc(exceptions=[exc(address="a/b/c/d")])], ("builtin:baseline",),
     "not an address", "spec.exceptions[0].address", "Kind/namespace/name"),
    ("no-rule-field", [doc(exceptions=[{"address": "web", "reason": "r"}])], (),
     "'rule' is a required property", "spec.exceptions[0]", "schemas/policy.schema.json"),
]


@pytest.mark.parametrize(("policies", "packs", "fragment", "path", "hint"),
                         [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_document_exception_is_a_located_error(
        policies: list[Resource], packs: tuple[str, ...], fragment: str, path: str,
        hint: str) -> None:
    with pytest.raises(ValidationError) as err:
        run([svc("web")], policies, packs=packs)
    match = [d for d in err.value.diagnostics if fragment in d.message]
    assert match, [d.message for d in err.value.diagnostics]
    diag = match[0]
    assert diag.path == path
    assert diag.message.startswith("Policy/default/accepted:")
    assert str(diag.location) == "specs/accepted.yaml:2:1"
    assert hint in diag.hint


def test_locate_points_errors_at_the_exception_key() -> None:
    def locate(res: Resource, path: str) -> Location | None:
        return Location("specs/accepted.yaml", 30 + path.count("["), 9)

    with pytest.raises(ValidationError) as err:
        active_rules([], [doc(exceptions=[exc(rule="nope")])], locate=locate)
    [diag] = err.value.diagnostics
    assert str(diag.location) == "specs/accepted.yaml:31:9"


# ---------------------------------------------------------------- spec.policies entries


CLUSTER_DOC = Resource.from_dict({"kind": "Cluster", "metadata": {"name": "demo"},
                                  "spec": {"policies": ["builtin:baseline", "extra.yaml"]}},
                                 Location("docklock.yaml", 1, 1))


@pytest.mark.parametrize(("entry", "fragment"), [
    ("policies/extra.yaml", "is not a built-in pack"),
    ("baseline", "is not a built-in pack"),
    ("builtin:pci", "unknown policy pack 'builtin:pci'"),
], ids=["file", "bare-name", "unknown-builtin"])
def test_non_builtin_and_unknown_pack_entries_are_errors(entry: str, fragment: str) -> None:
    def locate(res: Resource, path: str) -> Location | None:
        assert res is CLUSTER_DOC
        return Location("docklock.yaml", 8, 3 + 10 * int(path[-2]))

    with pytest.raises(ValidationError) as err:
        evaluate([svc("web")], cluster=ClusterSpec(), packs=("builtin:baseline", entry),
                 policies=[], today=TODAY, locate=locate, cluster_doc=CLUSTER_DOC)
    [diag] = err.value.diagnostics
    assert fragment in diag.message
    assert diag.path == "spec.policies[1]"
    assert str(diag.location) == "docklock.yaml:8:13"
    assert "builtin:baseline" in diag.hint
    if "not a built-in" in fragment:
        assert "Policy documents in the spec folders are always active" in diag.message


def test_bad_pack_entry_and_bad_exception_are_reported_together() -> None:
    with pytest.raises(ValidationError) as err:
        run([svc("web")], [doc(exceptions=[exc(rule="nope")])],
            packs=("builtin:baseline", "extra.yaml"))
    messages = " | ".join(d.message for d in err.value.diagnostics)
    assert "'extra.yaml' is not a built-in pack" in messages
    assert "names rule nope" in messages
