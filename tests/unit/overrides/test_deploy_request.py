"""docklock.engine.deploy without Podman: which file a deploy means, and the requests it
refuses before touching anything (state, ledger, Podman)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from docklock.engine import Context
from docklock.engine.deploy import DeployError, DeployRequest, deploy, spec_file
from docklock.load import load_workspace
from docklock.overrides import OverrideError
from docklock.workspace import find_workspace

REPO = Path(__file__).resolve().parents[3]
NATIVE_CUE = REPO / ".cache" / "bin" / "cue"


def test_request_round_trips() -> None:
    r = DeployRequest(file=Path("specs/api.yaml"), replicas=3, parallelism=2,
                      health_timeout=5.0)
    assert DeployRequest.from_dict(r.to_dict()) == r


def test_spec_file_names_a_cue_agreement_and_its_resources(tmp_path: Path) -> None:
    cue = str(NATIVE_CUE) if NATIVE_CUE.exists() else shutil.which("cue")
    assert cue, "no cue executable: run the set-up (./dev setup) first"
    root = tmp_path / "mixed"
    shutil.copytree(REPO / "examples" / "mixed", root,
                    ignore=shutil.ignore_patterns(".docklock"))
    ws = load_workspace(find_workspace(root), cue=cue)
    assert spec_file(ws, root / "specs" / "workers.cue") == "specs/workers.cue"
    in_file = sorted(str(r.address) for r in ws.resources
                     if r.location is not None and r.location.file == "specs/workers.cue")
    assert in_file == ["Service/default/worker-emails", "Service/default/worker-reports"]
    # Relative to the workspace when the current folder has no such file (as git -C).
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert spec_file(ws, Path("specs/infra.yaml")) == "specs/infra.yaml"
    finally:
        os.chdir(cwd)
    with pytest.raises(DeployError, match="is outside the workspace"):
        spec_file(ws, tmp_path)
    with pytest.raises(DeployError, match=r"docklock\.yaml is not one of its spec files"):
        spec_file(ws, root / "docklock.yaml")


@pytest.mark.parametrize(("request_", "error", "message"), [
    (DeployRequest(Path("x.yaml"), auto_scaling=True), DeployError,
     "--auto-scaling needs the reconcile agent"),
    (DeployRequest(Path("x.yaml"), replicas=2, reset=True), DeployError,
     "--reset and --replicas do not go together"),
    (DeployRequest(Path("x.yaml"), replicas=-1), OverrideError, "from 0 to 1000"),
], ids=["auto-scaling", "reset-and-replicas", "negative"])
def test_refused_before_anything_is_read(tmp_path: Path, request_: DeployRequest,
                                         error: type[Exception], message: str) -> None:
    (tmp_path / "docklock.yaml").write_text("not even a Cluster document\n")
    with pytest.raises(error, match=message):
        deploy(Context.find(tmp_path, podman_url="unix:///nonexistent"), request_)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docklock.yaml"]
