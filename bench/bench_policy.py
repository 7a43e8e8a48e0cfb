"""Benchmark: 10,000 resources checked against the built-in baseline pack (budget 2 s).

Prints the median of 3 runs of `docklock.policy.evaluate` (resource views, every rule,
report and digest included), each with a cold verdict cache as a fresh CLI process has,
and for comparison the same with the projection cache switched off (every rule and resource
validated by jsonschema). Usage: .venv/bin/python bench/bench_policy.py [N]
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import date
from typing import Any

from docklock.model import ClusterSpec, Resource
from docklock.policy import engine, evaluate

RUNS = 3
BUDGET_S = 2.0


def make_resources(n: int, seed: int = 7) -> list[Resource]:
    """A varied workspace: 80% Services, 20% Jobs, mixed cages, users, images, limits."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = "Job" if i % 5 == 0 else "Service"
        spec: dict[str, Any] = {
            "image": rnd.choice(["localhost/app:1", "localhost/app:latest", "app",
                                 "localhost/app@sha256:" + "ab" * 32, f"localhost/svc{i % 50}:2"]),
            "cage": rnd.choice([None, "standard", "hardened", "deterministic", "strict"]),
        }
        if rnd.random() < 0.7:
            spec["user"] = rnd.choice(["1000", "app:app", "root", "0"])
        if rnd.random() < 0.6:
            spec["resources"] = {"cpus": rnd.choice([0.5, 1, 2]),
                                 "memory": rnd.choice(["64Mi", "256Mi"])}
        if kind == "Service":
            if rnd.random() < 0.8:
                spec["healthcheck"] = {"command": ["true"]}
            if rnd.random() < 0.1:
                spec["capAdd"] = [rnd.choice(["NET_BIND_SERVICE", "SYS_ADMIN", "CHOWN"])]
        spec = {k: v for k, v in spec.items() if v is not None}
        out.append(Resource.from_dict({
            "kind": kind,
            "metadata": {"name": f"w{i}", "namespace": f"team{i % 20}",
                         "labels": {"tier": rnd.choice(["front", "back"])}},
            "spec": spec,
        }))
    out.append(Resource.from_dict({"kind": "CageProfile", "metadata": {"name": "strict"},
                                   "spec": {"extends": "hardened", "pids": 64}}))
    return out


def timed(resources: list[Resource]) -> tuple[float, Any]:
    engine._compiled_for.cache_clear()  # a fresh process: nothing compiled or cached yet
    start = time.perf_counter()
    report = evaluate(resources, cluster=ClusterSpec(), packs=["builtin:baseline"],
                      policies=[], today=date(2025, 6, 1))
    return time.perf_counter() - start, report


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    resources = make_resources(n)
    timed(resources[:50])  # import-time and pack-loading costs are not the engine's
    times = []
    report = None
    for _ in range(RUNS):
        seconds, report = timed(resources)
        times.append(seconds)
    assert report is not None
    median = statistics.median(times)
    print(f"policy check: {n} resources x baseline pack ({len(report.rules)} rules), "
          f"{len(report.results)} results")
    print(f"  {report.summary.line()}")
    print(f"  median of {RUNS}: {median:.3f} s  (runs: "
          f"{', '.join(f'{t:.3f}' for t in times)}; budget {BUDGET_S:.1f} s: "
          f"{'OK' if median < BUDGET_S else 'OVER'})")

    original = engine._Compiled.check
    engine._Compiled.check = lambda self, view: self._run(view)  # type: ignore[method-assign]
    try:
        raw = statistics.median(timed(resources)[0] for _ in range(RUNS))
    finally:
        engine._Compiled.check = original  # type: ignore[method-assign]
    print(f"  without the projection cache (every pair validated): median {raw:.3f} s, "
          f"{raw / median:.1f}x slower")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
