"""`docklock run JOB` and `docklock verify JOB`: run a Job in its cage, record or check
its witness.

run: runs the job, prints its stdout/stderr as they were, keeps its outputs under
`.docklock/jobs/<job>/outputs`, writes the witness to `.docklock/witness/` and appends a
`witness` entry to the ledger. Exit 0 if the job exited 0, else 1.
verify: runs the job again and compares it with the recorded witness field by field:
exit 0 identical, exit 2 with the differing fields named (DeterminismMismatch).
"""

from __future__ import annotations

import argparse
from typing import Any

from docklock.cli._common import Output, connect_podman, workspace_of
from docklock.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK

# Engine imports stay inside the handlers so `docklock --help` does not load them.


def register(sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run a Job in its cage, record a witness",
                         description="Run a Job to completion inside its cage and record its "
                                     "witness (image, command, env, inputs, outputs digests).")
    run.add_argument("job", metavar="JOB", help="a Job name or address (Job/default/report)")
    run.add_argument("--json", action="store_true", help="print the witness as JSON")
    run.set_defaults(handler=_run)

    verify = sub.add_parser("verify", parents=[common],
                            help="re-run a Job and compare it with its witness",
                            description="Run a Job again and compare the result with the "
                                        "recorded witness. Exit 0 identical, 2 different.")
    verify.add_argument("job", metavar="JOB", help="a Job name or address (Job/default/report)")
    verify.add_argument("--json", action="store_true", help="print the comparison as JSON")
    verify.set_defaults(handler=_verify)


def _prepare(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from docklock.cage.jobs import cage_profiles, find_job, prepare_job
    from docklock.load import load_workspace

    paths = workspace_of(args)
    workspace = load_workspace(paths)
    job = find_job(workspace.resources, args.job)
    prepared = prepare_job(job, paths=paths, floor=workspace.cluster_spec.securityLevel,
                           profiles=cage_profiles(workspace.resources),
                           cluster=workspace.cluster_name)
    return paths, workspace, prepared


def _execute(args: argparse.Namespace, workspace: Any, prepared: Any) -> Any:
    from docklock.cage.jobs import discard_outputs, run_prepared

    try:
        with connect_podman(args, workspace) as runtime:
            return run_prepared(runtime, prepared)
    except BaseException:
        discard_outputs(prepared)
        raise


def _run(args: argparse.Namespace, out: Output) -> int:
    from docklock.cage.jobs import job_folder, keep_outputs, record_in_ledger, witness_entry
    from docklock.cage.witness import save_witness

    paths, workspace, prepared = _prepare(args)
    result = _execute(args, workspace, prepared)
    kept = keep_outputs(prepared, job_folder(paths, prepared.address) / "outputs")
    witness = result.witness
    path = save_witness(witness, paths.witness)
    seq = record_in_ledger(paths, witness_entry(witness, "run"))
    if args.json:
        out.json({"witness": witness.to_dict(), "witness_digest": witness.digest,
                  "witness_file": str(path), "outputs_folder": str(kept) if kept else None,
                  "ledger_seq": seq})
    else:
        _write_raw(out.stdout, result.stdout)
        _write_raw(out.stderr, result.stderr)
        out.info(f"{witness.job}: exit {witness.exit_code} "
                 f"(cage {witness.cage}, seed {witness.seed})")
        if kept is not None:
            out.info(f"  outputs: {len(witness.outputs)} file(s) in "
                     f"{kept.relative_to(paths.root)}")
        out.info(f"  witness: {path.relative_to(paths.root)} ({witness.digest}), "
                 f"ledger entry {seq}")
    if witness.exit_code != 0:
        out.error(f"error: {witness.job} exited with code {witness.exit_code} "
                  "(its witness was recorded)")
        return EXIT_ERROR
    return EXIT_OK


def _verify(args: argparse.Namespace, out: Output) -> int:
    from docklock.cage.jobs import discard_outputs, record_in_ledger, witness_entry
    from docklock.cage.witness import COMPARED, compare_witnesses, load_witness

    paths, workspace, prepared = _prepare(args)
    try:
        expected = load_witness(str(prepared.address), paths.witness)
    except BaseException:
        discard_outputs(prepared)
        raise
    result = _execute(args, workspace, prepared)
    discard_outputs(prepared)
    actual = result.witness
    diffs = compare_witnesses(expected, actual)
    record_in_ledger(paths, witness_entry(actual, "verify", differences=diffs))
    if args.json:
        out.json({"job": actual.job, "identical": not diffs,
                  "expected_digest": expected.digest, "actual_digest": actual.digest,
                  "differences": [d.to_dict() for d in diffs]})
    elif not diffs:
        out.line(f"{actual.job}: identical to its witness ({len(COMPARED)} fields compared, "
                 f"{actual.digest})")
    else:
        out.line(f"{actual.job}: DIFFERENT from its witness in {len(diffs)} field(s):")
        for diff in diffs:
            out.line(f"  {out.paint(diff.field, 'red')}: {diff.expected} → {diff.actual}")
    if diffs:
        names = ", ".join(d.field for d in diffs)
        out.error(f"error: {actual.job} did not reproduce its witness; differing fields: "
                  f"{names}")
        return EXIT_CHANGES
    return EXIT_OK


def _write_raw(stream: Any, data: bytes) -> None:
    if not data:
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()
        buffer.write(data)
        buffer.flush()
    else:
        stream.write(data.decode("utf-8", errors="replace"))

