"""The second-generation deterministic Job cage on real Podman, through `docklock run`.

Jobs run in the Debian 12 + Python image (glibc: the libfaketime preload applies) and in
the busybox-static test image (no glibc loader: the launcher drops the preload). What
the job sees inside is printed by the job and checked here against its spec: the
personality the launcher set, the synthetic /proc and /sys files made from the declared
resources, the masked files, the pinned clock, and the launcher's command lookup.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from cage_helpers import build_python_image
from conftest import PodmanHarness, run_cli

pytestmark = pytest.mark.podman

EPOCH = 1_600_000_000
CPUS = 3  # more than this machine's 2 cores: only the synthetic files can say 3
MEMORY_MI = 96

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: replaytest}
spec:
  specs: [specs]
  securityLevel: hardened
"""

# The first statement reads the clock: libfaketime moves it 1 ms per read, and Python's
# start-up reads it only a handful of times.
PROBE = """\
import json, os, time
first = time.time()
def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        return "error: " + exc.strerror
meminfo = dict(line.split(":", 1) for line in read("/proc/meminfo").splitlines())
print(json.dumps({
    "time": first,
    "personality": read("/proc/self/personality").strip(),
    "uptime": read("/proc/uptime"),
    "memtotal": meminfo["MemTotal"].split(),
    "processors": sum(1 for line in read("/proc/cpuinfo").splitlines()
                      if line.startswith("processor")),
    "online": read("/sys/devices/system/cpu/online").strip(),
    "cpu_count": os.cpu_count(),
    "vmstat": read("/proc/vmstat"),
    "random_dir": sorted(os.listdir("/proc/sys/kernel/random")),
    "boot_id": os.path.exists("/proc/sys/kernel/random/boot_id"),
    "ld_preload": os.environ.get("LD_PRELOAD"),
    "faketime": os.environ.get("FAKETIME"),
}))
"""


# Timed waits: with a faked monotonic clock (libfaketime moves it 1 ms per read) their
# deadline is never reached and the job ran until spec.timeout.
WAITS = """\
import json, queue, threading, time
threading.Event().wait(0.3)
try:
    queue.Queue().get(timeout=0.2)
except queue.Empty:
    pass
print(json.dumps({"time": time.time(), "monotonic": time.monotonic()}))
"""
WAITS_TIMEOUT = 90  # seconds: what a hung wait would have cost

# clock.monotonic: pinned, and no timed wait in the program.
PINNED_MONOTONIC = """\
import json, time
print(json.dumps({"monotonic": time.monotonic(), "time": time.time()}))
"""
DEFAULT_EPOCH = 315_532_800  # 1980-01-01T00:00:00Z


def _job(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"image": image, "command": command, "cage": "deterministic",
                            "seed": 1, "timeout": 120}
    body.update(spec)
    return {"apiVersion": "docklock.io/v1", "kind": "Job", "metadata": {"name": name},
            "spec": body}


@pytest.fixture
def workspace(podman: PodmanHarness, tmp_path: Path) -> Path:
    python = build_python_image(podman)
    static = podman.image  # busybox-static: no /lib64/ld-linux-x86-64.so.2
    resources = {"cpus": CPUS, "memory": f"{MEMORY_MI}Mi"}
    jobs = [
        _job("probe", python, ["python3", "-c", PROBE], resources=resources,
             clock={"epoch": EPOCH}),
        _job("realclock", python, ["python3", "-c", "import time; print(time.time())"],
             clock={"epoch": EPOCH, "faketime": "never"}),
        _job("absolute", python, ["/usr/bin/python3", "-c", "print('absolute ok')"]),
        _job("missing", python, ["no-such-program-docklock"]),
        _job("static", static, ["sh", "-c", "env; echo static ok"]),
        _job("static-absolute", static, ["/bin/busybox", "echo", "absolute ok"]),
        _job("waits", python, ["python3", "-c", WAITS], timeout=WAITS_TIMEOUT),
        _job("pinned-monotonic", python, ["python3", "-c", PINNED_MONOTONIC],
             clock={"monotonic": "pinned"}),
    ]
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    # JSON is YAML: no quoting of the Python program to get wrong.
    (tmp_path / "specs" / "jobs.yaml").write_text(
        "---\n".join(json.dumps(j, indent=1) + "\n" for j in jobs))
    return tmp_path


def _run(podman: PodmanHarness, workspace: Path, job: str) -> Any:
    return run_cli(["run", job, "-C", str(workspace)], env=podman.cli_env())


def test_a_deterministic_job_sees_the_pinned_host(podman: PodmanHarness,
                                                  workspace: Path) -> None:
    ran = _run(podman, workspace, "probe")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ld.so" not in ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["personality"] == "00040000"  # ADDR_NO_RANDOMIZE, set by the launcher
    assert seen["uptime"] == "1.00 1.00\n"
    assert seen["memtotal"] == [str(MEMORY_MI * 1024), "kB"]
    assert seen["processors"] == CPUS
    assert seen["online"] == f"0-{CPUS - 1}"
    assert seen["cpu_count"] == CPUS  # glibc's get_nprocs reads the synthetic list
    assert seen["vmstat"] == ""  # masked: /dev/null
    assert seen["boot_id"] is False
    assert seen["random_dir"] == []  # the folder is an empty tmpfs
    assert seen["ld_preload"] == "/.docklock/libfaketime.so.1"
    assert EPOCH <= seen["time"] < EPOCH + 1, seen["time"]


def test_without_faketime_the_job_sees_the_real_time(podman: PodmanHarness,
                                                     workspace: Path) -> None:
    before = time.time()
    ran = _run(podman, workspace, "realclock")
    after = time.time()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = float(ran.stdout)
    assert before - 5 <= seen <= after + 5  # the host clock, not EPOCH


def test_the_static_image_runs_without_the_preload(podman: PodmanHarness,
                                                   workspace: Path) -> None:
    ran = _run(podman, workspace, "static")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ld.so" not in ran.stderr
    env = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert "LD_PRELOAD" not in env  # the launcher dropped it: no glibc loader here
    assert "FAKETIME" not in env
    assert env["SOURCE_DATE_EPOCH"] == "315532800"
    assert ran.stdout.splitlines()[-1] == "static ok"  # `sh` found through PATH


@pytest.mark.parametrize(("job", "expected"), [
    ("absolute", "absolute ok"), ("static-absolute", "absolute ok")])
def test_a_command_given_as_an_absolute_path_runs(podman: PodmanHarness, workspace: Path,
                                                  job: str, expected: str) -> None:
    ran = _run(podman, workspace, job)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout == expected + "\n"


def test_an_unknown_command_exits_127_with_the_launchers_message(
        podman: PodmanHarness, workspace: Path) -> None:
    ran = _run(podman, workspace, "missing")
    assert ran.returncode == 1
    assert "exited with code 127" in ran.stderr
    assert "docklock-launch: no-such-program-docklock: not found in PATH" in ran.stderr


def test_timed_waits_finish_and_the_wall_clock_stays_pinned(podman: PodmanHarness,
                                                            workspace: Path) -> None:
    """The default clock.monotonic (real): Event.wait(0.3) and queue.get(timeout=0.2)
    return after their time, while time.time() still reads 1980."""
    started = time.monotonic()
    ran = _run(podman, workspace, "waits")
    elapsed = time.monotonic() - started
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert elapsed < 30, f"the timed waits took {elapsed:.0f}s (hung until the timeout?)"
    seen = json.loads(ran.stdout)
    assert DEFAULT_EPOCH <= seen["time"] < DEFAULT_EPOCH + 1, seen["time"]
    # the real monotonic clock: the host's, nowhere near the 1980 epoch
    assert seen["monotonic"] < DEFAULT_EPOCH / 2, seen["monotonic"]


def test_a_pinned_monotonic_clock_starts_at_the_epoch(podman: PodmanHarness,
                                                      workspace: Path) -> None:
    ran = _run(podman, workspace, "pinned-monotonic")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    seen = json.loads(ran.stdout)
    assert DEFAULT_EPOCH <= seen["monotonic"] < DEFAULT_EPOCH + 1, seen["monotonic"]
    assert DEFAULT_EPOCH <= seen["time"] < DEFAULT_EPOCH + 1, seen["time"]
