"""DSSE envelopes (github.com/secure-systems-lab/dsse) for saved plans, hybrid-signed.

The signature covers PAE(payloadType, payload) =
    "DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload
(LEN = ASCII decimal byte length). Each signature entry carries the signer's key id and
the full hybrid signature (ML-DSA || Ed25519, composite construction, context
"docklock/dsse"); it verifies only if both halves do. PAE is five lines of code, so no
DSSE library is needed; securesystemslib's signer model is one key per signature and would
have to be bent to require two.

`open_envelope` raises EnvelopeError whose `check` names what failed: "malformed",
"wrong-type", "unsigned", "wrong-key" or "altered".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from docklock.errors import SignatureError
from docklock.ledger.keys import CTX_DSSE, HybridSignatureError, KeyLookup, Signer
from docklock.objects import canonical_json

PLAN_PAYLOAD_TYPE = "application/vnd.docklock.plan+json"
_REPLAN = "run `docklock plan --out FILE` again and review the new plan"


class EnvelopeError(SignatureError):
    """A DSSE envelope was refused; `check` says which check failed."""

    def __init__(self, message: str, *, check: str, hint: str = _REPLAN) -> None:
        super().__init__(message, hint=hint)
        self.check = check


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def sign_envelope(payload: bytes, payload_type: str, signer: Signer) -> dict[str, Any]:
    sig = signer.sign(pae(payload_type, payload), context=CTX_DSSE)
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [{"keyid": signer.keyid, "sig": base64.b64encode(sig).decode("ascii")}],
    }


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"envelope {what} is not a string", check="malformed")
    try:
        # DSSE accepts standard and URL-safe base64, padded or not.
        text = value.replace("-", "+").replace("_", "/")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeError(f"envelope {what} is not base64", check="malformed") from exc


def open_envelope(envelope: Mapping[str, Any], verifier: KeyLookup,
                  payload_type: str = PLAN_PAYLOAD_TYPE) -> bytes:
    """The payload of a correctly signed envelope; EnvelopeError (with `check`) otherwise."""
    if not isinstance(envelope, Mapping) or "payload" not in envelope:
        raise EnvelopeError("not a DSSE envelope (no payload)", check="malformed")
    got_type = envelope.get("payloadType")
    if got_type != payload_type:
        raise EnvelopeError(f"envelope payloadType is {got_type!r}, expected {payload_type!r}",
                            check="wrong-type")
    payload = _b64(envelope["payload"], "payload")
    signatures = envelope.get("signatures") or []
    if not isinstance(signatures, list) or not signatures:
        raise EnvelopeError("the plan is not signed (no signatures in the envelope)",
                            check="unsigned")
    message = pae(payload_type, payload)
    verified = False
    seen: list[str] = []
    for entry in signatures:
        if not isinstance(entry, Mapping):
            raise EnvelopeError("envelope signature entry is not an object", check="malformed")
        keyid = str(entry.get("keyid", ""))
        seen.append(keyid[:16] or "<no keyid>")
        key = verifier.lookup(keyid)
        if key is None:
            continue
        sig = _b64(entry.get("sig"), "signature")
        try:
            key.verify(message, sig, context=CTX_DSSE)
        except HybridSignatureError as exc:
            halves = " and ".join(exc.failed) or "hybrid"
            raise EnvelopeError(
                f"the plan was altered after signing: the {halves} signature by key "
                f"{keyid[:16]} does not verify", check="altered") from exc
        verified = True
    if not verified:
        trusted = ", ".join(k[:16] for k in verifier.trusted_keyids())
        raise EnvelopeError(
            f"the plan is signed by key {', '.join(seen)}, not by the workspace key "
            f"{trusted}", check="wrong-key",
            hint="sign plans with this workspace's key (docklock.pub), or plan again here")
    return payload


def sign_plan(plan: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """A DSSE envelope over the plan's canonical JSON bytes."""
    return sign_envelope(canonical_json(plan), PLAN_PAYLOAD_TYPE, signer)


def open_plan(envelope: Mapping[str, Any], verifier: KeyLookup) -> dict[str, Any]:
    """The plan dict inside a verified envelope."""
    payload = open_envelope(envelope, verifier, PLAN_PAYLOAD_TYPE)
    try:
        plan = json.loads(payload)
    except ValueError as exc:
        raise EnvelopeError("signed payload is not JSON", check="malformed") from exc
    if not isinstance(plan, dict):
        raise EnvelopeError("signed payload is not a JSON object", check="malformed")
    return plan


def is_envelope(document: Any) -> bool:
    return (isinstance(document, Mapping) and "payloadType" in document
            and "payload" in document)
