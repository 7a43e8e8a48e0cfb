"""DockLock's `mldsa65-ed25519` hybrid signatures against Bouncy Castle's composite ML-DSA.

Bouncy Castle (bcprov-jdk18on 1.84, Maven Central, pinned by SHA-256) implements
id-MLDSA65-Ed25519-SHA512 of draft-ietf-lamps-pq-composite-sigs independently of DockLock.
The test fetches the jar with Maven, compiles tests/interop/java/CompositeCheck.java (our
own test tooling) and checks both directions: Bouncy Castle's signatures verify with
DockLock's verifier, DockLock's with Bouncy Castle's, with and without an application
context, and a flipped byte fails in both. The composite public key encodings agree too
(DockLock's key id hashes exactly the bytes in Bouncy Castle's SubjectPublicKeyInfo).

The draft's own published test vectors are not shipped by any registry package we could
find, so they are not part of this suite (see docs/adr/0002-ledger-format.md).
If Java, Maven or Maven Central is not available the tests FAIL with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from docklock.ledger.keys import (
    CTX_CHECKPOINT,
    HybridPublicKey,
    HybridSignatureError,
    HybridSigner,
    HybridVerifier,
)

pytestmark = pytest.mark.slow

SOURCE = Path(__file__).resolve().parent / "java" / "CompositeCheck.java"
BC_ARTIFACT = "org.bouncycastle:bcprov-jdk18on:1.84"
BC_JAR = "bcprov-jdk18on-1.84.jar"
BC_SHA256 = "64d6c5a6121fcd927152dd182cbed39afe0fda641a970d9bcc0c9cb1858b2731"
MESSAGE = b"docklock.io/ledger/t/0123456789abcdef\n42\nAAAA\n"
TIMEOUT = 300


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"the Bouncy Castle interop test needs `{name}` (apt-get install "
                    "default-jdk-headless maven)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def bc() -> list[str]:
    """`java -cp ...` prefix for CompositeCheck, built once and cached by digest."""
    java, javac, mvn = _tool("java"), _tool("javac"), _tool("mvn")
    key = hashlib.sha256(SOURCE.read_bytes() + BC_SHA256.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "docklock" / \
        "interop-java" / key
    jar = cache / BC_JAR
    if not (cache / "CompositeCheck.class").is_file():
        cache.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={BC_ARTIFACT}",
             f"-DoutputDirectory={cache}"], capture_output=True, text=True,
            timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL)
        if got.returncode != 0 or not jar.is_file():
            pytest.fail(f"could not fetch {BC_ARTIFACT} from Maven Central: "
                        f"{(got.stdout + got.stderr)[-800:]}", pytrace=False)
        digest = hashlib.sha256(jar.read_bytes()).hexdigest()
        if digest != BC_SHA256:
            jar.unlink()
            pytest.fail(f"{BC_JAR} has SHA-256 {digest}, expected the pinned {BC_SHA256}",
                        pytrace=False)
        built = subprocess.run([javac, "-cp", str(jar), "-d", str(cache), str(SOURCE)],
                               capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if built.returncode != 0:
            pytest.fail(f"javac failed: {built.stderr[-800:]}", pytrace=False)
    return [java, "-cp", f"{jar}{os.pathsep}{cache}", "CompositeCheck"]


def _run(bc: list[str], *args: str) -> list[str]:
    done = subprocess.run([*bc, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _spki(key: mldsa.MLDSA65PublicKey | ed25519.Ed25519PublicKey) -> str:
    return _b64(key.public_bytes(serialization.Encoding.DER,
                                 serialization.PublicFormat.SubjectPublicKeyInfo))


@pytest.mark.parametrize("context", [b"", CTX_CHECKPOINT])
def test_bouncy_castle_signatures_verify_with_docklock(bc: list[str], context: bytes) -> None:
    ml_spki, ed_spki, sig_b64, composite_spki = _run(
        bc, "sign", _b64(MESSAGE), _b64(context) if context else "-")
    ml = serialization.load_der_public_key(base64.b64decode(ml_spki))
    ed = serialization.load_der_public_key(base64.b64decode(ed_spki))
    assert isinstance(ml, mldsa.MLDSA65PublicKey)
    assert isinstance(ed, ed25519.Ed25519PublicKey)
    key = HybridPublicKey("mldsa65-ed25519", ml.public_bytes_raw(), ed.public_bytes_raw())
    # The draft's composite public key is mldsaPK || ed25519PK, what our key id hashes.
    assert base64.b64decode(composite_spki).endswith(key.composite)
    signature = base64.b64decode(sig_b64)
    verifier = HybridVerifier(key)
    verifier.verify(MESSAGE, signature, context=context)
    for where, half in ((10, "ML-DSA-65"), (len(signature) - 10, "Ed25519")):
        bad = bytearray(signature)
        bad[where] ^= 0x01
        with pytest.raises(HybridSignatureError) as info:
            verifier.verify(MESSAGE, bytes(bad), context=context)
        assert info.value.failed == (half,)
    with pytest.raises(HybridSignatureError):
        verifier.verify(MESSAGE, signature, context=b"another context")


@pytest.mark.parametrize("context", [b"", CTX_CHECKPOINT])
def test_docklock_signatures_verify_with_bouncy_castle(bc: list[str], context: bytes) -> None:
    signer = HybridSigner.generate("mldsa65-ed25519")
    ml = mldsa.MLDSA65PublicKey.from_public_bytes(signer.public_key.mldsa)
    ed = ed25519.Ed25519PublicKey.from_public_bytes(signer.public_key.ed25519)
    signature = signer.sign(MESSAGE, context=context)
    ctx = _b64(context) if context else "-"
    assert _run(bc, "verify", _spki(ml), _spki(ed), _b64(MESSAGE), _b64(signature),
                ctx) == ["VALID"]
    bad = bytearray(signature)
    bad[-1] ^= 0x01
    assert _run(bc, "verify", _spki(ml), _spki(ed), _b64(MESSAGE), _b64(bytes(bad)),
                ctx) == ["INVALID"]
    other = _b64(b"another context")
    assert _run(bc, "verify", _spki(ml), _spki(ed), _b64(MESSAGE), _b64(signature),
                other) == ["INVALID"]
