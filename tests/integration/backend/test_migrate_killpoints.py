"""`docklock state migrate` killed after it recorded the move on the target (before or
after the checkpoint), then run again: the re-run finishes it (the source is retired,
the ledger verifies with ONE state-migrate entry), in both directions. A PostgreSQL
source is marked moved before the move is recorded, so a kill never leaves it live.

The kill is a real one: a child `python -c` imports the engine, wraps its checkpoint
step with os._exit(9) and runs the CLI's main (no hook in DockLock itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from test_state_cli import ENV, Cli, _base_env, _cluster, _entries, _set_backend

from docklock.objects import ObjectKind
from docklock.state import RecordedObject, StateStore
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.postgres

# argv: when ("before" | "after" the checkpoint), then the CLI's arguments.
_KILLED_CHILD = """
import os, sys
import docklock.engine.state as engine
real = engine._checkpoint
def killed(ledger, signer):
    if sys.argv[1] == "after":
        real(ledger, signer)
    os._exit(9)
engine._checkpoint = killed
from docklock.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _killed_migrate(cli: Cli, to: str, when: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, when, "-C", str(cli.root), "state",
         "migrate", "--to", to], env=cli.env, capture_output=True, text=True,
        timeout=300, check=False)
    assert child.returncode == 9, (child.stdout, child.stderr)


def _seed(root: Path, name: str, env: dict[str, str]) -> tuple[Cli, bytes]:
    """A local workspace with 3 recorded services, a key, and 2 state-rm entries."""
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(_cluster(name, "local"))
    store = StateStore(WorkspacePaths(root))
    with store.lock(command="test"):
        state = store.read(cluster=name)
        for n in ("a", "b", "c"):
            obj = RecordedObject(key=f"container:{name}-{n}", kind=ObjectKind.CONTAINER,
                                 name=f"{name}-{n}", id="e" * 64, config_hash="d" * 64)
            state = store.write(state.with_object(f"Service/default/{n}", obj))
    cli = Cli(root, env)
    cli("keys", "init")
    cli("state", "rm", "a")
    cli("state", "rm", "b")
    return cli, WorkspacePaths(root).state.read_bytes()


def _moved_to(conninfo: str, workspace: str) -> str | None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT moved_to FROM docklock_workspaces WHERE workspace = %s",
                           (workspace,)).fetchone()
    return None if row is None else row[0]


def _verified(cli: Cli, entries: int) -> None:
    verify = json.loads(cli("ledger", "verify", "--json").stdout)
    assert verify["ok"], verify
    assert verify["entries"] == entries


@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_migration_to_postgres_is_finished_by_a_rerun(
        when: str, pg_conninfo: str, tmp_path: Path) -> None:
    name = f"kp{when[0]}"
    cli, state_bytes = _seed(tmp_path / "ws", name, {**_base_env(), ENV: pg_conninfo})
    paths = WorkspacePaths(cli.root)
    _set_backend(cli.root, name, "postgres")

    _killed_migrate(cli, "postgres", when)
    # Killed after recording the move: the local source is still in place...
    assert paths.state.read_bytes() == state_bytes
    assert (paths.ledger / "entries.jsonl").exists()
    assert not list(paths.dot.glob("migrated-*"))
    # ...and the target already says it moved.
    assert [e["type"] for e in _entries(cli)] == ["state-rm"] * 2 + ["state-migrate"]

    again = cli("state", "migrate", "--to", "postgres")
    assert "interrupted run of this migration, now finished" in again.stdout
    assert not paths.state.exists()
    assert not paths.ledger.exists()
    retired = list(paths.dot.glob("migrated-*"))
    assert len(retired) == 1
    assert (retired[0] / "state.json").read_bytes() == state_bytes
    assert cli.pull() == state_bytes
    _verified(cli, 3)
    assert [e["type"] for e in _entries(cli)] == ["state-rm"] * 2 + ["state-migrate"]
    # Finished means finished: a third run finds nothing left to move.
    third = cli("state", "migrate", "--to", "postgres", ok=None)
    assert third.returncode == 1
    assert "nothing to migrate" in third.stderr


@pytest.mark.parametrize("when", ["before", "after"])
def test_killed_migration_to_local_is_finished_by_a_rerun(
        when: str, pg_conninfo: str, tmp_path: Path) -> None:
    name = f"kl{when[0]}"
    cli, state_bytes = _seed(tmp_path / "ws", name, {**_base_env(), ENV: pg_conninfo})
    paths = WorkspacePaths(cli.root)
    _set_backend(cli.root, name, "postgres")
    cli("state", "migrate", "--to", "postgres")
    _set_backend(cli.root, name, "local")

    _killed_migrate(cli, "local", when)
    # The database workspace was marked moved BEFORE the move was recorded here: a clone
    # still naming it is refused at once, killed or not (no split brain).
    assert _moved_to(pg_conninfo, name) == f"local ({cli.root})"
    assert paths.state.read_bytes() == state_bytes
    types = ["state-rm"] * 2 + ["state-migrate"] * 2
    assert [e["type"] for e in _entries(cli)] == types

    again = cli("state", "migrate", "--to", "local")
    assert "interrupted run of this migration, now finished" in again.stdout
    assert "marked moved" in again.stdout
    assert _moved_to(pg_conninfo, name) == f"local ({cli.root})"
    assert cli.pull() == state_bytes
    _verified(cli, 4)
    assert [e["type"] for e in _entries(cli)] == types
    # The old backend is closed to a clone still naming it.
    _set_backend(cli.root, name, "postgres")
    stale = cli("state", "list", ok=None)
    assert stale.returncode != 0
    assert "was migrated to local" in stale.stderr


def test_a_source_written_after_the_kill_is_not_retired(pg_conninfo: str,
                                                        tmp_path: Path) -> None:
    """Someone switched back to the source and changed it after the killed run: the
    recorded move no longer describes it, so the re-run refuses instead of retiring it."""
    cli, _ = _seed(tmp_path / "ws", "kpw", {**_base_env(), ENV: pg_conninfo})
    paths = WorkspacePaths(cli.root)
    _set_backend(cli.root, "kpw", "postgres")
    _killed_migrate(cli, "postgres", "after")
    _set_backend(cli.root, "kpw", "local")
    cli("state", "rm", "c")  # the source moves on
    _set_backend(cli.root, "kpw", "postgres")

    again = cli("state", "migrate", "--to", "postgres", ok=None)
    assert again.returncode == 1, again.stdout
    assert "already holds" in again.stderr
    assert paths.state.exists()
    assert not list(paths.dot.glob("migrated-*"))
