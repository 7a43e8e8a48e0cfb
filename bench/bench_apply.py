"""Cold apply of N independent services: DockLock vs podman-compose vs `podman run -d` x8.

    .venv/bin/python bench/bench_apply.py [--services 30] [--runs 3] [--parallelism 8]

Everything runs side by side in one process tree against one private Podman (its own
storage root, runroot, tmp_dir and network config folder under a temporary folder, so
nothing else on the machine is touched), with the same busybox image, the same command
(`sleep 3600`), the same network and the same container settings (cap-drop ALL,
no-new-privileges, pids limit 1024: DockLock's `standard` cage):

- docklock       `docklock apply --auto-approve` (the real CLI: start-up, load, plan,
                 apply, state, ledger) on a workspace with one Network and N Services;
- podman-compose `podman-compose up -d` on the equivalent compose file (generated into
                 bench/compose/compose-N.yaml); installed from PyPI into a temporary venv
                 when it is not on PATH;
- shell loop     `podman network create` then `podman run -d` of the N containers,
                 8 at a time (xargs -P 8): the floor.

Between runs every container and network is removed. Each tool runs `--runs` times in
rotating order; medians are printed with the ratios the issue asks for (DockLock at
most 0.5x podman-compose, at most 1.3x the shell loop). A second table times the
executor alone (no CLI start-up) with one podman-py client per worker thread against
one shared client, the measurement behind the executor's choice. Exit 0.
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
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = "localhost/docklock-test/busybox:1"
CLUSTER = "bench"
COMPOSE_DIR = REPO / "bench" / "compose"


class Podman:
    """A private Podman store and API service for the bench."""

    def __init__(self, base: Path) -> None:
        self.base = base
        conf = (REPO / "tools" / "containers.conf").read_text()
        (base / "tmp").mkdir()
        (base / "networks").mkdir()
        conf = conf.replace("[engine]", f'[network]\nnetwork_config_dir = "{base}/networks"'
                            f'\n\n[engine]\ntmp_dir = "{base}/tmp"', 1)
        (base / "containers.conf").write_text(conf)
        self.env = dict(os.environ)
        self.env["CONTAINERS_CONF"] = str(base / "containers.conf")
        self.env.pop("CONTAINER_HOST", None)
        self.url = f"unix://{base / 'api.sock'}"
        self.args = ["--root", str(base / "root"), "--runroot", str(base / "run")]
        self.service: subprocess.Popen[bytes] | None = None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *self.args, *args], env=self.env, text=True,
                              capture_output=True, check=check)

    def start(self) -> None:
        built = subprocess.run([str(REPO / "tools" / "busybox-image"), IMAGE, *self.args],
                               env=self.env, capture_output=True, text=True, check=False)
        if built.returncode != 0:
            sys.exit(f"cannot build the busybox image: {built.stderr.strip()}")
        log = (self.base / "service.log").open("wb")
        self.service = subprocess.Popen(
            ["podman", *self.args, "system", "service", "--time=0", self.url],
            env=self.env, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 30
        while not (self.base / "api.sock").exists():
            if time.monotonic() > deadline or self.service.poll() is not None:
                sys.exit("podman system service did not start")
            time.sleep(0.05)

    def clean(self) -> None:
        self.run("rm", "-af", "-t", "0", check=False)
        self.run("network", "prune", "-f", check=False)

    def running(self) -> int:
        out = self.run("ps", "--format", "{{.Names}}").stdout
        return len([n for n in out.splitlines() if n.strip()])

    def stop(self) -> None:
        self.clean()
        if self.service is not None and self.service.poll() is None:
            os.killpg(self.service.pid, signal.SIGTERM)
            self.service.wait(timeout=30)
        self.run("system", "reset", "-f", check=False)


def write_workspace(root: Path, n: int) -> Path:
    ws = root / "ws"
    (ws / "specs").mkdir(parents=True)
    (ws / "docklock.yaml").write_text(
        f"apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {{name: {CLUSTER}}}\n"
        "spec: {specs: [specs], securityLevel: standard}\n")
    docs = ["apiVersion: docklock.io/v1\nkind: Network\nmetadata: {name: net}\n"]
    docs += [
        "apiVersion: docklock.io/v1\nkind: Service\n"
        f"metadata: {{name: s{i:02d}}}\nspec:\n  image: {IMAGE}\n"
        '  command: [sleep, "3600"]\n  networks: [net]\n  stopTimeout: 0\n'
        for i in range(n)]
    (ws / "specs" / "services.yaml").write_text("---\n".join(docs))
    return ws


def compose_text(n: int) -> str:
    lines = ["# Generated by bench/bench_apply.py: the compose equivalent of the DockLock",
             "# bench workspace (one network, N services, DockLock's `standard` cage).",
             "services:"]
    for i in range(n):
        lines += [f"  s{i:02d}:", f"    image: {IMAGE}", '    command: ["sleep", "3600"]',
                  "    networks: [net]", "    cap_drop: [ALL]",
                  "    security_opt: [no-new-privileges]", "    pids_limit: 1024",
                  "    stop_grace_period: 0s"]
    lines += ["networks:", "  net: {}"]
    return "\n".join(lines) + "\n"


def find_podman_compose(base: Path) -> tuple[list[str] | None, str]:
    found = shutil.which("podman-compose")
    if found:
        return [found], "on PATH"
    venv = base / "pcvenv"
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        return None, f"cannot make a venv: {made.stderr.strip()[-200:]}"
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "podman-compose"],
                         capture_output=True, text=True, check=False)
    if pip.returncode != 0:
        return None, f"pip install podman-compose failed: {pip.stderr.strip()[-300:]}"
    version = subprocess.run([str(venv / "bin" / "podman-compose"), "--version"],
                             capture_output=True, text=True, check=False).stdout.split()
    return [str(venv / "bin" / "podman-compose")], "PyPI " + (version[2] if len(version) > 2
                                                              else "?")


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parallelism", type=int, default=8)
    args = ap.parse_args()
    n = args.services
    if shutil.which("podman") is None:
        print("podman is not installed: nothing to measure")
        return 0

    base = Path(tempfile.mkdtemp(prefix="docklock-bench-apply-"))
    pm = Podman(base)
    pm.start()
    try:
        return _bench(pm, base, n, args.runs, args.parallelism)
    finally:
        pm.stop()
        shutil.rmtree(base, ignore_errors=True)


def _bench(pm: Podman, base: Path, n: int, runs: int, parallelism: int) -> int:
    ws = write_workspace(base, n)
    COMPOSE_DIR.mkdir(parents=True, exist_ok=True)
    (COMPOSE_DIR / f"compose-{n}.yaml").write_text(compose_text(n))
    compose_file = base / "compose.yaml"
    compose_file.write_text(compose_text(n))
    compose_cmd, compose_how = find_podman_compose(base)
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    env = dict(pm.env, DOCKLOCK_PODMAN_URL=pm.url, NO_COLOR="1")

    def docklock() -> None:
        for name in ("state.json", "state.json.backup"):
            (ws / ".docklock" / name).unlink(missing_ok=True)
        out = subprocess.run([exe, "apply", "--auto-approve", "--parallelism",
                              str(parallelism), "-C", str(ws)], env=env, text=True,
                             capture_output=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"docklock apply failed: {out.stderr[-500:]}")

    def compose() -> None:
        assert compose_cmd is not None
        out = subprocess.run([*compose_cmd, "--podman-args", " ".join(pm.args), "-f",
                              str(compose_file), "-p", "cbench", "up", "-d"], env=pm.env,
                             text=True, capture_output=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"podman-compose failed: {out.stderr[-500:]}")

    loop_script = (
        'set -e; podman "$@" network create loopnet >/dev/null; '
        f'for i in $(seq -w 0 {n - 1}); do echo "s$i"; done | '
        'xargs -P 8 -I{} podman "$@" run -d --name loop-{} --network loopnet '
        "--cap-drop ALL --security-opt no-new-privileges --pids-limit 1024 "
        f"{IMAGE} sleep 3600 >/dev/null")

    def loop() -> None:
        subprocess.run(["bash", "-c", loop_script, "loop", *pm.args], env=pm.env,
                       check=True, capture_output=True)

    tools: dict[str, Callable[[], None]] = {"docklock": docklock, "shell loop x8": loop}
    if compose_cmd is not None:
        tools["podman-compose"] = compose
    else:
        print(f"podman-compose cannot run here: {compose_how}")
    times: dict[str, list[float]] = {t: [] for t in tools}
    names = list(tools)
    # Warm-up: first image use, first network, pyc compilation; not counted.
    for name in names:
        pm.clean()
        tools[name]()
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            pm.clean()
            times[name].append(timed(tools[name]))
            up = pm.running()
            if up != n:
                raise RuntimeError(f"{name}: {up} containers running, expected {n}")
    pm.clean()

    print(f"Cold apply of {n} independent services on one network, {runs} runs each "
          f"(podman {pm.run('--version').stdout.split()[-1]}, {os.cpu_count()} cores; "
          f"podman-compose: {compose_how})")
    print(f"{'tool':<16}{'median s':>10}{'min s':>8}{'max s':>8}")
    med = {}
    for name in names:
        med[name] = statistics.median(times[name])
        print(f"{name:<16}{med[name]:>10.2f}{min(times[name]):>8.2f}{max(times[name]):>8.2f}")
    d = med["docklock"]
    if "podman-compose" in med:
        ratio = d / med["podman-compose"]
        verdict = "ok" if ratio <= 0.5 else "OVER TARGET"
        print(f"docklock / podman-compose = {ratio:.2f}x (target <= 0.5x: {verdict})")
    ratio = d / med["shell loop x8"]
    verdict = "ok" if ratio <= 1.3 else "OVER TARGET"
    print(f"docklock / shell loop x8  = {ratio:.2f}x (target <= 1.3x: {verdict})")
    _executor_only(pm, ws, runs, parallelism)
    return 0


def _executor_only(pm: Podman, ws: Path, runs: int, parallelism: int) -> None:
    """The executor alone, in-process: per-thread podman-py clients vs one shared client."""
    sys.path.insert(0, str(REPO))
    from docklock.apply import ApplyOptions, execute
    from docklock.load import load_workspace
    from docklock.plan import bind_desired, build_plan
    from docklock.render import render_workspace
    from docklock.runtime.podman import PodmanRuntime
    from docklock.state import StateStore
    from docklock.workspace import WorkspacePaths

    paths = WorkspacePaths(ws)
    loaded = load_workspace(paths)
    rendered = render_workspace(loaded)

    def once(shared: bool) -> float:
        pm.clean()
        for name in ("state.json", "state.json.backup"):
            (paths.dot / name).unlink(missing_ok=True)
        store = StateStore(paths)
        with store.lock(command="bench"), PodmanRuntime(pm.url) as rt:
            state = store.read(cluster=loaded.cluster_name)
            plan, _ = build_plan(rendered.objects, state, reader=rt,
                                 cluster=loaded.cluster_name,
                                 spec_digest=loaded.spec_digest, files=loaded.files)
            desired = bind_desired(plan, rendered.objects)
            factory = (lambda: rt) if shared else None
            start = time.perf_counter()
            result = execute(plan, desired, store=store, state=state, runtime=rt,
                             paths=paths, cluster=loaded.cluster_name,
                             options=ApplyOptions(parallelism=parallelism),
                             runtime_factory=factory)
            took = time.perf_counter() - start
        if not result.ok:
            raise RuntimeError(f"executor failed: {[o.error for o in result.failed][:2]}")
        return took

    per_thread: list[float] = []
    shared: list[float] = []
    for _ in range(runs):
        per_thread.append(once(False))
        shared.append(once(True))
    pm.clean()
    print(f"executor only (no CLI start-up), parallelism {parallelism}: "
          f"per-thread clients {statistics.median(per_thread):.2f}s, "
          f"one shared client {statistics.median(shared):.2f}s (medians)")


if __name__ == "__main__":
    sys.exit(main())
