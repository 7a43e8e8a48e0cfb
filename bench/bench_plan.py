"""Benchmark `docklock plan --no-refresh` on generated workspaces of 1k, 10k and 50k services.

For each size it generates a workspace (services spread over networks and volumes,
with dependsOn chains) and a matching recorded state (as if everything was applied),
then times the plan pipeline in-process, median of 3 runs:

  load      docklock.load.load_workspace on the YAML files (when the loader exists)
  policy    the policy gate plan runs (builtin:baseline enabled in the workspace)
  render    resources -> desired objects
  state     StateStore.read of .docklock/state.json
  diff      make_plan (diff + ordering) with --no-refresh
  output    render_text of the plan

and prints the figures and the per-1k-services cost, to show growth is near-linear.
Run: .venv/bin/python bench/bench_plan.py [--sizes 1000,10000,50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docklock.model import Resource
from docklock.plan import PlanOptions, build_plan, policy_info, render_text
from docklock.render import constant_context_digest, render
from docklock.state import RecordedObject, State, StateStore, locked
from docklock.state.store import gc_paused
from docklock.workspace import WorkspacePaths

CLUSTER = "bench"


def documents(n: int) -> list[dict[str, Any]]:
    """n services over n/100 networks and n/500 volumes, dependsOn chains of 10."""
    nets = max(1, n // 100)
    vols = max(1, n // 500)
    docs: list[dict[str, Any]] = []
    for i in range(nets):
        docs.append({"apiVersion": "docklock.io/v1", "kind": "Network",
                     "metadata": {"name": f"net{i}"}, "spec": {}})
    for i in range(vols):
        docs.append({"apiVersion": "docklock.io/v1", "kind": "Volume",
                     "metadata": {"name": f"vol{i}"}, "spec": {}})
    for i in range(n):
        spec: dict[str, Any] = {
            "image": "localhost/bench/busybox:1",
            "command": ["httpd", "-f", "-p", "8080"],
            "env": {"MODE": "prod", "INDEX": str(i),
                    "TOKEN": {"value": f"secret-{i}", "sensitive": True}},
            "networks": [f"net{i % nets}"],
            "resources": {"memory": "64Mi", "pids": 64},
            # Passes the baseline's deny rules (non-root); the warn rules still fire,
            # which is the realistic load on the policy gate.
            "user": "65534",
        }
        if i % 10:
            spec["dependsOn"] = [{"name": f"svc{i - 1}"}]
        if i % 50 == 0:
            spec["volumes"] = [{"name": f"vol{i % vols}", "path": "/data"}]
        docs.append({"apiVersion": "docklock.io/v1", "kind": "Service",
                     "metadata": {"name": f"svc{i}"}, "spec": spec})
    return docs


def write_workspace(root: Path, docs: list[dict[str, Any]]) -> None:
    import json

    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata:\n  name: bench\n"
        "spec:\n  specs: [specs]\n  securityLevel: standard\n"
        "  policies: [builtin:baseline]\n")
    specs = root / "specs"
    specs.mkdir()
    # 100 documents per file, as JSON-flavoured YAML (valid YAML, quick to write).
    for start in range(0, len(docs), 100):
        chunk = docs[start:start + 100]
        text = "\n---\n".join(json.dumps(d) for d in chunk) + "\n"
        (specs / f"part{start // 100:05d}.yaml").write_text(text)


def write_state(paths: WorkspacePaths, resources: list[Resource]) -> None:
    rendered = render(resources, cluster=CLUSTER, context_digest=constant_context_digest)
    state = State(cluster=CLUSTER)
    for obj in rendered.objects:
        state = state.with_object(str(obj.address), RecordedObject.from_desired(
            obj, id=f"{abs(hash(obj.key)):064d}"[:64], created="2026-01-01T00:00:00Z"))
    store = StateStore(paths)
    with locked(store, command="bench"):
        store.write(state)


# CPU seconds of the stages timed since the last reset: on a shared machine wall time
# includes waiting for a core, CPU time does not.
cpu_total = [0.0]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start, cpu = time.perf_counter(), time.process_time()
    value = fn()
    cpu_total[0] += time.process_time() - cpu
    return time.perf_counter() - start, value


def run_once(paths: WorkspacePaths, resources: list[Resource],
             load: Callable[[WorkspacePaths], Any] | None) -> dict[str, float]:
    t: dict[str, float] = {}
    cpu_total[0] = 0.0
    if load is not None:
        def load_paused() -> Any:
            with gc_paused():  # as `docklock plan` does
                return load(paths)
        t["load"], ws = timed(load_paused)
        # The policy gate exactly as plan runs it (builtin:baseline).
        t["policy"], info = timed(lambda: policy_info(ws))
        assert info.digest is not None
        res = list(ws.resources)
        cluster = ws.cluster_name
        digest = ws.spec_digest
    else:
        res, cluster, digest = resources, CLUSTER, "bench"
    t["render"], rendered = timed(lambda: render(res, cluster=cluster,
                                                 context_digest=constant_context_digest))
    t["state"], state = timed(lambda: StateStore(paths).read(cluster=cluster))

    def plan() -> Any:
        return build_plan(rendered.objects, state, cluster=cluster, spec_digest=digest,
                          options=PlanOptions(refresh=False))[0]

    t["diff"], p = timed(plan)
    if p.has_changes:
        raise SystemExit(f"bench workspace is not converged: {p.summary}")
    t["output"], _ = timed(lambda: render_text(p))
    t["total"] = sum(t.values())
    t["cpu"] = cpu_total[0]
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        from docklock.load import load_workspace

        def load(paths: WorkspacePaths) -> Any:
            return load_workspace(paths)
        loader: Callable[[WorkspacePaths], Any] | None = load
        note = ("whole pipeline: load + policy gate (builtin:baseline) + render + state "
                "read + diff + text")
    except ImportError:
        loader = None
        note = "docklock.load.load_workspace not available: render + state + diff + text"
    print(f"bench_plan: plan --no-refresh, converged, median of {args.runs} ({note})")
    header = f"{'services':>9} {'objects':>8}  " + " ".join(
        f"{k:>7}" for k in ("load", "policy", "render", "state", "diff", "output", "total",
                       "cpu")) \
        + "  ms/1k svc"
    print("(seconds; wall time per stage, `cpu` = CPU seconds of the whole pipeline)")
    print(header)
    rows: list[tuple[int, float]] = []
    for n in sizes:
        docs = documents(n)
        resources = [Resource.from_dict(d) for d in docs]
        with tempfile.TemporaryDirectory(prefix="docklock-bench-") as tmp:
            root = Path(tmp)
            write_workspace(root, docs)
            paths = WorkspacePaths(root)
            write_state(paths, resources)
            runs = [run_once(paths, resources, loader) for _ in range(args.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        count = len(render(resources, cluster=CLUSTER,
                           context_digest=constant_context_digest).objects)
        cells = " ".join(f"{med.get(k, float('nan')):7.3f}"
                         for k in ("load", "policy", "render", "state", "diff", "output",
                                   "total", "cpu"))
        print(f"{n:>9} {count:>8}  {cells}  {1000 * med['total'] / (n / 1000):9.1f}",
              flush=True)
        rows.append((n, med["total"]))
    if len(rows) > 1:
        (n0, t0), (n1, t1) = rows[0], rows[-1]
        print(f"growth {n0}->{n1}: x{t1 / t0:.1f} time for x{n1 / n0:.0f} services "
              f"(linear = x{n1 / n0:.0f})")
    ten_k = [t for n, t in rows if n == 10000]
    if ten_k:
        verdict = "under" if ten_k[0] < 3.0 else "OVER"
        print(f"10k services: {ten_k[0]:.2f} s ({verdict} the 3 s budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
