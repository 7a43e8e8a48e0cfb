"""Which cue the loader runs (issue 12 item 6): the native release `./dev setup` builds into
the checkout's .cache/bin when one is there, and the suite's CUE tests use it; the
bundled WebAssembly launcher (tools/cue-js) stays a working fallback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.load import cue as cue_module
from docklock.load import load_workspace
from docklock.load.cue import CueCommand, checkout_cue, find_cue
from docklock.model import ServiceSpec
from docklock.workspace import WorkspacePaths

MakeWorkspace = Callable[..., WorkspacePaths]

REPO = Path(__file__).resolve().parents[3]
BUILT = REPO / ".cache" / "bin" / "cue"

AGREEMENT = """\
package docklock

resources: {
	api: #Service & {kind: "Service", metadata: name: "api", spec: {
		image: "localhost/demo/busybox:1", replicas: 2}}
}
"""


def _native_installed() -> bool:
    return BUILT.is_file() and os.access(BUILT, os.X_OK)


def test_the_suite_runs_cue_tests_on_the_native_cue_when_it_is_built(
        cue_command: CueCommand, monkeypatch: pytest.MonkeyPatch) -> None:
    """cue_command (tests/unit/load/conftest.py) is what every @pytest.mark.cue test runs."""
    if os.environ.get("DOCKLOCK_CUE"):  # an explicit choice wins, in the suite too
        assert cue_command.source == "DOCKLOCK_CUE"
        return
    if _native_installed():
        assert cue_command == CueCommand((str(BUILT),), "checkout")
        assert checkout_cue() == BUILT
    else:  # no Go on this machine: PATH or the launcher, never the missing binary
        assert cue_command.source in ("PATH", "bundled")
        assert checkout_cue() is None
    monkeypatch.delenv("DOCKLOCK_CUE", raising=False)
    assert find_cue(None) == cue_command


def test_the_checkout_cue_is_a_current_release_when_present() -> None:
    if not _native_installed():
        assert checkout_cue() is None
        return
    done = subprocess.run([str(BUILT), "version"], capture_output=True, text=True,
                          check=False, timeout=30)
    assert done.returncode == 0, done.stderr
    m = re.search(r"cue version v(\d+)\.(\d+)\.(\d+)", done.stdout)
    assert m is not None, done.stdout
    assert (int(m.group(1)), int(m.group(2))) >= (0, 14)  # issue 12: v0.14 or newer


def test_the_loader_picks_dot_cache_bin_cue_of_its_checkout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout laid out like this one: <root>/docklock/load/cue.py, <root>/.cache/bin."""
    root = tmp_path / "checkout"
    module = root / "docklock" / "load" / "cue.py"
    module.parent.mkdir(parents=True)
    monkeypatch.setattr(cue_module, "__file__", str(module))
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / "cue").write_text("#!/bin/sh\nexit 0\n")
    (on_path / "cue").chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.delenv("DOCKLOCK_CUE", raising=False)

    assert checkout_cue() is None  # not built yet: cue on PATH
    assert find_cue(None) == CueCommand((str(on_path / "cue"),), "PATH")

    built = root / ".cache" / "bin" / "cue"
    built.parent.mkdir(parents=True)
    built.write_text("#!/bin/sh\nexit 0\n")
    built.chmod(0o644)  # present but not executable: not a cue
    assert checkout_cue() is None
    built.chmod(0o755)
    assert checkout_cue() == built
    assert find_cue(None) == CueCommand((str(built),), "checkout")
    assert find_cue(str(on_path / "cue")).source == "argument"  # --cue still wins


@pytest.mark.cue
def test_the_wasm_launcher_is_the_fallback_without_a_native_cue(
        make_workspace: MakeWorkspace, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No .cache/bin/cue, no cue on PATH, Node.js present: the loader runs tools/cue-js."""
    node = shutil.which("node")
    assert node is not None, "Node.js is missing (./dev setup installs it)"
    only_node = tmp_path / "only-node"
    only_node.mkdir()
    (only_node / "node").symlink_to(node)
    monkeypatch.setenv("PATH", str(only_node))
    monkeypatch.delenv("DOCKLOCK_CUE", raising=False)
    monkeypatch.setattr("docklock.load.cue.checkout_cue", lambda: None)

    command = find_cue(None)
    assert command.source == "bundled"
    assert command.argv[1] == str(REPO / "tools" / "cue-js")

    ws = load_workspace(make_workspace({"specs/app.cue": AGREEMENT}))
    (api,) = ws.resources
    assert isinstance(api.spec, ServiceSpec)
    assert (api.name, api.spec.replicas) == ("api", 2)
    assert str(api.location) == "specs/app.cue:4:46"  # where its name is written
