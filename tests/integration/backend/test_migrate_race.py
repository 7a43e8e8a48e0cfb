"""`docklock state migrate` while another process appends to the SOURCE ledger: the
appended entry ends up in the target, or the writer is refused (nothing recorded); it
is never written to the source alone, where nobody would read it again.

Two real processes against a real PostgreSQL: the migration is a child `python -c`
running the CLI's main, paused inside its window (after copying, at the state import:
a wrapper around docklock.backend.migrate.import_state, no hook in DockLock itself);
the writer is another child holding a Ledger it opened BEFORE the migration started
(as `keys trust` in a clone still naming the old backend would), appending while the
migration is paused there.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from test_migrate_killpoints import _moved_to, _seed, _verified
from test_state_cli import ENV, Cli, _base_env, _set_backend

from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.postgres

# argv: signal folder, then the CLI's arguments. Pauses after the state import (inside
# the migration) until the test says go.
_PAUSED_MIGRATE = """
import pathlib, sys, time
import docklock.backend.migrate as migrate
signals = pathlib.Path(sys.argv[1])
real = migrate.import_state
def paused(*args, **kwargs):
    out = real(*args, **kwargs)
    (signals / "window").touch()
    deadline = time.monotonic() + 120
    while not (signals / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return out
migrate.import_state = paused
from docklock.cli import main
sys.exit(main(sys.argv[2:]))
"""

# argv: signal folder, workspace root, cluster, "file" (the local ledger) or "default"
# (docklock.yaml's backend). Opens the Ledger, says so, appends once told to.
_WRITER = """
import pathlib, sys, time
from docklock.errors import DockLockError
from docklock.ledger import EntryType, Ledger
from docklock.ledger.keys import require_signer
from docklock.ledger.storage import FileLedgerStorage
from docklock.workspace import WorkspacePaths
signals, root, cluster, where = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
paths = WorkspacePaths(pathlib.Path(root))
storage = FileLedgerStorage(paths.ledger) if where == "file" else None
try:
    signer = require_signer(paths)
    with Ledger.open(paths, cluster, signer=signer, storage=storage) as ledger:
        ledger.state()
        (signals / "opened").touch()
        while not (signals / "append").exists():
            time.sleep(0.05)
        entry = ledger.append(EntryType.DRIFT, {"summary": "written during the migration"})
        print(entry.line().decode())
except DockLockError as exc:
    print(f"{exc.message} | {exc.hint}", file=sys.stderr)
    sys.exit(3)
"""


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"{path.name}: the process ended first", out, err)
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _start(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _pg_lines(conninfo: str, workspace: str) -> list[bytes]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT line FROM docklock_ledger_entries WHERE workspace = %s "
                            "ORDER BY seq", (workspace,), binary=True).fetchall()
    return [bytes(r[0]) for r in rows]


def _race(cli: Cli, signals: Path, to: str, writer_root: Path, cluster: str,
          where: str) -> tuple[subprocess.CompletedProcess[str], tuple[int, str, str]]:
    """Writer opens; migration pauses in its window; writer appends; after 2 s (or once
    the writer is done) the migration goes on. (migration result, writer result)."""
    signals.mkdir()
    writer = _start(_WRITER, str(signals), str(writer_root), cluster, where, env=cli.env)
    _wait_for(signals / "opened", writer)
    migration = _start(_PAUSED_MIGRATE, str(signals), "-C", str(cli.root), "state",
                       "migrate", "--to", to, env=cli.env)
    try:
        _wait_for(signals / "window", migration)
        (signals / "append").touch()
        # Without the migration's lock it appends to the source right here; with it, it
        # waits for the source's ledger lock.
        with contextlib.suppress(subprocess.TimeoutExpired):
            writer.wait(timeout=2)
        (signals / "go").touch()
        out, err = migration.communicate(timeout=300)
        w_out, w_err = writer.communicate(timeout=120)
    finally:
        for proc in (writer, migration):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    done = subprocess.CompletedProcess(migration.args, migration.returncode, out, err)
    return done, (writer.returncode, w_out, w_err)


def test_append_to_the_postgres_source_during_migrate_to_local_is_not_lost(
        pg_conninfo: str, tmp_path: Path) -> None:
    name = "racel"
    env = {**_base_env(), ENV: pg_conninfo}
    m1, state_bytes = _seed(tmp_path / "m1", name, env)
    _set_backend(m1.root, name, "postgres")
    m1("state", "migrate", "--to", "postgres")
    # Clone m2: what git carries (docklock.yaml naming postgres, docklock.pub) and the
    # team key (keys export / import).
    m2 = Cli(tmp_path / "m2", env)
    (m2.root / "specs").mkdir(parents=True)
    for item in ("docklock.yaml", "docklock.pub"):
        (m2.root / item).write_bytes((m1.root / item).read_bytes())
    m1("keys", "export", str(tmp_path / "team.key"))
    m2("keys", "import", str(tmp_path / "team.key"))
    _set_backend(m1.root, name, "local")

    migrated, (w_rc, w_out, w_err) = _race(m1, tmp_path / "signals", "local", m2.root,
                                           name, "default")
    assert migrated.returncode == 0, (migrated.stdout, migrated.stderr)
    assert _moved_to(pg_conninfo, name) == f"local ({m1.root})"
    local = (WorkspacePaths(m1.root).ledger / "entries.jsonl").read_bytes().splitlines()
    source = _pg_lines(pg_conninfo, name)
    # Every line the source holds is in the target: nothing exists only in PostgreSQL.
    assert local[:len(source)] == source
    assert [json.loads(line)["type"] for line in local[len(source):]] == ["state-migrate"]
    # It appended after the copy, so it could not get in first: it waited for the
    # migration's ledger lock, then the database refused it (the workspace is marked).
    assert w_rc == 3, (w_out, w_err)
    assert "was migrated to local" in w_err, w_err
    assert "nothing was recorded" in w_err, w_err
    assert not any(b"written during the migration" in line for line in source)
    _verified(m1, len(local))
    assert m1.pull() == state_bytes


def test_append_to_the_local_source_during_migrate_to_postgres_is_not_lost(
        pg_conninfo: str, tmp_path: Path) -> None:
    """The same on files: the writer holds a Ledger on .docklock/ledger, opened before
    the migration retires it."""
    name = "racep"
    env = {**_base_env(), ENV: pg_conninfo}
    m1, state_bytes = _seed(tmp_path / "m1", name, env)
    before = (WorkspacePaths(m1.root).ledger / "entries.jsonl").read_bytes().splitlines()
    _set_backend(m1.root, name, "postgres")

    migrated, (w_rc, w_out, w_err) = _race(m1, tmp_path / "signals", "postgres", m1.root,
                                           name, "file")
    assert migrated.returncode == 0, (migrated.stdout, migrated.stderr)
    target = _pg_lines(pg_conninfo, name)
    assert [json.loads(line)["type"] for line in target[len(before):]][-1] == "state-migrate"
    assert target[:len(before)] == before
    retired = list(WorkspacePaths(m1.root).dot.glob("migrated-*"))
    assert len(retired) == 1
    source = (retired[0] / "ledger" / "entries.jsonl").read_bytes().splitlines()
    assert target[:len(source)] == source  # the retired source holds nothing extra
    # It waited for the migration's lock on .docklock/ledger, then found it moved away
    # (the append cannot create the file in a folder that is gone).
    assert w_rc == 3, (w_out, w_err)
    assert "nothing was recorded" in w_err, w_err
    assert len(source) == len(before)
    assert len(target) == len(before) + 1
    # Nothing was left in a new .docklock/ledger that no one reads.
    assert not (WorkspacePaths(m1.root).ledger / "entries.jsonl").exists()
    _verified(m1, len(target))
    assert m1.pull() == state_bytes
