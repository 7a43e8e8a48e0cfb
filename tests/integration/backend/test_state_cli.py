"""`docklock state ...` through the CLI, as an operator runs it, on real Podman and a
real PostgreSQL: rm on both backends, and migrate local -> postgres -> local keeping the
state and the ledger (byte for byte, `ledger verify` clean, plan says no changes)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from conftest import PodmanHarness, run_cli
from harness_pg import PostgresServer
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from docklock.backend import BackendSettings, ledger_storage_for, pg, state_store_for
from docklock.ledger.storage import FileLedgerStorage
from docklock.objects import ObjectKind
from docklock.state import RecordedObject, StateStore
from docklock.workspace import WorkspacePaths

pytestmark = [pytest.mark.podman, pytest.mark.postgres]

ENV = "DOCKLOCK_TEST_PG"


def _cluster(name: str, backend: str | None) -> str:
    spec = "  specs: [specs]\n  securityLevel: standard\n"
    if backend is not None:
        spec += f"  backend: {{type: {backend}, connectionEnv: {ENV}}}\n"
    return f"apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {{name: {name}}}\n" \
           f"spec:\n{spec}"


def _workspace(root: Path, name: str, image: str, backend: str | None) -> Path:
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(_cluster(name, backend))
    web = ("apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
           f"  image: {image}\n  command: [httpd, -f, -p, '8080', -h, /www]\n"
           "  stopTimeout: 0\n  replicas: 2\n")
    api = web.replace("{name: web}", "{name: api}").replace("replicas: 2", "replicas: 1")
    (root / "specs" / "app.yaml").write_text(web + "---\n" + api)
    return root


def _set_backend(root: Path, name: str, backend: str) -> None:
    (root / "docklock.yaml").write_text(_cluster(name, backend))


class Cli:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def __call__(self, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        result = run_cli(["-C", str(self.root), *args], env=self.env)
        if ok is True:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def pull(self) -> bytes:
        """`state pull`'s stdout as bytes (it prints the stored bytes unchanged)."""
        exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
        return subprocess.run([exe, "-C", str(self.root), "state", "pull"], env=self.env,
                              capture_output=True, check=True, timeout=120).stdout


def _entries(cli: Cli) -> list[dict[str, object]]:
    return json.loads(cli("ledger", "show", "--json").stdout)["entries"]


@pytest.mark.parametrize("backend", ["local", "postgres"])
def test_state_rm_on_each_backend(backend: str, podman: PodmanHarness, pg_conninfo: str,
                                  tmp_path: Path) -> None:
    name = f"rm{backend[:2]}"
    root = _workspace(tmp_path / "ws", name, podman.image,
                      None if backend == "local" else "postgres")
    cli = Cli(root, podman.cli_env(**{ENV: pg_conninfo}))
    cli("apply", "--auto-approve")
    assert cli("state", "list").stdout.splitlines() == ["Service/default/api",
                                                        "Service/default/web"]
    shown = json.loads(cli("state", "show", "web", "--json").stdout)
    assert sorted(o["name"] for o in shown["objects"].values()) == [
        f"{name}-default-web-1", f"{name}-default-web-2"]
    serial = json.loads(cli.pull())["serial"]

    dry = cli("state", "rm", "web", "--dry-run")
    assert "Would remove Service/default/web (2 object(s)" in dry.stdout
    assert json.loads(cli.pull())["serial"] == serial

    bad = cli("state", "rm", "web", "Service/default/apj", ok=None)
    assert bad.returncode == 1
    assert "Service/default/apj is not in the recorded state" in bad.stderr
    assert "did you mean Service/default/api?" in bad.stderr

    done = cli("state", "rm", "Service/default/web")
    assert "Removed Service/default/web" in done.stdout
    after = json.loads(cli.pull())
    assert after["serial"] == serial + 1
    assert sorted(after["resources"]) == ["Service/default/api"]
    rm_entry = [e for e in _entries(cli) if e["type"] == "state-rm"][-1]
    assert rm_entry["payload"]["addresses"] == ["Service/default/web"]  # type: ignore[index]
    assert cli("ledger", "verify").returncode == 0
    # Podman was not touched: the containers run on, unrecorded, and drift says so.
    assert podman.containers() == [f"{name}-default-api-1", f"{name}-default-web-1",
                                   f"{name}-default-web-2"]
    drift = cli("drift", ok=None)
    assert drift.returncode == 2, (drift.stdout, drift.stderr)
    assert f"{name}-default-web-1" in drift.stdout
    # The resource is still in the specs: the next apply adopts them back (an adoption
    # changes nothing in Podman, so plan's exit code stays 0).
    plan = cli("plan", "--detailed-exitcode")
    assert "2 object(s) found in Podman will be recorded in state." in plan.stdout
    cli("apply", "--auto-approve")
    assert cli("drift").returncode == 0
    assert "Service/default/web" in cli("state", "list").stdout


def test_migrate_local_to_postgres_and_back(podman: PodmanHarness,
                                           postgres_server: PostgresServer,
                                           pg_conninfo: str, tmp_path: Path) -> None:
    name = "mig"
    root = _workspace(tmp_path / "ws", name, podman.image, "local")
    cli = Cli(root, podman.cli_env(**{ENV: pg_conninfo}))
    cli("apply", "--auto-approve")
    cli("drift")  # one more ledger entry (drift) after apply's
    state_bytes = (root / ".docklock" / "state.json").read_bytes()
    ledger_before = {n: (root / ".docklock" / "ledger" / n).read_bytes()
                     for n in ("entries.jsonl", "checkpoints.jsonl", "ledger.json")}
    root_before = json.loads(cli("ledger", "verify", "--json").stdout)["root"]

    # docklock.yaml must name the target first.
    refused = cli("state", "migrate", "--to", "postgres", ok=None)
    assert refused.returncode == 1
    assert "docklock.yaml names the local backend, not postgres" in refused.stderr

    _set_backend(root, name, "postgres")
    moved = cli("state", "migrate", "--to", "postgres", "--json")
    result = json.loads(moved.stdout)
    assert result["state"]["serial"] == json.loads(state_bytes)["serial"]
    assert result["retired"].startswith(".docklock/migrated-")
    assert not (root / ".docklock" / "state.json").exists()
    assert not (root / ".docklock" / "ledger").exists()
    kept = root / result["retired"]
    assert (kept / "state.json").read_bytes() == state_bytes
    assert (kept / "ledger" / "entries.jsonl").read_bytes() == ledger_before["entries.jsonl"]

    # On PostgreSQL: the same state bytes, the same ledger plus the migration entry.
    assert cli.pull() == state_bytes
    rows = postgres_server.psql(
        "SELECT line FROM docklock_ledger_entries WHERE workspace = %s ORDER BY seq",
        superuser=False, database=conninfo_to_dict(pg_conninfo)["dbname"], params=[name])
    old_lines = ledger_before["entries.jsonl"].splitlines()
    assert [bytes(r[0]) for r in rows[:len(old_lines)]] == old_lines
    assert json.loads(bytes(rows[-1][0]))["type"] == "state-migrate"
    verify = json.loads(cli("ledger", "verify", "--json").stdout)
    assert verify["ok"], verify
    assert verify["entries"] == len(old_lines) + 1
    assert cli("plan", "--detailed-exitcode").returncode == 0
    assert cli("drift").returncode == 0

    # Running it again finds nothing left to move (the local files were moved aside).
    again = cli("state", "migrate", "--to", "postgres", ok=None)
    assert again.returncode == 1
    assert "there is nothing to migrate" in again.stderr
    assert cli.pull() == state_bytes

    # And back to files.
    _set_backend(root, name, "local")
    back = json.loads(cli("state", "migrate", "--to", "local", "--json").stdout)
    assert back["retired"] == f"postgres:{name}/state marked moved"
    assert (root / ".docklock" / "state.json").read_bytes() == state_bytes
    entries = (root / ".docklock" / "ledger" / "entries.jsonl").read_bytes()
    assert entries.startswith(ledger_before["entries.jsonl"])
    # What happened on PostgreSQL came back with it: the plan and drift run there.
    assert [json.loads(line)["type"] for line in entries.splitlines()[len(old_lines):]] == [
        "state-migrate", "plan", "drift", "state-migrate"]
    assert (root / ".docklock" / "ledger" / "ledger.json").read_bytes() == \
        ledger_before["ledger.json"]
    final = json.loads(cli("ledger", "verify", "--json").stdout)
    assert final["ok"], final
    assert final["origin"] == verify["origin"]
    assert root_before != final["root"]  # two entries more, same history before them
    assert cli("plan", "--detailed-exitcode").returncode == 0
    assert cli("drift").returncode == 0

    # The PostgreSQL workspace is marked moved: pointing docklock.yaml back at it fails.
    _set_backend(root, name, "postgres")
    stale = cli("state", "list", ok=None)
    assert stale.returncode == 1
    assert "was migrated to local" in stale.stderr


def test_migrate_refuses_a_tampered_source_ledger(podman: PodmanHarness, pg_conninfo: str,
                                                  tmp_path: Path) -> None:
    name = "tamper"
    root = _workspace(tmp_path / "ws", name, podman.image, "local")
    cli = Cli(root, podman.cli_env(**{ENV: pg_conninfo}))
    cli("apply", "--auto-approve")
    entries = root / ".docklock" / "ledger" / "entries.jsonl"
    lines = entries.read_bytes().splitlines(keepends=True)
    # Back-date entry 1 by a year: still valid JSON, but no longer what was signed.
    assert b'"time":"2' in lines[1]
    lines[1] = lines[1].replace(b'"time":"2', b'"time":"1', 1)
    entries.write_bytes(b"".join(lines))
    _set_backend(root, name, "postgres")
    refused = cli("state", "migrate", "--to", "postgres", ok=None)
    assert refused.returncode == 1
    assert "the source ledger fails verification" in refused.stderr
    assert "seq 1" in refused.stderr or "entries.jsonl:2" in refused.stderr, refused.stderr
    # Nothing reached PostgreSQL and the local files stay where they were.
    assert (root / ".docklock" / "state.json").exists()
    assert cli("state", "pull").stdout == ""


RUNTIME_GRANTS = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON docklock_schema TO {role};
GRANT SELECT, INSERT, UPDATE ON docklock_workspaces, docklock_state,
    docklock_ledger_tree, docklock_ledger_cosignatures TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON docklock_locks TO {role};
GRANT SELECT, INSERT ON docklock_ledger_entries, docklock_ledger_checkpoints,
    docklock_ledger_meta TO {role};
"""


def test_a_runtime_role_that_owns_nothing(postgres_server: PostgresServer, pg_conninfo: str,
                                          tmp_path: Path) -> None:
    """docs/state-backends.md's hardened set-up, as written there: the tables' owner
    creates the schema once, DockLock then runs as a role holding only the grants above,
    and that role cannot switch the append-only triggers off."""
    database = conninfo_to_dict(pg_conninfo)["dbname"]
    role, password = f"dl_run_{secrets.token_hex(4)}", secrets.token_hex(16)
    postgres_server.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    runtime = make_conninfo(pg_conninfo, user=role, password=password)
    try:
        # 1. The owner's first connection creates the tables (any command does).
        owner_ws = tmp_path / "owner"
        (owner_ws / "specs").mkdir(parents=True)
        (owner_ws / "docklock.yaml").write_text(_cluster("schema-owner", "postgres"))
        owner = Cli(owner_ws, {**_base_env(), ENV: pg_conninfo})
        owner("state", "list")
        postgres_server.psql(f"GRANT CONNECT ON DATABASE {database} TO {role}",
                             database=database)
        postgres_server.psql(RUNTIME_GRANTS.format(role=role), database=database,
                             superuser=False)  # granted by the owner, as in the docs

        # 2. An operator's workspace, migrated and edited as the runtime role.
        root = tmp_path / "ws"
        (root / "specs").mkdir(parents=True)
        (root / "docklock.yaml").write_text(_cluster("team", "local"))
        paths = WorkspacePaths(root)
        store = StateStore(paths)
        with store.lock(command="test"):
            state = store.read(cluster="team")
            for n in ("web", "api"):
                obj = RecordedObject(key=f"container:team-{n}", kind=ObjectKind.CONTAINER,
                                     name=f"team-{n}", id="f" * 64, config_hash="c" * 64)
                state = state.with_object(f"Service/default/{n}", obj)
            store.write(state)
        cli = Cli(root, {**_base_env(), ENV: runtime})
        cli("keys", "init")
        _set_backend(root, "team", "postgres")
        moved = cli("state", "migrate", "--to", "postgres").stdout.splitlines()
        assert moved[0] == f"Migrated {root}/.docklock/ledger -> postgres:team/ledger"
        assert moved[1].endswith("serial 1 (copied byte for byte)")
        assert moved[-1].startswith("  source: .docklock/migrated-")
        cli("state", "rm", "api")
        assert cli("state", "list").stdout.splitlines() == ["Service/default/web"]
        assert json.loads(cli("ledger", "verify", "--json").stdout)["ok"]

        # 3. What the role cannot do: edit the ledger, or take its triggers away.
        with psycopg.connect(runtime, autocommit=True) as conn:
            for statement in (
                    "UPDATE docklock_ledger_entries SET line = line",
                    "DELETE FROM docklock_ledger_checkpoints",
                    "ALTER TABLE docklock_ledger_entries DISABLE TRIGGER USER",
                    "DROP TRIGGER docklock_append_only ON docklock_ledger_entries",
                    "DROP TABLE docklock_ledger_meta"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        pg.close_all()
        postgres_server.psql(f"DROP OWNED BY {role}", database=database)
        postgres_server.psql(f"DROP ROLE {role}")


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLOCK_")}
    env["NO_COLOR"] = "1"
    return env


def test_an_interrupted_migration_to_postgres_completes(pg_conninfo: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """PostgreSQL's ledger rows cannot be taken back, so a migration that stopped half-way
    (here: 3 entries, 1 checkpoint and the state copied) must be completable by running
    it again; the result is the same as an uninterrupted one."""
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    (root / "docklock.yaml").write_text(_cluster("half", "local"))
    paths = WorkspacePaths(root)
    store = StateStore(paths)
    with store.lock(command="test"):
        state = store.read(cluster="half")
        for n in ("a", "b", "c", "d", "e"):
            obj = RecordedObject(key=f"container:half-{n}", kind=ObjectKind.CONTAINER,
                                 name=f"half-{n}", id="f" * 64, config_hash="c" * 64)
            state = store.write(state.with_object(f"Service/default/{n}", obj))
    cli = Cli(root, {**_base_env(), ENV: pg_conninfo})
    cli("keys", "init")
    for n in ("a", "b", "c", "d"):
        cli("state", "rm", n)  # a ledger of 4 entries and 5 checkpoints
    state_bytes = paths.state.read_bytes()
    entries = (paths.ledger / "entries.jsonl").read_bytes()

    monkeypatch.setenv(ENV, pg_conninfo)
    settings = BackendSettings("postgres", ENV, "half")
    source = FileLedgerStorage(paths.ledger)
    target = ledger_storage_for(paths, settings)
    target.create_meta(source.read_meta() or b"")
    offset = 0
    for seq, line in enumerate(entries.split(b"\n")[:3]):
        target.append_entry(line, offset=offset, seq=seq)
        offset += len(line) + 1
    target.append_checkpoint(source.checkpoint_data().split(b"\n")[0])
    pg_store = state_store_for(paths, settings)
    with pg_store.lock(command="test"):
        pg_store.write_bytes(state_bytes)  # type: ignore[attr-defined]
    pg.close_all()

    _set_backend(root, "half", "postgres")
    done = cli("state", "migrate", "--to", "postgres")
    assert "3 already there from an interrupted migration" in done.stdout
    assert cli.pull() == state_bytes
    verify = json.loads(cli("ledger", "verify", "--json").stdout)
    assert verify["ok"], verify
    assert verify["entries"] == 5  # the 4 state-rm entries and the migration
    assert [e["type"] for e in _entries(cli)] == ["state-rm"] * 4 + ["state-migrate"]
