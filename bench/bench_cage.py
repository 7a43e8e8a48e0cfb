"""Benchmark the cages against plain Podman, on a private Podman store.

1. CPU overhead of `hardened`: the same CPU-bound work in a hardened cage and in a
   plain container of the same image, measured inside the container as the CPU time
   (user + system, from the shell's `times`) the work consumed, so neither container
   start-up nor other load on the machine is counted. Wall time inside the container
   is shown too. Two workloads: a busybox shell loop (few syscalls) and md5sum of
   1 GiB of /dev/zero (~65k read/write syscalls, each through the seccomp filter).
   Median of 5 interleaved runs each. Target: overhead under 3%.
2. Create+start latency of `deterministic` (generated seccomp profile, read-only root,
   tmpfs, bind-mounted random stream, network none, ...) vs a plain container: median
   of 10 runs each. Target: at most 1.2x. A plain container with `--network none` is
   shown too: plain Podman pays for bridge networking, which the deterministic cage
   skips, so that line isolates what the cage itself costs.

Both sides go through the same podman-py client against the same private
`podman system service` (started like tests/conftest.py does), so only the cage differs.
Usage: .venv/bin/python bench/bench_cage.py [--runs N] [--latency-runs N]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import podman as podman_py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docklock.cage import podman_create_kwargs, resolve_cage, write_cage_files  # noqa: E402
from docklock.objects import CageSettings, ContainerConfig  # noqa: E402

IMAGE = "localhost/docklock-bench/busybox:1"
# `times` prints the shell's and its children's user and system CPU time.
TIMED = "read a _ < /proc/uptime; {work}; read b _ < /proc/uptime; echo $a $b; times"
_CLOCK = re.compile(r"(\d+)m([\d.]+)s")
WORKLOADS = {
    "shell loop (2M iterations)":
        "i=0; while [ $i -lt 2000000 ]; do i=$((i+1)); done",
    "md5sum of 1 GiB /dev/zero":
        "dd if=/dev/zero bs=64k count=16384 2>/dev/null | md5sum >/dev/null",
}


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
    subprocess.run([str(REPO / "tools" / "busybox-image"), IMAGE, *global_args], env=env,
                   check=True, capture_output=True)
    sock = base / "api.sock"
    log = (base / "service.log").open("ab")
    service = subprocess.Popen(["podman", *global_args, "system", "service", "--time=0",
                                f"unix://{sock}"], env=env, stdout=log, stderr=log,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("podman system service did not start")
            time.sleep(0.05)
        yield f"unix://{sock}", env, global_args
    finally:
        if service.poll() is None:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(timeout=30)
        subprocess.run(["podman", *global_args, "rm", "-af", "-t", "0"], env=env,
                       capture_output=True, check=False)
        subprocess.run(["podman", *global_args, "system", "reset", "-f"], env=env,
                       capture_output=True, check=False, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def plain_kwargs(command: list[str]) -> dict[str, Any]:
    return {"name": f"bench-{uuid.uuid4().hex[:10]}", "image": IMAGE, "command": command}


def caged_kwargs(settings: CageSettings, command: list[str]) -> dict[str, Any]:
    config = ContainerConfig(name=f"bench-{uuid.uuid4().hex[:10]}", image=IMAGE,
                             command=tuple(command), cage=settings)
    return podman_create_kwargs(config)


def run_to_end(client: Any, kwargs: dict[str, Any]) -> str:
    container = client.containers.create(**kwargs)
    try:
        container.start()
        code = container.wait(condition="exited", timeout=600)
        out = b"".join(container.logs(stdout=True, stderr=False)).decode()
        if code != 0:
            raise RuntimeError(f"benchmark container exited {code}: {out}")
        return out
    finally:
        container.remove(force=True)


def inside_seconds(client: Any, make: Callable[[list[str]], dict[str, Any]],
                   work: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) the work took inside the container."""
    out = run_to_end(client, make(["sh", "-c", TIMED.format(work=work)])).splitlines()
    start, end = (float(x) for x in out[0].split())
    cpu = sum(int(m) * 60 + float(s) for line in out[1:] for m, s in _CLOCK.findall(line))
    return cpu, end - start


def create_start_seconds(client: Any, kwargs: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    container = client.containers.create(**kwargs)
    container.start()
    elapsed = time.perf_counter() - t0
    container.wait(condition="exited", timeout=60)
    container.remove(force=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-runs", type=int, default=10)
    args = parser.parse_args()

    cages = Path(tempfile.mkdtemp(prefix="docklock-bench-cages-"))
    hardened = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=cages)
    deterministic = resolve_cage("deterministic", floor="standard", profiles={}, seed=7,
                                 cages_dir=cages)
    write_cage_files(hardened, cages)
    write_cage_files(deterministic, cages)
    version = subprocess.run(["podman", "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    print(f"{version}, {os.cpu_count()} CPUs; medians of {args.runs} (CPU) and {args.latency_runs} "
          "(latency) runs")
    try:
        with private_podman() as (url, _env, _args), podman_py.PodmanClient(base_url=url) as c:
            run_to_end(c, plain_kwargs(["true"]))  # warm the store and the image cache
            print("\nCPU-bound work, timed inside the container (hardened vs plain):")
            for label, work in WORKLOADS.items():
                plain: list[tuple[float, float]] = []
                caged: list[tuple[float, float]] = []
                for i in range(args.runs):
                    # Interleaved, alternating which goes first, so drift hits both sides.
                    first_plain = i % 2 == 0
                    if first_plain:
                        plain.append(inside_seconds(c, plain_kwargs, work))
                    caged.append(inside_seconds(
                        c, lambda cmd: caged_kwargs(hardened, cmd), work))
                    if not first_plain:
                        plain.append(inside_seconds(c, plain_kwargs, work))
                pc, hc = (statistics.median(x[0] for x in runs) for runs in (plain, caged))
                pw, hw = (statistics.median(x[1] for x in runs) for runs in (plain, caged))
                print(f"  {label:<28} CPU plain {pc:5.2f}s hardened {hc:5.2f}s "
                      f"overhead {100 * (hc - pc) / pc:+5.1f}% (target < 3%) | wall "
                      f"{pw:5.2f}s vs {hw:5.2f}s ({100 * (hw - pw) / pw:+5.1f}%)")

            print("\nContainer create+start latency (deterministic vs plain):")
            plain_lat: list[float] = []
            none_lat: list[float] = []
            det_lat: list[float] = []
            for _ in range(args.latency_runs):
                plain_lat.append(create_start_seconds(c, plain_kwargs(["true"])))
                none_lat.append(create_start_seconds(
                    c, {**plain_kwargs(["true"]), "network_mode": "none"}))
                det_lat.append(create_start_seconds(c, caged_kwargs(deterministic, ["true"])))
            p, n, d = (statistics.median(x) for x in (plain_lat, none_lat, det_lat))
            print(f"  plain (podman run defaults) {1000 * p:6.0f} ms  deterministic "
                  f"{1000 * d:6.0f} ms  ratio {d / p:4.2f}x  (target <= 1.2x)")
            print(f"  plain --network none        {1000 * n:6.0f} ms  deterministic "
                  f"{1000 * d:6.0f} ms  ratio {d / n:4.2f}x")
    finally:
        shutil.rmtree(cages, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
