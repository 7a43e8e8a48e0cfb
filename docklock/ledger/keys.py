"""Hybrid signing keys (ML-DSA + Ed25519), the Signer/Verifier abstraction, and key files.

A hybrid signature follows the construction of the IETF composite ML-DSA draft
(draft-ietf-lamps-pq-composite-sigs): both components sign the same message
representative

    M' = Prefix || Label || len(ctx) || ctx || SHA-512(M)

with Prefix = "CompositeAlgorithmSignatures2025", the ML-DSA half signed with its FIPS 204
context set to Label, and the signature is mldsaSig || ed25519Sig. A signature verifies
only if BOTH halves do; a failure says which half. `ctx` is DockLock's application
context ("docklock/checkpoint", "docklock/dsse", ...), so a signature made for one use is
never valid for another.

Key files (see docs/adr/0002-ledger-format.md):
- `.docklock/keys/signing.key`: the current private key, two PKCS#8 PEM blocks (ML-DSA
  seed form, then Ed25519), mode 0600. When DOCKLOCK_KEY_PASSPHRASE is set, both blocks are
  sealed in one `DOCKLOCK ENCRYPTED KEY` block: scrypt (memory-hard; N, r, p and salt stored
  in the block) derives an AES-256-GCM key. Files written by older versions (PKCS#8 PEM
  encrypted with PBKDF2) still load;
- `.docklock/keys/retired/<keyid16>.key`: private keys replaced by `keys rotate`;
- `docklock.pub` at the workspace root: the public keyring (JSON), committed to git so
  reviewers and CI verify without any private key. It lists every key the ledger was
  ever signed with and marks the current one; `genesis` pins the key the ledger's trust
  chain starts from (old files: the first key listed), each key records the tree sizes it
  may sign (`since`/`until`, written by `keys rotate`), and `ledger` records the origin of
  the ledger once its first checkpoint is signed, so a deleted ledger is noticed;
  `signers` lists the team's other trusted keys (one per operator, one for CI), each
  added by a signed `key-trust` ledger entry (docklock.ledger.trust) with its `name` and
  the checkpoint sizes it may sign (`since`, and `until` once `keys untrust` removed it).

The private key a command signs with is `.docklock/keys/signing.key`, unless
DOCKLOCK_SIGNING_KEY (the PEM text itself, e.g. a CI secret) or DOCKLOCK_SIGNING_KEY_FILE
(a path; still refused unless 0600) names another (`key_source`). A key from the
environment must be docklock.pub's current key or an active signer.

Key id = hex SHA-256(mldsaPK || ed25519PK), the composite public key encoding of the draft.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from docklock._fs import atomic_write_bytes, utc_now
from docklock.errors import KeyMaterialError, Location, SignatureError
from docklock.workspace import WorkspacePaths

PREFIX = b"CompositeAlgorithmSignatures2025"
PASSPHRASE_ENV = "DOCKLOCK_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
SIGNING_KEY_ENV = "DOCKLOCK_SIGNING_KEY"
SIGNING_KEY_FILE_ENV = "DOCKLOCK_SIGNING_KEY_FILE"
PUBLIC_KEYRING = "docklock.pub"
PUBLIC_KEY_FORMAT = "docklock.io/public-key/v1"
SIGNING_KEY = "signing.key"
WITNESS_KEY = "witness.key"
WITNESS_KEY_SIZE = 32
KEYRING_FORMAT = "docklock.io/keyring/v1"
ED25519_PUBLIC_SIZE = 32
ED25519_SIGNATURE_SIZE = 64

_MLDSA_PRIVATE = mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey
_MLDSA_PUBLIC = mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey


@dataclass(frozen=True)
class Algorithm:
    """One composite pairing: names, label and component sizes."""

    name: str  # DockLock's name, used in files and on the command line
    label: bytes  # the composite draft's Label (domain separator)
    mldsa_name: str  # for messages: "ML-DSA-87"
    mldsa_public_size: int
    mldsa_signature_size: int
    registered: bool  # does the composite draft register this pairing?

    @property
    def signature_size(self) -> int:
        return self.mldsa_signature_size + ED25519_SIGNATURE_SIZE

    @property
    def public_size(self) -> int:
        return self.mldsa_public_size + ED25519_PUBLIC_SIZE

    def generate_mldsa(self) -> _MLDSA_PRIVATE:
        if self.mldsa_name == "ML-DSA-87":
            return mldsa.MLDSA87PrivateKey.generate()
        return mldsa.MLDSA65PrivateKey.generate()

    def load_mldsa_public(self, raw: bytes) -> _MLDSA_PUBLIC:
        if self.mldsa_name == "ML-DSA-87":
            return mldsa.MLDSA87PublicKey.from_public_bytes(raw)
        return mldsa.MLDSA65PublicKey.from_public_bytes(raw)


# ML-DSA-87 + Ed25519 is the seed's "Dilithium5" level; the draft pairs ML-DSA-87 with
# P-384/Ed448 instead, so its label is DockLock's own, built the draft's way.
MLDSA87_ED25519 = Algorithm("mldsa87-ed25519", b"COMPSIG-MLDSA87-Ed25519-SHA512",
                            "ML-DSA-87", 2592, 4627, registered=False)
MLDSA65_ED25519 = Algorithm("mldsa65-ed25519", b"COMPSIG-MLDSA65-Ed25519-SHA512",
                            "ML-DSA-65", 1952, 3309, registered=True)
ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (MLDSA87_ED25519, MLDSA65_ED25519)}
DEFAULT_ALGORITHM = MLDSA87_ED25519.name

# Application contexts (the composite `ctx`): one per kind of signed object.
CTX_CHECKPOINT = b"docklock/checkpoint"
CTX_DSSE = b"docklock/dsse"
CTX_ROTATION = b"docklock/key-rotation"
CTX_TRUST = b"docklock/key-trust"


def algorithm(name: str) -> Algorithm:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise KeyMaterialError(f"unknown key algorithm {name!r}",
                               hint=f"use one of: {', '.join(ALGORITHMS)}") from None


def message_representative(alg: Algorithm, message: bytes, context: bytes = b"") -> bytes:
    """M' = Prefix || Label || len(ctx) || ctx || SHA-512(M)."""
    if len(context) > 255:
        raise SignatureError(f"signature context is {len(context)} bytes; at most 255 allowed")
    return (PREFIX + alg.label + bytes([len(context)]) + context
            + hashlib.sha512(message).digest())


class HybridSignatureError(SignatureError):
    """A hybrid signature failed; `failed` names the halves that did not verify."""

    def __init__(self, message: str, *, failed: tuple[str, ...] = (), hint: str = "",
                 location: Location | None = None) -> None:
        super().__init__(message, hint=hint, location=location)
        self.failed = failed


@dataclass(frozen=True)
class HybridPublicKey:
    """The public half of a hybrid key; `keyid` is hex SHA-256(mldsaPK || ed25519PK)."""

    algorithm: str
    mldsa: bytes
    ed25519: bytes
    created: str = ""

    def __post_init__(self) -> None:
        alg = algorithm(self.algorithm)
        if len(self.mldsa) != alg.mldsa_public_size or len(self.ed25519) != ED25519_PUBLIC_SIZE:
            raise KeyMaterialError(
                f"{self.algorithm} public key has the wrong size "
                f"({len(self.mldsa)}+{len(self.ed25519)} bytes)")

    @property
    def alg(self) -> Algorithm:
        return algorithm(self.algorithm)

    @property
    def composite(self) -> bytes:
        return self.mldsa + self.ed25519

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.composite).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "algorithm": self.algorithm, "keyid": self.keyid,
            "public_key": base64.b64encode(self.composite).decode("ascii"),
        }
        if self.created:
            d["created"] = self.created
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HybridPublicKey:
        try:
            alg = algorithm(str(d["algorithm"]))
            raw = base64.b64decode(str(d["public_key"]), validate=True)
        except (KeyError, ValueError) as exc:
            raise KeyMaterialError(f"malformed public key entry: {exc}") from exc
        if len(raw) != alg.public_size:
            raise KeyMaterialError(f"{alg.name} public key must be {alg.public_size} bytes, "
                                   f"got {len(raw)}")
        key = cls(alg.name, raw[:alg.mldsa_public_size], raw[alg.mldsa_public_size:],
                  str(d.get("created", "")))
        claimed = d.get("keyid")
        if claimed is not None and claimed != key.keyid:
            raise KeyMaterialError(f"public key entry claims key id {claimed}, "
                                   f"but its key hashes to {key.keyid}")
        return key


@runtime_checkable
class Signer(Protocol):
    """Anything that makes hybrid signatures over canonical bytes."""

    @property
    def public_key(self) -> HybridPublicKey: ...

    @property
    def keyid(self) -> str: ...

    def sign(self, message: bytes, *, context: bytes = b"") -> bytes: ...


class KeyLookup(Protocol):
    """Where verifiers find the trusted public key for a key id."""

    def lookup(self, keyid: str) -> HybridVerifier | None: ...

    def trusted_keyids(self) -> tuple[str, ...]: ...


class HybridVerifier:
    """Verifies composite signatures for one public key."""

    def __init__(self, public_key: HybridPublicKey) -> None:
        self.public_key = public_key
        alg = public_key.alg
        self._alg = alg
        self._mldsa = alg.load_mldsa_public(public_key.mldsa)
        self._ed = ed25519.Ed25519PublicKey.from_public_bytes(public_key.ed25519)

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    def lookup(self, keyid: str) -> HybridVerifier | None:
        return self if keyid == self.keyid else None

    def trusted_keyids(self) -> tuple[str, ...]:
        return (self.keyid,)

    def verify(self, message: bytes, signature: bytes, *, context: bytes = b"") -> None:
        """Raise HybridSignatureError unless both halves verify over M'."""
        alg = self._alg
        if len(signature) != alg.signature_size:
            raise HybridSignatureError(
                f"{alg.name} signature must be {alg.signature_size} bytes, got "
                f"{len(signature)}", failed=(alg.mldsa_name, "Ed25519"))
        m_prime = message_representative(alg, message, context)
        failed: list[str] = []
        try:
            self._mldsa.verify(signature[:alg.mldsa_signature_size], m_prime, alg.label)
        except InvalidSignature:
            failed.append(alg.mldsa_name)
        try:
            self._ed.verify(signature[alg.mldsa_signature_size:], m_prime)
        except InvalidSignature:
            failed.append("Ed25519")
        if failed:
            halves = " and ".join(failed)
            raise HybridSignatureError(
                f"the {halves} half of the hybrid signature does not verify with key "
                f"{self.keyid[:16]}", failed=tuple(failed))


class HybridSigner:
    """A hybrid private key; implements `Signer`."""

    def __init__(self, alg: Algorithm, mldsa_key: _MLDSA_PRIVATE,
                 ed_key: ed25519.Ed25519PrivateKey, *, created: str = "") -> None:
        self.alg = alg
        self._mldsa = mldsa_key
        self._ed = ed_key
        self._public = HybridPublicKey(
            alg.name, mldsa_key.public_key().public_bytes_raw(),
            ed_key.public_key().public_bytes_raw(), created)

    @classmethod
    def generate(cls, algorithm_name: str = DEFAULT_ALGORITHM) -> HybridSigner:
        alg = algorithm(algorithm_name)
        return cls(alg, alg.generate_mldsa(), ed25519.Ed25519PrivateKey.generate(),
                   created=utc_now())

    @property
    def public_key(self) -> HybridPublicKey:
        return self._public

    @property
    def keyid(self) -> str:
        return self._public.keyid

    def verifier(self) -> HybridVerifier:
        return HybridVerifier(self._public)

    def sign(self, message: bytes, *, context: bytes = b"") -> bytes:
        m_prime = message_representative(self.alg, message, context)
        return self._mldsa.sign(m_prime, self.alg.label) + self._ed.sign(m_prime)

    def sign_ed25519(self, message: bytes) -> bytes:
        """A plain Ed25519 signature by the Ed25519 half, for two message kinds: the
        standard C2SP signed-note line of checkpoints (docklock.ledger.note), and every
        ledger entry's `sig` (docklock.ledger.trust.sign_entry, cheap enough per append).
        Domain separation: `sign` messages start with PREFIX, a note text with its origin
        line, and an entry message with its own prefix (trust.entry_message)."""
        return self._ed.sign(message)

    def to_pem(self, passphrase: str | None) -> bytes:
        """Two PKCS#8 PEM blocks (ML-DSA, then Ed25519); with a passphrase both are sealed
        in one scrypt + AES-256-GCM block (`seal_private`)."""
        enc = serialization.NoEncryption()
        fmt = serialization.PrivateFormat.PKCS8
        pem = serialization.Encoding.PEM
        header = (f"# docklock hybrid signing key {self.alg.name} keyid {self.keyid}\n"
                  f"# created {self._public.created}\n").encode()
        blocks = self._mldsa.private_bytes(pem, fmt, enc) + self._ed.private_bytes(pem, fmt, enc)
        if passphrase:
            return header + seal_private(blocks, passphrase)
        return header + blocks

    @classmethod
    def from_pem(cls, data: bytes, passphrase: str | None, *, source: str = "key") -> HybridSigner:
        if SEALED_BEGIN in data:
            if not passphrase:
                raise KeyMaterialError(f"{source} is encrypted",
                                       hint=f"set {PASSPHRASE_ENV} to its passphrase")
            created = _created_of(data)
            signer = cls.from_pem(open_private(data, passphrase, source=source), None,
                                  source=source)
            if created and not signer.public_key.created:
                signer = cls(signer.alg, signer._mldsa, signer._ed, created=created)
            return signer
        blocks = _pem_blocks(data)
        if len(blocks) != 2:
            # Usually a CI secret pasted from half of the file (or a key from elsewhere).
            what = "the value" if source == SIGNING_KEY_ENV else "the file"
            raise KeyMaterialError(
                f"{source} must hold two PEM private keys, found {len(blocks)}",
                hint=f"{what} must be the whole file `docklock keys export` wrote: the "
                     "ML-DSA and Ed25519 halves")
        secret = passphrase.encode("utf-8") if passphrase else None
        keys: list[Any] = []
        for block in blocks:
            encrypted = b"ENCRYPTED" in block.split(b"\n", 1)[0]
            if encrypted and secret is None:
                raise KeyMaterialError(f"{source} is encrypted",
                                       hint=f"set {PASSPHRASE_ENV} to its passphrase")
            try:
                keys.append(serialization.load_pem_private_key(
                    block, secret if encrypted else None))
            except (ValueError, TypeError) as exc:
                raise KeyMaterialError(f"cannot read {source}: {exc}",
                                       hint=f"check {PASSPHRASE_ENV}") from exc
        ml, ed = keys
        if not isinstance(ed, ed25519.Ed25519PrivateKey):
            raise KeyMaterialError(f"{source}: second key is not Ed25519")
        if isinstance(ml, mldsa.MLDSA87PrivateKey):
            alg = MLDSA87_ED25519
        elif isinstance(ml, mldsa.MLDSA65PrivateKey):
            alg = MLDSA65_ED25519
        else:
            raise KeyMaterialError(f"{source}: first key is not ML-DSA-65 or ML-DSA-87")
        return cls(alg, ml, ed, created=_created_of(data))


def _created_of(data: bytes) -> str:
    for line in data.splitlines():
        if line.startswith(b"# created "):
            return line[len(b"# created "):].decode("utf-8", "replace").strip()
    return ""


# Sealed private keys: scrypt (RFC 7914) -> AES-256-GCM. N = 2**16, r = 8 (64 MiB, about
# 0.3 s here) follows the OWASP guidance for scrypt; the parameters travel in the block, so
# raising them later keeps old files readable. The header binds the parameters (AAD).
SEALED_BEGIN = b"-----BEGIN DOCKLOCK ENCRYPTED KEY-----"
SEALED_END = b"-----END DOCKLOCK ENCRYPTED KEY-----"
SEALED_FORMAT = "docklock.io/sealed-key/v1"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 16, 8, 1
_SCRYPT_MAX_N = 1 << 20  # refuse absurd parameters from a file (memory bomb)
# scrypt needs 128 * N * r bytes: a crafted file within the N and r bounds alone could ask
# for 4 GiB. 256 MiB is four times what the default parameters use.
_SCRYPT_MAX_MEMORY = 256 << 20


def _scrypt_key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_private(plaintext: bytes, passphrase: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R,
                 p: int = SCRYPT_P) -> bytes:
    """Encrypt private key PEM blocks under a passphrase (scrypt + AES-256-GCM)."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    params = {"format": SEALED_FORMAT, "kdf": "scrypt", "n": n, "r": r, "p": p,
              "salt": base64.b64encode(salt).decode("ascii"), "cipher": "aes-256-gcm",
              "nonce": base64.b64encode(nonce).decode("ascii")}
    aad = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    box = AESGCM(_scrypt_key(passphrase, salt, n, r, p)).encrypt(nonce, plaintext, aad)
    body = base64.b64encode(aad + b"\n" + box)
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return SEALED_BEGIN + b"\n" + lines + b"\n" + SEALED_END + b"\n"


def open_private(data: bytes, passphrase: str, *, source: str = "key") -> bytes:
    """The PEM blocks inside a sealed key; KeyMaterialError for a wrong passphrase."""
    try:
        start = data.index(SEALED_BEGIN) + len(SEALED_BEGIN)
        blob = base64.b64decode(b"".join(data[start:data.index(SEALED_END)].split()),
                                validate=True)
        aad, box = blob.split(b"\n", 1)
        params = json.loads(aad)
        n, r, p = int(params["n"]), int(params["r"]), int(params["p"])
        salt = base64.b64decode(params["salt"], validate=True)
        nonce = base64.b64decode(params["nonce"], validate=True)
        if (params.get("format") != SEALED_FORMAT or params.get("kdf") != "scrypt"
                or params.get("cipher") != "aes-256-gcm" or not 1 < n <= _SCRYPT_MAX_N
                or not 0 < r <= 32 or not 0 < p <= 16 or n & (n - 1)
                or 128 * n * r > _SCRYPT_MAX_MEMORY):
            raise ValueError("unsupported parameters")
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyMaterialError(f"{source}: malformed encrypted key block ({exc})",
                               location=Location(source)) from exc
    try:
        return AESGCM(_scrypt_key(passphrase, salt, n, r, p)).decrypt(nonce, box, aad)
    except InvalidTag:
        raise KeyMaterialError(f"cannot read {source}: wrong passphrase (or the file was "
                               "altered)", hint=f"check {PASSPHRASE_ENV}") from None


def _pem_blocks(data: bytes) -> list[bytes]:
    blocks: list[bytes] = []
    current: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if line.startswith(b"-----BEGIN "):
            current = [line]
        elif current:
            current.append(line)
            if line.startswith(b"-----END "):
                blocks.append(b"".join(current))
                current = []
    return blocks


@dataclass(frozen=True)
class TrustedSigner:
    """A team key beside the rotation chain: one per operator, or one for CI.

    Added by a signed `key-trust` ledger entry (docklock.ledger.trust) at seq S, it may
    sign checkpoints of sizes `since` = S + 1 (the first size that includes its own
    introduction) onwards, and entries after that entry; `keys untrust` (entry seq U)
    sets `until` = U: it keeps signing sizes up to U, and what it signed stays valid.
    """

    key: HybridPublicKey
    name: str
    since: int
    until: int | None = None

    def __post_init__(self) -> None:
        if not self.name or any(c.isspace() or not c.isprintable() for c in self.name):
            raise KeyMaterialError(f"signer name {self.name!r} must be non-empty, without "
                                   "spaces", hint="use a short name like alice or ci")
        if self.since < 1 or (self.until is not None and self.until < self.since - 1):
            raise KeyMaterialError(f"signer {self.name}: malformed since/until "
                                   f"({self.since}, {self.until})")

    @property
    def keyid(self) -> str:
        return self.key.keyid

    @property
    def active(self) -> bool:
        return self.until is None

    def active_at(self, size: int) -> bool:
        """May it sign a checkpoint of `size`?"""
        return self.since <= size and (self.until is None or size <= self.until)

    def to_dict(self) -> dict[str, Any]:
        d = self.key.to_dict() | {"name": self.name, "since": self.since}
        if self.until is not None:
            d["until"] = self.until
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = PUBLIC_KEYRING) -> TrustedSigner:
        since, until = d.get("since"), d.get("until")
        if not isinstance(since, int) or (until is not None and not isinstance(until, int)):
            raise KeyMaterialError(f"{source}: signer {d.get('name')!r} has a malformed "
                                   "since/until", location=Location(source))
        return cls(HybridPublicKey.from_dict(d), str(d.get("name", "")), since, until)


def public_key_document(key: HybridPublicKey, name: str) -> dict[str, Any]:
    """What `keys export-public` writes: the public key, its id and a name (no secret)."""
    return {"format": PUBLIC_KEY_FORMAT, "name": name} | key.to_dict()


def read_public_key_document(path: Path) -> tuple[HybridPublicKey, str] | None:
    """(key, name) from a `keys export-public` file; None when `path` is not one (e.g. a
    private key file). Raises KeyMaterialError for a damaged public key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"cannot read {path}: {exc.strerror or exc}",
                               location=Location(str(path))) from exc
    try:
        doc = json.loads(data)
    except ValueError:
        return None  # PEM, not JSON
    if not isinstance(doc, dict) or doc.get("format") != PUBLIC_KEY_FORMAT:
        raise KeyMaterialError(f"{path} is not a DockLock public key file",
                               location=Location(str(path)),
                               hint="make one with `docklock keys export-public FILE`")
    try:
        key = HybridPublicKey.from_dict(doc)
    except KeyMaterialError as exc:
        raise KeyMaterialError(f"{path}: {exc.message}", location=Location(str(path))) \
            from exc
    return key, str(doc.get("name") or "")


@dataclass(frozen=True)
class Keyring:
    """Trusted public keys in order of creation; `current` signs new checkpoints.

    `genesis` is the key the ledger's trust chain starts from (older files without it: the
    first key listed). `spans` maps a key id to the checkpoint sizes it may sign: (since,
    until), until None while it is current; `keys rotate` writes them. `ledger` is the
    origin of the ledger this keyring has signed (set with its first checkpoint).
    `signers` are the team's keys beside the chain (`keys trust`): "in charge" at a
    position is the chain's key plus every signer active there.
    """

    keys: tuple[HybridPublicKey, ...]
    current: str
    source: str = PUBLIC_KEYRING
    _by_id: dict[str, HybridVerifier] = field(default_factory=dict, compare=False, repr=False)
    genesis: str = ""
    ledger: str = ""
    spans: Mapping[str, tuple[int, int | None]] = field(default_factory=dict)
    signers: tuple[TrustedSigner, ...] = ()

    def __post_init__(self) -> None:
        ids = {k.keyid for k in self.keys}
        if self.current not in ids:
            raise KeyMaterialError(f"{self.source}: current key {self.current[:16]} is not listed",
                                   location=Location(self.source))
        if self.genesis and self.genesis not in ids:
            raise KeyMaterialError(f"{self.source}: genesis key {self.genesis[:16]} is not "
                                   "listed", location=Location(self.source))
        seen: set[str] = set()
        for s in self.signers:
            if s.keyid in ids or s.keyid in seen:
                raise KeyMaterialError(f"{self.source}: key {s.keyid[:16]} ({s.name}) is "
                                       "listed twice", location=Location(self.source))
            seen.add(s.keyid)

    @property
    def genesis_keyid(self) -> str:
        return self.genesis or self.keys[0].keyid

    def span(self, keyid: str) -> tuple[int, int | None] | None:
        signer = self.signer(keyid)
        if signer is not None:
            return signer.since, signer.until
        return self.spans.get(keyid)

    def signer(self, keyid: str) -> TrustedSigner | None:
        for s in self.signers:
            if s.keyid == keyid:
                return s
        return None

    def signers_at(self, size: int) -> frozenset[str]:
        """Key ids of the signers (not the chain's key) that may sign at `size`."""
        return frozenset(s.keyid for s in self.signers if s.active_at(size))

    def may_sign(self, keyid: str) -> bool:
        """Is `keyid` a key DockLock signs new records with: the current key or an active
        signer? (Retired and removed keys only ever verify history.)"""
        signer = self.signer(keyid)
        return keyid == self.current or (signer is not None and signer.active)

    def label(self, keyid: str) -> str:
        """How messages name a key: `name (keyid16)` for a signer, else the key id."""
        signer = self.signer(keyid)
        return f"{signer.name} ({keyid[:16]})" if signer is not None else keyid[:16]

    def lookup(self, keyid: str) -> HybridVerifier | None:
        if keyid not in self._by_id:
            for k in (*self.keys, *(s.key for s in self.signers)):
                if k.keyid == keyid:
                    self._by_id[keyid] = HybridVerifier(k)
                    break
            else:
                return None
        return self._by_id[keyid]

    def trusted_keyids(self) -> tuple[str, ...]:
        return (*(k.keyid for k in self.keys), *(s.keyid for s in self.signers))

    def current_verifier(self) -> HybridVerifier:
        verifier = self.lookup(self.current)
        assert verifier is not None  # guaranteed by __post_init__
        return verifier

    def signing_keys(self) -> KeySet:
        """The keys whose signatures on new records (saved plans) count: the current key
        and every active signer."""
        return KeySet(self, tuple(k for k in self.trusted_keyids() if self.may_sign(k)))

    def _replace(self, **changes: Any) -> Keyring:
        # A fresh verifier cache: the copy may list other keys.
        return dataclasses.replace(self, _by_id={}, **changes)

    def with_key(self, key: HybridPublicKey, *, make_current: bool) -> Keyring:
        keys = (*(k for k in self.keys if k.keyid != key.keyid), key)
        return self._replace(keys=keys, current=key.keyid if make_current else self.current,
                             genesis=self.genesis_keyid, spans=dict(self.spans))

    def with_ledger(self, origin: str) -> Keyring:
        return self._replace(genesis=self.genesis_keyid, ledger=origin, spans=dict(self.spans))

    def with_rotation(self, old: str, new: str, rotation_seq: int) -> Keyring:
        """Record a hand-over at entry `rotation_seq`: the old key signs sizes up to it
        (not including the rotation entry), the new one from the size that includes it."""
        spans = dict(self.spans)
        spans[old] = (spans.get(old, (0, None))[0], rotation_seq)
        spans[new] = (rotation_seq + 1, None)
        return self._replace(genesis=self.genesis_keyid, spans=spans)

    def with_signer(self, key: HybridPublicKey, name: str, trust_seq: int) -> Keyring:
        """Record a `key-trust` add at entry `trust_seq` (signs from the size including it)."""
        others = tuple(s for s in self.signers if s.keyid != key.keyid)
        return self._replace(genesis=self.genesis_keyid,
                             signers=(*others, TrustedSigner(key, name, trust_seq + 1)))

    def without_signer(self, keyid: str, untrust_seq: int) -> Keyring:
        """Record a `key-trust` remove at entry `untrust_seq`: the signer keeps sizes up to
        it (not including its removal); it stays listed so its history still verifies."""
        signers = tuple(dataclasses.replace(s, until=untrust_seq) if s.keyid == keyid else s
                        for s in self.signers)
        return self._replace(genesis=self.genesis_keyid, signers=signers)

    def to_dict(self) -> dict[str, Any]:
        keys = []
        for k in self.keys:
            d = k.to_dict()
            span = self.spans.get(k.keyid)
            if span is not None:
                d["since"] = span[0]
                if span[1] is not None:
                    d["until"] = span[1]
            keys.append(d)
        out: dict[str, Any] = {"format": KEYRING_FORMAT, "current": self.current,
                               "genesis": self.genesis_keyid, "keys": keys}
        if self.signers:  # absent, not empty, in keyrings without a team: files unchanged
            out["signers"] = [s.to_dict() for s in self.signers]
        if self.ledger:
            out["ledger"] = {"origin": self.ledger}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = PUBLIC_KEYRING) -> Keyring:
        if d.get("format") != KEYRING_FORMAT:
            raise KeyMaterialError(f"{source} is not a DockLock keyring "
                                   f"(format {d.get('format')!r})", location=Location(source))
        raw_keys = d.get("keys", ())
        if not isinstance(raw_keys, list):
            raise KeyMaterialError(f"{source}: keys must be a list", location=Location(source))
        keys = tuple(HybridPublicKey.from_dict(k) for k in raw_keys)
        if not keys:
            raise KeyMaterialError(f"{source} lists no keys", location=Location(source))
        spans: dict[str, tuple[int, int | None]] = {}
        for k, raw in zip(keys, raw_keys, strict=True):
            since, until = raw.get("since"), raw.get("until")
            if since is None and until is None:
                continue
            if not isinstance(since, int) or (until is not None and not isinstance(until, int)):
                raise KeyMaterialError(f"{source}: key {k.keyid[:16]} has a malformed since/"
                                       "until", location=Location(source))
            spans[k.keyid] = (since, until)
        raw_signers = d.get("signers", [])
        if not isinstance(raw_signers, list) or not all(isinstance(s, Mapping)
                                                        for s in raw_signers):
            raise KeyMaterialError(f"{source}: signers must be a list of keys",
                                   location=Location(source))
        signers = tuple(TrustedSigner.from_dict(s, source=source) for s in raw_signers)
        ledger = d.get("ledger")
        origin = ledger.get("origin") if isinstance(ledger, Mapping) else None
        return cls(keys, str(d.get("current", "")), source, genesis=str(d.get("genesis") or ""),
                   ledger=str(origin or ""), spans=spans, signers=signers)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyMaterialError(f"no public keyring at {path}",
                                   hint="run `docklock keys init`") from None
        except (OSError, ValueError) as exc:
            raise KeyMaterialError(f"cannot read {path}: {exc}",
                                   location=Location(str(path))) from exc
        if not isinstance(data, dict):
            raise KeyMaterialError(f"{path} is not a JSON object", location=Location(str(path)))
        return cls.from_dict(data, source=str(path))

    def save(self, path: Path) -> None:
        try:
            atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode(),
                               mode=0o644)
        except OSError as exc:
            raise _write_error(exc, path) from exc


@dataclass(frozen=True)
class KeySet:
    """A KeyLookup restricted to some of a keyring's keys (e.g. those that may sign a
    saved plan now)."""

    keyring: Keyring
    keyids: tuple[str, ...]

    def lookup(self, keyid: str) -> HybridVerifier | None:
        return self.keyring.lookup(keyid) if keyid in self.keyids else None

    def trusted_keyids(self) -> tuple[str, ...]:
        return self.keyids


# ------------------------------------------------------------------ workspace key files


def public_keyring_path(paths: WorkspacePaths) -> Path:
    return paths.root / PUBLIC_KEYRING


def signing_key_path(paths: WorkspacePaths) -> Path:
    return paths.keys / SIGNING_KEY


def retired_key_path(paths: WorkspacePaths, keyid: str) -> Path:
    return paths.keys / "retired" / f"{keyid[:16]}.key"


def passphrase_from_env() -> str | None:
    return os.environ.get(PASSPHRASE_ENV) or None


@dataclass(frozen=True)
class KeySource:
    """Where the private signing key comes from: the workspace file, or (CI) the
    environment: DOCKLOCK_SIGNING_KEY holds the PEM text itself, DOCKLOCK_SIGNING_KEY_FILE
    a path. `label` names it in messages; `path` is None for the PEM text."""

    kind: str  # workspace | env | env-file
    label: str
    path: Path | None

    @property
    def from_env(self) -> bool:
        return self.kind != "workspace"


def key_source(paths: WorkspacePaths) -> KeySource:
    """The environment overrides the workspace file; setting both variables is an error
    (which one would sign is not something to guess)."""
    text = os.environ.get(SIGNING_KEY_ENV, "")
    file = os.environ.get(SIGNING_KEY_FILE_ENV, "")
    if text.strip() and file:
        raise KeyMaterialError(f"both {SIGNING_KEY_ENV} and {SIGNING_KEY_FILE_ENV} are set",
                               hint="set only one of them")
    if text.strip():
        return KeySource("env", SIGNING_KEY_ENV, None)
    if file:
        path = Path(file).expanduser()
        return KeySource("env-file", f"{path} ({SIGNING_KEY_FILE_ENV})", path)
    path = signing_key_path(paths)
    return KeySource("workspace", str(path), path)


def keys_exist(paths: WorkspacePaths) -> bool:
    """Is there a private key to sign with (the workspace file, or one the environment
    names: a DOCKLOCK_SIGNING_KEY_FILE that does not exist is an error when loaded, never
    a silent fall-back to another key)?"""
    source = key_source(paths)
    return source.from_env or signing_key_path(paths).exists()


def load_signer(paths: WorkspacePaths, passphrase: str | None = None, *,
                check_trust: bool = True) -> HybridSigner:
    """The signing key (see `key_source`); refuses a key file readable by group or others,
    and (unless `check_trust` is False: `keys export-public` of a key not trusted yet) a
    key from the environment that docklock.pub does not trust."""
    source = key_source(paths)
    secret = passphrase if passphrase is not None else passphrase_from_env()
    if source.path is None:
        # PEM text from a CI secret: no mode to check (see _unescape_pem).
        text = os.environ.get(SIGNING_KEY_ENV, "")
        signer = HybridSigner.from_pem(_unescape_pem(text).encode("utf-8"), secret,
                                       source=source.label)
    else:
        path = source.path
        try:
            st = path.stat()
        except FileNotFoundError:
            hint = (f"point {SIGNING_KEY_FILE_ENV} at the key file, or unset it"
                    if source.from_env else "run `docklock keys init`")
            raise KeyMaterialError(f"no signing key at {source.label}", hint=hint) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyMaterialError(
                f"{path} is accessible by group or others (mode "
                f"{stat.S_IMODE(st.st_mode):04o})",
                location=Location(str(path)), hint=f"chmod 600 {path}")
        signer = HybridSigner.from_pem(path.read_bytes(), secret, source=source.label)
    if source.from_env and check_trust:
        _check_trusted(paths, signer, source)
    return signer


def _unescape_pem(text: str) -> str:
    """PEM text from an environment variable; a one-line secret with literal "\\n" for
    its newlines (how some CI systems store multi-line secrets) is accepted too."""
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text if text.endswith("\n") else text + "\n"


def _check_trusted(paths: WorkspacePaths, signer: HybridSigner, source: KeySource) -> None:
    """A key from the environment must be one docklock.pub trusts to sign now; a wrong
    CI secret is named here, not as a refused signature later."""
    pub = public_keyring_path(paths)
    if not pub.exists():
        return  # a first `apply` starts docklock.pub with this key (require_signer)
    keyring = Keyring.load(pub)
    if keyring.may_sign(signer.keyid):
        return
    signer_entry = keyring.signer(signer.keyid)
    why = ("it was removed with `keys untrust`" if signer_entry is not None else
           "it was retired by `keys rotate`" if keyring.lookup(signer.keyid) is not None
           else "it is neither the current key nor a trusted signer")
    raise KeyMaterialError(
        f"{source.label} holds key {signer.keyid[:16]}, which {pub.name} does not trust to "
        f"sign: {why}", location=Location(str(pub)),
        hint="on a machine holding a trusted key run `docklock keys trust FILE --name ci` "
             "with this key's public half (`docklock keys export-public FILE` with the same "
             "variable set), commit docklock.pub, or fix the CI secret")


def load_keyring(paths: WorkspacePaths) -> Keyring:
    return Keyring.load(public_keyring_path(paths))


def load_verifier(paths: WorkspacePaths) -> HybridVerifier:
    """A verifier for the workspace's current public key (from docklock.pub)."""
    return load_keyring(paths).current_verifier()


def load_signing_keys(paths: WorkspacePaths) -> KeySet:
    """The keys whose signatures on a saved plan count: docklock.pub's current key and
    every active signer (a plan made by CI's or a teammate's key applies here)."""
    return load_keyring(paths).signing_keys()


def init_keys(paths: WorkspacePaths, algorithm_name: str = DEFAULT_ALGORITHM, *,
              force: bool = False, passphrase: str | None = None,
              personal: bool = False) -> HybridSigner:
    """Create a new signing key and a keyring holding only its public key.

    `personal`: a team member's own key in a clone of a workspace whose docklock.pub
    exists: only the private key is written; it signs once a key in charge ran
    `keys trust` with its public half (docklock.pub is left as it is).
    """
    if os.environ.get(SIGNING_KEY_ENV, "").strip() or os.environ.get(SIGNING_KEY_FILE_ENV):
        raise KeyMaterialError(
            f"{SIGNING_KEY_ENV} or {SIGNING_KEY_FILE_ENV} is set, and would be used instead "
            "of a key created here", hint="unset it to create a workspace key")
    path = signing_key_path(paths)
    if path.exists() and not force:
        raise KeyMaterialError(
            f"a signing key already exists at {path}",
            hint="use `docklock keys rotate` to replace it and keep the ledger verifiable, "
                 "or `keys init --force` to overwrite it")
    pub = public_keyring_path(paths)
    if personal and not pub.exists():
        raise KeyMaterialError(f"no {pub.name} to join in {paths.root}",
                               hint="`docklock keys init` (without --personal) starts a "
                                    "keyring and a ledger")
    signer = HybridSigner.generate(algorithm_name)
    write_signing_key(paths, signer, passphrase)
    if not personal:
        Keyring((signer.public_key,), signer.keyid).save(pub)
    return signer


def ensure_keys(paths: WorkspacePaths, algorithm_name: str = DEFAULT_ALGORITHM, *,
                passphrase: str | None = None) -> HybridSigner:
    """Load the signing key, creating it (and docklock.pub) on first use: only in a
    workspace with no docklock.pub at all. When docklock.pub exists but the private key
    is absent (a fresh clone), this refuses and says how to get the key: a new key would
    replace the committed keyring and orphan the ledger."""
    return require_signer(paths, passphrase=passphrase, create=True,
                          algorithm_name=algorithm_name)


def require_signer(paths: WorkspacePaths, *, passphrase: str | None = None,
                   create: bool = False,
                   algorithm_name: str = DEFAULT_ALGORITHM) -> HybridSigner:
    """The signing key for a command that must sign (apply, plan --out, keys rotate, run).

    `create` allows first use (no docklock.pub yet) to make one; it never replaces an
    existing docklock.pub.
    """
    pub = public_keyring_path(paths)
    if keys_exist(paths):
        signer = load_signer(paths, passphrase)
        if create and not pub.exists() and key_source(paths).from_env:
            # CI's first apply in a workspace without a keyring: its key starts one, as
            # `keys import` of a private key does.
            Keyring((signer.public_key,), signer.keyid).save(pub)
        return signer
    if pub.exists():
        raise missing_private_key(paths)
    if create:
        return init_keys(paths, algorithm_name, passphrase=passphrase)
    raise KeyMaterialError(
        f"this workspace has no signing key ({pub} does not exist)",
        hint="run `docklock keys init` (or `docklock apply`, which creates it on first use)")


def optional_signer(paths: WorkspacePaths, passphrase: str | None = None) -> HybridSigner | None:
    """The signing key if this workspace holds it, else None; never creates a key. For
    read-only commands that record in the ledger only when they can sign (plan, drift).
    A key docklock.pub does not list at all (a `keys init --personal` key nobody trusted
    yet) is a KeyMaterialError, which those commands report as "not recorded"."""
    if not keys_exist(paths):
        return None
    signer = load_signer(paths, passphrase)
    pub = public_keyring_path(paths)
    if pub.exists() and Keyring.load(pub).lookup(signer.keyid) is None:
        raise KeyMaterialError(
            f"the signing key {signer.keyid[:16]} is not in {pub.name} yet",
            location=Location(str(pub)),
            hint="a signer of this workspace runs `docklock keys trust` with its public half "
                 "(`docklock keys export-public FILE`); pull docklock.pub afterwards")
    return signer


def missing_private_key(paths: WorkspacePaths) -> KeyMaterialError:
    pub = public_keyring_path(paths)
    try:
        current = f" {Keyring.load(pub).current[:16]}"
    except KeyMaterialError:
        current = ""
    return KeyMaterialError(
        f"{pub.name} lists the signing key{current}, but its private key is not in this "
        f"workspace ({signing_key_path(paths)})",
        location=Location(str(pub)),
        hint="copy the key from where it lives: `docklock keys export FILE` there, then "
             "`docklock keys import FILE` here; signing also needs that workspace's "
             ".docklock/ledger folder copied here (or `docklock keys init --force` to "
             "start a new ledger on purpose). For a key of your own: `docklock keys init "
             "--personal`, then a signer runs `docklock keys trust` with its public half "
             f"(docs/team-keys.md); CI sets {SIGNING_KEY_ENV} or {SIGNING_KEY_FILE_ENV}. "
             "Read-only commands work without any of these")


def import_key(paths: WorkspacePaths, source: Path, passphrase: str | None = None) -> HybridSigner:
    """Install a private key file as this workspace's signing key.

    It must be the `current` key of docklock.pub or one of its active signers (or, with
    no docklock.pub, starts one). An existing different signing key is never overwritten.
    """
    secret = passphrase if passphrase is not None else passphrase_from_env()
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(f"cannot read {source}: {exc}", location=Location(str(source))) \
            from exc
    signer = HybridSigner.from_pem(data, secret, source=str(source))
    pub = public_keyring_path(paths)
    keyring = Keyring.load(pub) if pub.exists() else None
    if keyring is not None and not keyring.may_sign(signer.keyid):
        known = keyring.lookup(signer.keyid) is not None
        raise KeyMaterialError(
            f"{source} holds key {signer.keyid[:16]}, but the current key of {pub.name} is "
            f"{keyring.current[:16]}" + (" (that key was retired)" if known else "")
            + (", and it is not a trusted signer" if keyring.signers else ""),
            location=Location(str(source)),
            hint="export the current key from the workspace that signs this ledger")
    if signing_key_path(paths).exists():
        existing = load_signer(paths, secret)
        if existing.keyid != signer.keyid:
            raise KeyMaterialError(f"this workspace already has signing key "
                                   f"{existing.keyid[:16]}; refusing to overwrite it",
                                   location=Location(str(signing_key_path(paths))))
    write_signing_key(paths, signer, secret)
    if keyring is None:
        Keyring((signer.public_key,), signer.keyid).save(pub)
    return signer


def export_key(paths: WorkspacePaths, target: Path) -> Path:
    """Copy the signing key file (as stored: sealed if it is) to `target`, mode 0600."""
    path = signing_key_path(paths)
    if not path.exists():
        if public_keyring_path(paths).exists():
            raise missing_private_key(paths)
        raise KeyMaterialError(f"no signing key at {path}", hint="run `docklock keys init`")
    load_signer(paths)  # refuses a group-readable key file; checks it parses
    try:
        atomic_write_bytes(target, path.read_bytes(), mode=0o600, exclusive=True)
    except FileExistsError:
        raise KeyMaterialError(f"{target} already exists; refusing to overwrite it",
                               location=Location(str(target))) from None
    return target


def export_public_key(paths: WorkspacePaths, target: Path, name: str) -> HybridPublicKey:
    """Write the public half of the signing key in use (workspace file or environment) to
    `target` as a `keys export-public` document (mode 0644; never overwrites)."""
    if not keys_exist(paths):
        raise KeyMaterialError(
            f"no private key in this workspace ({signing_key_path(paths)})",
            hint="create your own with `docklock keys init --personal` (or set "
                 f"{SIGNING_KEY_ENV} / {SIGNING_KEY_FILE_ENV} to CI's key) first")
    signer = load_signer(paths, check_trust=False)
    TrustedSigner(signer.public_key, name, 1)  # the name must be usable by `keys trust`
    data = json.dumps(public_key_document(signer.public_key, name), indent=2) + "\n"
    try:
        atomic_write_bytes(target, data.encode("utf-8"), mode=0o644, exclusive=True)
    except FileExistsError:
        raise KeyMaterialError(f"{target} already exists; refusing to overwrite it",
                               location=Location(str(target))) from None
    except OSError as exc:
        raise _write_error(exc, target) from exc
    return signer.public_key


def write_signing_key(paths: WorkspacePaths, signer: HybridSigner,
                      passphrase: str | None = None, *, path: Path | None = None) -> Path:
    """Write a private key file: 0600 from its creation (mkstemp), in a 0700 folder."""
    target = path or signing_key_path(paths)
    secret = passphrase if passphrase is not None else passphrase_from_env()
    try:
        private_folder(target.parent)
        atomic_write_bytes(target, signer.to_pem(secret), mode=0o600)
    except OSError as exc:
        raise _write_error(exc, target) from exc
    return target


def _write_error(exc: OSError, path: Path) -> KeyMaterialError:
    return KeyMaterialError(f"cannot write {path} ({exc.strerror or exc})",
                            location=Location(str(path)),
                            hint="free disk space (or fix the file system's permissions) and "
                                 "run the command again; nothing was changed")


def private_folder(folder: Path) -> None:
    """Create (or tighten) a folder holding private key files to 0700."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # an existing folder too: nobody else may list the key files


def witness_key_path(paths: WorkspacePaths) -> Path:
    return paths.keys / WITNESS_KEY


def witness_key(paths: WorkspacePaths) -> bytes:
    """The workspace's secret keying the digests of sensitive job env in witnesses.

    32 random bytes (hex in `.docklock/keys/witness.key`, 0600), created on first use and
    never rotated: a new key changes every keyed digest, so recorded witnesses would stop
    verifying. Two processes creating it at once agree on one (exclusive create). Unlike
    a salted digest, a keyed one cannot be brute-forced from a witness or the ledger
    without this file (see docklock.cage.witness.env_record).
    """
    path = witness_key_path(paths)
    try:
        return _read_witness_key(path)
    except FileNotFoundError:
        pass
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):  # another process created it first: use it
        atomic_write_bytes(path, secrets.token_hex(WITNESS_KEY_SIZE).encode() + b"\n",
                           mode=0o600, exclusive=True)
    return _read_witness_key(path)


def _read_witness_key(path: Path) -> bytes:
    st = path.stat()  # FileNotFoundError: not created yet
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"{path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
            location=Location(str(path)), hint=f"chmod 600 {path}")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != WITNESS_KEY_SIZE:
        raise KeyMaterialError(f"{path} is not a DockLock witness key",
                               location=Location(str(path)),
                               hint="restore it from a backup: recorded witnesses with "
                                    "sensitive env need this key to verify")
    return key
