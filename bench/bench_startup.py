"""Start-up cost: `docklock --version`, no-op `plan` and `apply` vs `podman-compose up -d`.

    .venv/bin/python bench/bench_startup.py [--services 30] [--runs 5] [--source DIR]

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

DockLock runs in two modes, each from its own copy of the package (docklock/, schemas/,
templates/ copied into the temporary folder and put first on PYTHONPATH), so whatever
__pycache__ folders the checkout happens to hold do not count:
- `pyc`: bytecode cached, as in an installed wheel (pip compiles at install); the
  warm-up writes the copy's cache;
- `no-pyc`: DockLock's modules compiled on every run (PYTHONDONTWRITEBYTECODE=1 and no
  cache), as this repository's sandbox runs it. The standard library and third-party
  packages keep their installed bytecode in both modes.
podman-compose is taken from PATH or installed from PyPI into a cached venv
(~/.cache/docklock-bench). Exit 0.
"""

from __future__ import annotations

import argparse
import functools
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

from bench_apply import REPO, Podman, compose_text, find_podman_compose, write_workspace

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "docklock-bench"
MODES = ("pyc", "no-pyc")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--services", type=int, default=30)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--source", type=Path, default=REPO,
                    help="a checkout (or `git archive` of a commit) whose docklock/ to time; "
                         "default: this one")
    args = ap.parse_args()
    if shutil.which("podman") is None:
        print("podman is not installed: nothing to measure")
        return 0
    base = Path(tempfile.mkdtemp(prefix="docklock-bench-startup-"))
    pm = Podman(base)
    pm.start()
    try:
        return _bench(pm, base, args.services, args.runs, args.source)
    finally:
        pm.stop()
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str], env: dict[str, str], what: str) -> str:
    out = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} failed ({out.returncode}): {out.stderr[-500:]}")
    return out.stdout


def _bench(pm: Podman, base: Path, n: int, runs: int, source: Path) -> int:
    ws = write_workspace(base, n)
    compose_file = base / "compose.yaml"
    compose_file.write_text(compose_text(n))
    CACHE.mkdir(parents=True, exist_ok=True)
    compose_cmd, compose_how = find_podman_compose(CACHE)
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    envs = {}
    for mode in MODES:
        src = base / f"src-{mode}"
        for folder in ("docklock", "schemas", "templates"):
            shutil.copytree(source / folder, src / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
        env = dict(pm.env, DOCKLOCK_PODMAN_URL=pm.url, NO_COLOR="1", PYTHONPATH=str(src))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.pop("PYTHONPYCACHEPREFIX", None)
        if mode == "no-pyc":
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        envs[mode] = env
        where = _run([sys.executable, "-c", "import sys; del sys.path[0]; import docklock; "
                      "print(docklock.__file__)"], env,
                     "finding the copied package")
        if not where.strip().startswith(str(src)):
            raise RuntimeError(f"the {mode} copy is not the package imported: {where}")

    def version(mode: str) -> None:
        _run([exe, "--version"], envs[mode], "docklock --version")

    def plan(mode: str) -> None:
        text = _run([exe, "plan", "--detailed-exitcode", "-C", str(ws)], envs[mode],
                    "docklock plan (exit 2 = changes: not converged)")
        if "No changes" not in text and "no changes" not in text:
            raise RuntimeError(f"docklock plan is not a no-op:\n{text[-500:]}")

    def apply(mode: str) -> None:
        _run([exe, "apply", "--auto-approve", "-C", str(ws)], envs[mode], "docklock apply")

    def compose() -> None:
        assert compose_cmd is not None
        _run([*compose_cmd, "--podman-args", " ".join(pm.args), "-f", str(compose_file),
              "-p", "cbench", "up", "-d"], pm.env, "podman-compose up -d")

    tools: dict[str, Callable[[], None]] = {}
    for mode in MODES:
        tools[f"docklock --version ({mode})"] = functools.partial(version, mode)
        tools[f"docklock plan ({mode})"] = functools.partial(plan, mode)
        tools[f"docklock apply ({mode})"] = functools.partial(apply, mode)
    if compose_cmd is not None:
        tools["podman-compose up -d"] = compose
    else:
        print(f"podman-compose cannot run here: {compose_how}")

    # Converge both projects (and warm pyc caches, the image, the networks): not counted.
    apply("pyc")
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
          f"podman-compose: {compose_how}; docklock from {source})")
    print(f"{'command':<32}{'median s':>10}{'min s':>8}{'max s':>8}  target")
    targets = {"docklock --version": 0.15, "docklock plan": 0.5, "docklock apply": 0.5}
    med: dict[str, float] = {}
    for name in names:
        med[name] = statistics.median(times[name])
        target = targets.get(name.split(" (")[0])
        mark = "" if target is None else (f"< {target}" + (" ok" if med[name] < target
                                                           else " OVER"))
        print(f"{name:<32}{med[name]:>10.3f}{min(times[name]):>8.3f}"
              f"{max(times[name]):>8.3f}  {mark}")
    if "podman-compose up -d" in med:
        ref = med["podman-compose up -d"]
        for mode in MODES:
            for cmd in ("docklock plan", "docklock apply"):
                name = f"{cmd} ({mode})"
                print(f"{name} / podman-compose up -d = {med[name] / ref:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
