"""Issue 14, must show 1: the whole lifecycle — validate, plan, apply, status, drift,
an out-of-band stop and removal caught by drift, apply repairing them, destroy and
`ledger verify` — is ONE test body run on the local and the postgres backend, through
the CLI on real Podman and a real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from backend_helpers import BACKENDS, Workspace, WorkspaceFactory, web_and_api, workspace_factory
from conftest import PodmanHarness

pytestmark = [pytest.mark.podman, pytest.mark.postgres]
__all__ = ["workspace_factory"]  # the fixture, imported for pytest to find


def _where_state_lives(ws: Workspace) -> tuple[bool, int, int]:
    """(state.json exists, state rows, ledger rows) of this workspace: the backend named
    in docklock.yaml is the only place anything was written."""
    local = (ws.root / ".docklock" / "state.json").exists()
    if ws.sql("SELECT to_regclass('docklock_state')")[0][0] is None:
        return local, 0, 0  # a local workspace never even creates the tables
    (state_rows,), = ws.sql("SELECT count(*) FROM docklock_state WHERE workspace = %s",
                            [ws.name])
    (ledger_rows,), = ws.sql("SELECT count(*) FROM docklock_ledger_entries "
                             "WHERE workspace = %s", [ws.name])
    assert isinstance(state_rows, int)
    assert isinstance(ledger_rows, int)
    return local, state_rows, ledger_rows


@pytest.mark.parametrize("backend", BACKENDS)
def test_lifecycle(backend: str, podman: PodmanHarness,
                   workspace_factory: WorkspaceFactory) -> None:
    name = f"life{backend[:2]}"
    ws = workspace_factory(name, backend, web_and_api(podman.image))
    web1, web2, api1 = (f"{name}-default-web-1", f"{name}-default-web-2",
                        f"{name}-default-api-1")

    assert "valid" in ws("validate").stdout.lower()
    planned = ws("plan", "--detailed-exitcode", ok=None)
    assert planned.returncode == 2, (planned.stdout, planned.stderr)
    assert "3 to add, 0 to change, 0 to destroy" in planned.stdout, planned.stdout

    applied = ws("apply", "--auto-approve")
    assert "Apply complete: 3 added, 0 changed, 0 destroyed." in applied.stdout
    assert podman.containers(f"io.docklock.cluster={name}") == [api1, web1, web2]
    local, state_rows, ledger_rows = _where_state_lives(ws)
    if backend == "local":
        assert (local, state_rows, ledger_rows) == (True, 0, 0)
    else:
        assert (local, state_rows) == (False, 1)
        assert ledger_rows > 0
        assert not (ws.root / ".docklock" / "ledger").exists()
    state = json.loads(ws("state", "pull").stdout)
    assert sorted(state["resources"]) == ["Service/default/api", "Service/default/web"]

    status = json.loads(ws("status", "--json").stdout)
    rows = {r["name"]: (r["ready"], r["desired"]) for r in status["resources"]}
    assert rows == {"web": (2, 2), "api": (1, 1)}
    assert ws("drift").returncode == 0
    quiet = ws("plan", "--detailed-exitcode")
    assert "No changes." in quiet.stdout

    # Out of band: one replica stopped, another removed, behind DockLock's back.
    podman.podman("stop", "-t", "0", web2)
    podman.podman("rm", "-f", "-t", "0", api1)
    drift = ws("drift", ok=None)
    assert drift.returncode == 2, (drift.stdout, drift.stderr)
    assert web2 in drift.stdout, drift.stdout
    assert api1 in drift.stdout, drift.stdout
    assert web1 not in drift.stdout
    report = json.loads(ws("drift", "--json", ok=None).stdout)
    assert report["drift"] is True
    assert sorted((i["kind"], i["name"]) for i in report["items"]) == [
        ("removed", api1), ("stopped", web2)]

    repaired = ws("apply", "--auto-approve")
    assert "Apply complete" in repaired.stdout
    assert ws("drift").returncode == 0
    assert ws("plan", "--detailed-exitcode").returncode == 0
    running = podman.podman("ps", "--filter", f"label=io.docklock.cluster={name}",
                            "--format", "{{.Names}}").stdout.split()
    assert sorted(running) == [api1, web1, web2]

    destroyed = ws("destroy", "--auto-approve")
    assert "Destroy complete: 0 added, 0 changed, 3 destroyed." in destroyed.stdout
    assert podman.containers(f"io.docklock.cluster={name}") == []
    assert json.loads(ws("state", "pull").stdout)["resources"] == {}

    verified = json.loads(ws("ledger", "verify", "--json").stdout)
    assert verified["ok"], verified
    entries = json.loads(ws("ledger", "show", "--json").stdout)["entries"]
    types = [e["type"] for e in entries]
    # Three applies (create, repair, destroy) and the drift checks, all in this backend.
    assert types.count("apply-start") == types.count("apply-end") == 3, types
    assert types.count("drift") >= 4, types
    assert verified["entries"] == len(entries)
    local, state_rows, ledger_rows = _where_state_lives(ws)
    if backend == "postgres":
        assert ledger_rows == verified["entries"]
    else:
        assert ledger_rows == 0
