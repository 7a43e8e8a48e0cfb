"""Start-up cost: `docklock --version`, no-op `plan` and `apply` vs `podman-compose up -d`.

    .venv/bin/python bench/bench_startup.py [--services 30] [--runs 5]

Issue 12 item 9. One private Podman service (bench_apply.Podman: its own storage root,
runroot, tmp_dir and network folder under a temporary folder) runs N services twice:
once applied by DockLock (bench_apply.write_workspace), once by podman-compose on the
equivalent compose file (bench_apply.compose_text). Both projects are converged first;
then each command runs `--runs` times in rotating order and the medians are printed:

- `docklock --version`                      (target < 0.15 s)
- `docklock plan` (no-op, N running)        (target < 0.5 s)
- `docklock apply --auto-approve` (no-op)   (target < 0.5 s)
- `podman-compose up -d` (converged)        (the reference)

with the ratios of plan and apply to podman-compose. Every timed command must succeed
and leave N containers of each project running; plan and apply must report no change.
podman-compose is taken from PATH or installed from PyPI into a cached venv
(~/.cache/docklock-bench). Exit 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_apply import Podman, compose_text, find_podman_compose, write_workspace

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "docklock-bench"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--services", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if shutil.which("podman") is None:
        print("podman is not installed: nothing to measure")
        return 0
    base = Path(tempfile.mkdtemp(prefix="docklock-bench-startup-"))
    pm = Podman(base)
    pm.start()
    try:
        return _bench(pm, base, args.services, args.runs)
    finally:
        pm.stop()
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    out = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}): {out.stderr[-500:]}")
    return out.stdout


def _bench(pm: Podman, base: Path, n: int, runs: int) -> int:
    ws = write_workspace(base, n)
    compose_file = base / "compose.yaml"
    compose_file.write_text(compose_text(n))
    CACHE.mkdir(parents=True, exist_ok=True)
    compose_cmd, compose_how = find_podman_compose(CACHE)
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    env = dict(pm.env, DOCKLOCK_PODMAN_URL=pm.url, NO_COLOR="1")

    def version() -> None:
        _run([exe, "--version"], env, "docklock --version")

    def plan() -> None:
        text = _run([exe, "plan", "--detailed-exitcode", "-C", str(ws)], env,
                    "docklock plan (exit 2 = changes: not converged)")
        if "No changes" not in text and "no changes" not in text:
            raise RuntimeError(f"docklock plan is not a no-op:\n{text[-500:]}")

    def apply() -> None:
        _run([exe, "apply", "--auto-approve", "-C", str(ws)], env, "docklock apply")

    def compose() -> None:
        assert compose_cmd is not None
        _run([*compose_cmd, "--podman-args", " ".join(pm.args), "-f", str(compose_file),
              "-p", "cbench", "up", "-d"], pm.env, "podman-compose up -d")

    tools: dict[str, Callable[[], None]] = {
        "docklock --version": version, "docklock plan": plan, "docklock apply": apply}
    if compose_cmd is not None:
        tools["podman-compose up -d"] = compose
    else:
        print(f"podman-compose cannot run here: {compose_how}")

    # Converge both projects (and warm pyc caches, the image, the networks): not counted.
    apply()
    if compose_cmd is not None:
        compose()
    expected = n * (2 if compose_cmd is not None else 1)
    for tool in tools.values():
        tool()

    times: dict[str, list[float]] = {t: [] for t in tools}
    names = list(tools)
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            tools[name]()
            times[name].append(time.perf_counter() - start)
    up = pm.running()
    if up != expected:
        raise RuntimeError(f"{up} containers running, expected {expected}")

    print(f"Start-up cost, {n} running services per project, {runs} runs each "
          f"(podman {pm.run('--version').stdout.split()[-1]}, {os.cpu_count()} cores; "
          f"podman-compose: {compose_how})")
    print(f"{'command':<24}{'median s':>10}{'min s':>8}{'max s':>8}  target")
    targets = {"docklock --version": 0.15, "docklock plan": 0.5, "docklock apply": 0.5}
    med: dict[str, float] = {}
    for name in names:
        med[name] = statistics.median(times[name])
        target = targets.get(name)
        mark = "" if target is None else (f"< {target}" + (" ok" if med[name] < target
                                                           else " OVER"))
        print(f"{name:<24}{med[name]:>10.3f}{min(times[name]):>8.3f}"
              f"{max(times[name]):>8.3f}  {mark}")
    if "podman-compose up -d" in med:
        ref = med["podman-compose up -d"]
        for name in ("docklock plan", "docklock apply"):
            print(f"{name} / podman-compose up -d = {med[name] / ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
