"""The ledger's side in-process: cosigning after each checkpoint, quorum, stored records.

A real workspace ledger (record_event, the path plan/run/drift use) and a real witness
over HTTP in this process; fast enough to try the quorum rules one by one.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docklock.errors import LedgerError, SpecError, WitnessError
from docklock.ledger import Ledger
from docklock.ledger.keys import init_keys, require_signer
from docklock.ledger.note import VerifierKey
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
    with pytest.raises(SpecError, match="quorum is 2 but only 1 distinct witness is"):
        record_event(paths, "plan", {"n": 1})
    _configure(paths, [(url, vkey), (url, vkey)])  # default quorum: all (distinct) ones
    record_event(paths, "plan", {"n": 2})
    assert verify_witnesses(paths).ok


def _renamed(vkey: str, name: str) -> str:
    v = VerifierKey.parse(vkey)
    return VerifierKey.ed25519(name, v.public, v.sig_type).render()


def test_one_key_under_two_names_counts_once(setup: tuple[WorkspacePaths, str, str]) -> None:
    """A cosignature does not cover the witness's name, so the same public key listed
    under a second name must not fill a second quorum slot (issue 11 review, 9)."""
    paths, url, vkey = setup
    alias = _renamed(vkey, "witness.test/alias")
    assert alias != vkey
    _configure(paths, [(url, vkey), (url, alias)])  # default quorum: all distinct: 1
    _, cp = record_event(paths, "plan", {"n": 1})
    check = verify_witnesses(paths)
    assert (check.ok, check.required, check.cosigned) == (True, 1, ("witness.test/w1",))
    # A record copied under the alias (the signature verifies for it too) gains nothing.
    rec = cosignatures_of(paths)[-1]
    dash, _name, blob = str(rec["cosignature"]).split()
    signature = base64.b64decode(blob)[4:]  # after the 4-byte key id
    line = (f"{dash} witness.test/alias "
            f"{base64.b64encode(VerifierKey.parse(alias).key_id + signature).decode()}\n")
    with (paths.ledger / "cosignatures.jsonl").open("a") as f:
        f.write(json.dumps(rec | {"key": alias, "witness": "witness.test/alias",
                                  "cosignature": line}) + "\n")
    _configure(paths, [(url, vkey), (url, alias)], quorum=2)
    with pytest.raises(SpecError) as err:
        verify_witnesses(paths)
    assert err.value.location is not None
    assert (err.value.location.file, err.value.location.line) == (str(paths.config), 11)
    assert cp.size == 1


def test_a_quorum_above_the_witness_count_is_a_located_config_error(
        setup: tuple[WorkspacePaths, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)], quorum=3)
    with pytest.raises(SpecError, match="quorum is 3 but only 1 distinct witness") as err:
        record_event(paths, "plan", {"n": 1})
    assert err.value.location is not None
    assert (err.value.location.line, err.value.location.column) == (9, 5)
    assert "lower spec.ledger.quorum" in (err.value.hint or "")
    from docklock.cli import main

    assert main(["ledger", "verify", "-C", str(paths.root)]) == 1
    assert "docklock.yaml:9:5: spec.ledger.quorum is 3" in capsys.readouterr().err


def test_a_forged_record_does_not_count(setup: tuple[WorkspacePaths, str, str]) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    record_event(paths, "plan", {"n": 1})
    # Drop the witness from the network, write a checkpoint, then forge its record.
    _configure(paths, [("http://127.0.0.1:9", vkey)])
    with pytest.raises(WitnessError, match="unreachable"):
        record_event(paths, "plan", {"n": 2})

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


def test_a_noop_checkpoint_asks_witnesses_without_holding_the_ledger_lock(
        setup: tuple[WorkspacePaths, str, str]) -> None:
    """A checkpoint that has nothing new still asks the witnesses (one may have missed
    it), but a slow witness must not stall other writers: the ledger lock is released
    first (issue 11 review, 6)."""
    paths, _url, vkey = setup
    record_event(paths, "plan", {"n": 1})  # no witnesses yet: the checkpoint is local
    with socket.socket() as hole:  # accepts connections (backlog), never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        _configure(paths, [(f"http://127.0.0.1:{hole.getsockname()[1]}", vkey)])
        failures: list[WitnessError] = []

        def noop_checkpoint() -> None:
            try:
                Ledger.open(paths).checkpoint(require_signer(paths))
            except WitnessError as exc:
                failures.append(exc)

        thread = threading.Thread(target=noop_checkpoint, daemon=True)
        thread.start()
        time.sleep(0.8)  # it is now waiting (up to 5 s) for the silent witness
        start = time.monotonic()
        Ledger.open(paths).append("plan", {"n": 2})
        appended_after = time.monotonic() - start
        thread.join(timeout=12)
    assert not thread.is_alive()
    assert appended_after < 2.0, f"the append waited {appended_after:.1f} s for the lock"
    assert len(failures) == 1
    assert "unreachable" in failures[0].message


def _fail_cosignature_writes(monkeypatch: pytest.MonkeyPatch, *, chunk: int,
                             full_after: int | None) -> None:
    """Fault injection on writes to cosignatures.jsonl only (found by the fd's path):
    at most `chunk` bytes per os.write, and ENOSPC once `full_after` bytes were written.
    Writes of one byte (ending a torn record) pass."""
    real_write = os.write
    written = [0]

    def write(fd: int, data: bytes) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.endswith("cosignatures.jsonl") or len(data) <= 1:
            return real_write(fd, data)
        if full_after is not None and written[0] >= full_after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real_write(fd, bytes(data)[:chunk])
        written[0] += n
        return n

    monkeypatch.setattr(os, "write", write)


def test_short_writes_still_store_a_whole_cosignature(
        setup: tuple[WorkspacePaths, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    _fail_cosignature_writes(monkeypatch, chunk=40, full_after=None)
    record_event(paths, "plan", {"n": 1})
    assert [r["size"] for r in cosignatures_of(paths)] == [1]
    assert verify_witnesses(paths).ok


def test_a_full_disk_while_storing_a_cosignature_is_a_ledger_error(
        setup: tuple[WorkspacePaths, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    paths, url, vkey = setup
    _configure(paths, [(url, vkey)])
    record_event(paths, "plan", {"n": 1})
    _fail_cosignature_writes(monkeypatch, chunk=40, full_after=40)
    with pytest.raises(LedgerError, match="could not record a witness cosignature") as err:
        record_event(paths, "plan", {"n": 2})
    assert "free disk space" in err.value.hint
    monkeypatch.undo()
    # The torn record was ended, so the next one is whole and readable.
    record_event(paths, "plan", {"n": 3})
    assert [r["size"] for r in cosignatures_of_parsable(paths)] == [1, 3]


def cosignatures_of_parsable(paths: WorkspacePaths) -> list[dict[str, object]]:
    out = []
    for line in (paths.ledger / "cosignatures.jsonl").read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
