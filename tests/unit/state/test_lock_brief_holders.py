"""A plan holds the state lock for milliseconds: others wait for it instead of failing
(two plans at once in CI), while any other holder still fails them at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from docklock.errors import LockError
from docklock.state import StateStore
from docklock.workspace import WorkspacePaths

HOLD = """
import sys, time
from pathlib import Path
from docklock.state import StateStore
from docklock.workspace import WorkspacePaths
store = StateStore(WorkspacePaths(Path(sys.argv[1])))
with store.lock(command=sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _hold(root: Path, command: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), command, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "docklock.yaml").write_text("")
    return tmp_path


def test_a_plan_holding_the_lock_is_waited_for(root: Path) -> None:
    proc = _hold(root, "docklock plan", 1.0)
    try:
        started = time.monotonic()
        with StateStore(WorkspacePaths(root)).lock(command="docklock apply", timeout=0):
            waited = time.monotonic() - started
    finally:
        proc.wait(timeout=30)
    assert 0.3 < waited < 9.0


def test_an_apply_holding_the_lock_fails_others_at_once(root: Path) -> None:
    proc = _hold(root, "docklock apply", 3.0)
    try:
        started = time.monotonic()
        with pytest.raises(LockError, match="docklock apply"):
            StateStore(WorkspacePaths(root)).lock(command="docklock plan", timeout=0)
        assert time.monotonic() - started < 1.0
    finally:
        proc.wait(timeout=30)
