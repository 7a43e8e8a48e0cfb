"""The witness's host environment, its comparison, first differing lines and the
evidence files a run and a differing verify keep (no Podman)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from docklock.cage.jobs import (
    JobRun,
    PreparedJob,
    discard_verify_evidence,
    job_folder,
    keep_streams,
    keep_verify_evidence,
    kept_stream,
    prepare_job,
    witness_entry,
)
from docklock.cage.witness import (
    LINE_LIMIT,
    FieldDifference,
    LineDifference,
    Witness,
    bytes_digest,
    compare_environments,
    compare_witnesses,
    first_differing_line,
    load_witness,
    save_witness,
)
from docklock.engine.run import VerifyResult
from docklock.model import Resource
from docklock.workspace import WorkspacePaths

ENV = {"kernel": "6.1.0-18-amd64", "arch": "amd64", "cpu_model": "Intel Xeon",
       "cpu_flags": "avx avx2 sse4_2", "podman_version": "4.3.1",
       "image_digest": "sha256:aa", "cage_digest": "c1"}

W = Witness(
    job="Job/default/report", image="localhost/x:1", image_digest="sha256:aa",
    command=("sh", "-c", "echo hi"), env={"TZ": "UTC"}, inputs={}, seed=7,
    cage="deterministic", cage_digest="c1", seccomp_digest="s1", exit_code=0,
    stdout_digest=bytes_digest(b"hi\n"), stderr_digest=bytes_digest(b""),
    outputs={}, outputs_digest=None, meta={"run_id": "r1"}, environment=ENV,
)


def test_environment_round_trips_and_is_not_compared() -> None:
    assert Witness.from_dict(W.to_dict()) == W
    assert W.to_dict()["environment"] == ENV
    elsewhere = replace(W, environment={**ENV, "kernel": "5.10.0"})
    assert compare_witnesses(W, elsewhere) == []
    assert W.digest == elsewhere.digest == replace(W, environment={}).digest


def test_a_witness_recorded_before_environments_still_loads(tmp_path: Path) -> None:
    old = W.to_dict()
    del old["environment"]
    assert Witness.from_dict(old).environment == {}
    (tmp_path / "Job.default.report.json").write_text(json.dumps(old))
    loaded = load_witness("Job/default/report", tmp_path)
    assert loaded.environment == {}
    assert loaded.digest == W.digest  # the recorded digest stays valid


def test_save_and_load_keep_the_environment(tmp_path: Path) -> None:
    save_witness(W, tmp_path)
    assert load_witness(W.job, tmp_path).environment == ENV


@pytest.mark.parametrize(("actual", "expected_diffs"), [
    pytest.param(ENV, [], id="same host"),
    pytest.param({**ENV, "kernel": "6.18.44"},
                 [FieldDifference("environment.kernel", "6.1.0-18-amd64", "6.18.44")],
                 id="kernel"),
    pytest.param({**ENV, "cpu_flags": "avx sse4_2 amx_tile avx512f"},
                 [FieldDifference("environment.cpu_flags", "-avx2", "+amx_tile +avx512f")],
                 id="cpu flags summary"),
    pytest.param({**ENV, "cpu_flags": "avx avx2"},
                 [FieldDifference("environment.cpu_flags", "-sse4_2", "(none added)")],
                 id="cpu flags only removed"),
    pytest.param({**ENV, "cpu_flags": "sse4_2  avx2 avx"}, [], id="cpu flags reordered"),
    pytest.param({k: v for k, v in ENV.items() if k not in ("cpu_model", "cpu_flags")},
                 [FieldDifference("environment.cpu_flags", "avx avx2 sse4_2", None),
                  FieldDifference("environment.cpu_model", "Intel Xeon", None)],
                 id="cpu unknown here (remote service)"),
    pytest.param({**ENV, "launcher_digest": "sha256:11"}, [],
                 id="a fact recorded only now is no difference"),
])
def test_compare_environments(actual: dict[str, str],
                              expected_diffs: list[FieldDifference]) -> None:
    assert compare_environments(ENV, actual) == expected_diffs


def test_an_old_witness_has_no_environment_differences() -> None:
    assert compare_environments({}, ENV) == []


def test_cpu_flags_line_reads_as_a_summary() -> None:
    (diff,) = compare_environments(ENV, {**ENV, "cpu_flags": "avx sse4_2 sha_ni"})
    assert str(diff) == "environment.cpu_flags: -avx2 → +sha_ni"


@pytest.mark.parametrize(("expected", "actual", "line"), [
    pytest.param(b"a\nb\n", b"a\nb\n", None, id="equal"),
    pytest.param(b"x\n" * 6 + b"a: 1\nz\n", b"x\n" * 6 + b"a: 2\nz\n",
                 LineDifference("stdout", 7, "a: 1", "a: 2"), id="line 7"),
    pytest.param(b"a\n", b"a\nb\n", LineDifference("stdout", 2, None, "b"), id="longer"),
    pytest.param(b"a\nb\n", b"a\n", LineDifference("stdout", 2, "b", None), id="shorter"),
    pytest.param(b"a\n", b"a", LineDifference("stdout", 1, "a\n", "a"),
                 id="only the line end differs"),
    pytest.param(b"\xff\xfe\n", b"a\n", None, id="recorded side not UTF-8"),
    pytest.param(b"a\n", b"\xff\n", None, id="re-run not UTF-8"),
])
def test_first_differing_line(expected: bytes, actual: bytes,
                              line: LineDifference | None) -> None:
    assert first_differing_line("stdout", expected, actual) == line


def test_first_differing_line_reads_and_is_bounded() -> None:
    found = first_differing_line("stdout", b"a: 1\n", b"a: 2\n")
    assert str(found) == "stdout line 1: 'a: 1' → 'a: 2'"
    long = first_differing_line("stderr", b"x" * 5000 + b"1\n", b"x" * 5000 + b"2\n")
    assert long is not None
    assert long.expected is not None
    assert len(long.expected) <= LINE_LIMIT
    assert len(str(long)) <= LINE_LIMIT
    assert str(long).startswith("stderr line 1: 'xxx")


def test_verify_ledger_entry_names_environment_differences() -> None:
    env_diffs = compare_environments(ENV, {**ENV, "kernel": "6.18.44"})
    entry = witness_entry(W, "verify", differences=[], environment_differences=env_diffs)
    assert entry["identical"] is True
    assert entry["environment_differences"] == [
        {"field": "environment.kernel", "expected": "6.1.0-18-amd64", "actual": "6.18.44"}]
    assert entry["witness"]["environment"] == ENV
    assert "environment_differences" not in witness_entry(W, "run")


def test_verify_result_json_only_adds_keys(tmp_path: Path) -> None:
    diffs = tuple(compare_witnesses(W, replace(W, stdout_digest="sha256:ff")))
    line = LineDifference("stdout", 1, "hi", "ho")
    result = VerifyResult(W, replace(W, stdout_digest="sha256:ff"), diffs, 4,
                          tuple(compare_environments(ENV, {**ENV, "arch": "arm64"})), True,
                          tmp_path, (line,))
    data = result.to_dict()
    assert {"job", "identical", "expected_digest", "actual_digest", "differences"} <= set(data)
    assert data["environment_recorded"] is True
    assert data["environment_differences"][0]["field"] == "environment.arch"
    assert data["evidence_folder"] == str(tmp_path)
    assert data["first_differing_lines"] == [
        {"stream": "stdout", "line": 1, "expected": "hi", "actual": "ho"}]
    plain = VerifyResult(W, W, (), 5).to_dict()
    assert plain["evidence_folder"] is None
    assert plain["environment_recorded"] is False


def _prepared(root: Path, name: str) -> PreparedJob:
    """A real prepared job with outputs (prepare_job makes its fresh outputs folder)."""
    job = Resource.from_dict({"kind": "Job", "metadata": {"name": "report"},
                              "spec": {"image": "x", "outputs": "/out"}})
    return prepare_job(job, paths=WorkspacePaths(root), floor="standard", profiles={},
                       cluster="t", run_id=name)


def test_streams_are_kept_private_and_checked_against_the_witness(tmp_path: Path) -> None:
    folder = tmp_path / "jobs" / "Job.default.report"
    run = JobRun(W, b"hi\n", b"")
    out, err = keep_streams(folder, run)
    assert (out.name, err.name) == ("stdout", "stderr")
    assert out.read_bytes() == b"hi\n"
    assert out.stat().st_mode & 0o777 == 0o600
    assert err.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert kept_stream(folder, "stdout", W.stdout_digest) == b"hi\n"
    # A file that no longer matches the witness is no evidence.
    assert kept_stream(folder, "stdout", bytes_digest(b"other")) is None
    assert kept_stream(folder, "missing", W.stdout_digest) is None


def test_verify_evidence_replaces_older_and_is_discarded(tmp_path: Path) -> None:
    first = _prepared(tmp_path, "one")
    assert first.output_dir is not None
    folder = job_folder(WorkspacePaths(tmp_path), first.address)
    keep_streams(folder, JobRun(W, b"recorded\n", b""))
    (first.output_dir / "a.txt").write_text("1")
    (first.output_dir / "old.txt").write_text("old")
    keep_verify_evidence(first, JobRun(W, b"one\n", b"e1\n"), folder)
    second = _prepared(tmp_path, "two")
    assert second.output_dir is not None
    (second.output_dir / "a.txt").write_text("2")
    assert keep_verify_evidence(second, JobRun(W, b"two\n", b""), folder) == folder
    assert sorted(p.name for p in (folder / "verify-outputs").iterdir()) == ["a.txt"]
    assert (folder / "verify-outputs" / "a.txt").read_text() == "2"
    assert (folder / "verify-stdout").read_bytes() == b"two\n"
    assert (folder / "verify-stderr").read_bytes() == b""
    assert (folder / "verify-stdout").stat().st_mode & 0o777 == 0o600
    assert not second.output_dir.exists()  # moved, not copied

    discard_verify_evidence(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["stderr", "stdout"]
    discard_verify_evidence(tmp_path / "never-made")  # nothing to do, no error
