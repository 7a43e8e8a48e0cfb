"""On PostgreSQL the key-rotation and key-trust lines that signing replays are found by
the server (PgLedgerStorage.lines_ending_with): the same lines a scan of the whole stream
finds, and a removed signer with a doctored docklock.pub is still refused (issue 14
review). Real private PostgreSQL (tests/harness_pg.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.backend import ledger_storage
from docklock.backend.pg_ledger import PgLedgerStorage
from docklock.errors import LedgerError
from docklock.ledger import HybridSigner, Ledger, verify_ledger
from docklock.ledger.keys import init_keys, public_keyring_path
from docklock.ledger.trust import trust_signer, untrust_signer
from docklock.workspace import WorkspacePaths

pytestmark = pytest.mark.postgres

ENV = "DOCKLOCK_TEST_PG_KEYS"
FAST = "mldsa65-ed25519"


@pytest.fixture
def workspace(tmp_path: Path, pg_conninfo: str, monkeypatch: pytest.MonkeyPatch
              ) -> WorkspacePaths:
    for name in ("DOCKLOCK_KEY_PASSPHRASE", "DOCKLOCK_SIGNING_KEY", "DOCKLOCK_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENV, pg_conninfo)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: keys}\n"
        f"spec:\n  backend: {{type: postgres, connectionEnv: {ENV}}}\n")
    return WorkspacePaths(root)


def _work(paths: WorkspacePaths, signer: HybridSigner, n: int = 3) -> None:
    with Ledger(paths, "keys", signer=signer) as ledger:
        for i in range(n):
            ledger.append("change", {"address": f"Service/default/w{ledger.size}-{i}"})
        ledger.checkpoint(signer)


def _scan(storage: PgLedgerStorage, ends: tuple[bytes, ...]) -> list[bytes]:
    stream = b"".join(storage.read_entries(0))
    return [line for line in stream.split(b"\n") if line.endswith(ends)]


def test_server_side_key_lines_match_a_scan_and_a_removed_signer_is_refused(
        workspace: WorkspacePaths, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = init_keys(workspace, FAST)
    bob, eve = HybridSigner.generate(FAST), HybridSigner.generate(FAST)
    _work(workspace, alice)
    trust_signer(workspace, bob.public_key, "bob", signer=alice)
    trust_signer(workspace, eve.public_key, "eve", signer=alice)
    _work(workspace, bob)
    _work(workspace, eve)
    untrust_signer(workspace, "eve", signer=alice)
    _work(workspace, bob)
    assert verify_ledger(workspace).ok

    storage = ledger_storage(workspace)
    assert isinstance(storage, PgLedgerStorage)
    ends = (b',"type":"key-trust"}', b',"type":"key-rotation"}')
    size = storage.entries_size()
    found = storage.lines_ending_with(ends, 0, size)
    assert found == _scan(storage, ends)
    assert len(found) == 3  # trust bob, trust eve, untrust eve
    # A window: only lines lying wholly inside it.
    first_end = b"".join(storage.read_entries(0)).find(found[0]) + len(found[0]) + 1
    assert storage.lines_ending_with(ends, 0, first_end) == found[:1]
    assert storage.lines_ending_with(ends, first_end, size) == found[1:]

    # Eve keeps her key and deletes `until` from her copy of docklock.pub.
    pub = public_keyring_path(workspace)
    data = json.loads(pub.read_text())
    for signer in data["signers"]:
        if signer["name"] == "eve":
            signer.pop("until", None)
    pub.write_text(json.dumps(data, indent=2) + "\n")
    before = b"".join(storage.read_entries(0))
    # A new clone: no key cache, so signing replays the key lines from the server.
    (workspace.cache / "ledger-keys.json").unlink(missing_ok=True)
    calls: list[int] = []
    real = PgLedgerStorage.lines_ending_with

    def counted(self: PgLedgerStorage, *args: object) -> list[bytes]:
        calls.append(1)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(PgLedgerStorage, "lines_ending_with", counted)
    with pytest.raises(LedgerError, match="removed"):
        Ledger(workspace, "keys", signer=eve).append("change", {"address": "x"})
    assert calls, "signing did not ask the server for the key lines"
    assert b"".join(storage.read_entries(0)) == before
