"""Witness round-trips, tree digests and field-by-field comparison."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import replace
from pathlib import Path

import pytest

from docklock.cage.jobs import WitnessMismatch, find_job, verify_witness, witness_entry
from docklock.cage.witness import (
    COMPARED,
    Witness,
    bytes_digest,
    compare_witnesses,
    env_record,
    load_witness,
    path_digest,
    save_witness,
    tree_entries,
    witness_file_name,
)
from docklock.errors import EXIT_CHANGES, DockLockError
from docklock.model import EnvVar, Resource
from docklock.state.model import sensitive_digest

W = Witness(
    job="Job/default/report", image="localhost/x:1", image_digest="sha256:aa",
    command=("sh", "-c", "echo hi"), env={"TZ": "UTC"}, inputs={"/in": "sha256:01"},
    seed=7, cage="deterministic", cage_digest="c1", seccomp_digest="s1", exit_code=0,
    stdout_digest=bytes_digest(b"hi\n"), stderr_digest=bytes_digest(b""),
    outputs={"a.txt": "sha256:02", "sub/b.txt": "sha256:03"}, outputs_digest="sha256:04",
    meta={"run_id": "r1"},
)


def test_round_trip() -> None:
    assert Witness.from_dict(W.to_dict()) == W


def test_rejects_other_formats() -> None:
    with pytest.raises(DockLockError, match="not a DockLock witness"):
        Witness.from_dict({**W.to_dict(), "format": "x"})


def test_identical_runs_have_no_differences_and_meta_is_ignored() -> None:
    other = replace(W, meta={"run_id": "r2", "duration_s": 9})
    assert compare_witnesses(W, other) == []
    assert W.digest == other.digest


@pytest.mark.parametrize(("change", "fields"), [
    ({"stdout_digest": "sha256:ff"}, ["stdout_digest"]),
    ({"exit_code": 3}, ["exit_code"]),
    ({"seed": 8, "cage_digest": "c2"}, ["seed", "cage_digest"]),
    ({"outputs": {"a.txt": "sha256:99", "sub/b.txt": "sha256:03"}}, ["outputs/a.txt"]),
    ({"outputs": {"a.txt": "sha256:02"}}, ["outputs/sub/b.txt"]),
    ({"env": {"TZ": "UTC", "X": "1"}}, ["env.X"]),
    ({"image_digest": "sha256:bb"}, ["image_digest"]),
])
def test_differences_are_named(change: dict[str, object], fields: list[str]) -> None:
    other = replace(W, **change)  # type: ignore[arg-type]
    assert [d.field for d in compare_witnesses(W, other)] == fields
    with pytest.raises(WitnessMismatch) as info:
        verify_witness(W, other)
    assert info.value.exit_code == EXIT_CHANGES
    for name in fields:
        assert name in info.value.message


def test_compared_fields_cover_the_promise() -> None:
    for name in ("image_digest", "command", "env", "inputs", "stdout_digest",
                 "stderr_digest", "exit_code", "outputs", "seed", "cage_digest"):
        assert name in COMPARED


ENV = (EnvVar("TOKEN", "hunter2", sensitive=True), EnvVar("A", "1"))


def test_sensitive_env_is_recorded_as_a_salted_digest() -> None:
    record = env_record(ENV)
    assert record == {"A": "1",
                      "TOKEN": sensitive_digest("docklock-witness-env-v1", "env.TOKEN",
                                                "hunter2")}
    assert "hunter2" not in str(record)
    # Not the bare SHA-256 a precomputed dictionary of common secrets would match.
    assert record["TOKEN"] != bytes_digest(b"hunter2")
    # Equal for the same value (verify compares two runs), not across variables or values.
    assert env_record(ENV) == record
    assert env_record((EnvVar("OTHER", "hunter2", sensitive=True),))["OTHER"] \
        != record["TOKEN"]
    assert env_record((EnvVar("TOKEN", "hunter3", sensitive=True),))["TOKEN"] \
        != record["TOKEN"]


def test_sensitive_env_with_the_workspace_key_is_an_hmac() -> None:
    key, other = b"k" * 32, b"o" * 32
    record = env_record(ENV, key=key)
    mac = hmac.new(key, b"docklock-witness-env-v1\0TOKEN\0hunter2", hashlib.sha256)
    assert record == {"A": "1", "TOKEN": "hmac-sha256:" + mac.hexdigest()}
    assert env_record(ENV, key=key) == record  # two runs in one workspace compare equal
    assert env_record(ENV, key=other)["TOKEN"] != record["TOKEN"]
    assert env_record(ENV)["TOKEN"] != record["TOKEN"]


def test_tree_digest_sees_content_names_and_links(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("1")
    (tmp_path / "y.txt").write_text("2")
    os.symlink("y.txt", tmp_path / "link")
    entries = tree_entries(tmp_path)
    assert list(entries) == ["d/x.txt", "link", "y.txt"]
    assert entries["link"] == "symlink:y.txt"
    first = path_digest(tmp_path)
    (tmp_path / "d" / "x.txt").write_text("changed")
    assert path_digest(tmp_path) != first
    assert path_digest(tmp_path / "y.txt") == bytes_digest(b"2")


def test_save_and_load(tmp_path: Path) -> None:
    folder = tmp_path / "witness"  # made on first use
    path = save_witness(W, folder)
    assert path.name == witness_file_name("Job/default/report") == "Job.default.report.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_witness("Job/default/report", folder) == W
    save_witness(W, folder)  # overwriting keeps it private and leaves no temp file
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in folder.iterdir()] == [path.name]
    with pytest.raises(DockLockError, match="no witness recorded"):
        load_witness("Job/default/other", folder)


def test_ledger_payloads() -> None:
    run = witness_entry(W, "run")
    assert run["witness_digest"] == W.digest
    assert run["witness"] == W.to_dict()
    verify = witness_entry(W, "verify", differences=compare_witnesses(W, replace(W, seed=1)))
    assert verify["identical"] is False
    assert verify["differences"][0]["field"] == "seed"


def job(name: str, ns: str = "default") -> Resource:
    return Resource.from_dict({"kind": "Job", "metadata": {"name": name, "namespace": ns},
                               "spec": {"image": "x"}})


@pytest.mark.parametrize("wanted", ["report", "Job/report", "Job/default/report"])
def test_find_job_accepts_names_and_addresses(wanted: str) -> None:
    assert find_job([job("other"), job("report")], wanted).name == "report"


@pytest.mark.parametrize(("wanted", "message"), [
    ("Service/default/report", "is not a Job"),
    ("missing", "no Job Job/default/missing"),
    ("Job/ops/report", "no Job Job/ops/report"),
])
def test_find_job_errors(wanted: str, message: str) -> None:
    with pytest.raises(DockLockError, match=message):
        find_job([job("report")], wanted)


@pytest.mark.parametrize(("body", "says"), [
    ('{"format": "docklock.io/witness/v1"}', "malformed (no 'job')"),
    ('[1, 2]', "is not a JSON object"),
    ('{"format": "x"', "cannot read the witness"),
])
def test_a_tampered_witness_file_is_a_clear_error(tmp_path: Path, body: str, says: str) -> None:
    (tmp_path / witness_file_name("Job/default/j")).write_text(body)
    with pytest.raises(DockLockError) as caught:
        load_witness("Job/default/j", tmp_path)
    assert says in caught.value.message
    assert "docklock run Job/default/j" in (caught.value.hint or "")
