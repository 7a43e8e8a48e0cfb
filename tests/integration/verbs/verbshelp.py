"""Helpers for the daily-verb tests: one small workspace on disk, CLI calls against the
Podman harness, the ledger's entries as data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PodmanHarness, run_cli

HEALTH = ('{command: [wget, -q, -O-, "http://127.0.0.1:8080/"], interval: 1s, retries: 2, '
          'timeout: 2s}')


def workspace(root: Path, cluster: str, specs: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {cluster}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "app.yaml").write_text(specs)
    return root


def dl(harness: PodmanHarness, ws: Path, *args: str, timeout: float = 120,
       input: str | None = None) -> subprocess.CompletedProcess[str]:
    """`docklock -C WS ARGS...` (the workspace flag first, so `exec ... -- CMD` works)."""
    if input is None:
        return run_cli(["-C", str(ws), *args], env=harness.cli_env(), timeout=timeout)
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    return subprocess.run([exe, "-C", str(ws), *args], env=harness.cli_env(), input=input,
                          capture_output=True, text=True, timeout=timeout, check=False)


def ledger(ws: Path) -> list[dict[str, Any]]:
    path = ws / ".docklock" / "ledger" / "entries.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def container_ids(harness: PodmanHarness, cluster: str) -> dict[str, str]:
    out = harness.podman("ps", "-a", "--no-trunc", "--filter",
                         f"label=io.docklock.cluster={cluster}",
                         "--format", "{{.Names}} {{.ID}}").stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def started_at(harness: PodmanHarness, name: str) -> str:
    return harness.podman("inspect", "--format", "{{.State.StartedAt}}", name).stdout.strip()


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_in(harness: PodmanHarness, ws: Path, *args: str,
           capfd: pytest.CaptureFixture[str]) -> Ran:
    """`docklock -C WS ARGS...` in this process (no interpreter start-up per call),
    against the harness's Podman; output captured at the file descriptors."""
    from docklock.cli import main

    saved = {k: os.environ.get(k) for k in ("DOCKLOCK_PODMAN_URL", "NO_COLOR")}
    os.environ.update(DOCKLOCK_PODMAN_URL=harness.url, NO_COLOR="1")
    capfd.readouterr()
    try:
        code = main(["-C", str(ws), *args])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    sys.stdout.flush()
    sys.stderr.flush()
    got = capfd.readouterr()
    return Ran(code, got.out, got.err)
