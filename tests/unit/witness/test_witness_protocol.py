"""The witness's add-checkpoint rules (c2sp.org/tlog-witness), called without HTTP.

Every refusal the protocol names is a row: unknown log 404, no or bad log signature 403,
old > size 400, stale old 409 (with the known size as text/x.tlog.size), a fork or a bad
proof 422. The witness never cosigns a rollback or a fork, and its state only grows.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from witnesshelp import Log, make_witness

from docklock.ledger.keys import HybridSigner
from docklock.ledger.merkle import consistency_proof
from docklock.ledger.note import parse_note
from docklock.witness.client import add_checkpoint_body
from docklock.witness.cosignature import CosignatureVerifier
from docklock.witness.server import (
    SIZE_CONTENT_TYPE,
    Witness,
    load_cosigner,
    origin_hash,
)


@pytest.fixture
def log() -> Log:
    return Log.new(12)


@pytest.fixture(params=["ed25519", "ml-dsa-44"])
def witness(tmp_path: Path, log: Log, request: pytest.FixtureRequest) -> Witness:
    return Witness(make_witness(tmp_path / "w", log, algorithm=request.param))


def _cosigned(w: Witness, log: Log, size: int, reply_body: str) -> int:
    verifier = CosignatureVerifier(load_cosigner(w.folder).vkey)
    found = verifier.find(log.text(size), reply_body)
    assert found is not None
    return found[1]


def test_first_checkpoint_then_an_extension_are_cosigned(witness: Witness, log: Log) -> None:
    r = witness.add_checkpoint(log.body(0, 5))
    assert r.status == 200, r.body
    assert _cosigned(witness, log, 5, r.body) > 1_600_000_000
    r = witness.add_checkpoint(log.body(5, 12))
    assert r.status == 200, r.body
    stored = witness.stored(log.origin)
    assert stored is not None
    assert stored[:2] == (12, log.root(12))
    # The stored checkpoint carries the log's lines and our cosignature (monitor GET).
    got = witness.get_checkpoint(origin_hash(log.origin))
    assert got.status == 200
    _cosigned(witness, log, 12, "".join(s.line() for s in parse_note(got.body).signatures
                                          if s.name == "witness.test/w1"))


def test_same_checkpoint_again_is_cosigned_again(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.body(0, 5)).status == 200
    assert witness.add_checkpoint(log.body(5, 5)).status == 200


@dataclass(frozen=True)
class Refusal:
    status: int
    body: Callable[[Log], bytes]
    says: str


def _unsigned(log: Log) -> bytes:
    note = log.note(5)
    text = note.split("\n\n")[0] + "\n\n"
    return b"old 0\n\n" + (text + "\u2014 someone.else/k AAAAAAAAAA==\n").encode()


def _bad_signature(log: Log) -> bytes:
    note = log.note(5)
    text, sigs = note.split("\n\n")
    composite, standard = sigs.strip().split("\n")
    dash, name, blob = standard.split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[10] ^= 1
    bad = f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}"
    return add_checkpoint_body(0, [], f"{text}\n\n{composite}\n{bad}\n")


def _other_key(log: Log) -> bytes:
    imposter = Log(HybridSigner.generate("mldsa65-ed25519"), log.origin, log.leaves)
    return imposter.body(0, 5)


@pytest.mark.parametrize("case", [
    Refusal(404, lambda lg: Log(lg.signer, "docklock.io/ledger/unknown", lg.leaves).body(0, 3),
            "unknown log"),
    Refusal(403, _unsigned, "no signature"),
    Refusal(403, _other_key, "no signature"),
    Refusal(403, _bad_signature, "does not verify"),
    Refusal(400, lambda lg: lg.body(0, 5).replace(b"old 0", b"old 9", 1), "larger"),
    Refusal(400, lambda lg: b"old 01\n\n" + lg.note(5).encode(), "old <size>"),
    # Without the blank line the checkpoint's lines read as proof lines.
    Refusal(400, lambda lg: b"old 0\n" + lg.note(5).encode(), "not base64"),
    Refusal(400, lambda lg: b"old 0\n", "empty line"),
    Refusal(400, lambda lg: b"old 0\nnot-base64!\n\n" + lg.note(5).encode(), "base64"),
    Refusal(400, lambda lg: b"old 0\n" + b"AAAA\n" * 64 + b"\n" + lg.note(5).encode(),
            "63"),
    Refusal(400, lambda lg: b"\xff\xfe", "UTF-8"),
    Refusal(422, lambda lg: add_checkpoint_body(0, [b"\x00" * 32], lg.note(5)), "empty"),
], ids=lambda c: f"{c.status}-{c.says}")
def test_refusals(witness: Witness, log: Log, case: Refusal) -> None:
    r = witness.add_checkpoint(case.body(log))
    assert (r.status, case.says in r.body) == (case.status, True), r.body
    assert witness.stored(log.origin) is None  # nothing cosigned, nothing stored


def test_stale_old_size_gets_409_with_the_known_size(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.body(0, 8)).status == 200
    r = witness.add_checkpoint(log.body(0, 12))  # the client thinks the witness is new
    assert (r.status, r.body, r.content_type) == (409, "8\n", SIZE_CONTENT_TYPE)
    assert witness.add_checkpoint(log.body(8, 12)).status == 200


def test_rollback_is_never_cosigned(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.body(0, 10)).status == 200
    # An older checkpoint, with every `old` a client could claim.
    for old in (0, 4, 6):
        assert witness.add_checkpoint(log.body(old, 6)).status == 409
    r = witness.add_checkpoint(add_checkpoint_body(10, [], log.note(6)))
    assert r.status == 400  # old 10 > size 6
    stored = witness.stored(log.origin)
    assert stored is not None
    assert stored[0] == 10


def test_fork_is_never_cosigned(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.body(0, 8)).status == 200
    same_size = log.fork(6, 2)  # same key, same size 8, different last two leaves
    r = witness.add_checkpoint(same_size.body(8, 8))
    assert r.status == 422
    assert "not consistent" in r.body
    longer = log.fork(6, 6)  # size 12, diverging at 6: its own proof from 8 cannot hold
    r = witness.add_checkpoint(longer.body(8, 12))
    assert r.status == 422
    # A proof taken from the honest log does not rescue the forked root either.
    honest_proof = consistency_proof(log.leaves, 8, 12)
    r = witness.add_checkpoint(add_checkpoint_body(8, honest_proof, longer.note(12)))
    assert r.status == 422
    stored = witness.stored(log.origin)
    assert stored is not None
    assert stored[:2] == (8, log.root(8))
    # The three signed, refused checkpoints are kept as evidence of the fork.
    assert witness.refusals(log.origin) == 3


def test_empty_tree_needs_the_empty_root(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.body(0, 0)).status == 200
    text = f"{log.origin}\n0\n{base64.b64encode(log.root(3)).decode()}\n"
    from docklock.ledger.note import sign_note

    r = witness.add_checkpoint(add_checkpoint_body(0, [], sign_note(text, log.origin,
                                                                    log.signer)))
    assert r.status == 422


def test_state_survives_a_restart_and_is_never_world_readable(tmp_path: Path,
                                                              log: Log) -> None:
    folder = make_witness(tmp_path / "w", log)
    assert Witness(folder).add_checkpoint(log.body(0, 7)).status == 200
    again = Witness(folder)
    assert again.add_checkpoint(log.body(0, 9)).body == "7\n"
    state = folder / "logs" / f"{origin_hash(log.origin)}.json"
    assert json.loads(state.read_text())["size"] == 7
    assert (folder / "witness.key").stat().st_mode & 0o777 == 0o600


def test_damaged_state_is_an_error_not_size_zero(tmp_path: Path, log: Log) -> None:
    folder = make_witness(tmp_path / "w", log)
    w = Witness(folder)
    assert w.add_checkpoint(log.body(0, 7)).status == 200
    (folder / "logs" / f"{origin_hash(log.origin)}.json").write_text("{}")
    with pytest.raises(Exception, match="damaged"):
        w.add_checkpoint(log.body(0, 9))


def test_concurrent_requests_never_roll_the_log_back(witness: Witness, log: Log) -> None:
    """The race of the protocol text: A (size N) and B (size N+K) both see old=4; only one
    may win, and the stored size never goes down."""
    assert witness.add_checkpoint(log.body(0, 4)).status == 200
    bodies = {size: log.body(4, size) for size in range(5, 13)}
    for _ in range(5):
        stored = witness.stored(log.origin)
        assert stored is not None
        base = stored[0]
        bodies = {size: log.body(base, size) for size in range(base, 13)}
        barrier = threading.Barrier(len(bodies))
        results: dict[int, int] = {}

        def submit(size: int, barrier: threading.Barrier = barrier,
                   results: dict[int, int] = results,
                   bodies: dict[int, bytes] = bodies) -> None:
            barrier.wait()
            results[size] = witness.add_checkpoint(bodies[size]).status

        threads = [threading.Thread(target=submit, args=(s,)) for s in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        winners = [s for s, status in results.items() if status == 200]
        after = witness.stored(log.origin)
        assert after is not None
        # Whoever ran first wins; the others saw a changed size (409) unless they asked
        # for exactly the size already stored.
        assert after[0] >= base
        assert after[0] in winners
        assert all(status in (200, 409) for status in results.values())
        if len(bodies) == 1:
            break
