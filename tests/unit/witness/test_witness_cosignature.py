"""Cosignatures (tlog-cosignature v1), verifier keys and the standard note line."""

from __future__ import annotations

import base64
import hashlib

import pytest
from witnesshelp import Log

from docklock.errors import SignatureError
from docklock.ledger.keys import Keyring
from docklock.ledger.note import (
    TYPE_COSIGNATURE_V1,
    TYPE_ED25519,
    NoteError,
    VerifierKey,
    open_note,
    parse_note,
)
from docklock.witness.cosignature import CosignatureVerifier, Cosigner, signed_message
from docklock.witness.server import init_witness, load_cosigner


@pytest.fixture(scope="module")
def log() -> Log:
    return Log.new(5)


def test_cosignature_layout_follows_the_spec(tmp_path: object, log: Log) -> None:
    from pathlib import Path

    cosigner = init_witness(Path(str(tmp_path)) / "w", "witness.test/w1")
    sig = cosigner.cosign(log.text(5), timestamp=1_700_000_000)
    expected_id = hashlib.sha256(b"witness.test/w1\n\x04" + cosigner.public).digest()[:4]
    assert sig.key_id == expected_id
    assert sig.signature[:8] == (1_700_000_000).to_bytes(8, "big")
    assert len(sig.signature) == 8 + 64
    message = signed_message(log.text(5), 1_700_000_000)
    assert message == b"cosignature/v1\ntime 1700000000\n" + log.text(5).encode()
    cosigner.key.public_key().verify(sig.signature[8:], message)
    vkey = cosigner.vkey.render()
    name, hex_id, blob = vkey.split("+", 2)
    assert (name, hex_id) == ("witness.test/w1", expected_id.hex())
    assert base64.b64decode(blob) == bytes([TYPE_COSIGNATURE_V1]) + cosigner.public
    verifier = CosignatureVerifier.parse(vkey)
    assert verifier.verify(log.text(5), sig) == 1_700_000_000
    with pytest.raises(SignatureError, match="does not verify"):
        verifier.verify(log.text(4), sig)  # another checkpoint
    assert load_cosigner(Path(str(tmp_path)) / "w").vkey == cosigner.vkey


def test_a_cosignature_with_another_timestamp_fails(log: Log) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    cosigner = Cosigner("w.test/x", ed25519.Ed25519PrivateKey.generate())
    sig = cosigner.cosign(log.text(5), timestamp=1_700_000_000)
    moved = type(sig)(sig.name, sig.key_id,
                      (1_700_000_001).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(SignatureError):
        CosignatureVerifier(cosigner.vkey).verify(log.text(5), moved)


@pytest.mark.parametrize(("text", "why"), [
    ("no-plus-signs", "must be"),
    ("name+zzzzzzzz+AQ==", "malformed"),
    ("name+00000000+AQID", "32 bytes"),
    ("bad name+00000000+AQ==", "name"),
])
def test_malformed_verifier_keys(text: str, why: str) -> None:
    with pytest.raises(NoteError, match=why):
        VerifierKey.parse(text)


def test_verifier_key_id_must_match(log: Log) -> None:
    good = VerifierKey.parse(log.vkey, want_type=TYPE_ED25519)
    wrong = f"{good.name}+{'00000000'}+{log.vkey.split('+', 2)[2]}"
    with pytest.raises(NoteError, match="does not match"):
        VerifierKey.parse(wrong)
    with pytest.raises(NoteError, match="type 0x01, expected 0x04"):
        VerifierKey.parse(log.vkey, want_type=TYPE_COSIGNATURE_V1)


def test_checkpoint_note_has_the_standard_ed25519_line(log: Log) -> None:
    note = parse_note(log.note(5))
    composite, standard = note.signatures
    vkey = VerifierKey.parse(log.vkey)
    assert (standard.name, standard.key_id) == (log.origin, vkey.key_id)
    assert vkey.key_id == hashlib.sha256(log.origin.encode() + b"\n\x01"
                                         + log.signer.public_key.ed25519).digest()[:4]
    # A plain Ed25519 signature over the note text: what any note verifier checks.
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ed25519.Ed25519PublicKey.from_public_bytes(vkey.public).verify(
        standard.signature, note.text.encode())
    assert composite.key_id != standard.key_id


def test_docklock_rejects_a_note_whose_standard_line_fails(log: Log) -> None:
    keys = Keyring((log.signer.public_key,), log.signer.keyid)
    text, sigs = log.note(5).split("\n\n")
    composite, standard = sigs.strip().split("\n")
    dash, name, blob = standard.split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    forged = f"{text}\n\n{composite}\n{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(SignatureError, match="standard Ed25519 note signature"):
        open_note(forged, log.origin, keys)
    # ...and still requires the composite line: the standard line alone is not enough.
    alone = f"{text}\n\n{standard}\n"
    with pytest.raises(SignatureError, match="no signature by a trusted key"):
        open_note(alone, log.origin, keys)


def test_mldsa44_cosignature_follows_the_spec(tmp_path: object, log: Log) -> None:
    """Type 0x06: ML-DSA-44 over the binary subtree message of the whole checkpoint."""
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import mldsa

    from docklock.ledger.note import TYPE_COSIGNATURE_MLDSA44
    from docklock.witness.cosignature import subtree_message

    cosigner = init_witness(Path(str(tmp_path)) / "w", "witness.test/pq", "ml-dsa-44")
    assert isinstance(cosigner.key, mldsa.MLDSA44PrivateKey)
    sig = cosigner.cosign(log.text(5), timestamp=1_700_000_000)
    assert sig.key_id == hashlib.sha256(b"witness.test/pq\n\x06" + cosigner.public).digest()[:4]
    assert len(sig.signature) == 8 + 2420
    message = subtree_message("witness.test/pq", 1_700_000_000, log.text(5))
    assert message == (b"subtree/v1\n\x00" + bytes([15]) + b"witness.test/pq"
                       + (1_700_000_000).to_bytes(8, "big") + bytes([len(log.origin)])
                       + log.origin.encode() + bytes(8) + (5).to_bytes(8, "big")
                       + log.root(5))
    cosigner.key.public_key().verify(sig.signature[8:], message)
    vkey = cosigner.vkey.render()
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == TYPE_COSIGNATURE_MLDSA44
    verifier = CosignatureVerifier.parse(vkey)
    assert verifier.verify(log.text(5), sig) == 1_700_000_000
    with pytest.raises(SignatureError, match="does not verify"):
        verifier.verify(log.text(4), sig)
    reloaded = load_cosigner(Path(str(tmp_path)) / "w")
    assert reloaded.vkey == cosigner.vkey
