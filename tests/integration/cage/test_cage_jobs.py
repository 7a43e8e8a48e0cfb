"""The determinism cage through the job engine, on real Podman: same seed, same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PodmanHarness

from docklock.cage.determinism import random_stream
from docklock.cage.jobs import JobError, JobRun, prepare_job, run_prepared
from docklock.cage.witness import compare_witnesses, path_digest
from docklock.model import Resource
from docklock.runtime.podman import connect
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.podman

PRINT_RANDOM = ("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
                "head -c 16 /dev/random | od -An -tx1 | tr -d ' \\n'; echo; "
                "hostname; env | sort")


def job(image: str, script: str, *, seed: int = 7, cage: str = "deterministic",
        **spec: object) -> Resource:
    body: dict[str, object] = {"image": image, "command": ["sh", "-c", script],
                               "cage": cage, "seed": seed, "timeout": 60}
    body.update(spec)
    return Resource.from_dict({"apiVersion": "docklock.io/v1", "kind": "Job",
                               "metadata": {"name": "rand"}, "spec": body})


def run(harness: PodmanHarness, resource: Resource, root: Path) -> JobRun:
    prepared = prepare_job(resource, paths=WorkspacePaths(root), floor="standard",
                           profiles={}, cluster="cagetest")
    with connect(harness.url) as runtime:
        return run_prepared(runtime, prepared)


def test_same_seed_same_output_other_seed_other_bytes(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    first = run(podman, job(podman.image, PRINT_RANDOM, seed=7), tmp_path)
    second = run(podman, job(podman.image, PRINT_RANDOM, seed=7), tmp_path)
    other = run(podman, job(podman.image, PRINT_RANDOM, seed=8), tmp_path)

    assert first.witness.exit_code == 0, first.stderr
    assert first.stdout == second.stdout
    assert compare_witnesses(first.witness, second.witness) == []
    lines = first.stdout.decode().splitlines()
    assert lines[0] == random_stream(7, 32).hex()  # the bytes of the seeded stream
    assert lines[1] == random_stream(7, 16).hex()  # /dev/random: the same stream
    assert lines[2] == "docklock-cage"
    env = dict(line.split("=", 1) for line in lines[3:])
    assert env["TZ"] == "UTC"
    assert env["LC_ALL"] == "C"
    assert env["PYTHONHASHSEED"] == "0"
    assert env["DOCKLOCK_SEED"] == "7"

    other_lines = other.stdout.decode().splitlines()
    assert other_lines[0] == random_stream(8, 32).hex()
    assert other_lines[0] != lines[0]
    fields = {d.field for d in compare_witnesses(first.witness, other.witness)}
    assert {"seed", "stdout_digest", "cage_digest", "env.DOCKLOCK_SEED"} <= fields


# busybox's date has no %N; adjtimex reads the kernel clock to the microsecond.
CLOCK = "date +%s; adjtimex | grep time.tv_usec"


def test_the_clock_is_not_deterministic(podman: PodmanHarness, tmp_path: Path) -> None:
    a = run(podman, job(podman.image, CLOCK), tmp_path)
    b = run(podman, job(podman.image, CLOCK), tmp_path)
    assert b"time.tv_usec" in a.stdout
    assert [d.field for d in compare_witnesses(a.witness, b.witness)] == ["stdout_digest"]


def test_inputs_are_read_only_and_outputs_are_captured(podman: PodmanHarness,
                                                       tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "words.txt").write_text("b\na\nc\n")
    script = ("sort /in/words.txt > /out/sorted.txt; mkdir /out/sub; "
              "head -c 8 /dev/urandom | od -An -tx1 > /out/sub/rand.txt; "
              "echo tamper > /in/words.txt && echo WROTE-INPUT")
    resource = job(podman.image, script, inputs=[{"path": "data", "mount": "/in"}],
                   outputs="/out")
    result = run(podman, resource, tmp_path)
    w = result.witness
    assert b"WROTE-INPUT" not in result.stdout
    assert (tmp_path / "data" / "words.txt").read_text() == "b\na\nc\n"
    assert w.inputs == {"/in": path_digest(tmp_path / "data")}
    assert set(w.outputs) == {"sorted.txt", "sub/rand.txt"}
    folder = Path(w.meta["outputs_folder"])
    assert (folder / "sorted.txt").read_text() == "a\nb\nc\n"
    again = run(podman, resource, tmp_path)
    assert again.witness.outputs == w.outputs
    assert again.witness.outputs_digest == w.outputs_digest


def test_input_outside_the_workspace_is_refused(tmp_path: Path) -> None:
    from docklock.errors import WorkspaceError

    resource = job("x", "true", inputs=[{"path": "../etc", "mount": "/in"}])
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        prepare_job(resource, paths=WorkspacePaths(tmp_path), floor="standard", profiles={},
                    cluster="cagetest")


def test_timeout_stops_the_job(podman: PodmanHarness, tmp_path: Path) -> None:
    resource = job(podman.image, "sleep 30", timeout=2)
    with pytest.raises(JobError, match="did not finish within 2s"):
        run(podman, resource, tmp_path)
    assert not [n for n in podman.podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
                if n.startswith("docklock-job-")]


def test_witness_records_the_cage(podman: PodmanHarness, tmp_path: Path) -> None:
    result = run(podman, job(podman.image, "true", cage="hardened"), tmp_path)
    w = result.witness
    assert w.cage == "hardened"
    assert w.seccomp_digest is not None
    seccomp_file = tmp_path / ".docklock" / "cages" / f"seccomp-{w.seccomp_digest}.json"
    assert json.loads(seccomp_file.read_bytes())["defaultErrnoRet"] == 38
    assert w.image_digest.startswith("sha256:")
    assert w.command == ("sh", "-c", "true")


def test_sensitive_env_is_keyed_in_the_witness_and_still_reproducible(
        podman: PodmanHarness, tmp_path: Path) -> None:
    secret = {"TOKEN": {"value": "hunter2", "sensitive": True}, "MODE": "x"}
    first = run(podman, job(podman.image, "echo done", env=secret), tmp_path)
    second = run(podman, job(podman.image, "echo done", env=secret), tmp_path)
    recorded = first.witness.to_dict()["env"]
    assert recorded["MODE"] == "x"
    assert recorded["TOKEN"].startswith("hmac-sha256:")
    assert "hunter2" not in json.dumps(first.witness.to_dict())
    assert compare_witnesses(first.witness, second.witness) == []
    assert (tmp_path / ".docklock" / "keys" / "witness.key").stat().st_mode & 0o077 == 0
