"""`docklock graph` prints the workspace's graph in dot, mermaid or json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.cli import main

SPECS = """\
kind: Service
metadata: {name: web}
spec: {image: x, dependsOn: [{name: api}], networks: [net]}
---
kind: Service
metadata: {name: api}
spec: {image: x, networks: [net]}
---
kind: Network
metadata: {name: net}
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "specs").mkdir()
    (tmp_path / "docklock.yaml").write_text("kind: Cluster\nmetadata: {name: g}\n")
    (tmp_path / "specs" / "a.yaml").write_text(SPECS)
    return tmp_path


def test_graph_json(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "-C", str(workspace), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["waves"] == [["Network/default/net"], ["Service/default/api"],
                             ["Service/default/web"]]


@pytest.mark.parametrize(("fmt", "first"), [("dot", "digraph docklock {"),
                                            ("mermaid", "flowchart LR")])
def test_graph_text_formats(workspace: Path, capsys: pytest.CaptureFixture[str], fmt: str,
                            first: str) -> None:
    assert main(["graph", "-C", str(workspace), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == first
    assert "Service/default/web" in out


def test_graph_of_an_invalid_workspace_fails(workspace: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "specs" / "b.yaml").write_text(
        "kind: Service\nmetadata: {name: x}\nspec: {image: x, dependsOn: [{name: x}]}\n")
    assert main(["graph", "-C", str(workspace)]) == 1
    assert "dependency cycle: Service/default/x -> Service/default/x" in capsys.readouterr().err
