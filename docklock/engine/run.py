"""The `run` and `verify` use cases for Jobs: run a Job to completion in its cage and
record its witness; run it again and compare with the recorded witness.

run: keeps the job's outputs under `.docklock/jobs/<job>/outputs` and its stdout and
stderr beside them (0600 files `stdout`, `stderr`), writes the witness to
`.docklock/witness/` and appends a `witness` entry to the ledger (signed checkpoint).
verify: first compares the recorded host environment with this host's (kernel, CPU,
Podman, runtime...: reasons a replay may differ, never a difference themselves), then
the outputs. A differing re-run leaves its evidence in the job folder
(`verify-outputs/`, `verify-stdout`, `verify-stderr`, replacing older evidence); an
identical one discards its outputs and removes older evidence. The comparison is
recorded in the ledger too. Neither raises for a job that exits non-zero or differs:
the result says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.cage.jobs import JobRun, PreparedJob
    from docklock.cage.witness import FieldDifference, LineDifference, Witness
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
    job_folder: Path | None = None  # where `stdout` and `stderr` were kept

    @property
    def ok(self) -> bool:
        return self.witness.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return {"witness": self.witness.to_dict(), "witness_digest": self.witness.digest,
                "witness_file": str(self.witness_file),
                "outputs_folder": (str(self.outputs_folder)
                                   if self.outputs_folder is not None else None),
                "ledger_seq": self.ledger_seq,
                "job_folder": str(self.job_folder) if self.job_folder is not None else None}


@dataclass(frozen=True)
class VerifyResult:
    """A re-run compared with the recorded witness; `differences` empty: identical.

    `environment_differences`: recorded host facts this host does not share (reasons a
    replay may differ; never a difference of the run); `environment_recorded` False
    when the witness predates environments (nothing to compare). When different,
    `evidence_folder` is the job folder holding the re-run's `verify-*` files and
    `first_lines` the first differing line of each differing stream whose both sides
    are kept and UTF-8.
    """

    expected: Witness
    actual: Witness
    differences: tuple[FieldDifference, ...]
    ledger_seq: int
    environment_differences: tuple[FieldDifference, ...] = ()
    environment_recorded: bool = False
    evidence_folder: Path | None = None
    first_lines: tuple[LineDifference, ...] = ()

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        # --json is stable: keys are only ever added.
        return {"job": self.actual.job, "identical": self.identical,
                "expected_digest": self.expected.digest, "actual_digest": self.actual.digest,
                "differences": [d.to_dict() for d in self.differences],
                "environment_recorded": self.environment_recorded,
                "environment_differences": [d.to_dict() for d in self.environment_differences],
                "evidence_folder": (str(self.evidence_folder)
                                    if self.evidence_folder is not None else None),
                "first_differing_lines": [d.to_dict() for d in self.first_lines]}


def run(ctx: Context, job: str) -> JobRunResult:
    """Run `job` (a Job name or address) in its cage and record its witness."""
    from docklock.cage.jobs import (
        discard_verify_evidence,
        job_folder,
        keep_outputs,
        keep_streams,
        record_in_ledger,
        witness_entry,
    )
    from docklock.cage.witness import save_witness

    with _prepared(ctx, job) as (workspace, prepared):
        result = _execute(ctx, workspace, prepared)
        folder = job_folder(ctx.paths, prepared.address)
        kept = keep_outputs(prepared, folder / "outputs")
        keep_streams(folder, result)
        discard_verify_evidence(folder)  # it compared against the witness replaced now
        witness = result.witness
        path = save_witness(witness, ctx.paths.witness)
        seq = record_in_ledger(ctx.paths, witness_entry(witness, "run"))
    return JobRunResult(witness, path, kept, seq, result.stdout, result.stderr, folder)


def verify(ctx: Context, job: str, *, keep_older_evidence: bool = False) -> VerifyResult:
    """Run `job` again and compare it with its recorded witness, field by field.
    Raises (before running) when no witness was recorded for it.

    An identical re-run removes older `verify-*` evidence unless `keep_older_evidence`
    (`verify --repeat`: a later identical round must not delete an earlier differing
    round's evidence)."""
    from docklock.cage.witness import load_witness

    with _prepared(ctx, job) as (workspace, prepared):
        expected = load_witness(str(prepared.address), ctx.paths.witness)
        return _verify_locked(ctx, workspace, prepared, expected, keep_older_evidence)


def _verify_locked(ctx: Context, workspace: Workspace, prepared: PreparedJob,
                   expected: Witness, keep_older_evidence: bool) -> VerifyResult:
    from docklock.cage.jobs import (
        discard_outputs,
        discard_verify_evidence,
        job_folder,
        keep_verify_evidence,
        record_in_ledger,
        witness_entry,
    )
    from docklock.cage.witness import compare_environments, compare_witnesses

    result = _execute(ctx, workspace, prepared)
    actual = result.witness
    # The environment first: it explains a mismatch before the mismatch is shown.
    env_diffs = tuple(compare_environments(expected.environment, actual.environment))
    diffs = tuple(compare_witnesses(expected, actual))
    folder = job_folder(ctx.paths, prepared.address)
    evidence: Path | None = None
    first_lines: tuple[LineDifference, ...] = ()
    if diffs:
        try:
            evidence = keep_verify_evidence(prepared, result, folder)
        except BaseException:
            discard_verify_evidence(folder)  # half evidence (a full disk) is no evidence
            raise
        first_lines = _first_lines(folder, expected, result, diffs)
    else:
        discard_outputs(prepared)
        if not keep_older_evidence:
            discard_verify_evidence(folder)
    seq = record_in_ledger(ctx.paths, witness_entry(actual, "verify", differences=diffs,
                                                    environment_differences=env_diffs))
    return VerifyResult(expected, actual, diffs, seq, env_diffs, bool(expected.environment),
                        evidence, first_lines)


@contextmanager
def _prepared(ctx: Context, job: str) -> Iterator[tuple[Workspace, PreparedJob]]:
    """Load, find the Job, take its lock, then prepare it (a fresh outputs folder).

    Under the lock no other run or verify of this job is alive, so `run-*` folders in
    its job folder are what a killed one left behind: swept first. A failure anywhere
    inside discards this run's outputs folder (a no-op once it was kept).
    """
    from docklock.cage.joblock import job_lock
    from docklock.cage.jobs import (
        cage_profiles,
        discard_outputs,
        find_job,
        job_folder,
        prepare_job,
        sweep_stale_runs,
    )

    workspace = ctx.load()
    resource = find_job(workspace.resources, job)
    with job_lock(ctx.paths, resource.address):
        sweep_stale_runs(job_folder(ctx.paths, resource.address))
        prepared = prepare_job(resource, paths=ctx.paths,
                               floor=workspace.cluster_spec.securityLevel,
                               profiles=cage_profiles(workspace.resources),
                               cluster=workspace.cluster_name)
        try:
            yield workspace, prepared
        except BaseException:
            discard_outputs(prepared)
            raise


def _first_lines(folder: Path, expected: Witness, rerun: JobRun,
                 diffs: tuple[FieldDifference, ...]) -> tuple[LineDifference, ...]:
    """The first differing line of each differing stream the recorded run kept."""
    from docklock.cage.jobs import STDERR_FILE, STDOUT_FILE, kept_stream
    from docklock.cage.witness import first_differing_line

    fields = {d.field for d in diffs}
    found = []
    for stream, name, digest, now in (
            ("stdout", STDOUT_FILE, expected.stdout_digest, rerun.stdout),
            ("stderr", STDERR_FILE, expected.stderr_digest, rerun.stderr)):
        if f"{stream}_digest" not in fields:
            continue
        recorded = kept_stream(folder, name, digest)
        line = first_differing_line(stream, recorded, now) if recorded is not None else None
        if line is not None:
            found.append(line)
    return tuple(found)


def _execute(ctx: Context, workspace: Workspace, prepared: PreparedJob) -> JobRun:
    """Run it; only inside `_prepared`, which holds the job's lock and discards this
    run's outputs folder on any failure."""
    from docklock.cage.jobs import run_prepared, sweep_job_containers

    with ctx.connect(workspace) as runtime:
        sweep_job_containers(runtime, prepared)
        return run_prepared(runtime, prepared)
