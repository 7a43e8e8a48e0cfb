"""The `run` and `verify` use cases for Jobs: run a Job to completion in its cage and
record its witness; run it again and compare with the recorded witness.

run: keeps the job's outputs under `.docklock/jobs/<job>/outputs`, writes the witness
to `.docklock/witness/` and appends a `witness` entry to the ledger (signed checkpoint).
verify: the outputs of the re-run are discarded; the comparison is recorded in the
ledger too. Neither raises for a job that exits non-zero or differs: the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.cage.jobs import JobRun, PreparedJob
    from docklock.cage.witness import FieldDifference, Witness
    from docklock.engine.context import Context
    from docklock.load import Workspace


@dataclass(frozen=True)
class JobRunResult:
    """A finished run: its witness (exit code, digests), where things were kept, and
    the job's raw stdout/stderr."""

    witness: Witness
    witness_file: Path
    outputs_folder: Path | None
    ledger_seq: int
    stdout: bytes = b""
    stderr: bytes = b""

    @property
    def ok(self) -> bool:
        return self.witness.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {"witness": self.witness.to_dict(), "witness_digest": self.witness.digest,
                "witness_file": str(self.witness_file),
                "outputs_folder": (str(self.outputs_folder)
                                   if self.outputs_folder is not None else None),
                "ledger_seq": self.ledger_seq}


@dataclass(frozen=True)
class VerifyResult:
    """A re-run compared with the recorded witness; `differences` empty: identical."""

    expected: Witness
    actual: Witness
    differences: tuple[FieldDifference, ...]
    ledger_seq: int

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.actual.job, "identical": self.identical,
                "expected_digest": self.expected.digest, "actual_digest": self.actual.digest,
                "differences": [d.to_dict() for d in self.differences]}


def run(ctx: Context, job: str) -> JobRunResult:
    """Run `job` (a Job name or address) in its cage and record its witness."""
    from docklock.cage.jobs import job_folder, keep_outputs, record_in_ledger, witness_entry
    from docklock.cage.witness import save_witness

    workspace, prepared = _prepare(ctx, job)
    result = _execute(ctx, workspace, prepared)
    kept = keep_outputs(prepared, job_folder(ctx.paths, prepared.address) / "outputs")
    witness = result.witness
    path = save_witness(witness, ctx.paths.witness)
    seq = record_in_ledger(ctx.paths, witness_entry(witness, "run"))
    return JobRunResult(witness, path, kept, seq, result.stdout, result.stderr)


def verify(ctx: Context, job: str) -> VerifyResult:
    """Run `job` again and compare it with its recorded witness, field by field.
    Raises (before running) when no witness was recorded for it."""
    from docklock.cage.jobs import discard_outputs, record_in_ledger, witness_entry
    from docklock.cage.witness import compare_witnesses, load_witness

    workspace, prepared = _prepare(ctx, job)
    try:
        expected = load_witness(str(prepared.address), ctx.paths.witness)
    except BaseException:
        discard_outputs(prepared)
        raise
    result = _execute(ctx, workspace, prepared)
    discard_outputs(prepared)
    actual = result.witness
    diffs = tuple(compare_witnesses(expected, actual))
    seq = record_in_ledger(ctx.paths, witness_entry(actual, "verify", differences=diffs))
    return VerifyResult(expected, actual, diffs, seq)


def _prepare(ctx: Context, job: str) -> tuple[Workspace, PreparedJob]:
    from docklock.cage.jobs import cage_profiles, find_job, prepare_job

    workspace = ctx.load()
    resource = find_job(workspace.resources, job)
    prepared = prepare_job(resource, paths=ctx.paths,
                           floor=workspace.cluster_spec.securityLevel,
                           profiles=cage_profiles(workspace.resources),
                           cluster=workspace.cluster_name)
    return workspace, prepared


def _execute(ctx: Context, workspace: Workspace, prepared: PreparedJob) -> JobRun:
    from docklock.cage.jobs import discard_outputs, run_prepared

    try:
        with ctx.connect(workspace) as runtime:
            return run_prepared(runtime, prepared)
    except BaseException:
        discard_outputs(prepared)
        raise
