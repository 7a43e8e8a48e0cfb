"""Issue 14, must show 3: the ledger table is append-only for DockLock's own role (the
database refuses UPDATE, DELETE and TRUNCATE, with the trigger's message), and a row a
superuser edits past the triggers (session_replication_role = replica) is caught by
`docklock ledger verify`, naming the entry. Real Podman, real PostgreSQL, the CLI."""

from __future__ import annotations

import json

import psycopg
import pytest
from backend_helpers import WorkspaceFactory, web_and_api, workspace_factory
from conftest import PodmanHarness
from psycopg.conninfo import conninfo_to_dict

pytestmark = [pytest.mark.podman, pytest.mark.postgres]
__all__ = ["workspace_factory"]  # the fixture, imported for pytest to find

REFUSED = "docklock: the ledger is append-only ({op} refused on docklock_ledger_entries)"


def test_ledger_rows_are_append_only_and_an_edit_is_caught(
        podman: PodmanHarness, workspace_factory: WorkspaceFactory) -> None:
    ws = workspace_factory("aonly", "postgres", web_and_api(podman.image))
    ws("apply", "--auto-approve")
    ws("drift")
    before = ws.sql("SELECT seq, line FROM docklock_ledger_entries WHERE workspace = %s "
                    "ORDER BY seq", [ws.name])
    assert len(before) > 5
    assert json.loads(ws("ledger", "verify", "--json").stdout)["ok"]

    # As `docklock` (the role DockLock runs as, owner of the tables): refused.
    for op, sql in (
            ("UPDATE", "UPDATE docklock_ledger_entries SET line = line || 'x'::bytea "
                       "WHERE workspace = %s AND seq = 1"),
            ("DELETE", "DELETE FROM docklock_ledger_entries WHERE workspace = %s "
                       "AND seq = (SELECT max(seq) FROM docklock_ledger_entries)"),
            ("TRUNCATE", "TRUNCATE docklock_ledger_entries")):
        with pytest.raises(psycopg.errors.RaiseException) as refused:
            ws.sql(sql, [ws.name] if "%s" in sql else None)
        assert REFUSED.format(op=op) in str(refused.value)
    for table in ("docklock_ledger_checkpoints", "docklock_ledger_meta"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            ws.sql(f"DELETE FROM {table} WHERE workspace = %s", [ws.name])
    after = ws.sql("SELECT seq, line FROM docklock_ledger_entries WHERE workspace = %s "
                   "ORDER BY seq", [ws.name])
    assert after == before
    assert json.loads(ws("ledger", "verify", "--json").stdout)["ok"]

    # A superuser past the triggers edits one character inside a change entry's payload
    # (the line stays valid JSON of the same length): verify names that entry.
    seq, line = [(s, bytes(raw)) for s, raw in before
                 if json.loads(bytes(raw))["type"] == "change"][-1]  # the last change
    assert isinstance(seq, int)
    name = b"aonly-default-"
    at = line.index(name) + len(name)
    edited = line[:at] + (b"x" if line[at:at + 1] != b"x" else b"y") + line[at + 1:]
    assert json.loads(edited)["payload"] != json.loads(line)["payload"]
    database = str(conninfo_to_dict(ws.conninfo)["dbname"])
    with psycopg.connect(ws.server.conninfo_for(database, superuser=True),
                         autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        done = conn.execute("UPDATE docklock_ledger_entries SET line = %s "
                            "WHERE workspace = %s AND seq = %s", (edited, ws.name, seq))
        assert done.rowcount == 1

    verify = ws("ledger", "verify", ok=None)
    assert verify.returncode == 1, (verify.stdout, verify.stderr)
    assert f"entry seq {seq} " in verify.stderr, verify.stderr
    assert "payload does not match its payload_digest: the payload was edited" \
        in verify.stderr
    report = json.loads(ws("ledger", "verify", "--json", ok=None).stdout)
    assert not report["ok"]
    problem = report["problem"]
    assert (problem["kind"], problem["seq"], problem["file"]) == (
        "entry", seq, f"postgres:{ws.name}/ledger/entries")
