"""Benchmark the cages against plain Podman, on a private Podman store.

1. CPU overhead: the same CPU-bound work in a caged and in a plain container of the
   same image, measured inside the container as the CPU time (user + system) the work
   consumed, so neither container start-up nor other load on the machine is counted.
   Wall time inside the container is shown too. Median of 5 interleaved runs each
   (the order rotates every run, so drift hits every side). Target: overhead under 3%.
   - busybox-static image, `hardened` and the second-generation deterministic Job cage
     (docklock.cage.replay.job_cage: docklock-launch as init, ASLR off, synthetic /proc,
     masked paths; the launcher drops the libfaketime preload here, as the image has no
     glibc loader). Work timed by busybox `time -p` (wait4's rusage and the monotonic
     clock; static, so never faked): a shell loop (few syscalls) and md5sum of 512 MiB
     of /dev/zero (~33k read/write syscalls, each through the seccomp filter).
   - Debian 12 + Python image (tools/debian-image), the Job cage where libfaketime IS
     preloaded: a CPU-bound Python loop timed with os.times() (the times() syscall,
     which libfaketime does not intercept). A clock-heavy loop (time.time() 1e6 times)
     is shown on its own line, not as the target: libfaketime's clock_gettime runs on
     every read.
2. Create+start latency of the cages vs a plain container: median of 10 interleaved
   runs each. Target: at most 1.2x. `deterministic` is the level as rendered for a
   Service; "deterministic Job" adds the Job pins (in both images). A plain container
   with `--network none` is shown too: plain Podman pays for bridge networking, which
   the deterministic cage skips, so that line isolates what the cage itself costs.

Every side goes through the same podman-py client against the same private
`podman system service` (started like tests/conftest.py does), so only the cage differs.
Usage: .venv/bin/python bench/bench_cage.py [--runs N] [--latency-runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import podman as podman_py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docklock.cage import podman_create_kwargs, resolve_cage, write_cage_files  # noqa: E402
from docklock.cage.replay import job_cage  # noqa: E402
from docklock.model import JobSpec  # noqa: E402
from docklock.objects import CageSettings, ContainerConfig  # noqa: E402

BUSYBOX = "localhost/docklock-bench/busybox:1"
DEBIAN = "localhost/docklock-bench/debian-python:12"
# Python's side of the timing: os.times() is one times() syscall (CPU and elapsed
# ticks), which libfaketime leaves alone, so the Job cage's clock does not skew it.
PY_TIMED = ("import os, time\nt0 = os.times()\n{work}\nt1 = os.times()\n"
            "print(t1.user + t1.system - t0.user - t0.system, t1.elapsed - t0.elapsed)\n")

T = TypeVar("T")
Make = Callable[[str, list[str]], dict[str, Any]]


def _busybox_seconds(stdout: str, stderr: str) -> tuple[float, float]:
    """(CPU, wall) from busybox `time -p`: "real R", "user U", "sys S" on stderr."""
    fields = dict(line.split(None, 1) for line in stderr.splitlines() if " " in line)
    return float(fields["user"]) + float(fields["sys"]), float(fields["real"])


def _python_seconds(stdout: str, stderr: str) -> tuple[float, float]:
    cpu, wall = stdout.split()
    return float(cpu), float(wall)


@dataclass(frozen=True)
class Workload:
    label: str
    image: str
    command: tuple[str, ...]
    parse: Callable[[str, str], tuple[float, float]]


def busybox_work(label: str, script: str) -> Workload:
    return Workload(label, BUSYBOX, ("time", "-p", "sh", "-c", script), _busybox_seconds)


def python_work(label: str, body: str) -> Workload:
    return Workload(label, DEBIAN, ("python3", "-c", PY_TIMED.format(work=body)),
                    _python_seconds)


BUSYBOX_WORKLOADS = (
    busybox_work("shell loop (1M iterations)",
                 "i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done"),
    busybox_work("md5sum of 512 MiB /dev/zero",
                 "dd if=/dev/zero bs=64k count=8192 2>/dev/null | md5sum >/dev/null"),
)
PYTHON_LOOP = python_work("Python loop (10M iterations)",
                          "s = 0\nfor i in range(10_000_000):\n    s += i * i % 7")
CLOCK_READS = 1_000_000
PYTHON_CLOCK = python_work(f"Python time.time() x {CLOCK_READS:,}",
                           f"for _ in range({CLOCK_READS}):\n    time.time()")


@contextmanager
def private_podman() -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """A throwaway store and API service; yields (url, env, podman global args)."""
    base = Path(tempfile.mkdtemp(prefix="docklock-bench-"))
    conf = base / "containers.conf"
    shutil.copy(REPO / "tools" / "containers.conf", conf)
    env = dict(os.environ, CONTAINERS_CONF=str(conf))
    env.pop("CONTAINER_HOST", None)
    # Its own --tmpdir too: `system reset` deletes the tmpdir, and the default
    # (/run/libpod) is shared with every other Podman on the host.
    global_args = ["--root", str(base / "root"), "--runroot", str(base / "run"),
                   "--tmpdir", str(base / "tmp")]
    sock = base / "api.sock"
    service: subprocess.Popen[bytes] | None = None
    try:
        # The Debian root file system is cached on the machine (tools/debian-image);
        # only its import into this store is paid here.
        for tool, tag in (("busybox-image", BUSYBOX), ("debian-image", DEBIAN)):
            built = subprocess.run([str(REPO / "tools" / tool), tag, *global_args], env=env,
                                   capture_output=True, text=True, check=False, timeout=900)
            if built.returncode != 0:
                raise RuntimeError(f"tools/{tool} {tag} failed: {built.stderr.strip()}")
        log = (base / "service.log").open("ab")
        service = subprocess.Popen(["podman", *global_args, "system", "service", "--time=0",
                                    f"unix://{sock}"], env=env, stdout=log, stderr=log,
                                   start_new_session=True)
        deadline = time.monotonic() + 30
        while not sock.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman system service did not start")
            time.sleep(0.05)
        yield f"unix://{sock}", env, global_args
    finally:
        if service is not None and service.poll() is None:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(timeout=30)
        subprocess.run(["podman", *global_args, "rm", "-af", "-t", "0"], env=env,
                       capture_output=True, check=False)
        subprocess.run(["podman", *global_args, "system", "reset", "-f"], env=env,
                       capture_output=True, check=False, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def _name() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


def plain_kwargs(image: str, command: list[str]) -> dict[str, Any]:
    return {"name": _name(), "image": image, "command": command}


def caged(settings: CageSettings) -> Make:
    def make(image: str, command: list[str]) -> dict[str, Any]:
        config = ContainerConfig(name=_name(), image=image, command=tuple(command),
                                 cage=settings)
        return podman_create_kwargs(config)
    return make


def no_network(image: str, command: list[str]) -> dict[str, Any]:
    return {**plain_kwargs(image, command), "network_mode": "none"}


def run_to_end(client: Any, kwargs: dict[str, Any]) -> tuple[str, str]:
    """(stdout, stderr) of a container run to its end."""
    container = client.containers.create(**kwargs)
    try:
        container.start()
        code = container.wait(condition="exited", timeout=600)
        out = b"".join(container.logs(stdout=True, stderr=False)).decode()
        err = b"".join(container.logs(stdout=False, stderr=True)).decode()
        if code != 0:
            raise RuntimeError(f"benchmark container exited {code}: {out}{err}")
        return out, err
    finally:
        container.remove(force=True)


def inside_seconds(client: Any, make: Make, work: Workload) -> tuple[float, float]:
    """(CPU seconds, wall seconds) the work took inside the container."""
    return work.parse(*run_to_end(client, make(work.image, list(work.command))))


def create_start_seconds(client: Any, make: Make, image: str) -> float:
    kwargs = make(image, ["true"])
    t0 = time.perf_counter()
    container = client.containers.create(**kwargs)
    container.start()
    elapsed = time.perf_counter() - t0
    container.wait(condition="exited", timeout=60)
    container.remove(force=True)
    return elapsed


def interleaved(runs: int, sides: Mapping[str, Callable[[], T]]) -> dict[str, list[T]]:
    """`runs` results per side, the starting side rotating every run: drift in the
    machine's load (it is shared) then hits every side alike."""
    names = list(sides)
    results: dict[str, list[T]] = {name: [] for name in names}
    for i in range(runs):
        for name in names[i % len(names):] + names[:i % len(names)]:
            results[name].append(sides[name]())
    return results


def _pct(value: float, base: float) -> str:
    return f"{100 * (value - base) / base:+5.1f}%"


def cpu_table(client: Any, runs: int, work: Workload, cages: Mapping[str, Make],
              *, target: bool = True) -> None:
    sides: dict[str, Make] = {"plain": plain_kwargs, **cages}
    results = interleaved(runs, {
        name: partial(inside_seconds, client, make, work) for name, make in sides.items()})
    cpu = {name: statistics.median(x[0] for x in r) for name, r in results.items()}
    wall = {name: statistics.median(x[1] for x in r) for name, r in results.items()}
    image = "busybox-static" if work.image == BUSYBOX else "Debian 12 + Python"
    # The plain runs' spread says how much of an overhead figure the machine's noise is.
    spread = [x[0] for x in results["plain"]]
    print(f"  {work.label}, {image} image: plain CPU {cpu['plain']:5.2f}s wall "
          f"{wall['plain']:5.2f}s (plain CPU spread "
          f"{100 * (max(spread) - min(spread)) / cpu['plain']:.0f}%)")
    # Noise on a shared machine only ever adds CPU time: the fastest run of each side is
    # the least disturbed one, a second view when the spread dwarfs the target.
    fastest = {name: min(x[0] for x in r) for name, r in results.items()}
    for name in cages:
        note = "(target < 3%)" if target else "(not a target)"
        print(f"    {name:<20} CPU {cpu[name]:5.2f}s overhead "
              f"{100 * (cpu[name] - cpu['plain']) / cpu['plain']:+5.1f}% {note} | wall "
              f"{wall[name]:5.2f}s ({100 * (wall[name] - wall['plain']) / wall['plain']:+5.1f}%)"
              f" | fastest runs {_pct(fastest[name], fastest['plain'])}")
    if not target:
        per_read = (cpu[next(iter(cages))] - cpu["plain"]) / CLOCK_READS
        print(f"    {'':<20} {per_read * 1e9:+.0f} ns CPU per clock read "
              "(libfaketime's clock_gettime in place of the vDSO)")


def latency_table(client: Any, runs: int, image: str, cages: Sequence[tuple[str, Make]],
                  ) -> None:
    sides: dict[str, Make] = {"plain": plain_kwargs, "none": no_network, **dict(cages)}
    results = interleaved(runs, {
        name: partial(create_start_seconds, client, make, image) for name, make in sides.items()})
    med = {name: statistics.median(r) for name, r in results.items()}
    for name, _ in cages:
        print(f"  plain (podman run defaults) {1000 * med['plain']:6.0f} ms  {name:<18} "
              f"{1000 * med[name]:6.0f} ms  ratio {med[name] / med['plain']:4.2f}x  "
              "(target <= 1.2x)")
        print(f"  plain --network none        {1000 * med['none']:6.0f} ms  {name:<18} "
              f"{1000 * med[name]:6.0f} ms  ratio {med[name] / med['none']:4.2f}x")


def check_preloaded(client: Any, make: Make) -> str:
    """The year Python reads in the Job cage in the Debian image; fails unless it is
    the pinned clock's, so the "preloaded" figures below really had libfaketime."""
    out, _ = run_to_end(client, make(DEBIAN, [
        "python3", "-c", "import time; print(time.gmtime().tm_year)"]))
    year = out.strip()
    if year == time.strftime("%Y", time.gmtime()):
        raise RuntimeError(f"libfaketime is not in effect in the Job cage ({DEBIAN} reads "
                           f"the host's year {year})")
    return year


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-runs", type=int, default=10)
    args = parser.parse_args()

    cages = Path(tempfile.mkdtemp(prefix="docklock-bench-cages-"))
    hardened = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=cages)
    deterministic = resolve_cage("deterministic", floor="standard", profiles={}, seed=7,
                                 cages_dir=cages)
    # What `docklock run` gives a Job (docklock.cage.jobs.prepare_job): the level, then
    # the Job pins; the image does not enter the cage, so one cage serves both images.
    job = job_cage(deterministic, JobSpec(image=BUSYBOX, seed=7), cages)
    for settings in (hardened, deterministic, job):
        write_cage_files(settings, cages)
    replay = job.replay
    assert replay is not None  # job_cage always adds it to a deterministic cage
    version = subprocess.run(["podman", "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    print(f"{version}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians of {args.runs} (CPU) "
          f"and {args.latency_runs} (latency) runs")
    print(f"deterministic Job cage: launcher {'yes' if replay.launcher else 'NO'}, "
          f"libfaketime {replay.preload or 'NOT on this host'} (preloaded where the image "
          "has glibc's loader)")
    job_make = caged(job)
    try:
        with private_podman() as (url, _env, _args), podman_py.PodmanClient(base_url=url) as c:
            for image in (BUSYBOX, DEBIAN):  # warm the store and the image cache
                run_to_end(c, plain_kwargs(image, ["true"]))
            print("\nCPU-bound work, timed inside the container (cage vs plain, same image):")
            for work in BUSYBOX_WORKLOADS:
                cpu_table(c, args.runs, work,
                          {"hardened": caged(hardened), "deterministic Job": job_make})
            year = check_preloaded(c, job_make)
            print(f"  (Debian image, Job cage: libfaketime in effect, Python reads the year "
                  f"{year})")
            cpu_table(c, args.runs, PYTHON_LOOP, {"deterministic Job": job_make})
            print("\nClock-heavy loop, libfaketime preloaded (labelled apart: every clock "
                  "read pays libfaketime):")
            cpu_table(c, args.runs, PYTHON_CLOCK, {"deterministic Job": job_make},
                      target=False)

            print("\nContainer create+start latency (cage vs plain):")
            latency_table(c, args.latency_runs, BUSYBOX,
                          [("deterministic", caged(deterministic)),
                           ("deterministic Job", job_make)])
            print("  Debian 12 + Python image (libfaketime bound and preloaded):")
            latency_table(c, args.latency_runs, DEBIAN, [("deterministic Job", job_make)])
    finally:
        shutil.rmtree(cages, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
