"""docs/determinism.md's table, asserted on real Podman with the probe-all example job.

examples/deterministic-probe is copied to a temporary workspace and the harness's Debian
image is tagged with the ref its probe-all spec names (the spec is not edited). Then
`docklock run probe-all` and 5 `docklock verify probe-all`. AT_RANDOM and rdtsc differ
on every run, so every verify exits 2; for each one:
- the probe covered every source of docklock.cage.sources.SOURCES (one file per id);
- `verify` names exactly the output files whose bytes differ (read from the evidence it
  keeps, verify-outputs/, against the recorded run's outputs/), and nothing else;
- every pinned and pinned-dynamic source is byte-identical to the recorded run;
- at-random and rdtsc differ;
- python-monotonic and python-boottime (detectable: the job's clock.monotonic is the
  default, real) read the host's clock and differ too, and so does busybox-shuf, which
  seeds from the monotonic clock.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import REPO, PodmanHarness, run_cli
from ruamel.yaml import YAML

from docklock.cage.sources import BY_ID as SOURCES_BY_ID
from docklock.cage.sources import SOURCES, SourceClass
from docklock.cage.witness import bytes_digest

pytestmark = pytest.mark.podman

EXAMPLE = REPO / "examples" / "deterministic-probe"
JOB = "probe-all"
VERIFIES = 5
ALWAYS_DIFFER = ("at-random", "rdtsc")
# Real by default (a faked monotonic clock hangs timed waits): a new value every run.
REAL_MONOTONIC = ("python-monotonic", "python-boottime")
SEEDED_FROM_MONOTONIC = ("busybox-shuf",)


def spec_image() -> str:
    doc = YAML(typ="safe").load((EXAMPLE / "specs" / "probe-all.yaml").read_text())
    assert doc["kind"] == "Job"
    assert doc["metadata"]["name"] == JOB
    return str(doc["spec"]["image"])


@pytest.fixture
def workspace(podman: PodmanHarness, python_image: str, tmp_path: Path) -> Path:
    root = tmp_path / "probe"
    shutil.copytree(EXAMPLE, root,
                    ignore=shutil.ignore_patterns(".docklock", "__pycache__", "out"))
    podman.podman("tag", python_image, spec_image())
    return root


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_verify_names_what_differs_and_the_pinned_sources_never_do(
        podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    started = time.monotonic()
    ran = run_cli(["run", JOB, "-C", str(workspace)], env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    folder = workspace / ".docklock" / "jobs" / f"Job.default.{JOB}"
    recorded = files(folder / "outputs")
    assert set(recorded) == {f"{s.id}.txt" for s in SOURCES}  # every id, nothing more
    failed = {n: b for n, b in recorded.items() if b.startswith(b"probe failed")}
    assert not failed, failed
    assert (folder / "stdout").read_bytes() == b""  # the outputs are the evidence
    # Identical for the right reason: the pins were really in place, not empty files.
    text = {name.removesuffix(".txt"): data.decode() for name, data in recorded.items()}
    assert text["hostname"] == "docklock-cage\ndocklock-cage\n"
    assert text["network"] == "['lo']\n"
    assert text["getrandom"] == "OSError errno 38"  # ENOSYS
    assert text["pid"] == "1\n0\n"  # the launcher execs the job as PID 1
    assert text["python-time"].startswith("315532")  # 1980-01-01 + a few reads
    assert "1980-01-01" in text["busybox-date"]
    assert "[vdso]" in text["aslr"]
    assert text["cpu-count"].startswith("1\n")  # the declared cpus, not the host's
    assert "DockLock deterministic CPU" in text["cpuinfo"]
    assert text["vmstat"] == ""  # masked
    assert not text["static-clock"].startswith("rc=0 315532")  # the real clock
    for source_id in REAL_MONOTONIC:  # the host's monotonic clock, not 1980's epoch
        assert SOURCES_BY_ID[source_id].klass is SourceClass.DETECTABLE
        assert float(text[source_id].split()[0]) < 315532800 / 2, text[source_id]
    for source_id in SEEDED_FROM_MONOTONIC:
        assert SOURCES_BY_ID[source_id].klass is SourceClass.DETECTABLE
    assert (folder / "stderr").read_bytes() == b""

    promised = [s for s in SOURCES if s.klass.promised]
    differed: dict[str, int] = {s.id: 0 for s in SOURCES}
    for _ in range(VERIFIES):
        verified = run_cli(["verify", JOB, "-C", str(workspace), "--json"], env=env)
        assert verified.returncode == 2, verified.stdout + verified.stderr
        report = json.loads(verified.stdout)
        assert report["environment_differences"] == []  # same host
        named = {d["field"] for d in report["differences"]}
        actual = files(folder / "verify-outputs")
        differing = {f"outputs/{name}" for name in set(recorded) | set(actual)
                     if recorded.get(name) != actual.get(name)}
        assert named == differing, (named ^ differing)
        for diff in report["differences"]:  # the kept evidence is what was compared
            name = diff["field"].removeprefix("outputs/")
            assert diff["expected"] == bytes_digest(recorded[name])
            assert diff["actual"] == bytes_digest(actual[name])
        for source in promised:
            name = f"{source.id}.txt"
            assert actual[name] == recorded[name], (
                f"{source.id} ({source.klass.label}) differed:\n"
                f"{recorded[name]!r}\n{actual[name]!r}")
        for source_id in (*ALWAYS_DIFFER, *REAL_MONOTONIC, *SEEDED_FROM_MONOTONIC):
            assert f"outputs/{source_id}.txt" in named
        for source in SOURCES:
            differed[source.id] += f"outputs/{source.id}.txt" in named
    assert (folder / "outputs").is_dir()  # the recorded run's outputs, kept
    assert files(folder / "outputs") == recorded  # and never touched by a verify
    elapsed = time.monotonic() - started
    # What was seen, for the issue note (pytest -s shows it).
    print(f"\nprobe-all: run + {VERIFIES} verifies in {elapsed:.0f}s; "
          "differed (times out of 5):")
    for klass in SourceClass:
        seen = {s.id: differed[s.id] for s in SOURCES if s.klass is klass}
        print(f"  {klass.value}: {seen}")
