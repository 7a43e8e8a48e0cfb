"""The DockLock exception tree.

Every failure a user can see is a DockLockError: it carries a one-line message, an
optional source location (file:line:col), an optional hint and the exit code the CLI
uses. Validation collects many problems into one ValidationError so a user sees every
problem in one run. The CLI is the only place that catches these and exits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # plan --detailed-exitcode with changes, drift found, determinism mismatch
EXIT_INTERRUPTED = 130


@dataclass(frozen=True, order=True)
class Location:
    """A position in a spec file; line and column are 1-based (0 means unknown)."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.column <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"

    def relative_to(self, root: Path) -> Location:
        try:
            rel = str(Path(self.file).resolve().relative_to(root.resolve()))
        except ValueError:
            return self
        return Location(rel, self.line, self.column)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the input; `path` is the JSON path inside the document."""

    message: str
    location: Location | None = None
    path: str = ""
    hint: str = ""
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        at = f" (at {self.path})" if self.path else ""
        hint = f" — hint: {self.hint}" if self.hint else ""
        return f"{where}{self.severity}: {self.message}{at}{hint}"

    def line(self) -> str:
        """The line a person reads, as `validate` prints it and every command prints a
        ValidationError: `file:line:col: message (hint)`, warnings marked `warning: `."""
        where = f"{self.location}: " if self.location else ""
        hint = f" ({self.hint})" if self.hint else ""
        warn = "warning: " if self.severity == "warning" else ""
        return f"{where}{warn}{self.message}{hint}"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class DockLockError(Exception):
    """Base of every user-facing error."""

    exit_code: int = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def explain(self) -> str:
        """One line for a person: where, what, and how to fix it."""
        where = f"{self.location}: " if self.location else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"error: {where}{self.message}{hint}"

    def to_dict(self) -> dict[str, object]:
        return Diagnostic(self.message, self.location, hint=self.hint).to_dict()


class ValidationError(DockLockError):
    """One or more problems in the specs; nothing reached Podman."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(sorted(diagnostics, key=_diag_key))
        first = self.diagnostics[0] if self.diagnostics else Diagnostic("invalid input")
        n = len(self.diagnostics)
        summary = first.message if n == 1 else f"{n} problems found; first: {first.message}"
        super().__init__(summary, location=first.location, hint=first.hint)

    def explain(self) -> str:
        """Every problem on its own line, then the count: exactly what `validate`
        prints for the same specs, whichever command (plan, apply, ...) found them."""
        return "\n".join([*(d.line() for d in self.diagnostics), problems_found(
            sum(d.severity == "error" for d in self.diagnostics))])


def problems_found(n: int) -> str:
    """The summary line under a list of problems: `2 problems found`."""
    return f"{n} problem{'s' if n != 1 else ''} found"


def _diag_key(d: Diagnostic) -> tuple[str, int, int, str]:
    loc = d.location or Location("")
    return (loc.file, loc.line, loc.column, d.message)


def raise_if_errors(diagnostics: Iterable[Diagnostic]) -> None:
    """Raise one ValidationError for every error-severity diagnostic collected."""
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise ValidationError(errors)


class SpecError(DockLockError):
    """A single problem in a spec file (used when collection is not possible)."""


class WorkspaceError(DockLockError):
    """No workspace, or a workspace that cannot be used."""


class CueError(DockLockError):
    """The cue executable is missing or rejected a CUE agreement."""


class PolicyError(DockLockError):
    """A deny-enforced policy rule failed, or a policy is malformed."""


class GraphError(DockLockError):
    """A dependency cycle or a dangling reference."""


class StateError(DockLockError):
    """The recorded state is corrupt, locked, or does not match a plan."""


class LockError(StateError):
    """Another DockLock process holds the state lock."""


class StalePlanError(StateError):
    """A saved plan no longer matches the state or the specs."""


class BackendError(DockLockError):
    """The state/ledger backend (docklock.yaml `spec.backend`) cannot be reached or used:
    its connection variable is unset, the database refused, or the workspace moved."""


class PodmanError(DockLockError):
    """Podman is unreachable or refused an operation."""


class PodmanUnavailableError(PodmanError):
    """No Podman API service answered at any URL tried."""


class ApplyError(DockLockError):
    """An apply stopped part-way; state holds what succeeded."""


class HealthTimeoutError(ApplyError):
    """A dependency did not reach its condition in time."""


class CageError(DockLockError):
    """A cage profile is invalid or weaker than the cluster floor."""


class LedgerError(DockLockError):
    """The ledger is damaged, or a signature or proof does not verify."""


class SignatureError(LedgerError):
    """A signature (either half of a hybrid signature) does not verify."""


class WitnessError(LedgerError):
    """A witness refused or could not be reached, its quorum was not met, or it saw a
    different (newer or diverging) history of this ledger."""


class KeyMaterialError(DockLockError):
    """A signing key is missing, unreadable or has unsafe permissions."""


class DeterminismMismatch(DockLockError):
    """A job re-run did not reproduce its witness (exit 2)."""

    exit_code = EXIT_CHANGES
