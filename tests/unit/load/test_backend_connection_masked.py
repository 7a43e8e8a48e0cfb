"""A connection string pasted into spec.backend.connectionEnv (where a variable's NAME
belongs) is refused without printing its password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLUSTER = """\
apiVersion: docklock.io/v1
kind: Cluster
metadata: {name: demo}
spec:
  backend:
    type: postgres
    connectionEnv: "postgresql://dl:s3cretpw@db.example/docklock"
"""


def test_pasted_connection_string_is_masked(tmp_path: Path) -> None:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    done = subprocess.run([sys.executable, "-m", "docklock", "-C", str(tmp_path), "validate"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "docklock.yaml:7:" in done.stderr
    assert "connectionEnv" in done.stderr or "environment variable" in done.stderr
    assert "s3cretpw" not in done.stderr + done.stdout
    assert "(sensitive)" in done.stderr


def test_pasted_connection_string_inside_a_mapping_or_list_is_masked(tmp_path: Path) -> None:
    for value in ('{url: "postgresql://dl:s3cretpw@db.example/docklock"}',
                  '["host=db password=s3cretpw"]'):
        (tmp_path / "docklock.yaml").write_text(
            CLUSTER.replace('"postgresql://dl:s3cretpw@db.example/docklock"', value))
        (tmp_path / "specs").mkdir(exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "docklock", "-C", str(tmp_path),
                               "validate"], capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 1, value
        assert "docklock.yaml:7:" in done.stderr, done.stderr
        assert "s3cretpw" not in done.stderr + done.stdout, done.stderr
