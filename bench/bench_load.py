"""Benchmark: load + validate + graph of generated YAML workspaces (1k / 10k / 50k services).

Each workspace has a docklock.yaml, one file with 10 networks and 10 volumes, and the
services ten to a file, each like the DESIGN.md example (command, dependsOn, a port with
a host port, env, networks, volumes, healthcheck, limits). The timed call is
`docklock.load.load_workspace` (read, parse, schema-check, model, cross-check, graph)
followed by `graph.waves()`; the figure is the median of 3 runs, pinned to one core.

    .venv/bin/python bench/bench_load.py [--sizes 1000,10000,50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from docklock.load import load_workspace
from docklock.load.yaml import FAST_AVAILABLE
from docklock.workspace import WorkspacePaths

PER_FILE = 10


def service(i: int) -> str:
    deps = (f"\n  dependsOn:\n    - {{name: svc-{i - 1}, condition: started}}"
            if i % PER_FILE else "")
    return f"""apiVersion: docklock.io/v1
kind: Service
metadata:
  name: svc-{i}
  labels: {{tier: back, shard: "{i % 7}"}}
spec:
  image: localhost/demo/busybox:1
  command: [httpd, -f, -p, "8080", -h, /www]
  replicas: 1
  cage: hardened{deps}
  ports: [{{container: 8080, host: {10000 + i}}}]
  env: {{MODE: prod, INDEX: "{i}"}}
  networks: [net-{i % 10}]
  volumes: [{{name: vol-{i % 10}, path: /data}}]
  healthcheck: {{command: [wget, -q, -O-, "http://127.0.0.1:8080/"], interval: 2s, retries: 5}}
  resources: {{cpus: 0.5, memory: 64Mi, pids: 128}}
"""


def generate(root: Path, count: int) -> None:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: bench}\n"
        "spec: {securityLevel: standard}\n")
    infra = [f"kind: Network\nmetadata: {{name: net-{i}}}\n" for i in range(10)]
    infra += [f"kind: Volume\nmetadata: {{name: vol-{i}}}\n" for i in range(10)]
    (root / "specs" / "infra.yaml").write_text("---\n".join(infra))
    for start in range(0, count, PER_FILE):
        docs = [service(i) for i in range(start, min(start + PER_FILE, count))]
        (root / "specs" / f"svc-{start:06d}.yaml").write_text("---\n".join(docs))


def timed(root: Path) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of one load; CPU time is what other load on the core can't
    inflate (the machine is shared), wall time is what a user waits."""
    t0, c0 = time.perf_counter(), time.process_time()
    ws = load_workspace(WorkspacePaths(root))
    assert ws.graph is not None
    waves = ws.graph.waves()
    return time.perf_counter() - t0, time.process_time() - c0, len(ws.resources), len(waves)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"load+validate+graph, one core, median of {args.runs}; "
          f"fast C reader: {'yes' if FAST_AVAILABLE else 'NO (PyYAML missing)'}")
    results: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="docklock-bench-") as tmp:
        timed_warm = Path(tmp) / "warm"
        generate(timed_warm, 10)
        timed(timed_warm)  # schemas compiled once per process, as in real use
        for size in (int(s) for s in args.sizes.split(",")):
            root = Path(tmp) / f"ws{size}"
            generate(root, size)
            walls, cpus = [], []
            for _ in range(args.runs):
                wall, cpu, n, waves = timed(root)
                walls.append(wall)
                cpus.append(cpu)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            results.append((size, wall, cpu))
            print(f"{size:>7} services: wall {wall:7.3f} s, cpu {cpu:7.3f} s "
                  f"({cpu / size * 1e6:5.1f} us/service cpu; {n} resources, {waves} waves; "
                  f"wall runs {', '.join(f'{r:.3f}' for r in walls)})", flush=True)
    for (a, wa, ca), (b, wb, cb) in itertools.pairwise(results):
        print(f"growth {a} -> {b} ({b / a:.0f}x services): wall {wb / wa:.2f}x, "
              f"cpu {cb / ca:.2f}x")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"(load average during the run: {load:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
