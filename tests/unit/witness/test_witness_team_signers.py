"""A witness accepts checkpoints signed by a workspace's team signers once each signer's
key is registered beside the log key (`witness add-log --signer`), and refuses them
before that and after `--remove-signer` (issue 14: keys for a team)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from docklock.errors import WitnessError
from docklock.ledger.keys import HybridSigner, init_keys
from docklock.ledger.record import record_event
from docklock.ledger.trust import trust_signer
from docklock.ledger.witnessing import log_identity, signer_identities, verify_witnesses
from docklock.witness.server import (
    WitnessConfigError,
    add_log,
    init_witness,
    load_config,
    make_server,
)
from docklock.workspace import WorkspacePaths

FAST = "mldsa65-ed25519"


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[WorkspacePaths, Path, HybridSigner, str]]:
    for name in ("DOCKLOCK_KEY_PASSPHRASE", "DOCKLOCK_SIGNING_KEY", "DOCKLOCK_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n")
    paths = WorkspacePaths(root)
    alice = init_keys(paths, FAST)
    bob = HybridSigner.generate(FAST)
    record_event(paths, "plan", {"n": 0})
    trust_signer(paths, bob.public_key, "bob", signer=alice)
    folder = tmp_path / "w"
    cosigner = init_witness(folder, "witness.test/w1")
    add_log(folder, *log_identity(paths))
    server = make_server(folder, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    paths.config.write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec:\n"
        f"  ledger:\n    witnesses:\n      - url: {url}\n        key: {cosigner.vkey.render()}\n"
        "    quorum: 1\n")
    record_event(paths, "plan", {"n": 1})  # alice's checkpoint: the witness catches up
    try:
        yield paths, folder, bob, url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _as(monkeypatch: pytest.MonkeyPatch, signer: HybridSigner) -> None:
    monkeypatch.setenv("DOCKLOCK_SIGNING_KEY", signer.to_pem(None).decode())


def test_a_signer_is_cosigned_only_while_registered(
        team: tuple[WorkspacePaths, Path, HybridSigner, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    paths, folder, bob, _ = team
    _as(monkeypatch, bob)
    with pytest.raises(WitnessError):
        record_event(paths, "plan", {"n": 2})  # the witness knows only the log key

    [(name, vkey)] = signer_identities(paths, log_identity(paths)[0])
    assert name == "bob"
    add_log(folder, log_identity(paths)[0], vkey, signer=True)
    assert load_config(folder).logs[0].signers == (vkey,)
    _, cp = record_event(paths, "plan", {"n": 3})
    check = verify_witnesses(paths)
    assert (check.ok, check.latest_size) == (True, cp.size)

    add_log(folder, log_identity(paths)[0], vkey, remove_signer=True)
    assert load_config(folder).logs[0].signers == ()
    with pytest.raises(WitnessError):
        record_event(paths, "plan", {"n": 4})


def test_signer_registration_refuses_the_log_key_and_unknown_logs(
        team: tuple[WorkspacePaths, Path, HybridSigner, str]) -> None:
    paths, folder, _, _ = team
    origin, log_vkey = log_identity(paths)
    with pytest.raises(WitnessConfigError, match="active key"):
        add_log(folder, origin, log_vkey, signer=True)
    with pytest.raises(WitnessConfigError, match="not registered"):
        add_log(folder, "docklock.io/ledger/other/1", log_vkey, signer=True)
    with pytest.raises(WitnessConfigError, match="not a signer"):
        add_log(folder, origin, log_vkey, remove_signer=True)


def _upper_id(vkey: str) -> str:
    name, key_id, blob = vkey.split("+")
    return f"{name}+{key_id.upper()}+{blob}"


def test_a_key_in_other_letter_case_is_the_same_key(tmp_path: Path) -> None:
    """Review R2: a retired log key re-registered as a signer with its key ID upper-cased
    must not be accepted again (keys are compared by their public bytes)."""
    from docklock.ledger.note import VerifierKey

    folder = tmp_path / "w"
    init_witness(folder, "witness.test/w1")
    old, new, team = (VerifierKey.ed25519("log.test/x", bytes([i]) * 32).render()
                      for i in (1, 2, 3))
    add_log(folder, "log.test/x", old)
    add_log(folder, "log.test/x", _upper_id(old))  # the same key: no rotation needed
    add_log(folder, "log.test/x", new, rotate=True)
    for key, message in ((_upper_id(old), "retired key"), (_upper_id(new), "active key")):
        with pytest.raises(WitnessConfigError, match=message):
            add_log(folder, "log.test/x", key, signer=True)
    add_log(folder, "log.test/x", _upper_id(team), signer=True)
    log = load_config(folder).logs[0]
    assert log.signers == (team,)  # stored in canonical form
    assert [v.public for v in log.accepted_verifiers()] == [bytes([2]) * 32, bytes([3]) * 32]
    add_log(folder, "log.test/x", team, remove_signer=True)  # either form removes it
    assert load_config(folder).logs[0].signers == ()


def test_a_malformed_signer_in_the_config_is_a_config_error(tmp_path: Path) -> None:
    import json

    folder = tmp_path / "w"
    init_witness(folder, "witness.test/w1")
    from docklock.ledger.note import VerifierKey

    add_log(folder, "log.test/x", VerifierKey.ed25519("log.test/x", b"\x01" * 32).render())
    path = folder / "witness.json"
    data = json.loads(path.read_text())
    data["logs"][0]["signers"] = ["not a key"]
    path.write_text(json.dumps(data))
    with pytest.raises(WitnessConfigError, match=r"log log\.test/x"):
        load_config(folder)
