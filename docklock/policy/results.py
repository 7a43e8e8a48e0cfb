"""The policy report as data: per rule and resource results, summary, framework views.

Everything here is immutable and JSON-ready through `to_dict()`. `PolicyReport.digest`
is the SHA-256 of the canonical JSON of `PolicyReport.body()`: what was checked (packs,
each rule's id, source and definition digest, the check date) and every outcome. File
locations are not part of the digest, so the same specs checked from another checkout
give the same digest; the plan and the ledger record it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from docklock.errors import Diagnostic, Location
from docklock.objects import canonical_json, sha256_hex

REPORT_FORMAT = "docklock.policy-report/v1"


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 - a status, not a secret
    FAIL = "FAIL"  # a deny rule failed: stops validate and plan
    WARN = "WARN"  # a warn rule failed: shown and recorded, does not stop anything
    SKIP = "SKIP"  # the rule targets this kind but match/exclude left the resource out
    EXCEPTED = "EXCEPTED"  # failed, but an unexpired exception accepts the risk


@dataclass(frozen=True)
class ExceptionRef:
    """The exception that applied to (or expired for) one result.

    `source` is the Policy document whose `spec.exceptions` granted it; empty when the
    exception is written on the rule itself (then the key is left out of `to_dict`).
    """

    address: str
    reason: str
    expires: date | None = None
    expired: bool = False
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address, "reason": self.reason,
                               "expires": self.expires.isoformat() if self.expires else None,
                               "expired": self.expired}
        if self.source:
            out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule checked against one resource.

    `message` is the rule's message for FAIL/WARN/EXCEPTED (empty for PASS), or the
    reason for SKIP; `detail` and `path` say which part of the view broke the assert.
    """

    rule: str
    address: str
    status: Status
    message: str = ""
    detail: str = ""
    path: str = ""
    exception: ExceptionRef | None = None
    location: Location | None = field(default=None, compare=False)

    def body(self) -> dict[str, Any]:
        # A StrEnum member serialises as its value; skipping `.value` matters at 100k rows.
        out: dict[str, Any] = {"rule": self.rule, "address": self.address,
                               "status": self.status}
        if self.message:
            out["message"] = self.message
        if self.detail:
            out["detail"] = self.detail
        if self.path:
            out["path"] = self.path
        if self.exception is not None:
            out["exception"] = self.exception.to_dict()
        return out

    def to_dict(self) -> dict[str, Any]:
        out = self.body()
        loc = self.location
        out["location"] = (None if loc is None else
                           {"file": loc.file, "line": loc.line, "column": loc.column})
        return out


@dataclass(frozen=True)
class RuleInfo:
    """What a report says about each active rule (the rule itself lives in the engine)."""

    id: str
    title: str
    severity: str
    enforcement: str
    message: str
    controls: tuple[str, ...]
    source: str  # builtin:baseline, or the Policy address
    digest: str  # sha256 of the rule's canonical definition
    location: Location | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "severity": self.severity,
                "enforcement": self.enforcement, "message": self.message,
                "controls": list(self.controls), "source": self.source,
                "digest": self.digest}


@dataclass(frozen=True)
class Summary:
    checks: int = 0  # evaluated results: passed + warnings + failures + exceptions
    passed: int = 0
    warnings: int = 0
    failures: int = 0
    exceptions: int = 0
    skipped: int = 0
    expired_exceptions: int = 0

    def line(self) -> str:
        """`12 checks, 10 passed, 1 warning, 1 failure, 0 exceptions`."""
        parts = [_n(self.checks, "check"), f"{self.passed} passed",
                 _n(self.warnings, "warning"), _n(self.failures, "failure"),
                 _n(self.exceptions, "exception")]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.expired_exceptions:
            parts.append(_n(self.expired_exceptions, "expired exception"))
        return ", ".join(parts)

    def to_dict(self) -> dict[str, int]:
        return {"checks": self.checks, "passed": self.passed, "warnings": self.warnings,
                "failures": self.failures, "exceptions": self.exceptions,
                "skipped": self.skipped, "expiredExceptions": self.expired_exceptions}


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class ControlStatus(StrEnum):
    FAIL = "fail"  # a deny check mapped to it failed
    WARN = "warn"  # only warn checks failed
    PASS = "pass"  # noqa: S105 - evidenced: every evaluated check passed (or is excepted)
    NOT_EVALUATED = "not-evaluated"  # mapped checks exist but matched no resource
    NOT_COVERED = "not-covered"  # no active check evidences it


@dataclass(frozen=True)
class ControlView:
    id: str  # without the framework prefix, e.g. CC6.1
    title: str
    checks: tuple[str, ...]
    status: ControlStatus
    passed: int = 0
    failed: int = 0
    warned: int = 0
    excepted: int = 0
    failing: tuple[str, ...] = ()  # "rule-id Kind/ns/name" for FAIL and WARN results

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "checks": list(self.checks),
                "status": self.status.value, "passed": self.passed, "failed": self.failed,
                "warned": self.warned, "excepted": self.excepted,
                "failing": list(self.failing)}


@dataclass(frozen=True)
class FrameworkView:
    """Trivy-style compliance view: each control, the checks evidencing it, its status."""

    framework: str  # prefix used in controls, e.g. SOC2
    title: str
    controls: tuple[ControlView, ...]

    def count(self, status: ControlStatus) -> int:
        return sum(1 for c in self.controls if c.status is status)

    def to_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, "title": self.title,
                "controls": [c.to_dict() for c in self.controls],
                "counts": {s.value: self.count(s) for s in ControlStatus}}


@dataclass(frozen=True)
class PolicyReport:
    """The outcome of checking resources against every active rule."""

    checked_on: date
    packs: tuple[str, ...]
    rules: tuple[RuleInfo, ...]
    results: tuple[RuleResult, ...]
    summary: Summary
    frameworks: Mapping[str, FrameworkView] = field(default_factory=dict)
    digest: str = ""

    @staticmethod
    def build(*, on: date, packs: tuple[str, ...], rules: tuple[RuleInfo, ...],
              results: tuple[RuleResult, ...],
              frameworks: Mapping[str, FrameworkView]) -> PolicyReport:
        counts = dict.fromkeys(Status, 0)
        expired = 0
        for r in results:
            counts[r.status] += 1
            if r.exception is not None and r.exception.expired:
                expired += 1
        summary = Summary(
            checks=len(results) - counts[Status.SKIP], passed=counts[Status.PASS],
            warnings=counts[Status.WARN], failures=counts[Status.FAIL],
            exceptions=counts[Status.EXCEPTED], skipped=counts[Status.SKIP],
            expired_exceptions=expired)
        report = PolicyReport(on, packs, rules, results, summary, dict(frameworks))
        digest = "sha256:" + sha256_hex(canonical_json(report.body()))
        return PolicyReport(on, packs, rules, results, summary, dict(frameworks), digest)

    def body(self) -> dict[str, Any]:
        """What the digest covers."""
        return {
            "format": REPORT_FORMAT,
            "date": self.checked_on.isoformat(),
            "packs": list(self.packs),
            "rules": [r.to_dict() for r in self.rules],
            "results": [r.body() for r in self.results],
            "summary": self.summary.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        out = self.body()
        out["results"] = [r.to_dict() for r in self.results]
        out["frameworks"] = {k: v.to_dict() for k, v in sorted(self.frameworks.items())}
        out["digest"] = self.digest
        return out

    def rule(self, rule_id: str) -> RuleInfo:
        for info in self.rules:
            if info.id == rule_id:
                return info
        raise KeyError(rule_id)

    @property
    def deny_failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status is Status.FAIL)

    @property
    def warnings(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status is Status.WARN)

    @property
    def excepted(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if r.status is Status.EXCEPTED)

    @property
    def expired_exceptions(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results
                     if r.exception is not None and r.exception.expired)

    @property
    def ok(self) -> bool:
        """True when nothing deny-enforced failed (warnings allowed)."""
        return self.summary.failures == 0

    def framework(self, name: str) -> FrameworkView:
        """The view for a framework by prefix or pack name (soc2, SOC2, cis-docker...)."""
        wanted = _fold(name.removeprefix("builtin:"))
        for key, view in self.frameworks.items():
            if _fold(key) == wanted:
                return view
        raise KeyError(name)

    def to_diagnostics(self, *, locate: Callable[[RuleResult], Location | None] | None = None,
                       ) -> list[Diagnostic]:
        """Deny failures as errors, warnings (expired exceptions included) as warnings.

        Each names the rule, the resource address, the controls, and points at the
        resource's file:line, so validate and plan can show them with every other problem.
        `locate(result)` may point closer, at the key `result.path` names (it is called
        only for the results reported, and None keeps the resource's location).
        """
        by_id = {r.id: r for r in self.rules}
        out: list[Diagnostic] = []
        for res in self.results:
            info = by_id[res.rule]
            controls = f" [controls: {', '.join(info.controls)}]" if info.controls else ""
            if res.status in (Status.FAIL, Status.WARN):
                expired = ""
                if res.exception is not None and res.exception.expired:
                    expired = f" (exception expired {res.exception.expires})"
                where = (locate(res) if locate is not None else None) or res.location
                out.append(Diagnostic(
                    message=(f"policy {res.rule} ({info.severity}, {info.enforcement}) "
                             f"failed for {res.address}: {res.message}{expired}{controls}"),
                    location=where,
                    path=res.path,
                    hint=_hint(res, info),
                    severity="error" if res.status is Status.FAIL else "warning",
                ))
        return out


def _hint(res: RuleResult, info: RuleInfo) -> str:
    what = f"{res.detail}; " if res.detail else ""
    if res.exception is not None and res.exception.expired:
        return (f"{what}fix the resource, or renew the exception for {res.address} "
                f"(expired {res.exception.expires}) with a new expiry date")
    # Any Policy document may except any active rule, built-in pack rules included.
    return (f"{what}fix the resource, or accept the risk in a Policy document: "
            f"spec.exceptions: [{{rule: {info.id}, address: {res.address}, "
            f"reason: ..., expires: YYYY-MM-DD}}]")


def _fold(text: str) -> str:
    return text.replace("-", "").replace("_", "").lower()
