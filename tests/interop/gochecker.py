"""Builds the Go interoperability checker (tests/interop/go) once per session.

(Not a conftest.py on purpose: tests elsewhere do `from conftest import run_cli`, and a
second conftest module would shadow tests/conftest.py for them in a full run.)

The Go program is our own test tooling; what it links are implementations DockLock did
not write, fetched by the machine's Go toolchain from the Go module proxy, pinned by
go.sum: golang.org/x/mod/sumdb/note, github.com/transparency-dev/formats and
github.com/transparency-dev/merkle. The binary is cached under
$XDG_CACHE_HOME/docklock/interop keyed by the sources' digest. If Go or the module proxy
is not available the tests FAIL with the reason: they never skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_DIR = Path(__file__).resolve().parent / "go"
BUILD_TIMEOUT = 300


def _go() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).is_file():
        pytest.fail("the interop tests need a Go toolchain (go) on PATH or in /usr/local/go",
                    pytrace=False)
    return go


@pytest.fixture(scope="session")
def interop_checker() -> Path:
    go = _go()
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((GO_DIR / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docklock" / \
        "interop"
    binary = cache / f"docklock-interop-{digest.hexdigest()[:16]}"
    if binary.is_file():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOFLAGS="-mod=readonly", CGO_ENABLED="0")
    tmp = binary.with_suffix(f".{os.getpid()}.tmp")
    try:
        r = subprocess.run([go, "build", "-trimpath", "-o", str(tmp), "."], cwd=GO_DIR,
                           env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                           check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"go build of the interop checker took over {BUILD_TIMEOUT} s",
                    pytrace=False)
    if r.returncode != 0:
        proxy = subprocess.run([go, "env", "GOPROXY"], capture_output=True, text=True,
                               check=False).stdout.strip()
        pytest.fail(f"go build of tests/interop/go failed (GOPROXY={proxy}):\n{r.stderr}",
                    pytrace=False)
    tmp.replace(binary)  # atomic: a concurrent session never runs a half-written binary
    return binary
