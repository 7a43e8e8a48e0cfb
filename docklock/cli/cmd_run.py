"""`docklock run JOB` and `docklock verify JOB`: run a Job in its cage, record or check
its witness.

The CLI layer over docklock.engine.run.

run: runs the job, prints its stdout/stderr as they were, keeps its outputs under
`.docklock/jobs/<job>/outputs` (and its stdout/stderr beside them), writes the witness
to `.docklock/witness/` and appends a `witness` entry to the ledger. Exit 0 if the job
exited 0, else 1.
verify: runs the job again; first says which recorded host facts differ here (kernel,
CPU, Podman...), then compares the run with the witness field by field: exit 0
identical, exit 2 with the differing fields named (DeterminismMismatch), the first
differing stdout/stderr line, and where the re-run's evidence was kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docklock.cli._common import Output, context_of, whole_number
from docklock.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from docklock.engine.run import VerifyResult

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
                                        "recorded witness. Host facts recorded with it "
                                        "(kernel, CPU, Podman, runtime) that differ here are "
                                        "listed first, as reasons a replay may differ. A "
                                        "different re-run keeps its outputs and stdout/stderr "
                                        "in .docklock/jobs/<job>/ (verify-*). Exit 0 "
                                        "identical, 2 different.")
    verify.add_argument("job", metavar="JOB", help="a Job name or address (Job/default/report)")
    verify.add_argument("--json", action="store_true", help="print the comparison as JSON")
    verify.add_argument("--repeat", type=whole_number(1, 100), default=1, metavar="N",
                        help="verify N times in a row (a source that differs only now and "
                             "then shows up); exit 2 if any round differs")
    verify.set_defaults(handler=_verify)


def _run(args: argparse.Namespace, out: Output) -> int:
    from docklock.engine.run import run

    ctx = context_of(args)
    result = run(ctx, args.job)
    witness = result.witness
    root = ctx.paths.root
    if args.json:
        out.json(result.to_dict())
    else:
        _write_raw(out.stdout, result.stdout)
        _write_raw(out.stderr, result.stderr)
        out.info(f"{witness.job}: exit {witness.exit_code} "
                 f"(cage {witness.cage}, seed {witness.seed})")
        if result.outputs_folder is not None:
            out.info(f"  outputs: {len(witness.outputs)} file(s) in "
                     f"{result.outputs_folder.relative_to(root)}")
        out.info(f"  witness: {result.witness_file.relative_to(root)} ({witness.digest}), "
                 f"ledger entry {result.ledger_seq}")
    if witness.exit_code != 0:
        out.error(f"error: {witness.job} exited with code {witness.exit_code} "
                  "(its witness was recorded)")
        return EXIT_ERROR
    return EXIT_OK


def _verify(args: argparse.Namespace, out: Output) -> int:
    if args.repeat > 1:
        return _verify_repeat(args, out)
    from docklock.cage.witness import COMPARED
    from docklock.engine.run import verify

    ctx = context_of(args)
    result = verify(ctx, args.job)
    actual, diffs = result.actual, result.differences
    if args.json:
        out.json(result.to_dict())
    else:
        _print_environment(out, result)
        if not diffs:
            out.line(f"{actual.job}: identical to its witness ({len(COMPARED)} fields "
                     f"compared, {actual.digest})")
        else:
            _print_differences(out, result, ctx.paths.root)
    if diffs:
        names = ", ".join(d.field for d in diffs)
        out.error(f"error: {actual.job} did not reproduce its witness; differing fields: "
                  f"{names}")
        return EXIT_CHANGES
    return EXIT_OK


def _print_environment(out: Output, result: VerifyResult) -> None:
    """The recorded host facts that differ here, before any result: reasons, not
    differences. An older witness without them gets a note instead."""
    if not result.environment_recorded:
        out.info("note: this witness records no host environment (an older DockLock "
                 "wrote it); host facts were not compared — `docklock run` records them")
    if result.environment_differences:
        out.line("recorded on a different host environment "
                 "(replay may differ for these reasons):")
        for env_diff in result.environment_differences:
            here = "(unknown here)" if env_diff.actual is None else env_diff.actual
            out.line(f"  {out.paint(env_diff.field, 'yellow')}: {env_diff.expected} → "
                     f"{here}")


def _verify_repeat(args: argparse.Namespace, out: Output) -> int:
    """`verify --repeat N`: N verifies; a summary of which fields differed in which rounds."""
    from docklock.engine.run import verify

    ctx = context_of(args)
    results: list[VerifyResult] = []
    rounds_by_field: dict[str, list[int]] = {}
    for round_no in range(1, args.repeat + 1):
        # Round 1 clears evidence of earlier commands; later identical rounds keep the
        # evidence of this command's last differing round.
        result = verify(ctx, args.job, keep_older_evidence=round_no > 1)
        results.append(result)
        for diff in result.differences:
            rounds_by_field.setdefault(diff.field, []).append(round_no)
        if args.json:
            continue
        if round_no == 1:  # every round compares with the same witness on this host
            _print_environment(out, result)
        verdict = ("identical" if result.identical else
                   "DIFFERENT: " + ", ".join(d.field for d in result.differences))
        out.line(f"verify {round_no}/{args.repeat}: {verdict}")
    job = results[-1].actual.job
    same = sum(1 for r in results if r.identical)
    if args.json:
        out.json({"job": job, "repeat": args.repeat, "identical": same == len(results),
                  "identical_rounds": same,
                  "differing_fields": dict(sorted(rounds_by_field.items())),
                  "rounds": [r.to_dict() for r in results]})
    else:
        out.line(f"{job}: {same}/{len(results)} verifies identical to its witness")
        for name, rounds in sorted(rounds_by_field.items()):
            out.line(f"  {out.paint(name, 'red')}: differed in round(s) "
                     f"{', '.join(map(str, rounds))}")
        _print_changed_note(out, job, sorted(rounds_by_field))
        last_diff = next((r for r in reversed(results) if not r.identical), None)
        if last_diff is not None and last_diff.evidence_folder is not None:
            shown = _shown(last_diff.evidence_folder, ctx.paths.root)
            out.line(f"  evidence of the last differing round: {shown}/ (verify-*)")
    if rounds_by_field:
        out.error(f"error: {job} did not reproduce its witness in "
                  f"{len(results) - same} of {len(results)} verifies; differing fields: "
                  f"{', '.join(sorted(rounds_by_field))}")
        return EXIT_CHANGES
    return EXIT_OK


def _print_differences(out: Output, result: VerifyResult, root: Path) -> None:
    diffs = result.differences
    lines = {line.stream: line for line in result.first_lines}
    out.line(f"{result.actual.job}: DIFFERENT from its witness in {len(diffs)} field(s):")
    for diff in diffs:
        out.line(f"  {out.paint(diff.field, 'red')}: {diff.expected} → {diff.actual}")
        stream = diff.field.removesuffix("_digest")
        if stream in lines:
            out.line(f"    {lines[stream]}")
    _print_changed_note(out, result.actual.job, [d.field for d in diffs])
    folder = result.evidence_folder
    if folder is not None:
        kept = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.glob("verify-*"))
        out.line(f"  evidence of this run: {_shown(folder, root)}/ ({', '.join(kept)}; the "
                 "recorded run's beside them without the verify- prefix)")


# Witness fields that describe what was run rather than what it produced.
_DEFINITION = ("image_digest", "command", "env", "inputs", "seed", "cage", "cage_digest",
               "seccomp_digest")


def _print_changed_note(out: Output, job: str, fields: list[str]) -> None:
    """When definition fields differ, say so: an edit or an upgrade, not non-determinism."""
    changed = [f for f in fields if f.split(".", 1)[0].split("/", 1)[0] in _DEFINITION]
    if changed:
        out.line("  note: the job, or the cage this host gives it, changed since its witness "
                 f"was recorded ({', '.join(changed)}): differences are expected; "
                 f"`docklock run {job}` records a new witness")


def _shown(folder: Path, root: Path) -> Path:
    return folder.relative_to(root) if folder.is_relative_to(root) else folder


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

