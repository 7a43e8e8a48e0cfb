"""The ledger's side in-process: cosigning after each checkpoint, quorum, stored records.

A real workspace ledger (record_event, the path plan/run/drift use) and a real witness
over HTTP in this process; fast enough to try the quorum rules one by one.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from docklock.errors import WitnessError
from docklock.ledger.keys import init_keys
from docklock.ledger.record import record_event
from docklock.ledger.witnessing import cosignatures, log_identity, verify_witnesses
from docklock.witness.server import add_log, init_witness, make_server
from docklock.workspace import WorkspacePaths


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[
        WorkspacePaths, str, str]]:
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE", raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n")
    paths = WorkspacePaths(root)
    init_keys(paths, "mldsa65-ed25519")
    cosigner = init_witness(tmp_path / "w", "witness.test/w1")
    add_log(tmp_path / "w", *log_identity(paths))
    server = make_server(tmp_path / "w", "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield paths, f"http://127.0.0.1:{server.server_address[1]}", cosigner.vkey.render()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _configure(paths: WorkspacePaths, entries: list[tuple[str, str]],
               quorum: int | None = None) -> None:
    lines = ["apiVersion: docklock.io/v1", "kind: Cluster", "metadata: {name: t}", "spec:",
             "  ledger:", "    witnesses:"]
    for url, key in entries:
        lines += [f"      - url: {url}", f"        key: {key}"]
    if quorum is not None:
        lines.append(f"    quorum: {quorum}")
    paths.config.write_text("\n".join(lines) + "\n")


def test_each_checkpoint_is_cosigned_and_recorded(setup: tuple[WorkspacePaths, str, str]
                                                  ) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    for i in range(3):
        _, cp = record_event(paths, "plan", {"n": i})
        records = cosignatures_of(paths)
        assert [r["size"] for r in records] == list(range(1, cp.size + 1))
    check = verify_witnesses(paths)
    assert (check.ok, check.cosigned, check.latest_size) == (True, ("witness.test/w1",), 3)
    assert [v.status for v in check.views] == ["ok"]


def cosignatures_of(paths: WorkspacePaths) -> list[dict[str, object]]:
    text = (paths.ledger / "cosignatures.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_a_witness_listed_twice_counts_once(setup: tuple[WorkspacePaths, str, str]) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey), (url, vkey)], quorum=2)
    with pytest.raises(WitnessError, match="1 of 1 witnesses cosigned, 2 required"):
        record_event(paths, "plan", {"n": 1})
    _configure(paths, [(url, vkey), (url, vkey)])  # default quorum: all (distinct) ones
    record_event(paths, "plan", {"n": 2})
    assert verify_witnesses(paths).ok


def test_a_forged_record_does_not_count(setup: tuple[WorkspacePaths, str, str]) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    record_event(paths, "plan", {"n": 1})
    # Drop the witness from the network, write a checkpoint, then forge its record.
    _configure(paths, [("http://127.0.0.1:9", vkey)])
    with pytest.raises(WitnessError, match="unreachable"):
        record_event(paths, "plan", {"n": 2})
    from docklock.ledger import Ledger

    ledger = Ledger.open(paths)
    latest = ledger.latest_checkpoint()
    assert latest is not None
    good = cosignatures(ledger)[0]
    forged = good.to_dict() | {"size": latest.size,
                               "root": base64.b64encode(latest.root).decode()}
    with (paths.ledger / "cosignatures.jsonl").open("a") as f:
        f.write(json.dumps(forged) + "\n")
    check = verify_witnesses(paths)
    assert not check.ok
    assert "quorum is 1" in check.problems[0]


def test_require_witnesses_fails_when_they_are_cut_off(
        setup: tuple[WorkspacePaths, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    from docklock.cli import main

    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    record_event(paths, "plan", {"n": 1})
    assert main(["ledger", "verify", "--require-witnesses", "-C", str(paths.root)]) == 0
    # The attacker blocks the witness: by default that is only a note...
    _configure(paths, [("http://127.0.0.1:9", vkey)])
    assert main(["ledger", "verify", "-C", str(paths.root)]) == 0
    assert "not reachable" in capsys.readouterr().out
    # ...with --require-witnesses it fails, saying why.
    assert main(["ledger", "verify", "--require-witnesses", "-C", str(paths.root)]) == 1
    assert "only 0 of 1 witnesses answered" in capsys.readouterr().err
    # And a workspace without witnesses cannot pass it at all.
    paths.config.write_text("apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\n")
    assert main(["ledger", "verify", "--require-witnesses", "-C", str(paths.root)]) == 1
