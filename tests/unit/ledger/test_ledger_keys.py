"""Hybrid keys: the composite construction, both-halves rule, key files and keyring."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from docklock.errors import KeyMaterialError
from docklock.ledger import (
    ALGORITHMS,
    HybridPublicKey,
    HybridSignatureError,
    HybridSigner,
    HybridVerifier,
    Keyring,
    ensure_keys,
    init_keys,
    load_keyring,
    load_signer,
    load_verifier,
    public_keyring_path,
    signing_key_path,
)
from docklock.ledger import keys as keys_module
from docklock.ledger.keys import (
    MLDSA65_ED25519,
    MLDSA87_ED25519,
    message_representative,
    witness_key,
    witness_key_path,
)
from docklock.workspace import WorkspacePaths


@pytest.fixture(scope="module", params=sorted(ALGORITHMS))
def key(request: pytest.FixtureRequest) -> HybridSigner:
    return HybridSigner.generate(request.param)


def test_message_representative_is_the_composite_draft_layout() -> None:
    m = message_representative(MLDSA65_ED25519, b"hello", b"ctx")
    expected = (b"CompositeAlgorithmSignatures2025" + b"COMPSIG-MLDSA65-Ed25519-SHA512"
                + b"\x03" + b"ctx" + hashlib.sha512(b"hello").digest())
    assert m == expected
    assert message_representative(MLDSA87_ED25519, b"hello").startswith(
        b"CompositeAlgorithmSignatures2025COMPSIG-MLDSA87-Ed25519-SHA512\x00")


def test_sign_and_verify(key: HybridSigner) -> None:
    sig = key.sign(b"message", context=b"docklock/test")
    assert len(sig) == key.alg.signature_size
    key.verifier().verify(b"message", sig, context=b"docklock/test")


def test_components_sign_the_message_representative(key: HybridSigner) -> None:
    """Each half is an ordinary signature over M' (ML-DSA with ctx = Label)."""
    sig = key.sign(b"payload", context=b"c")
    m_prime = message_representative(key.alg, b"payload", b"c")
    pub = key.public_key
    n = key.alg.mldsa_signature_size
    mpk = (mldsa.MLDSA87PublicKey if key.alg is MLDSA87_ED25519
           else mldsa.MLDSA65PublicKey).from_public_bytes(pub.mldsa)
    mpk.verify(sig[:n], m_prime, key.alg.label)
    ed25519.Ed25519PublicKey.from_public_bytes(pub.ed25519).verify(sig[n:], m_prime)


@pytest.mark.parametrize("half", ["mldsa", "ed25519", "both"])
def test_either_half_failing_fails_and_is_named(key: HybridSigner, half: str) -> None:
    sig = bytearray(key.sign(b"m"))
    n = key.alg.mldsa_signature_size
    if half in ("mldsa", "both"):
        sig[10] ^= 1
    if half in ("ed25519", "both"):
        sig[n + 10] ^= 1
    with pytest.raises(HybridSignatureError) as info:
        key.verifier().verify(b"m", bytes(sig))
    expected = {"mldsa": (key.alg.mldsa_name,), "ed25519": ("Ed25519",),
                "both": (key.alg.mldsa_name, "Ed25519")}[half]
    assert info.value.failed == expected
    assert expected[0] in info.value.message


def test_halves_from_different_messages_do_not_combine(key: HybridSigner) -> None:
    n = key.alg.mldsa_signature_size
    a, b = key.sign(b"a"), key.sign(b"b")
    with pytest.raises(HybridSignatureError) as info:
        key.verifier().verify(b"a", a[:n] + b[n:])
    assert info.value.failed == ("Ed25519",)


def test_context_separates_uses(key: HybridSigner) -> None:
    sig = key.sign(b"m", context=b"docklock/dsse")
    with pytest.raises(HybridSignatureError):
        key.verifier().verify(b"m", sig, context=b"docklock/checkpoint")


def test_wrong_key_and_wrong_length(key: HybridSigner) -> None:
    other = HybridSigner.generate(key.alg.name)
    with pytest.raises(HybridSignatureError):
        other.verifier().verify(b"m", key.sign(b"m"))
    with pytest.raises(HybridSignatureError):
        key.verifier().verify(b"m", key.sign(b"m")[:-1])


def test_keyid_is_sha256_of_concatenated_public_keys(key: HybridSigner) -> None:
    pub = key.public_key
    assert pub.keyid == hashlib.sha256(pub.mldsa + pub.ed25519).hexdigest()
    assert HybridPublicKey.from_dict(pub.to_dict()) == pub
    tampered = pub.to_dict() | {"keyid": "00" * 32}
    with pytest.raises(KeyMaterialError):
        HybridPublicKey.from_dict(tampered)


def test_init_writes_private_0600_and_public_keyring(workspace: WorkspacePaths) -> None:
    signer = init_keys(workspace, "mldsa65-ed25519")
    private = signing_key_path(workspace)
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.parent.stat().st_mode & 0o777 == 0o700
    text = private.read_text()
    assert text.count("-----BEGIN PRIVATE KEY-----") == 2
    keyring = load_keyring(workspace)
    assert public_keyring_path(workspace) == workspace.root / "docklock.pub"
    assert keyring.current == signer.keyid
    assert load_signer(workspace).keyid == signer.keyid
    assert load_verifier(workspace).keyid == signer.keyid
    assert "PRIVATE" not in public_keyring_path(workspace).read_text()


def test_private_key_is_private_before_it_gets_its_name(workspace: WorkspacePaths,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        seen.append((Path(dst).name, os.stat(src).st_mode & 0o777))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    init_keys(workspace)
    assert ("signing.key", 0o600) in seen
    assert ("docklock.pub", 0o644) in seen


def test_witness_key_is_private_stable_and_checked(workspace: WorkspacePaths) -> None:
    key = witness_key(workspace)
    path = witness_key_path(workspace)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert witness_key(workspace) == key  # created once, then read back
    os.chmod(path, 0o644)
    with pytest.raises(KeyMaterialError, match="mode 0644") as info:
        witness_key(workspace)
    assert "chmod 600" in info.value.hint
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(KeyMaterialError, match="not a DockLock witness key"):
        witness_key(workspace)


def test_witness_key_made_first_by_another_process_is_kept(workspace: WorkspacePaths,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    theirs = bytes(range(32))
    real_write = keys_module.atomic_write_bytes

    def racing(path: Path, data: bytes, **kw: object) -> None:
        # The other process creates the key between our failed read and our write.
        path.write_text(theirs.hex() + "\n")
        path.chmod(0o600)
        real_write(path, data, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(keys_module, "atomic_write_bytes", racing)
    assert witness_key(workspace) == theirs
    assert witness_key_path(workspace).read_text() == theirs.hex() + "\n"


def test_init_refuses_to_overwrite_without_force(workspace: WorkspacePaths) -> None:
    first = init_keys(workspace)
    with pytest.raises(KeyMaterialError) as info:
        init_keys(workspace)
    assert "keys rotate" in info.value.hint
    second = init_keys(workspace, force=True)
    assert second.keyid != first.keyid
    assert ensure_keys(workspace).keyid == second.keyid


def test_passphrase_encrypts_the_private_key(workspace: WorkspacePaths,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "correct horse")
    signer = init_keys(workspace)
    text = signing_key_path(workspace).read_text()
    # A5: one scrypt-sealed block, no PBKDF2 PKCS#8 and no private key in clear.
    assert text.count("-----BEGIN DOCKLOCK ENCRYPTED KEY-----") == 1
    assert "ENCRYPTED PRIVATE KEY" not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert load_signer(workspace).keyid == signer.keyid
    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "wrong")
    with pytest.raises(KeyMaterialError):
        load_signer(workspace)
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE")
    with pytest.raises(KeyMaterialError, match="is encrypted") as info:
        load_signer(workspace)
    assert "DOCKLOCK_KEY_PASSPHRASE" in info.value.hint


def test_group_readable_private_key_is_refused(workspace: WorkspacePaths) -> None:
    init_keys(workspace)
    os.chmod(signing_key_path(workspace), 0o640)
    with pytest.raises(KeyMaterialError, match="mode 0640") as info:
        load_signer(workspace)
    assert "chmod 600" in info.value.hint


def test_missing_keys_explain_themselves(workspace: WorkspacePaths) -> None:
    for load in (load_signer, load_keyring):
        with pytest.raises(KeyMaterialError) as info:
            load(workspace)
        assert "keys init" in info.value.hint


def test_keyring_round_trip_and_lookup(tmp_path: Path) -> None:
    a, b = HybridSigner.generate(), HybridSigner.generate("mldsa65-ed25519")
    ring = Keyring((a.public_key,), a.keyid).with_key(b.public_key, make_current=True)
    path = tmp_path / "docklock.pub"
    ring.save(path)
    loaded = Keyring.load(path)
    assert loaded.current == b.keyid
    assert loaded.trusted_keyids() == (a.keyid, b.keyid)
    verifier = loaded.lookup(a.keyid)
    assert isinstance(verifier, HybridVerifier)
    verifier.verify(b"x", a.sign(b"x"))
    assert loaded.lookup("00" * 32) is None
    with pytest.raises(KeyMaterialError):
        Keyring((a.public_key,), b.keyid)


def test_corrupt_keyring_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "docklock.pub"
    path.write_text('{"format": "something else"}')
    with pytest.raises(KeyMaterialError, match="not a DockLock keyring"):
        Keyring.load(path)
    path.write_text("not json")
    with pytest.raises(KeyMaterialError):
        Keyring.load(path)


def test_sealed_key_uses_scrypt_with_stored_parameters(workspace: WorkspacePaths,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A5: the KDF is scrypt (memory-hard), its parameters travel in the file, and any
    change to the sealed block (parameters included) is refused, not mis-decrypted."""
    import base64
    import json

    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "correct horse")
    init_keys(workspace)
    data = signing_key_path(workspace).read_bytes()
    begin = data.index(keys_module.SEALED_BEGIN) + len(keys_module.SEALED_BEGIN)
    blob = base64.b64decode(b"".join(data[begin:data.index(keys_module.SEALED_END)].split()))
    aad, _box = blob.split(b"\n", 1)
    params = json.loads(aad)
    assert params["kdf"] == "scrypt"
    assert params["n"] >= 1 << 16
    assert params["r"] == 8
    assert params["cipher"] == "aes-256-gcm"
    # weaken the stored cost: the parameters are authenticated, so this fails to open
    weaker = aad.replace(b'"n":65536', b'"n":1024')
    assert weaker != aad
    tampered_blob = base64.b64encode(weaker + b"\n" + _box)
    tampered = (data[:begin] + b"\n" + tampered_blob + b"\n"
                + data[data.index(keys_module.SEALED_END):])
    signing_key_path(workspace).write_bytes(tampered)
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_signer(workspace)


@pytest.mark.parametrize(("n", "r"), [(1 << 20, 8), (1 << 18, 32), (1 << 17, 32),
                                       (3 * (1 << 10), 8)])
def test_sealed_key_asking_for_too_much_scrypt_memory_is_refused_unread(
        workspace: WorkspacePaths, monkeypatch: pytest.MonkeyPatch, n: int, r: int) -> None:
    """A crafted file must not make DockLock allocate gigabytes (128 * N * r bytes):
    parameters beyond 256 MiB (or an N that is not a power of two) are refused before
    scrypt runs."""
    import base64

    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "correct horse")
    init_keys(workspace)
    data = signing_key_path(workspace).read_bytes()
    begin = data.index(keys_module.SEALED_BEGIN) + len(keys_module.SEALED_BEGIN)
    blob = base64.b64decode(b"".join(data[begin:data.index(keys_module.SEALED_END)].split()))
    aad, box = blob.split(b"\n", 1)
    crafted = aad.replace(b'"n":65536', f'"n":{n}'.encode()).replace(b'"r":8',
                                                                     f'"r":{r}'.encode())
    signing_key_path(workspace).write_bytes(
        data[:begin] + b"\n" + base64.b64encode(crafted + b"\n" + box) + b"\n"
        + data[data.index(keys_module.SEALED_END):])

    def no_scrypt(*_args: object) -> bytes:
        raise AssertionError("scrypt ran on refused parameters")

    monkeypatch.setattr(keys_module, "_scrypt_key", no_scrypt)
    with pytest.raises(KeyMaterialError, match="malformed encrypted key block"):
        load_signer(workspace)


def test_old_pbkdf2_encrypted_key_files_still_load(workspace: WorkspacePaths,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A5: a key file written by the old code path (two PKCS#8 PEM blocks encrypted with
    cryptography's BestAvailableEncryption, i.e. PBKDF2) still loads."""
    from cryptography.hazmat.primitives import serialization

    signer = HybridSigner.generate()
    enc = serialization.BestAvailableEncryption(b"old secret")
    fmt, pem = serialization.PrivateFormat.PKCS8, serialization.Encoding.PEM
    old = (f"# docklock hybrid signing key {signer.alg.name} keyid {signer.keyid}\n"
           f"# created {signer.public_key.created}\n").encode()
    old += signer._mldsa.private_bytes(pem, fmt, enc) + signer._ed.private_bytes(pem, fmt, enc)
    assert old.count(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") == 2
    keys_module.private_folder(signing_key_path(workspace).parent)
    signing_key_path(workspace).write_bytes(old)
    os.chmod(signing_key_path(workspace), 0o600)
    monkeypatch.setenv("DOCKLOCK_KEY_PASSPHRASE", "old secret")
    loaded = load_signer(workspace)
    assert loaded.keyid == signer.keyid
    # and re-saving it (e.g. keys export/import, rotate) writes the new sealed format
    assert keys_module.SEALED_BEGIN in loaded.to_pem("old secret")
