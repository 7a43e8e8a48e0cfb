"""spec.backend: the model round trip, the schema's located errors, and the factory's
choice (backend_settings, open_state_store, ledger_storage) without a database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from docklock.backend import (
    BackendSettings,
    backend_settings,
    ledger_storage,
    open_state_store,
)
from docklock.errors import ValidationError
from docklock.load import load_cluster
from docklock.model import BackendSpec, ClusterSpec
from docklock.state import StateStore
from docklock.workspace import WorkspacePaths

HEAD = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: team}\n"


def workspace(tmp_path: Path, spec: str = "") -> WorkspacePaths:
    (tmp_path / "docklock.yaml").write_text(HEAD + spec)
    return WorkspacePaths(tmp_path)


@pytest.mark.parametrize("spec", [
    BackendSpec(),
    BackendSpec("postgres", "DOCKLOCK_PG"),
    BackendSpec("postgres", "DOCKLOCK_PG", "prod"),
    BackendSpec("local", "OLD_PG"),
])
def test_backend_spec_round_trips(spec: BackendSpec) -> None:
    assert BackendSpec.from_dict(spec.to_dict()) == spec
    cluster = ClusterSpec(backend=spec)
    assert ClusterSpec.from_dict(cluster.to_dict()) == cluster


def test_no_backend_section_is_local_and_not_serialised() -> None:
    assert ClusterSpec.from_dict({}).backend is None
    assert "backend" not in ClusterSpec().to_dict()
    assert BackendSpec.from_dict({}) == BackendSpec("local", None, None)


def test_settings_from_docklock_yaml(tmp_path: Path) -> None:
    paths = workspace(tmp_path, "spec:\n  backend: {type: postgres, connectionEnv: DOCKLOCK_PG}\n")
    # The workspace key defaults to the cluster's name.
    assert backend_settings(paths) == BackendSettings("postgres", "DOCKLOCK_PG", "team")
    paths.config.write_text(HEAD + "spec:\n  backend:\n    type: postgres\n"
                            "    connectionEnv: PG_URL\n    workspace: prod-eu\n")
    # A changed file is read again (the cache is keyed by its stat).
    assert backend_settings(paths) == BackendSettings("postgres", "PG_URL", "prod-eu")


def test_local_workspace_is_not_parsed(tmp_path: Path) -> None:
    # No "backend" in the file: local, without loading the schemas, even when the file is
    # broken (force-unlock and destroy must keep working there).
    paths = workspace(tmp_path, "spec: {securityLevel: nonsense, nodes: 3}\n")
    assert backend_settings(paths) == BackendSettings()
    assert backend_settings(WorkspacePaths(tmp_path / "nowhere")).is_local


def test_local_backend_gives_the_file_stores(tmp_path: Path) -> None:
    paths = workspace(tmp_path, "spec:\n  backend: {type: local, connectionEnv: OLD_PG}\n")
    settings = backend_settings(paths)
    assert settings == BackendSettings("local", "OLD_PG", "team")
    store = open_state_store(paths)
    assert isinstance(store, StateStore)
    assert store.path == paths.state
    storage = ledger_storage(paths)
    assert storage.kind == "local"
    assert storage.label == paths.ledger


def test_local_workspace_never_loads_the_driver(tmp_path: Path) -> None:
    # House rule 12, in a fresh interpreter (another test may have loaded psycopg here).
    paths = workspace(tmp_path, "spec:\n  backend: {type: local}\n")
    probe = ("import sys; from pathlib import Path; from docklock.workspace import "
             "WorkspacePaths; from docklock.backend import open_state_store, ledger_storage; "
             f"p = WorkspacePaths(Path({str(paths.root)!r})); open_state_store(p).read(); "
             "ledger_storage(p).entries_size(); print(sorted(m for m in sys.modules "
             "if m.startswith(('psycopg', 'docklock.backend.'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("backend", "where", "message"), [
    ("{type: postgres}", "docklock.yaml:6:3", "missing required field 'connectionEnv'"),
    ("{type: postgres, connectionEnv: 'postgres://u:pw@db/x'}", "docklock.yaml:6:29",
     "is not valid here (must match ^[A-Za-z_][A-Za-z0-9_]*$)"),
    ("{type: s3, connectionEnv: PG}", "docklock.yaml:6:13", '"s3" is not one of: local, '
     "postgres"),
    ("{type: postgres, connectionEnv: PG, password: x}", "docklock.yaml:6:48",
     "unknown field 'password'"),
    ("{type: postgres, connectionEnv: PG, workspace: Prod}", "docklock.yaml:6:48",
     '"Prod" is not valid here'),
], ids=["postgres-without-env", "env-is-a-uri", "unknown-type", "unknown-field",
        "workspace-not-a-label"])
def test_bad_backend_is_located(tmp_path: Path, backend: str, where: str,
                                message: str) -> None:
    paths = workspace(tmp_path, f"spec:\n  specs: [specs]\n  backend: {backend}\n")
    with pytest.raises(ValidationError) as info:
        backend_settings(paths)
    # Each problem points at the offending key in docklock.yaml.
    found = {(str(d.location), d.message) for d in info.value.diagnostics}
    assert any(loc == where and message in msg for loc, msg in found), found
    with pytest.raises(ValidationError):
        load_cluster(paths)  # the same judgement as every other reader of docklock.yaml
