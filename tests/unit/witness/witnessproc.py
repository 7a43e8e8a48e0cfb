"""A real `docklock witness serve` process and a real workspace, driven like a user would.

The witness listens on 127.0.0.1 with port 0 (the OS picks a free port) and prints its
URL as the first stdout line; start-up and shutdown are bounded, and the process is
stopped by its own pid at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTUP = 60.0


def _exe() -> str:
    return shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")


def run_cli(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The installed `docklock` CLI as a real process (as tests/conftest.py's run_cli; a
    `from conftest import` would find whichever conftest module was imported first)."""
    return subprocess.run([_exe(), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["NO_COLOR"] = "1"
    e.pop("DOCKLOCK_KEY_PASSPHRASE", None)
    return e


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), cwd=cwd, env=env(), timeout=120)


def ok(*args: str, cwd: Path | None = None) -> str:
    r = cli(*args, cwd=cwd)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


@dataclass
class WitnessProcess:
    folder: Path
    vkey: str
    url: str
    process: subprocess.Popen[str]

    def add_log(self, ws: Path) -> str:
        origin, vkey = ok("witness", "log-key", "-C", str(ws)).split()
        ok("witness", "add-log", "--dir", str(self.folder), origin, vkey)
        return origin


@contextmanager
def witness_process(folder: Path, name: str = "witness.test/w1") -> Iterator[WitnessProcess]:
    vkey = ok("witness", "init", str(folder), "--name", name).strip().splitlines()[-1]
    proc = subprocess.Popen([_exe(), "witness", "serve", "--dir", str(folder), "--listen",
                             "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env())
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(
            proc.stdout.readline() if proc.stdout else ""), daemon=True)
        reader.start()
        reader.join(STARTUP)
        started = bool(first) and first[0].startswith("http://127.0.0.1:")
        assert started, f"witness did not start (exit {proc.poll()})"
        yield WitnessProcess(folder, vkey, first[0].strip(), proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def make_workspace(root: Path, *witnesses: WitnessProcess, quorum: int | None = None,
                   name: str = "demo") -> Path:
    """A workspace with a key, registered at each witness, listing them in docklock.yaml."""
    ok("init", str(root), "--name", name)
    ok("keys", "init", "-C", str(root))
    for w in witnesses:
        w.add_log(root)
    set_witnesses(root, *witnesses, quorum=quorum)
    return root


def set_witnesses(root: Path, *witnesses: WitnessProcess, quorum: int | None = None,
                  urls: dict[str, str] | None = None) -> None:
    config = root / "docklock.yaml"
    text = config.read_text(encoding="utf-8").split("  ledger:\n")[0]
    if witnesses:
        text += "  ledger:\n    witnesses:\n"
        for w in witnesses:
            url = (urls or {}).get(w.vkey, w.url)
            text += f"      - url: {url}\n        key: {w.vkey}\n"
        if quorum is not None:
            text += f"    quorum: {quorum}\n"
    config.write_text(text, encoding="utf-8")


def plan(ws: Path) -> subprocess.CompletedProcess[str]:
    """A command that appends an entry and signs a checkpoint (no Podman needed)."""
    return cli("plan", "--no-refresh", "-C", str(ws))


def add_service(ws: Path, name: str) -> None:
    """Change the specs so the next plan records different content."""
    (ws / "specs" / f"{name}.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\n"
        f"metadata: {{name: {name}}}\n"
        "spec: {image: localhost/demo/busybox:1, command: [sleep, '3600']}\n",
        encoding="utf-8")
