"""DSSE envelopes for saved plans: PAE, and every refusal names the failed check."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from docklock.ledger import (
    PLAN_PAYLOAD_TYPE,
    EnvelopeError,
    HybridSigner,
    Keyring,
    is_envelope,
    open_envelope,
    open_plan,
    pae,
    sign_envelope,
    sign_plan,
)

PLAN = {"format": 1, "lineage": "L", "serial": 3,
        "changes": [{"address": "Service/default/web", "action": "create"}]}


@pytest.fixture(scope="module")
def signer() -> HybridSigner:
    return HybridSigner.generate()


@pytest.fixture(scope="module")
def envelope(signer: HybridSigner) -> dict[str, Any]:
    return sign_plan(PLAN, signer)


def test_pae_matches_the_dsse_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_envelope_shape(envelope: dict[str, Any], signer: HybridSigner) -> None:
    assert envelope["payloadType"] == PLAN_PAYLOAD_TYPE
    assert set(envelope) == {"payload", "payloadType", "signatures"}
    (sig,) = envelope["signatures"]
    assert sig["keyid"] == signer.keyid
    assert len(base64.b64decode(sig["sig"])) == signer.alg.signature_size
    assert is_envelope(envelope)
    assert not is_envelope(PLAN)


def test_unedited_plan_opens(envelope: dict[str, Any], signer: HybridSigner) -> None:
    assert open_plan(envelope, signer.verifier()) == PLAN
    # Through a JSON file round trip too, as `plan --out` / `apply FILE` will do.
    assert open_plan(json.loads(json.dumps(envelope)), signer.verifier()) == PLAN


def _refused(envelope: Any, verifier: Any, check: str) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        open_plan(envelope, verifier)
    assert info.value.check == check, info.value.message
    assert info.value.hint
    return info.value


def test_edited_plan_is_refused(envelope: dict[str, Any], signer: HybridSigner) -> None:
    edited = copy.deepcopy(envelope)
    plan = json.loads(base64.b64decode(edited["payload"]))
    plan["changes"][0]["action"] = "delete"
    edited["payload"] = base64.b64encode(json.dumps(plan).encode()).decode()
    err = _refused(edited, signer.verifier(), "altered")
    assert "altered after signing" in err.message


@pytest.mark.parametrize("position", range(0, 400, 7))
def test_every_flipped_payload_byte_is_refused(envelope: dict[str, Any],
                                               signer: HybridSigner, position: int) -> None:
    raw = bytearray(base64.b64decode(envelope["payload"]))
    if position >= len(raw):
        position = len(raw) - 1
    raw[position] ^= 0x01
    edited = dict(envelope, payload=base64.b64encode(bytes(raw)).decode())
    _refused(edited, signer.verifier(), "altered")


def test_unsigned_plan_is_refused(envelope: dict[str, Any], signer: HybridSigner) -> None:
    _refused(dict(envelope, signatures=[]), signer.verifier(), "unsigned")
    _refused({k: v for k, v in envelope.items() if k != "signatures"}, signer.verifier(),
             "unsigned")


def test_plan_signed_by_another_key_is_refused(signer: HybridSigner) -> None:
    other = HybridSigner.generate()
    err = _refused(sign_plan(PLAN, other), signer.verifier(), "wrong-key")
    assert other.keyid[:16] in err.message


def test_signature_swapped_in_under_our_keyid_is_refused(envelope: dict[str, Any],
                                                         signer: HybridSigner) -> None:
    other = HybridSigner.generate()
    forged = sign_plan(PLAN, other)
    forged["signatures"][0]["keyid"] = signer.keyid
    _refused(forged, signer.verifier(), "altered")


@pytest.mark.parametrize("half", ["mldsa", "ed25519"])
def test_each_half_is_required(envelope: dict[str, Any], signer: HybridSigner,
                               half: str) -> None:
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    n = signer.alg.mldsa_signature_size
    sig[5 if half == "mldsa" else n + 5] ^= 0x80
    edited = copy.deepcopy(envelope)
    edited["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    err = _refused(edited, signer.verifier(), "altered")
    assert ("ML-DSA-87" if half == "mldsa" else "Ed25519") in err.message


def test_wrong_payload_type_is_refused(signer: HybridSigner) -> None:
    env = sign_envelope(b"{}", "application/vnd.other+json", signer)
    _refused(env, signer.verifier(), "wrong-type")
    # Relabelling a signed envelope also breaks the signature (PAE covers the type).
    relabelled = dict(env, payloadType=PLAN_PAYLOAD_TYPE)
    _refused(relabelled, signer.verifier(), "altered")


@pytest.mark.parametrize("bad", [
    "not a dict", {}, {"payloadType": PLAN_PAYLOAD_TYPE, "payload": 5,
                       "signatures": [{"keyid": "x", "sig": "AA=="}]},
])
def test_malformed_envelopes(bad: Any, signer: HybridSigner) -> None:
    _refused(bad, signer.verifier(), "malformed")


def test_keyring_accepts_any_listed_key(envelope: dict[str, Any], signer: HybridSigner) -> None:
    other = HybridSigner.generate()
    ring = Keyring((other.public_key, signer.public_key), other.keyid)
    assert open_envelope(envelope, ring, PLAN_PAYLOAD_TYPE) == base64.b64decode(
        envelope["payload"])
