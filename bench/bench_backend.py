"""The PostgreSQL backend against local files: plan of 10,000 services, no-op plan of 100 live.

    .venv/bin/python bench/bench_backend.py [--services 10000] [--live 100] [--runs 5]
                                            [--skip-live]

Issue 14. One private PostgreSQL cluster (tests/harness_pg.py: Debian's server binaries,
its own data folder and unix socket under /tmp, no TCP, run as `postgres` under root)
serves both parts; each part gets its own database, owned by the non-superuser role
`docklock`, named to DockLock through DOCKLOCK_BENCH_PG (spec.backend.connectionEnv).

(a) `docklock plan --no-refresh --detailed-exitcode` (the real CLI: start-up, load, the
    policy gate, render, state read, diff, text) on bench_plan's generated workspace of
    --services services, once with `backend: {type: local}` and once with `backend:
    {type: postgres}`. Each workspace's recorded state (every object "applied") is
    written through its own backend's state store, so the postgres plan reads it from
    the database. The two run in alternating order, --runs times each; the medians,
    their ratio, and the in-process state read of each backend are printed. Every run
    must say "No changes" (exit 0). No signing key: neither plan writes to the ledger.
(b) No-op `docklock plan --detailed-exitcode` of --live running containers on the
    postgres backend (private Podman as bench_startup: bench_apply.Podman and
    bench_apply.write_workspace), converged by one apply first; median of --runs, and
    "target < 1.5 s". For reference the same workspace is then moved to local files
    with `docklock state migrate --to local` and its no-op plan timed the same way.

Defaults run in about five minutes on two cores. Exit 0 (1 if a run is not a no-op).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))  # harness_pg

from bench_apply import Podman
from bench_apply import write_workspace as write_live_workspace
from bench_plan import CLUSTER, documents
from bench_plan import write_workspace as write_plan_workspace

from docklock.backend import open_state_store
from docklock.ledger.keys import init_keys
from docklock.model import Resource
from docklock.render import constant_context_digest, render
from docklock.state import RecordedObject, State
from docklock.workspace import WorkspacePaths

REPO = Path(__file__).resolve().parent.parent
ENV = "DOCKLOCK_BENCH_PG"
BACKENDS = ("local", "postgres")
LIVE_TARGET = 1.5  # seconds, issue 14


def backend_yaml(name: str, backend: str, *, policies: bool) -> str:
    extra = "  policies: [builtin:baseline]\n" if policies else ""
    return (f"apiVersion: docklock.io/v1\nkind: Cluster\nmetadata:\n  name: {name}\n"
            f"spec:\n  specs: [specs]\n  securityLevel: standard\n{extra}"
            f"  backend: {{type: {backend}, connectionEnv: {ENV}}}\n")


def write_state(paths: WorkspacePaths, resources: list[Resource]) -> None:
    """bench_plan.write_state, through the workspace's own backend."""
    rendered = render(resources, cluster=CLUSTER, context_digest=constant_context_digest)
    state = State(cluster=CLUSTER)
    for obj in rendered.objects:
        state = state.with_object(str(obj.address), RecordedObject.from_desired(
            obj, id=f"{abs(hash(obj.key)):064d}"[:64], created="2026-01-01T00:00:00Z"))
    store = open_state_store(paths)
    with store.lock(command="bench"):
        store.write(state)


def cached_copy(base: Path) -> dict[str, str]:
    """Environment running DockLock from a copy of the package whose bytecode the
    warm-up run caches, as an installed wheel has it (bench_startup's `pyc` mode);
    whatever this checkout's __pycache__ holds, or PYTHONDONTWRITEBYTECODE, does not
    count."""
    src = base / "src"
    if not src.exists():
        for folder in ("docklock", "schemas", "templates"):
            shutil.copytree(REPO / folder, src / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(os.environ, NO_COLOR="1", PYTHONPATH=str(src))
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "DOCKLOCK_SIGNING_KEY",
                 "DOCKLOCK_SIGNING_KEY_FILE", "CONTAINER_HOST"):
        env.pop(name, None)
    return env


def docklock_exe() -> str:
    return shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")


@dataclass
class Timings:
    """Wall seconds of each run, and (for subprocess runs) CPU seconds, user + system,
    of the docklock process: on a shared machine wall time includes waiting for a
    core, CPU time does not."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_plan(ws: Path, env: dict[str, str], *extra: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `docklock plan`; it must be a no-op."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run([docklock_exe(), "-C", str(ws), "plan", "--detailed-exitcode",
                           *extra], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0 or "No changes" not in done.stdout:
        raise SystemExit(f"plan in {ws} is not a no-op (exit {done.returncode}):\n"
                         f"{done.stdout[-800:]}\n{done.stderr[-800:]}")
    return took, children_cpu() - cpu


def measure(tools: Mapping[str, Callable[[], tuple[float, float]]], runs: int
            ) -> dict[str, Timings]:
    """Each tool --runs times, in rotating order (neither always goes first)."""
    names = list(tools)
    times = {n: Timings() for n in names}
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            wall, cpu = tools[name]()
            times[name].wall.append(wall)
            times[name].cpu.append(cpu)
    return times


def row(name: str, t: Timings, note: str = "") -> str:
    cpu_cell = f"{statistics.median(t.cpu):>8.3f}" if t.cpu else f"{'':>8}"
    return (f"{name:<36}{t.median:>9.3f}{min(t.wall):>8.3f}"
            f"{max(t.wall):>8.3f}{cpu_cell}  {note}")


HEADER = (f"{'':<36}{'median s':>9}{'min s':>8}{'max s':>8}{'cpu s':>8}"
          "  (cpu = median CPU seconds of the docklock process)")


def part_a(base: Path, conninfo: str, services: int, runs: int) -> None:
    docs = documents(services)
    resources = [Resource.from_dict(d) for d in docs]
    env = dict(cached_copy(base), **{ENV: conninfo})
    os.environ[ENV] = conninfo  # write_state and the in-process reads connect too
    workspaces: dict[str, Path] = {}
    for backend in BACKENDS:
        root = base / f"plan-{backend}"
        root.mkdir()
        write_plan_workspace(root, docs)
        (root / "docklock.yaml").write_text(backend_yaml(CLUSTER, backend, policies=True))
        # A real project has its docklock.pub (a postgres workspace holding state without
        # one is refused as possibly another project's).
        init_keys(WorkspacePaths(root), "mldsa65-ed25519")
        write_state(WorkspacePaths(root), resources)
        workspaces[backend] = root
    for root in workspaces.values():  # warm-up: bytecode, schema, page cache
        run_plan(root, env, "--no-refresh")
    tools = {backend: (lambda root=root: run_plan(root, env, "--no-refresh"))
             for backend, root in workspaces.items()}
    times = measure(tools, runs)
    reads: dict[str, Timings] = {}
    for backend, root in workspaces.items():
        store = open_state_store(WorkspacePaths(root))
        store.read(cluster=CLUSTER)  # connect once (a CLI process connects once too)
        reads[backend] = Timings()
        for _ in range(runs):
            start = time.perf_counter()
            store.read(cluster=CLUSTER)
            reads[backend].wall.append(time.perf_counter() - start)
    size = len((base / "plan-local" / ".docklock" / "state.json").read_bytes())
    objects = len(render(resources, cluster=CLUSTER,
                         context_digest=constant_context_digest).objects)
    print(f"(a) docklock plan --no-refresh, {services} services converged ({objects} "
          f"objects, state {size / 1e6:.1f} MB), {runs} runs each")
    print(HEADER)
    for backend in BACKENDS:
        print(row(f"plan --no-refresh ({backend})", times[backend]))
    for backend in BACKENDS:
        print(row(f"  state read in-process ({backend})", reads[backend]))
    ratio = times["postgres"].median / times["local"].median
    print(f"postgres / local = {ratio:.2f}x")


def part_b(base: Path, conninfo: str, live: int, runs: int) -> None:
    (base / "podman").mkdir()
    pm = Podman(base / "podman")
    pm.start()
    try:
        ws = write_live_workspace(base / "live", live)
        name = "bench"
        (ws / "docklock.yaml").write_text(backend_yaml(name, "postgres", policies=False))
        env = dict(cached_copy(base), CONTAINERS_CONF=pm.env["CONTAINERS_CONF"],
                   DOCKLOCK_PODMAN_URL=pm.url, **{ENV: conninfo})
        converge = subprocess.run([docklock_exe(), "-C", str(ws), "apply", "--auto-approve"],
                                  env=env, capture_output=True, text=True, check=False)
        if converge.returncode != 0:
            raise SystemExit(f"apply of {live} services failed:\n{converge.stderr[-800:]}")
        if pm.running() != live:
            raise SystemExit(f"{pm.running()} containers running, expected {live}")
        run_plan(ws, env)  # warm-up
        times = measure({"postgres": lambda: run_plan(ws, env)}, runs)
        med = times["postgres"].median
        verdict = "ok" if med < LIVE_TARGET else "OVER"
        print(f"(b) no-op docklock plan, {live} running containers, {runs} runs "
              f"(podman {pm.run('--version').stdout.split()[-1]}, {os.cpu_count()} cores)")
        print(HEADER)
        print(row("plan (postgres)", times["postgres"], f"target < {LIVE_TARGET} s {verdict}"))
        # The same containers and state, moved to files: what the backend costs.
        (ws / "docklock.yaml").write_text(backend_yaml(name, "local", policies=False))
        moved = subprocess.run([docklock_exe(), "-C", str(ws), "state", "migrate", "--to",
                                "local"], env=env, capture_output=True, text=True, check=False)
        if moved.returncode != 0:
            print(f"(reference skipped: state migrate --to local failed: "
                  f"{moved.stderr.strip()[-300:]})")
            return
        run_plan(ws, env)
        local = measure({"local": lambda: run_plan(ws, env)}, runs)
        print(row("plan (local, after state migrate)", local["local"], "reference"))
        print(f"postgres / local = {med / local['local'].median:.2f}x")
    finally:
        pm.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--services", type=int, default=10000,
                    help="services of the --no-refresh plan (a)")
    ap.add_argument("--live", type=int, default=100, help="running containers of (b)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-live", action="store_true", help="only (a): no Podman needed")
    args = ap.parse_args(argv)
    from harness_pg import fresh_database, start_postgres, stop_postgres

    server = start_postgres()
    base = Path(tempfile.mkdtemp(prefix="docklock-bench-backend-"))
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"bench_backend: PostgreSQL {server.bindir.parent.name} (private cluster, unix "
              f"socket), {os.cpu_count()} cores, load average {load} at start; DockLock "
              "from a copy with cached bytecode")
        with fresh_database(server) as conninfo:
            part_a(base, conninfo, args.services, args.runs)
        if not args.skip_live:
            if shutil.which("podman") is None:
                print("(b) skipped: podman is not installed")
            else:
                with fresh_database(server) as conninfo:
                    part_b(base, conninfo, args.live, args.runs)
    finally:
        stop_postgres(server)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
