"""C2SP signed notes and tlog checkpoints: format, key IDs, verification rules."""

from __future__ import annotations

import base64
import hashlib

import pytest

from docklock.errors import SignatureError
from docklock.ledger import HybridSigner, Keyring
from docklock.ledger.keys import CTX_CHECKPOINT
from docklock.ledger.note import (
    CheckpointBody,
    NoteError,
    NoteSignature,
    note_key_id,
    open_note,
    origin_for,
    parse_note,
    sign_note,
)

NAME = "docklock.io/ledger/t"


@pytest.fixture(scope="module")
def signer() -> HybridSigner:
    return HybridSigner.generate()


@pytest.fixture(scope="module")
def keys(signer: HybridSigner) -> Keyring:
    return Keyring((signer.public_key,), signer.keyid)


def body(size: int = 7) -> str:
    return CheckpointBody(NAME, size, hashlib.sha256(b"r").digest()).text()


def test_signed_note_layout(signer: HybridSigner) -> None:
    note = sign_note(body(), NAME, signer)
    text, sigs = note.split("\n\n")
    assert text + "\n" == body()
    assert text.splitlines() == [NAME, "7", base64.b64encode(hashlib.sha256(b"r").digest())
                                 .decode()]
    line, standard = sigs.splitlines()  # the composite line, then the standard Ed25519 line
    assert standard.split(" ")[1] == NAME
    dash, name, blob = line.split(" ")
    assert dash == "\u2014"
    assert name == NAME
    raw = base64.b64decode(blob)
    assert raw[:4] == note_key_id(NAME, signer.public_key)
    assert len(raw) == 4 + signer.alg.signature_size
    # The signature is the hybrid signature over the note text.
    signer.verifier().verify(body().encode(), raw[4:], context=CTX_CHECKPOINT)


def test_key_id_follows_the_note_recommendation(signer: HybridSigner) -> None:
    pub = signer.public_key
    expected = hashlib.sha256(NAME.encode() + b"\n" + b"\xff" + pub.alg.label
                              + pub.mldsa + pub.ed25519).digest()[:4]
    assert note_key_id(NAME, pub) == expected


def test_open_note_accepts_and_ignores_unknown_signers(signer: HybridSigner,
                                                       keys: Keyring) -> None:
    note = sign_note(body(), NAME, signer)
    parsed, verifier = open_note(note, NAME, keys)
    assert verifier.keyid == signer.keyid
    assert CheckpointBody.parse(parsed.text).size == 7
    stranger = HybridSigner.generate()
    extra = sign_note(body(), "someone.else/log", stranger).split("\n\n")[1]
    open_note(note + extra, NAME, keys)  # an unknown cosignature is ignored


def test_note_signed_only_by_another_key_is_refused(keys: Keyring) -> None:
    note = sign_note(body(), NAME, HybridSigner.generate())
    with pytest.raises(SignatureError, match="no signature by a trusted key"):
        open_note(note, NAME, keys)


def test_edited_text_fails_the_known_signature(signer: HybridSigner, keys: Keyring) -> None:
    note = sign_note(body(7), NAME, signer).replace("\n7\n", "\n8\n", 1)
    with pytest.raises(SignatureError, match="does not verify"):
        open_note(note, NAME, keys)


def test_only_keyid_restricts_the_signer(signer: HybridSigner) -> None:
    other = HybridSigner.generate()
    ring = Keyring((signer.public_key, other.public_key), signer.keyid)
    note = sign_note(body(), NAME, other)
    open_note(note, NAME, ring)
    with pytest.raises(SignatureError):
        open_note(note, NAME, ring, only_keyid=signer.keyid)


@pytest.mark.parametrize("bad", [
    "no newline at end",
    "text\n\u2014 name AAAA\n",  # no blank line
    "text\n\n",  # no signatures
    "text\n\nnot a signature line\n",
    "text\n\n\u2014 bad name AAAAAA==\n",
    "text\n\n\u2014 name !!!!\n",
    "text\n\n\u2014 name AAA=\n",  # shorter than a key ID
    "te\x01xt\n\n\u2014 name AAAAAAAA\n",
])
def test_malformed_notes(bad: str) -> None:
    with pytest.raises(NoteError):
        parse_note(bad)


def test_note_round_trip() -> None:
    sig = NoteSignature("a.example/x", b"\x01\x02\x03\x04", b"sig")
    note = parse_note("line one\n\nline three\n\n" + sig.line())
    assert note.text == "line one\n\nline three\n"  # the LAST blank line separates
    assert note.signatures == (sig,)
    assert note.render() == "line one\n\nline three\n\n" + sig.line()


@pytest.mark.parametrize(("text", "why"), [
    (f"{NAME}\n07\n{base64.b64encode(bytes(32)).decode()}\n", "leading zero"),
    (f"{NAME}\n-1\n{base64.b64encode(bytes(32)).decode()}\n", "negative"),
    (f"{NAME}\n7\n{base64.b64encode(bytes(31)).decode()}\n", "short root"),
    (f"{NAME}\n7\nnot base64\n", "bad base64"),
    (f"{NAME}\n7\n", "no root"),
    (f"{NAME}\n7\n{base64.b64encode(bytes(32)).decode()}\nextension\n", "extension"),
])
def test_checkpoint_body_rules(text: str, why: str) -> None:
    with pytest.raises(NoteError):
        CheckpointBody.parse(text)


def test_checkpoint_body_round_trip() -> None:
    b = CheckpointBody(NAME, 0, hashlib.sha256(b"").digest())
    assert CheckpointBody.parse(b.text()) == b
    assert origin_for("prod") == "docklock.io/ledger/prod"
    with pytest.raises(NoteError):
        origin_for("has space")
