"""The probe example (examples/deterministic-probe) through the CLI, on real Podman.

The issue's Must show: the Python probe reproduces its witness on 5 verifies; the
busybox probes show which applets the deterministic cage pins (Debian's dynamically
linked busybox: shuf, awk srand(), date; its mktemp is not) and that `verify` names
exactly the output files that differ, nothing else (the probes print nothing).

The example is copied as shipped; the harness's images are tagged with the refs its
specs use (`podman tag` in the harness store), so the specs are not edited.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cage_helpers import build_python_image
from conftest import REPO, PodmanHarness, run_cli

pytestmark = pytest.mark.podman

EXAMPLE = REPO / "examples" / "deterministic-probe"
DEBIAN_REF = "localhost/docklock/debian-python:12"  # what the example's specs ask for
STATIC_REF = "localhost/demo/busybox:1"

PYTHON_SOURCES = ("python-random", "python-time", "python-uuid4", "python-urandom",
                  "python-hash", "python-set-order", "python-tempfile", "python-object-ids")
BUSYBOX_SOURCES = ("busybox-shuf", "busybox-awk-srand", "busybox-mktemp", "busybox-date")
VERIFIES = 5
PINNED_YEAR = "1980-01-01"  # the default clock epoch (SOURCE_DATE_EPOCH 315532800)


@pytest.fixture
def workspace(podman: PodmanHarness, tmp_path: Path) -> Path:
    debian = build_python_image(podman)
    podman.podman("tag", debian, DEBIAN_REF)
    podman.podman("tag", podman.image, STATIC_REF)  # the harness's busybox-static image
    ws = tmp_path / "deterministic-probe"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".docklock", "__pycache__"))
    return ws


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def job_folder(ws: Path, job: str) -> Path:
    return ws / ".docklock" / "jobs" / f"Job.default.{job}"


def run_job(podman: PodmanHarness, ws: Path, job: str, sources: tuple[str, ...]) -> dict[str, Any]:
    """`docklock run JOB`; returns the recorded witness after checking its outputs."""
    ran = run_cli(["run", job, "-C", str(ws)], env=podman.cli_env())
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout == ""  # the probe prints nothing: differences are output files
    witness = json.loads((ws / ".docklock" / "witness" / f"Job.default.{job}.json").read_text())
    assert witness["exit_code"] == 0
    assert set(witness["outputs"]) == {f"{s}.txt" for s in sources}
    kept = job_folder(ws, job) / "outputs"
    for name, digest in witness["outputs"].items():
        assert sha256(kept / name) == digest, name
    assert (job_folder(ws, job) / "stdout").read_bytes() == b""
    assert (job_folder(ws, job) / "stderr").read_bytes() == b""
    return witness


def verify_job(podman: PodmanHarness, ws: Path, job: str) -> tuple[int, dict[str, Any]]:
    verified = run_cli(["verify", job, "-C", str(ws), "--json"], env=podman.cli_env())
    assert verified.returncode in (0, 2), verified.stdout + verified.stderr
    report: dict[str, Any] = json.loads(verified.stdout)
    assert report["environment_differences"] == []  # same host, same images
    return verified.returncode, report


def verified_witnesses(ws: Path, job: str) -> list[dict[str, Any]]:
    """The re-runs' witnesses as the ledger's verify entries carry them, in order."""
    lines = (ws / ".docklock" / "ledger" / "entries.jsonl").read_text().splitlines()
    payloads = [json.loads(line)["payload"] for line in lines
                if json.loads(line)["type"] == "witness"]
    return [p["witness"] for p in payloads
            if p["event"] == "verify" and p["job"] == f"Job/default/{job}"]


def differing_files(ws: Path, job: str) -> set[str]:
    """Output files whose bytes differ between the recorded run and the kept evidence."""
    recorded, rerun = job_folder(ws, job) / "outputs", job_folder(ws, job) / "verify-outputs"
    names = {p.name for p in recorded.iterdir()} | {p.name for p in rerun.iterdir()}
    return {f"outputs/{name}" for name in names
            if not (recorded / name).is_file() or not (rerun / name).is_file()
            or (recorded / name).read_bytes() != (rerun / name).read_bytes()}


def check_named_is_differing(ws: Path, job: str, code: int,
                             report: dict[str, Any]) -> set[str]:
    """verify names a field ⟺ that output file's bytes differ; returns the named set."""
    named = {d["field"] for d in report["differences"]}
    if code == 0:
        assert named == set()
        assert report["identical"] is True
        assert not (job_folder(ws, job) / "verify-outputs").exists()
        return named
    assert report["identical"] is False
    assert named  # exit 2 names something
    assert named == differing_files(ws, job), report["differences"]
    return named


def test_python_probe_reproduces_on_five_verifies(podman: PodmanHarness,
                                                  workspace: Path) -> None:
    recorded = run_job(podman, workspace, "probe-python", PYTHON_SOURCES)
    kept = job_folder(workspace, "probe-python") / "outputs"
    text = {s: (kept / f"{s}.txt").read_text() for s in PYTHON_SOURCES}
    # The kept outputs hold real values, pinned ones where the cage pins them.
    assert all(text[s].strip() for s in PYTHON_SOURCES)
    assert f"datetime.now(UTC) {PINNED_YEAR}T00:0" in text["python-time"]
    seconds = float(text["python-time"].splitlines()[0].split()[-1])  # time.time()
    assert 315532800 <= seconds < 315532800 + 60  # the epoch plus 1 ms per clock read
    uuids = [line.split()[1] for line in text["python-uuid4"].splitlines()]
    assert len(uuids) == 3
    assert len(set(uuids)) == 3  # a stream, not one value repeated
    assert len(text["python-urandom"].split()[-1]) == 64
    names = [line.split()[-1] for line in text["python-tempfile"].splitlines()]
    assert names[0] == "/tmp"
    assert all(n.startswith("/tmp/") for n in names[1:])
    assert len(set(names)) == len(names)

    for attempt in range(VERIFIES):
        code, report = verify_job(podman, workspace, "probe-python")
        assert code == 0, (attempt, report["differences"])
        assert report["identical"] is True
        assert report["actual_digest"] == report["expected_digest"]
    rerun = verified_witnesses(workspace, "probe-python")
    assert len(rerun) == VERIFIES
    for witness in rerun:  # every output file, digest by digest, as the run recorded it
        assert witness["outputs"] == recorded["outputs"]
        assert witness["stdout_digest"] == recorded["stdout_digest"]
    for name, digest in recorded["outputs"].items():  # the kept files still match
        assert sha256(kept / name) == digest


def test_dynamic_busybox_probe_names_only_mktemp(podman: PodmanHarness,
                                                 workspace: Path) -> None:
    job = "probe-busybox"
    recorded = run_job(podman, workspace, job, BUSYBOX_SOURCES)
    kept = job_folder(workspace, job) / "outputs"
    assert (kept / "busybox-date.txt").read_text().startswith(PINNED_YEAR)
    assert sorted((kept / "busybox-shuf.txt").read_text().split(), key=int) == [
        str(i) for i in range(1, 21)]
    assert (kept / "busybox-mktemp.txt").read_text().startswith("/tmp/tmp.")

    pinned = {f"{s}.txt" for s in ("busybox-shuf", "busybox-awk-srand", "busybox-date")}
    mktemp_differed = 0
    for attempt in range(VERIFIES):
        code, report = verify_job(podman, workspace, job)
        named = check_named_is_differing(workspace, job, code, report)
        if code == 2:
            assert named == {"outputs/busybox-mktemp.txt"}, (attempt, report["differences"])
            mktemp_differed += 1
    rerun = verified_witnesses(workspace, job)
    assert len(rerun) == VERIFIES
    for witness in rerun:
        for name in pinned:
            assert witness["outputs"][name] == recorded["outputs"][name]
    # glibc's mkstemp reads the clock inside libc when getrandom is denied: not pinned.
    assert mktemp_differed >= 1


def test_static_busybox_probe_names_every_differing_file(podman: PodmanHarness,
                                                         workspace: Path) -> None:
    job = "probe-busybox-static"
    run_job(podman, workspace, job, BUSYBOX_SOURCES)
    kept = job_folder(workspace, job) / "outputs"
    # No preload reaches a static program: its clock is the host's, not the pinned one.
    assert not (kept / "busybox-date.txt").read_text().startswith(PINNED_YEAR)

    for attempt in range(2):
        code, report = verify_job(podman, workspace, job)
        assert code == 2, report
        named = check_named_is_differing(workspace, job, code, report)
        # shuf and mktemp read the microsecond clock: they differ on every run.
        assert {"outputs/busybox-shuf.txt", "outputs/busybox-mktemp.txt"} <= named, attempt
        assert named <= {f"outputs/{s}.txt" for s in BUSYBOX_SOURCES}
