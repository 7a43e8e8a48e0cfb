"""The compliance views of a policy report: every built-in framework catalog (SOC2,
ISO27001, HIPAA, CIS-Docker) and any framework only user rules mention, each control
with the checks mapped to it and their outcome.

Its own module so the policy gate can build the report of a workspace without rules
(no packs, no Policy documents: the common case) without importing the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from docklock.policy import catalog
from docklock.policy.results import (
    ControlStatus,
    ControlView,
    FrameworkView,
    RuleResult,
    Status,
)

if TYPE_CHECKING:
    from docklock.policy.engine import Rule


def framework_views(rules: Sequence[Rule],
                     results: Sequence[RuleResult]) -> dict[str, FrameworkView]:
    per_rule: dict[str, dict[Status, int]] = {r.id: dict.fromkeys(Status, 0) for r in rules}
    failing: dict[str, list[str]] = {r.id: [] for r in rules}
    for res in results:
        per_rule[res.rule][res.status] += 1
        if res.status in (Status.FAIL, Status.WARN):
            failing[res.rule].append(f"{res.rule} {res.address}")

    # Every built-in catalog is shown (uncovered controls are an answer too), then any
    # framework only user rules mention (e.g. NIST:AC-6).
    wanted: dict[str, None] = dict.fromkeys(catalog.frameworks())
    for rule in rules:
        for prefix in sorted(rule.frameworks()):
            wanted[prefix] = None

    views: dict[str, FrameworkView] = {}
    known = catalog.frameworks()
    for prefix in wanted:
        fw = known.get(prefix)
        control_ids: dict[str, str] = dict(fw.controls) if fw is not None else {}
        mapped: dict[str, list[Rule]] = {}
        for rule in rules:
            for control in rule.controls:
                fw_prefix, _, cid = control.partition(":")
                if fw_prefix == prefix:
                    control_ids.setdefault(cid, "")
                    mapped.setdefault(cid, []).append(rule)
        controls = []
        for cid, title in control_ids.items():
            checks = mapped.get(cid, [])
            counts = {s: sum(per_rule[r.id][s] for r in checks) for s in Status}
            if not checks:
                status = ControlStatus.NOT_COVERED
            elif counts[Status.FAIL]:
                status = ControlStatus.FAIL
            elif counts[Status.WARN]:
                status = ControlStatus.WARN
            elif counts[Status.PASS] or counts[Status.EXCEPTED]:
                status = ControlStatus.PASS
            else:
                status = ControlStatus.NOT_EVALUATED
            controls.append(ControlView(
                id=cid, title=title, checks=tuple(r.id for r in checks), status=status,
                passed=counts[Status.PASS], failed=counts[Status.FAIL],
                warned=counts[Status.WARN], excepted=counts[Status.EXCEPTED],
                failing=tuple(f for r in checks for f in failing[r.id])))
        views[prefix] = FrameworkView(prefix, fw.title if fw is not None else prefix,
                                      tuple(controls))
    return views
