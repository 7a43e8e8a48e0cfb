"""`docklock validate` and `docklock init` / `cluster init` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.cli import main
from docklock.cli.cmd_init import cluster_name

BAD = """\
kind: Service
metadata: {name: web}
spec:
  image: x
  replicas: -1
  restart: sometimes
"""


@pytest.fixture
def fresh(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    root = tmp_path / "My Project"
    assert main(["init", str(root)]) == 0
    capsys.readouterr()
    return root


def test_init_writes_a_valid_workspace(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sorted(p.name for p in fresh.iterdir()) == [".gitignore", "docklock.yaml", "specs"]
    assert sorted(p.name for p in (fresh / "specs").iterdir()) == ["policy.yaml", "web.yaml"]
    assert "name: my-project" in (fresh / "docklock.yaml").read_text()
    assert ".docklock/" in (fresh / ".gitignore").read_text()
    assert main(["validate", "-C", str(fresh)]) == 0
    assert capsys.readouterr().out == "2 resources valid\n"


def test_init_refuses_to_overwrite_unless_forced(fresh: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(fresh)]) == 1
    assert "already exist" in capsys.readouterr().err
    assert main(["init", str(fresh), "--force", "--name", "other"]) == 0
    assert "name: other" in (fresh / "docklock.yaml").read_text()
    assert (fresh / ".gitignore").read_text().count(".docklock/") == 1


def test_cluster_init_alias_with_options(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "w"
    assert main(["cluster", "init", str(root), "--security-level", "deterministic",
                 "--add", "job", "--add", "service"]) == 0
    assert "securityLevel: deterministic" in (root / "docklock.yaml").read_text()
    assert sorted(p.name for p in (root / "specs").iterdir()) == ["report-job.yaml", "web.yaml"]
    capsys.readouterr()
    assert main(["validate", "-C", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"valid": True, "resources": 2,
                                                   "errors": [], "warnings": []}


def test_init_rejects_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "x"), "--name", "Bad_Name"]) == 1
    assert "not a DNS label" in capsys.readouterr().err
    assert cluster_name("--Hello World!--") == "hello-world"
    assert cluster_name("___") == "docklock"


def test_validate_reports_every_error(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fresh / "specs" / "web.yaml").write_text(BAD)
    assert main(["validate", "-C", str(fresh)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "specs/web.yaml:5:3: -1 is less than the minimum of 0 (allowed: >= 0 and <= 1000)",
        "specs/web.yaml:6:3: \"sometimes\" is not one of: no, on-failure, always, "
        "unless-stopped",
        "2 problems found",
    ]


def test_validate_json_errors(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fresh / "specs" / "web.yaml").write_text(BAD)
    assert main(["validate", "-C", str(fresh), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] is False
    assert data["resources"] == 0
    assert data["errors"][0] == {"file": "specs/web.yaml", "line": 5, "column": 3,
                                 "path": "spec.replicas",
                                 "message": "-1 is less than the minimum of 0",
                                 "hint": "allowed: >= 0 and <= 1000"}
    assert {e["path"] for e in data["errors"]} == {"spec.replicas", "spec.restart"}


def test_validate_outside_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-C", str(tmp_path)]) == 1
    assert "is not a DockLock workspace" in capsys.readouterr().err


def test_validate_the_repository_workspace(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[3]
    assert main(["validate", "-C", str(root)]) == 0
    assert capsys.readouterr().out.endswith("resources valid\n")
