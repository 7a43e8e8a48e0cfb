"""The witness's host environment and verify's evidence, on real Podman through the CLI.

"Recorded on another host" is simulated by editing the saved witness's environment
(kernel, CPU flags): verify must name those facts before its result and still exit 0.
A job that reads the kernel clock (adjtimex: no cage pins it for a static busybox)
differs on every run: verify exits 2, shows the first differing stdout line and keeps
the re-run's evidence next to the recorded run's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cage_helpers import job_workspace
from conftest import PodmanHarness, run_cli

from docklock.runtime.podman import connect

pytestmark = pytest.mark.podman

JOBS = """\
apiVersion: docklock.io/v1
kind: Job
metadata: {name: steady}
spec:
  image: {image}
  command: [sh, -c, "echo one; echo two; echo warn >&2"]
  cage: deterministic
  seed: 3
  timeout: 60
---
apiVersion: docklock.io/v1
kind: Job
metadata: {name: clock}
spec:
  image: {image}
  # Line 1 is stable, line 2 the kernel clock to the microsecond (busybox date has no %N).
  command:
    - sh
    - -c
    - "echo start; adjtimex | grep time.tv_usec | tr -d ' '; adjtimex > /out/clock.txt"
  cage: deterministic
  outputs: /out
  timeout: 60
"""


@pytest.fixture
def workspace(podman: PodmanHarness, tmp_path: Path) -> Path:
    return job_workspace(tmp_path, "envtest", JOBS, podman.image)


def _cpuinfo_first(key: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    raise AssertionError(f"/proc/cpuinfo has no {key!r}")


def test_host_facts_describe_this_host(podman: PodmanHarness) -> None:
    with connect(podman.url) as runtime:
        facts = runtime.host_facts()
        calls = runtime.api_calls
        again = runtime.host_facts()
        assert runtime.api_calls == calls  # cached: one /info call per connection
    assert again == facts
    assert facts["kernel"] == os.uname().release
    assert facts["arch"] == "amd64"
    assert facts["podman_version"].startswith("4.")
    assert facts["oci_runtime"] == "runc"
    assert facts["oci_runtime_version"].startswith("runc version ")
    assert "\n" not in facts["oci_runtime_version"]
    assert facts["cgroup_version"] in ("v1", "v2")
    assert facts["distribution"].startswith("debian")
    assert facts["cpu_model"] == _cpuinfo_first("model name")
    flags = facts["cpu_flags"].split()
    assert flags == sorted(set(_cpuinfo_first("flags").split()))
    assert all(isinstance(v, str) and v for v in facts.values())


def test_verify_on_another_host_names_the_environment_first(podman: PodmanHarness,
                                                            workspace: Path) -> None:
    env = podman.cli_env()
    ran = run_cli(["run", "steady", "-C", str(workspace)], env=env)
    assert ran.returncode == 0, ran.stderr
    folder = workspace / ".docklock" / "jobs" / "Job.default.steady"
    assert (folder / "stdout").read_bytes() == b"one\ntwo\n"
    assert (folder / "stderr").read_bytes() == b"warn\n"
    for name in ("stdout", "stderr"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    witness_file = workspace / ".docklock" / "witness" / "Job.default.steady.json"
    recorded = json.loads(witness_file.read_text())
    environment = recorded["environment"]
    assert environment["kernel"] == os.uname().release
    assert environment["image_digest"] == recorded["image_digest"]
    assert environment["cage_digest"] == recorded["cage_digest"]

    # Same host: nothing extra is said.
    same = run_cli(["verify", "steady", "-C", str(workspace)], env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "different host environment" not in same.stdout
    assert "host environment" not in same.stderr
    assert same.stdout.startswith("Job/default/steady: identical")

    # "Recorded on another host": another kernel, one flag fewer, one more.
    flags = environment["cpu_flags"].split()
    environment["kernel"] = "5.10.0-21-amd64"
    environment["cpu_flags"] = " ".join(sorted([*flags[1:], "zz_oldflag"]))
    witness_file.write_text(json.dumps(recorded))
    stale = folder / "verify-stdout"
    stale.write_text("left by an older differing verify")
    verified = run_cli(["verify", "steady", "-C", str(workspace)], env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert lines[0] == ("recorded on a different host environment "
                        "(replay may differ for these reasons):")
    assert lines[1] == f"  environment.cpu_flags: -zz_oldflag → +{flags[0]}"
    assert lines[2] == f"  environment.kernel: 5.10.0-21-amd64 → {os.uname().release}"
    assert lines[3].startswith("Job/default/steady: identical to its witness")
    assert not stale.exists()  # identical: older evidence is removed

    as_json = run_cli(["verify", "steady", "-C", str(workspace), "--json"], env=env)
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert report["identical"] is True
    assert report["environment_recorded"] is True
    assert [d["field"] for d in report["environment_differences"]] == [
        "environment.cpu_flags", "environment.kernel"]
    assert report["evidence_folder"] is None

    # The ledger's verify entries carry the environment differences too.
    entries = [json.loads(e) for e in
               (workspace / ".docklock" / "ledger" / "entries.jsonl").read_text().splitlines()]
    verifies = [e["payload"] for e in entries
                if e["type"] == "witness" and e["payload"]["event"] == "verify"]
    assert verifies[0]["environment_differences"] == []
    assert [d["field"] for d in verifies[-1]["environment_differences"]] == [
        "environment.cpu_flags", "environment.kernel"]


def test_a_witness_without_environment_is_a_note_not_a_difference(
        podman: PodmanHarness, workspace: Path) -> None:
    env = podman.cli_env()
    assert run_cli(["run", "steady", "-C", str(workspace)], env=env).returncode == 0
    witness_file = workspace / ".docklock" / "witness" / "Job.default.steady.json"
    recorded = json.loads(witness_file.read_text())
    del recorded["environment"]  # as written before environments were recorded
    witness_file.write_text(json.dumps(recorded))
    text = run_cli(["verify", "steady", "-C", str(workspace)], env=env)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith("Job/default/steady: identical")
    assert "different host environment" not in text.stdout
    assert "records no host environment" in text.stderr
    verified = run_cli(["verify", "steady", "-C", str(workspace), "--json"], env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["environment_recorded"] is False
    assert report["environment_differences"] == []


def test_a_differing_verify_shows_the_line_and_keeps_evidence(podman: PodmanHarness,
                                                             workspace: Path) -> None:
    env = podman.cli_env()
    ran = run_cli(["run", "clock", "-C", str(workspace)], env=env)
    assert ran.returncode == 0, ran.stderr
    folder = workspace / ".docklock" / "jobs" / "Job.default.clock"
    recorded_stdout = (folder / "stdout").read_text()
    assert recorded_stdout.startswith("start\ntime.tv_usec:")

    verified = run_cli(["verify", "clock", "-C", str(workspace)], env=env)
    assert verified.returncode == 2, verified.stdout + verified.stderr
    out = verified.stdout
    assert "different host environment" not in out
    assert "DIFFERENT from its witness" in out
    shown = [line.strip() for line in out.splitlines()
             if line.strip().startswith("stdout line ")]
    assert len(shown) == 1
    assert shown[0].startswith("stdout line 2: 'time.tv_usec:")
    assert len(shown[0]) <= 200
    assert ("evidence of this run: .docklock/jobs/Job.default.clock/ "
            "(verify-outputs/, verify-stderr, verify-stdout;") in out
    # The line is shown under its field, after the field list's stdout_digest line.
    assert out.index("stdout_digest") < out.index("stdout line 2")

    rerun = (folder / "verify-stdout").read_text()
    assert rerun.startswith("start\ntime.tv_usec:")
    assert rerun != recorded_stdout
    assert f"'{rerun.splitlines()[1]}'" in shown[0]
    assert (folder / "verify-stdout").stat().st_mode & 0o777 == 0o600
    assert (folder / "verify-stderr").exists()
    assert (folder / "verify-outputs" / "clock.txt").is_file()
    assert (folder / "outputs" / "clock.txt").is_file()  # the recorded run's, untouched
    assert not list(folder.glob("run-*"))  # the re-run's outputs moved, none left behind

    as_json = run_cli(["verify", "clock", "-C", str(workspace), "--json"], env=env)
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["evidence_folder"] == str(folder)
    (line,) = report["first_differing_lines"]
    assert line["stream"] == "stdout"
    assert line["line"] == 2
    assert line["actual"] == (folder / "verify-stdout").read_text().splitlines()[1]
    assert line["expected"] == recorded_stdout.splitlines()[1]
