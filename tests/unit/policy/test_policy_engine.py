"""The engine: matching, exclusion, exceptions, enforcement, packs, digests, views."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from docklock.errors import Location, ValidationError
from docklock.model import ClusterSpec, Resource
from docklock.policy import (
    ControlStatus,
    PolicyReport,
    Status,
    effective_view,
    evaluate,
    image_pinned,
    runs_as_non_root,
)
from docklock.policy.catalog import pack_names

TODAY = date(2025, 6, 1)


def svc(name: str, ns: str = "default", labels: dict[str, str] | None = None,
        line: int = 1, **spec: Any) -> Resource:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    spec.setdefault("image", "localhost/app:1")
    return Resource.from_dict({"kind": "Service", "metadata": meta, "spec": spec},
                              Location(f"specs/{name}.yaml", line, 1))


def policy(*rules: dict[str, Any], name: str = "biso") -> Resource:
    return Resource.from_dict({"kind": "Policy", "metadata": {"name": name},
                               "spec": {"rules": list(rules)}},
                              Location(f"specs/{name}.yaml", 1, 1))


def needs_user(**extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "needs-user", "message": "set a user",
        "match": {"kinds": ["Service"]},
        "assert": {"properties": {"spec": {"required": ["user"]}}},
        "controls": ["SOC2:CC6.3"],
    }
    rule.update(extra)
    return rule


def run(resources: list[Resource], *rules: dict[str, Any], packs: tuple[str, ...] = (),
        today: date = TODAY, level: str = "standard") -> PolicyReport:
    return evaluate(resources, cluster=ClusterSpec(securityLevel=level), packs=packs,
                    policies=[policy(*rules)] if rules else [], today=today)


def statuses(report: PolicyReport, rule: str = "needs-user") -> dict[str, Status]:
    return {r.address: r.status for r in report.results if r.rule == rule}


# ---------------------------------------------------------------- match and exclude


def test_deny_rule_fails_and_passes_per_resource() -> None:
    report = run([svc("a", user="1000"), svc("b")], needs_user())
    assert statuses(report) == {"Service/default/a": Status.PASS,
                                "Service/default/b": Status.FAIL}
    assert [r.address for r in report.deny_failures] == ["Service/default/b"]
    assert not report.ok


def test_warn_enforcement_reports_without_failing() -> None:
    report = run([svc("b")], needs_user(enforcement="warn"))
    assert statuses(report) == {"Service/default/b": Status.WARN}
    assert report.ok
    assert len(report.warnings) == 1


def test_kinds_not_targeted_give_no_result_and_star_targets_every_kind() -> None:
    job = Resource.from_dict({"kind": "Job", "metadata": {"name": "j"},
                              "spec": {"image": "x:1"}})
    vol = Resource.from_dict({"kind": "Volume", "metadata": {"name": "v"}, "spec": {}})
    report = run([svc("a"), job, vol], needs_user())
    assert set(statuses(report)) == {"Service/default/a"}
    named = {"id": "named", "match": {"kinds": ["*"]},
             "assert": {"required": ["metadata"]}}
    report = run([svc("a"), job, vol], named)
    assert statuses(report, "named") == {"Job/default/j": Status.PASS,
                                         "Service/default/a": Status.PASS,
                                         "Volume/default/v": Status.PASS}


def test_namespace_globs_names_and_label_selectors_select() -> None:
    rule = needs_user(match={
        "kinds": ["Service"], "namespaces": ["prod-*"], "names": ["api", "web*"],
        "labels": {"matchLabels": {"tier": "front"},
                   "matchExpressions": [{"key": "pci", "operator": "In", "values": ["yes"]},
                                        {"key": "legacy", "operator": "DoesNotExist"}]}})
    front = {"tier": "front", "pci": "yes"}
    report = run([
        svc("web1", "prod-eu", front),                        # selected
        svc("api", "prod-us", front),                         # selected
        svc("web2", "dev", front),                            # namespace
        svc("db", "prod-eu", front),                          # name
        svc("web3", "prod-eu", {"tier": "back", "pci": "yes"}),  # matchLabels
        svc("web4", "prod-eu", {"tier": "front", "pci": "no"}),  # In
        svc("web5", "prod-eu", {**front, "legacy": "1"}),     # DoesNotExist
    ], rule)
    got = statuses(report)
    assert got.pop("Service/prod-eu/web1") is Status.FAIL
    assert got.pop("Service/prod-us/api") is Status.FAIL
    assert set(got.values()) == {Status.SKIP}
    assert len(got) == 5


def test_not_in_and_exists_operators() -> None:
    rule = needs_user(match={"kinds": ["Service"], "labels": {"matchExpressions": [
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "team", "operator": "Exists"}]}})
    report = run([svc("a", labels={"team": "x"}), svc("b", labels={"team": "x", "env": "dev"}),
                  svc("c")], rule)
    assert statuses(report) == {"Service/default/a": Status.FAIL,
                                "Service/default/b": Status.SKIP,
                                "Service/default/c": Status.SKIP}


def test_exclude_skips_with_a_reason() -> None:
    rule = needs_user(exclude={"kinds": ["Service"], "labels": {"matchLabels": {"legacy": "y"}}})
    report = run([svc("a", labels={"legacy": "y"}), svc("b")], rule)
    assert statuses(report) == {"Service/default/a": Status.SKIP,
                                "Service/default/b": Status.FAIL}
    [skip] = [r for r in report.results if r.status is Status.SKIP]
    assert "exclude" in skip.message
    assert report.summary.skipped == 1
    assert report.summary.checks == 1


def test_policy_documents_are_not_checked_as_resources() -> None:
    rule = {"id": "all", "match": {"kinds": ["*"]}, "assert": True}
    report = evaluate([svc("a"), policy(rule)], cluster=ClusterSpec(), packs=[],
                      policies=[policy(rule)], today=TODAY)
    assert [r.address for r in report.results] == ["Service/default/a"]


# ---------------------------------------------------------------- exceptions


def test_unexpired_exception_excepts_and_expired_one_fails_and_is_reported() -> None:
    exc = [{"address": "Service/default/b", "reason": "vendor image", "expires": "2025-06-01"}]
    on_expiry_day = run([svc("b")], needs_user(exceptions=exc), today=date(2025, 6, 1))
    [res] = on_expiry_day.results
    assert res.status is Status.EXCEPTED
    assert res.exception is not None
    assert not res.exception.expired
    assert on_expiry_day.ok
    assert on_expiry_day.summary.exceptions == 1

    day_after = run([svc("b")], needs_user(exceptions=exc), today=date(2025, 6, 2))
    [res] = day_after.results
    assert res.status is Status.FAIL
    assert res.exception is not None
    assert res.exception.expired
    assert res.exception.expires == date(2025, 6, 1)
    assert day_after.summary.expired_exceptions == 1
    assert "1 expired exception" in day_after.summary.line()
    [diag] = day_after.to_diagnostics()
    assert "exception expired 2025-06-01" in diag.message


def test_exception_addresses_short_forms_and_globs() -> None:
    rule = needs_user(exceptions=[
        {"address": "a", "reason": "short form"},
        {"address": "Service/legacy/*", "reason": "glob", "expires": "2030-01-01"}])
    report = run([svc("a"), svc("old", "legacy"), svc("c")], rule)
    assert statuses(report) == {"Service/default/a": Status.EXCEPTED,
                                "Service/legacy/old": Status.EXCEPTED,
                                "Service/default/c": Status.FAIL}


def test_exception_on_a_passing_resource_changes_nothing() -> None:
    rule = needs_user(exceptions=[{"address": "a", "reason": "r", "expires": "2020-01-01"}])
    report = run([svc("a", user="app")], rule)
    [res] = report.results
    assert res.status is Status.PASS
    assert res.exception is None


# ---------------------------------------------------------------- packs


def test_framework_packs_select_the_baseline_checks_mapped_to_them() -> None:
    def rules_of(pack: str) -> set[str]:
        return {r.id for r in run([svc("a")], packs=(pack,)).rules}

    baseline = rules_of("builtin:baseline")
    assert len(baseline) == 10
    assert rules_of("builtin:soc2") == baseline
    hipaa = rules_of("builtin:hipaa")
    assert "cpu-memory-limits" not in hipaa
    assert "service-healthcheck" not in hipaa
    assert "run-as-non-root" in hipaa
    assert rules_of("builtin:cis-docker") <= baseline
    both = run([svc("a")], packs=("builtin:baseline", "builtin:soc2"))
    assert len(both.rules) == 10  # deduplicated


def test_pack_names_and_unknown_pack_error() -> None:
    assert set(pack_names()) == {"baseline", "soc2", "iso27001", "hipaa", "cis-docker"}
    with pytest.raises(ValidationError) as err:
        run([svc("a")], packs=("builtin:pci",))
    assert "unknown policy pack 'builtin:pci'" in err.value.explain()
    assert "builtin:baseline" in err.value.explain()


def test_file_pack_entries_are_rejected() -> None:
    with pytest.raises(ValidationError) as err:
        run([svc("a")], packs=("policies/extra.yaml",))
    assert "'policies/extra.yaml' is not a built-in pack" in err.value.explain()
    assert "Policy documents in the spec folders are always active" in err.value.explain()


def test_rule_id_clashing_with_a_pack_rule_is_an_error() -> None:
    clash = needs_user(id="run-as-non-root")
    with pytest.raises(ValidationError) as err:
        run([svc("a")], clash, packs=("builtin:baseline",))
    assert "already defined in builtin:baseline" in err.value.explain()


# ---------------------------------------------------------------- report


def test_framework_view_shows_evidenced_failing_and_uncovered_controls() -> None:
    report = run([svc("a", user="1000", cage="hardened")],
                 packs=("builtin:baseline", "builtin:hipaa"))
    hipaa = report.framework("hipaa")
    by_id = {c.id: c for c in hipaa.controls}
    assert by_id["164.312(b)"].status is ControlStatus.NOT_COVERED
    assert by_id["164.312(a)(1)"].status is ControlStatus.PASS
    assert "run-as-non-root" in by_id["164.312(a)(1)"].checks
    assert by_id["164.312(c)(1)"].status is ControlStatus.PASS
    # standard cage: read-only-root and cage-hardened (both warn) map to 164.312(c)(1)
    warned = run([svc("a", user="1000")], packs=("builtin:hipaa",))
    integrity = {c.id: c for c in warned.framework("hipaa").controls}["164.312(c)(1)"]
    assert integrity.status is ControlStatus.WARN
    assert integrity.warned == 2
    root = run([svc("a")], packs=("builtin:baseline",))
    ac = {c.id: c for c in root.framework("HIPAA").controls}["164.312(a)(1)"]
    assert ac.status is ControlStatus.FAIL
    assert "run-as-non-root Service/default/a" in ac.failing
    assert report.framework("builtin:cis-docker").framework == "CIS-Docker"
    with pytest.raises(KeyError):
        report.framework("pci")


def test_user_controls_create_their_own_framework_view() -> None:
    report = run([svc("a")], needs_user(controls=["NIST:AC-6"]))
    view = report.framework("NIST")
    assert [(c.id, c.status) for c in view.controls] == [("AC-6", ControlStatus.FAIL)]


def test_digest_is_deterministic_order_independent_and_tracks_outcomes() -> None:
    a, b = svc("a", user="1"), svc("b")
    one = run([a, b], needs_user())
    two = run([b, a], needs_user())
    assert one.digest == two.digest
    assert one.digest.startswith("sha256:")
    assert len(one.digest) == 71
    moved = run([svc("a", user="1", line=40), svc("b", line=7)], needs_user())
    assert moved.digest == one.digest  # file positions are not part of the digest
    fixed = run([a, svc("b", user="2")], needs_user())
    assert fixed.digest != one.digest
    reworded = run([a, b], needs_user(message="other words"))
    assert reworded.digest != one.digest
    later = run([a, b], needs_user(), today=date(2025, 6, 2))
    assert later.digest != one.digest  # the check date is part of what was attested
    assert one.to_dict()["digest"] == one.digest


def test_to_diagnostics_names_rule_resource_location_and_controls() -> None:
    report = run([svc("b", line=12)], needs_user(), needs_user(id="soft", enforcement="warn"))
    diags = report.to_diagnostics()
    assert [d.severity for d in diags] == ["error", "warning"]
    err = diags[0]
    assert "needs-user" in err.message
    assert "Service/default/b" in err.message
    assert "SOC2:CC6.3" in err.message
    assert str(err.location) == "specs/b.yaml:12:1"
    assert err.path == "spec"
    assert "exception" in err.hint


def test_summary_line_format() -> None:
    resources = [svc(f"s{i}", user="1") for i in range(10)] + [svc("bad"), svc("meh")]
    report = run(resources, needs_user(exclude={"kinds": ["Service"], "names": ["meh"]}),
                 needs_user(id="soft", enforcement="warn",
                            match={"kinds": ["Service"], "names": ["meh"]}))
    assert report.summary.line() == ("12 checks, 10 passed, 1 warning, 1 failure, "
                                     "0 exceptions, 12 skipped")


# ---------------------------------------------------------------- the view


@pytest.mark.parametrize(("ref", "pinned"), [
    ("localhost/app:1", True),
    ("app:1.2-alpine", True),
    ("localhost:5000/team/app:v2", True),
    ("localhost/app@sha256:" + "a" * 64, True),
    ("localhost/app:1@sha256:" + "b" * 64, True),
    ("localhost/app", False),
    ("localhost:5000/app", False),
    ("app:latest", False),
    ("app:", False),
    ("app@sha256:short", False),
])
def test_image_pinned(ref: str, pinned: bool) -> None:
    assert image_pinned(ref) is pinned


@pytest.mark.parametrize(("user", "non_root"), [
    (None, False), ("", False), ("root", False), ("0", False), ("0:1000", False),
    ("root:wheel", False), ("1000", True), ("app", True), ("1000:1000", True),
    ("nobody:nogroup", True),
])
def test_runs_as_non_root(user: str | None, non_root: bool) -> None:
    assert runs_as_non_root(user) is non_root


def test_effective_view_merges_cage_and_spec() -> None:
    profile = Resource.from_dict({"kind": "CageProfile", "metadata": {"name": "p"},
                                  "spec": {"extends": "hardened", "capAdd": ["CAP_CHOWN"],
                                           "pids": 99}})
    res = svc("a", cage="p", capAdd=["net_bind_service"], resources={"cpus": 0.25},
              user="app")
    view = effective_view(res, ClusterSpec(), {"p": profile.spec})  # type: ignore[dict-item]
    eff = view["effective"]
    assert view["spec"]["image"] == "localhost/app:1"
    assert eff["cageName"] == "p"
    assert eff["cageLevel"] == "hardened"
    assert eff["capAdd"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert eff["capDrop"] == ["ALL"]
    assert eff["readOnlyRoot"] is True
    assert eff["noNewPrivileges"] is True
    assert eff["seccomp"] == "generated"
    assert eff["seccompProfile"] is True
    assert eff["pidsLimit"] == 99
    assert eff["cpuLimit"] == 0.25
    assert eff["memoryLimit"]  # the hardened default
    assert eff["runAsNonRoot"] is True
    assert eff["imagePinned"] is True
    assert not any(eff[k] for k in ("privileged", "hostNetwork", "hostPid", "hostIpc"))


def test_effective_view_floor_applies_when_no_cage_and_standard_uses_podman_seccomp() -> None:
    eff = effective_view(svc("a"), ClusterSpec(securityLevel="deterministic"), {})["effective"]
    assert eff["cageLevel"] == "deterministic"
    assert eff["networkNone"] is True
    std = effective_view(svc("a"), ClusterSpec(), {})["effective"]
    assert std["cageLevel"] == "standard"
    assert std["seccomp"] == "default"
    assert std["seccompProfile"] is True
    assert std["readOnlyRoot"] is False


def test_effective_view_only_for_workloads() -> None:
    net = Resource.from_dict({"kind": "Network", "metadata": {"name": "n"}, "spec": {}})
    assert "effective" not in effective_view(net, ClusterSpec(), {})


def test_evaluate_workspace_takes_policies_from_resources_and_packs_from_cluster() -> None:
    from docklock.policy import evaluate_workspace

    cluster = ClusterSpec(policies=("builtin:hipaa",))
    report = evaluate_workspace([svc("a"), policy(needs_user())], cluster, today=TODAY)
    ids = {r.id for r in report.rules}
    assert "needs-user" in ids
    assert "run-as-non-root" in ids
    assert "cpu-memory-limits" not in ids
    assert {r.address for r in report.results} == {"Service/default/a"}
    assert report.checked_on == TODAY
