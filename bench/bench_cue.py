"""Benchmark: `docklock validate` of the CUE example after an edit, native cue vs cue-js.

Copies examples/cue-agreements to a temporary folder and, before every run, changes one
value of the agreement (the backends' pids limit), so the CUE export cache
(.docklock/cache/cue) never answers and every run pays the full `cue vet` + `cue export`.
Each run is what a user waits for after saving the file: a fresh process of
`python -m docklock validate -C WS --cue CUE`. The figures are the median of 5 runs for
the native cue (`./dev setup` builds it into .cache/bin) and for the bundled WebAssembly
launcher (tools/cue-js, CUE v0.4 under Node.js), side by side with their ratio.

To show where the time goes, the same edit is also timed as its parts: the bare `cue vet`
and `cue export` calls DockLock makes (cue's own cost), `load_workspace` in this process
(validate without start-up: cue plus DockLock's loading and checking), and
`docklock --version` (Python start-up and the CLI's imports).

    .venv/bin/python bench/bench_cue.py [--runs 5] [--native PATH] [--target 1.0]

Exit 0, or 1 when the native figure misses --target seconds or no native cue is found.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cue-agreements"
AGREEMENT = Path("specs") / "stack.cue"
SCHEMA = ROOT / "schemas" / "docklock.cue"
LAUNCHER = ROOT / "tools" / "cue-js"
EDITED = re.compile(r"(resources: \{cpus: 0\.25, memory: \"32Mi\", pids: )(\d+)")


def edit(workspace: Path, run: int) -> None:
    """Change the backends' pids limit (a value every exported Service carries)."""
    path = workspace / AGREEMENT
    text, count = EDITED.subn(rf"\g<1>{64 + run}", path.read_text(encoding="utf-8"))
    if count != 1:
        raise SystemExit(f"bench_cue: cannot find the value to edit in {path}")
    path.write_text(text, encoding="utf-8")


_EDITS = itertools.count(1)


def timed(runs: int, workspace: Path, action: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(runs):
        edit(workspace, next(_EDITS))  # a value never used before: the cache cannot answer
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


def run_ok(argv: Sequence[str], cwd: Path) -> None:
    done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench_cue: {' '.join(argv)} failed ({done.returncode}):\n"
                         f"{done.stderr.strip()}")


def validate(workspace: Path, cue: Sequence[str]) -> Callable[[], None]:
    argv = [sys.executable, "-m", "docklock", "validate", "-C", str(workspace),
            "--cue", cue[0]]

    def action() -> None:
        run_ok(argv, ROOT)
    return action


def bare_cue(workspace: Path, cue: Sequence[str]) -> Callable[[], None]:
    """The two calls docklock.load.cue makes, without DockLock around them."""
    files = [AGREEMENT.as_posix()]

    def action() -> None:
        run_ok([*cue, "vet", "-c", str(SCHEMA), *files], workspace)
        run_ok([*cue, "export", str(SCHEMA), *files, "-e", "resources", "--out", "json"],
               workspace)
    return action


def in_process(workspace: Path, cue: Sequence[str]) -> Callable[[], None]:
    """docklock.load.load_workspace in this process: validate without the start-up."""
    from docklock.load import load_workspace
    from docklock.workspace import WorkspacePaths

    def action() -> None:
        load_workspace(WorkspacePaths(workspace), cue=cue[0])
    return action


def fmt(values: Sequence[float]) -> str:
    runs = ", ".join(f"{v:.3f}" for v in values)
    return f"{statistics.median(values):6.3f} s  (runs {runs})"


def find_native(explicit: str | None) -> str | None:
    if explicit:
        return shutil.which(explicit)
    built = ROOT / ".cache" / "bin" / "cue"
    if built.is_file() and os.access(built, os.X_OK):
        return str(built)
    return shutil.which("cue")


def version(cue: Sequence[str]) -> str:
    done = subprocess.run([*cue, "version"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "unknown version"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--native", help="native cue (default: .cache/bin/cue, then PATH)")
    parser.add_argument("--target", type=float, default=1.0,
                        help="seconds the native median must stay under (default 1.0)")
    args = parser.parse_args()
    native = find_native(args.native)
    engines: list[tuple[str, list[str]]] = []
    if native:
        engines.append(("native", [native]))
    else:
        print("native cue: NOT FOUND (run ./dev setup on a machine with Go)")
    node = shutil.which("node")
    if node and LAUNCHER.is_file():
        engines.append(("wasm", [str(LAUNCHER)]))
    else:
        print("wasm launcher: NOT USABLE (needs Node.js and tools/cue-js)")
    print(f"docklock validate of examples/cue-agreements after an edit, median of {args.runs}")
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="docklock-bench-cue-") as tmp:
        for name, cue in engines:
            workspace = Path(tmp) / name
            shutil.copytree(EXAMPLE, workspace, ignore=shutil.ignore_patterns(".docklock"))
            label = f"{name} ({version(cue)})"
            total = timed(args.runs, workspace, validate(workspace, cue))
            medians[name] = statistics.median(total)
            cache_dir = workspace / ".docklock" / "cache" / "cue"
            cache = sorted(cache_dir.glob("*.json"))
            print(f"  {label:36} validate {fmt(total)}")
            if len(cache) != args.runs:  # each edit must have missed the cache
                raise SystemExit(f"bench_cue: {len(cache)} cache entries for {args.runs} "
                                 "runs: an edit did not invalidate the cache")
            parts = timed(args.runs, workspace, bare_cue(workspace, cue))
            medians[f"{name}-bare"] = statistics.median(parts)
            loads = timed(args.runs, workspace, in_process(workspace, cue))
            medians[f"{name}-load"] = statistics.median(loads)
            if len(list(cache_dir.glob("*.json"))) != 2 * args.runs:
                raise SystemExit("bench_cue: an in-process load was answered by the cache")
            print(f"  {'':36} load_workspace in-process {fmt(loads)}")
            print(f"  {'':36} bare cue vet+export {fmt(parts)}")
        startup = []
        for _ in range(args.runs):
            start = time.perf_counter()
            run_ok([sys.executable, "-m", "docklock", "--version"], ROOT)
            startup.append(time.perf_counter() - start)
        print(f"  {'docklock --version (start-up)':36} {fmt(startup)}")
    if "native" in medians:
        load, bare = medians["native-load"], medians["native-bare"]
        rest = medians["native"] - load
        print(f"native, where the time goes: validate {medians['native']:.3f} s = "
              f"in-process load {load:.3f} s (cue alone: {bare:.3f} s) + process start-up, "
              f"imports and output {rest:.3f} s (by difference; docklock --version: "
              f"{statistics.median(startup):.3f} s)")
    if "native" in medians and "wasm" in medians:
        print(f"ratio wasm/native: {medians['wasm'] / medians['native']:.1f}x")
    if "native" not in medians:
        return 1
    verdict = "meets" if medians["native"] < args.target else "MISSES"
    print(f"native validate after an edit: {medians['native']:.3f} s, {verdict} the "
          f"{args.target:g} s target")
    return 0 if medians["native"] < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
