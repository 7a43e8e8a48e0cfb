"""A C2SP tlog-witness (c2sp.org/tlog-witness): `docklock witness init|add-log|serve`.

Files under the witness folder DIR (nothing else is written):
- `witness.key`: the private key (PKCS#8 PEM; Ed25519, or ML-DSA-44 with `--algorithm
  ml-dsa-44`), 0600 in a 0700 folder;
- `witness.json`: name and the logs it witnesses (origin + the log's note verifier keys,
  standard Ed25519 type 0x01; only the last key of a log is accepted, earlier ones were
  retired by `add-log --rotate`); re-read on every request, so `add-log` needs no restart;
- `logs/<sha256(origin) hex>.json`: the latest cosigned checkpoint of each log (size,
  root, the note with our cosignature), replaced atomically (temp file, fsync, rename);
- `logs/<sha256(origin) hex>.refused.jsonl`: checkpoints the log's key signed that were
  refused as inconsistent (evidence of a fork; at most 1 MiB; never cosigned);
- `logs/<sha256(origin) hex>.lock`: flock held from reading the stored size to persisting
  the new one, so two requests at once are serialised and can never roll a log back
  (the race the protocol spells out).

Invariants: a checkpoint is cosigned only if its log signature verifies with a
registered key, the client's `old` equals the stored size, and the consistency proof
from the stored root verifies (or, at equal size, the roots are equal). So the stored
size never decreases and every stored root extends the previous one: a rollback gets
409 (or 400), a fork 422, a bad signature 403 (also a retired key's), an unknown
origin 404. Connections are bounded: at most MAX_CONNECTIONS at once (more get 503), each
cut CONNECTION_DEADLINE seconds after it was accepted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from docklock._fs import atomic_write_bytes
from docklock.errors import DockLockError, KeyMaterialError, LedgerError, Location
from docklock.ledger.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from docklock.ledger.note import TYPE_ED25519, Note, NoteError, VerifierKey, parse_note
from docklock.witness.cosignature import ALGORITHMS, Cosigner, CosignerKey

CONFIG_FILE = "witness.json"
KEY_FILE = "witness.key"
LOGS_DIR = "logs"
CONFIG_FORMAT = "docklock.io/witness/v1"
STATE_FORMAT = "docklock.io/witness-log/v1"
MAX_BODY = 256 * 1024  # a checkpoint with 16 ML-DSA-87 signature lines fits in ~110 KiB
MAX_PROOF_LINES = 63
REQUEST_TIMEOUT = 10.0  # seconds a client may stay silent while sending its request
CONNECTION_DEADLINE = 30.0  # seconds a connection may live in all (a trickler is cut)
MAX_CONNECTIONS = 64  # connections served at once; more get 503 straight away
SIZE_CONTENT_TYPE = "text/x.tlog.size"
EVIDENCE_LIMIT = 1 << 20  # bytes of refused (forked) checkpoints kept per log
TEXT = "text/plain; charset=utf-8"
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
_NAME = re.compile(r"[^\s+]+")
_LENGTH = re.compile(r"[0-9]{1,12}")  # ASCII digits only: str.isdigit() takes "²"


class WitnessConfigError(DockLockError):
    """The witness folder, its key or its configuration is missing or malformed."""


@dataclass(frozen=True)
class LogConfig:
    """A witnessed log. `keys`: its note verifier keys (type 0x01), oldest first; only the
    LAST one is accepted. The earlier ones are retired by `add-log --rotate` and kept only
    so the by-key lookup still finds the log: a retired key may be in an attacker's hands,
    and a witness that still took its signatures would cosign a forged extension."""

    origin: str
    keys: tuple[str, ...]
    # A DockLock team's other signing keys (docklock.pub's `signers`: one per operator
    # or CI), each accepted beside the active key; removed again with --remove-signer.
    signers: tuple[str, ...] = ()

    @property
    def active(self) -> str:
        return self.keys[-1]

    def accepted_verifiers(self) -> list[VerifierKey]:
        """The keys whose checkpoint signatures count: the active one and the signers
        (never a retired key, whatever form a signer entry gives it)."""
        retired = {_public(k) for k in self.keys[:-1]}
        return [VerifierKey.parse(k, want_type=TYPE_ED25519)
                for k in (self.active, *self.signers)
                if k == self.active or _public(k) not in retired]

    def verifiers(self) -> list[VerifierKey]:
        """Every key, retired ones and signers included (for the by-key lookup only)."""
        return [VerifierKey.parse(k, want_type=TYPE_ED25519)
                for k in (*self.keys, *self.signers)]

    def active_verifier(self) -> VerifierKey:
        return VerifierKey.parse(self.active, want_type=TYPE_ED25519)


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    logs: tuple[LogConfig, ...] = ()

    def log(self, origin: str) -> LogConfig | None:
        for log in self.logs:
            if log.origin == origin:
                return log
        return None

    def with_log(self, origin: str, vkey: str, *, rotate: bool = False) -> WitnessConfig:
        """Register `vkey` for `origin`. For a known origin with another key, `rotate`
        must be set: `vkey` becomes the only accepted key and the previous ones are
        retired (never accepted again unless registered anew with `rotate`)."""
        current = self.log(origin)
        if current is not None and _public(current.active) != _public(vkey) and not rotate:
            raise WitnessConfigError(
                f"log {origin} is registered with another key ({current.active.split('+')[1]})",
                hint="after `docklock keys rotate` replace it with `docklock witness add-log "
                     "--rotate`: the old key is then refused")
        old = tuple(k for k in current.keys if _public(k) != _public(vkey)) if current else ()
        signers = tuple(k for k in current.signers
                        if _public(k) != _public(vkey)) if current else ()
        logs = (*(lg for lg in self.logs if lg.origin != origin),
                LogConfig(origin, (*old, vkey), signers))
        return WitnessConfig(self.name, logs)

    def with_signer(self, origin: str, vkey: str, *, remove: bool = False) -> WitnessConfig:
        """Accept (or, with `remove`, stop accepting) `vkey` beside the active key of
        the registered log `origin`: a team signer of a DockLock workspace."""
        current = self.log(origin)
        if current is None:
            raise WitnessConfigError(f"log {origin} is not registered",
                                     hint="register it first with `docklock witness add-log "
                                          "ORIGIN VKEY` (the workspace key)")
        # Keys are compared by their public key bytes, never as text: a key ID in other
        # letter case is the same key (and must not revive a retired one).
        public = _public(vkey)
        if remove:
            if public not in {_public(k) for k in current.signers}:
                raise WitnessConfigError(f"{vkey.split('+')[1] if '+' in vkey else vkey} is "
                                         f"not a signer of log {origin}")
            signers = tuple(k for k in current.signers if _public(k) != public)
        elif public in {_public(k) for k in current.keys}:
            raise WitnessConfigError(
                f"that key is log {origin}'s " + ("active key"
                                                  if public == _public(current.active)
                                                  else "retired key (refused)"),
                hint="a signer is another key: its `docklock witness log-key --all` line")
        else:
            signers = (*(k for k in current.signers if _public(k) != public), vkey)
        logs = tuple(LogConfig(lg.origin, lg.keys, signers) if lg.origin == origin else lg
                     for lg in self.logs)
        return WitnessConfig(self.name, logs)

    def to_dict(self) -> dict[str, Any]:
        logs = []
        for lg in self.logs:
            d: dict[str, Any] = {"origin": lg.origin, "keys": list(lg.keys)}
            if lg.signers:  # absent, not empty, without a team: older files unchanged
                d["signers"] = list(lg.signers)
            logs.append(d)
        return {"format": CONFIG_FORMAT, "name": self.name, "logs": logs}

    @classmethod
    def from_dict(cls, d: Any, *, source: str) -> WitnessConfig:
        if not isinstance(d, dict) or d.get("format") != CONFIG_FORMAT:
            raise WitnessConfigError(f"{source} is not a DockLock witness configuration",
                                     location=Location(source))
        name = d.get("name")
        logs = d.get("logs", [])
        if not isinstance(name, str) or not _NAME.fullmatch(name) or not isinstance(logs, list):
            raise WitnessConfigError(f"{source}: malformed name or logs",
                                     location=Location(source))
        out: list[LogConfig] = []
        for lg in logs:
            if (not isinstance(lg, dict) or not isinstance(lg.get("origin"), str)
                    or not isinstance(lg.get("keys"), list) or not lg["keys"]
                    or not all(isinstance(k, str) for k in lg["keys"])):
                raise WitnessConfigError(f"{source}: malformed log entry",
                                         location=Location(source))
            signers = lg.get("signers", [])
            if not isinstance(signers, list) or not all(isinstance(k, str) for k in signers):
                raise WitnessConfigError(f"{source}: malformed signers of log "
                                         f"{lg['origin']}", location=Location(source))
            try:
                for k in (*lg["keys"], *signers):
                    VerifierKey.parse(k, want_type=TYPE_ED25519)
            except NoteError as exc:
                raise WitnessConfigError(f"{source}: log {lg['origin']}: {exc.message}",
                                         location=Location(source)) from exc
            out.append(LogConfig(lg["origin"], tuple(lg["keys"]), tuple(signers)))
        return cls(name, tuple(out))


def config_path(folder: Path) -> Path:
    return folder / CONFIG_FILE


def load_config(folder: Path) -> WitnessConfig:
    path = config_path(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WitnessConfigError(f"{folder} is not a witness folder (no {CONFIG_FILE})",
                                 hint=f"run `docklock witness init {folder}`") from None
    except (OSError, ValueError) as exc:
        raise WitnessConfigError(f"cannot read {path}: {exc}", location=Location(str(path))) \
            from exc
    return WitnessConfig.from_dict(data, source=str(path))


def save_config(folder: Path, config: WitnessConfig) -> None:
    atomic_write_bytes(config_path(folder),
                       (json.dumps(config.to_dict(), indent=2) + "\n").encode(), mode=0o644)


def load_cosigner(folder: Path) -> Cosigner:
    config = load_config(folder)
    path = folder / KEY_FILE
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyMaterialError(f"no witness key at {path}",
                               hint=f"run `docklock witness init {folder}`") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(f"{path} is accessible by group or others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o})",
                               location=Location(str(path)), hint=f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(f"cannot read {path}: {exc}", location=Location(str(path))) \
            from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | mldsa.MLDSA44PrivateKey):
        raise KeyMaterialError(f"{path} is not an Ed25519 or ML-DSA-44 key",
                               location=Location(str(path)))
    return Cosigner(config.name, key)


def init_witness(folder: Path, name: str, algorithm: str = "ed25519") -> Cosigner:
    """Create a witness folder: a new key (0600) and an empty configuration.

    `algorithm`: "ed25519" (cosignature type 0x04) or "ml-dsa-44" (type 0x06)."""
    if algorithm not in ALGORITHMS:
        raise WitnessConfigError(f"unknown cosignature algorithm {algorithm!r}",
                                 hint=f"use one of: {', '.join(ALGORITHMS)}")
    if not _NAME.fullmatch(name):
        raise WitnessConfigError(f"witness name {name!r} must be non-empty, without spaces "
                                 "or '+'", hint="use a schema-less URL, e.g. "
                                                "witness.example.org/w1")
    if (folder / KEY_FILE).exists() or config_path(folder).exists():
        raise WitnessConfigError(f"{folder} already holds a witness",
                                 hint="`docklock witness show --dir` prints its key")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    key: CosignerKey = (mldsa.MLDSA44PrivateKey.generate() if algorithm == "ml-dsa-44"
                        else ed25519.Ed25519PrivateKey.generate())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    atomic_write_bytes(folder / KEY_FILE, pem, mode=0o600, exclusive=True)
    save_config(folder, WitnessConfig(name))
    return Cosigner(name, key)


def _public(vkey: str) -> bytes:
    """The public key bytes of a note verifier key (b"" if it does not parse)."""
    try:
        return VerifierKey.parse(vkey, want_type=TYPE_ED25519).public
    except NoteError:
        return b""


def add_log(folder: Path, origin: str, vkey: str, *, rotate: bool = False,
            signer: bool = False, remove_signer: bool = False) -> WitnessConfig:
    """Register a log: its origin and one note verifier key (Ed25519, type 0x01).
    `rotate`: replace the key of a known log (WitnessConfig.with_log); `signer` /
    `remove_signer`: accept another key beside it, or stop (WitnessConfig.with_signer)."""
    if not _NAME.fullmatch(origin):
        raise WitnessConfigError(f"log origin {origin!r} must be non-empty, without spaces")
    try:
        vkey = VerifierKey.parse(vkey.strip(), want_type=TYPE_ED25519).render()
    except NoteError as exc:
        raise WitnessConfigError(f"log key: {exc.message}",
                                 hint="pass the log's note verifier key, as printed by "
                                      "`docklock witness log-key`") from exc
    config = load_config(folder)
    if signer or remove_signer:
        config = config.with_signer(origin, vkey.strip(), remove=remove_signer)
    else:
        config = config.with_log(origin, vkey.strip(), rotate=rotate)
    save_config(folder, config)
    return config


# ------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    content_type: str = TEXT


def _reply(status: HTTPStatus, message: str) -> Response:
    return Response(int(status), message.rstrip("\n") + "\n")


@dataclass(frozen=True)
class Submission:
    """A parsed add-checkpoint request body."""

    old: int
    proof: tuple[bytes, ...]
    note: Note
    note_text: str  # the full checkpoint note as submitted
    origin: str
    size: int
    root: bytes


class BadRequest(Exception):
    """Internal: the request body is malformed (400)."""


def parse_submission(body: bytes) -> Submission:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    head, sep, note_text = text.partition("\n\n")
    if not sep:
        raise BadRequest("no empty line between the old size/proof and the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    if not first.startswith("old ") or not _SIZE.fullmatch(first[4:]):
        raise BadRequest("the first line must be `old <size>` (decimal, no leading zeros)")
    proof_lines = lines[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise BadRequest(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in proof_lines:
        try:
            h = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise BadRequest("a consistency proof line is not base64") from None
        if len(h) != HASH_SIZE:
            raise BadRequest("a consistency proof line is not a 32-byte hash")
        proof.append(h)
    try:
        note = parse_note(note_text)
    except LedgerError as exc:
        raise BadRequest(f"malformed checkpoint note: {exc.message}") from exc
    body_lines = note.text.split("\n")
    if len(body_lines) < 4:
        raise BadRequest("a checkpoint needs origin, size and root lines")
    origin, size_s, root_s = body_lines[:3]  # extension lines may follow
    if not origin or not _SIZE.fullmatch(size_s):
        raise BadRequest("malformed checkpoint origin or size")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error:
        raise BadRequest("the checkpoint root is not base64") from None
    if len(root) != HASH_SIZE:
        raise BadRequest("the checkpoint root is not 32 bytes")
    return Submission(int(first[4:]), tuple(proof), note, note_text, origin, int(size_s), root)


def origin_hash(origin: str) -> str:
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


def _log_signed(note: Note, log: LogConfig) -> bool | None:
    """True: an accepted key (the log's active key or a team signer) signed and its
    lines verify; None: none did (a retired key's signature does not count); False: a
    line of an accepted key fails (malformed)."""
    verified = False
    message = note.text.encode("utf-8")
    for vkey in log.accepted_verifiers():
        public = ed25519.Ed25519PublicKey.from_public_bytes(vkey.public)
        for sig in note.signatures:
            if sig.name != vkey.name or sig.key_id != vkey.key_id:
                continue
            try:
                public.verify(sig.signature, message)
            except InvalidSignature:
                return False
            verified = True
    return verified or None


class Witness:
    """The witness's request logic over its folder (no HTTP here, so tests call it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cosigner = load_cosigner(folder)
        (folder / LOGS_DIR).mkdir(mode=0o700, exist_ok=True)

    def _state_path(self, digest: str) -> Path:
        return self.folder / LOGS_DIR / f"{digest}.json"

    @contextlib.contextmanager
    def _log_lock(self, digest: str) -> Iterator[None]:
        fd = os.open(self.folder / LOGS_DIR / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_state(self, digest: str, origin: str | None) -> tuple[int, bytes, str] | None:
        """(size, root, cosigned note) stored under `digest` (None: never cosigned).
        Refuses to guess: a damaged state must not turn into "size 0" (a rollback)."""
        path = self._state_path(digest)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise WitnessConfigError(f"{path} is damaged or unreadable: {exc}",
                                     location=Location(str(path))) from exc
        try:
            ok = (isinstance(d, dict) and d.get("format") == STATE_FORMAT
                  and isinstance(d.get("origin"), str)
                  and (origin is None or d["origin"] == origin)
                  and type(d.get("size")) is int and d["size"] >= 0
                  and isinstance(d.get("checkpoint"), str) and isinstance(d.get("root"), str))
            root = base64.b64decode(d["root"], validate=True) if ok else b""
        except (binascii.Error, ValueError):
            ok = False
        if not ok or len(root) != HASH_SIZE:
            raise WitnessConfigError(f"{path} is damaged", location=Location(str(path)),
                                     hint="restore it from a backup; never delete it (the "
                                          "witness would then accept a rollback)")
        return d["size"], root, d["checkpoint"]

    def stored(self, origin: str) -> tuple[int, bytes, str] | None:
        """(size, root, cosigned note) last cosigned for `origin`, if any."""
        return self._read_state(origin_hash(origin), origin)

    def add_checkpoint(self, body: bytes) -> Response:
        try:
            sub = parse_submission(body)
        except BadRequest as exc:
            return _reply(HTTPStatus.BAD_REQUEST, str(exc))
        config = load_config(self.folder)
        log = config.log(sub.origin)
        if log is None:
            return _reply(HTTPStatus.NOT_FOUND, f"unknown log origin {sub.origin}")
        signed = _log_signed(sub.note, log)
        if signed is None:
            return _reply(HTTPStatus.FORBIDDEN, "no signature by the key registered for "
                                                f"{sub.origin} (a retired key is refused)")
        if signed is False:
            return _reply(HTTPStatus.FORBIDDEN, "a signature by a registered key does not "
                                                "verify")
        if sub.old > sub.size:
            return _reply(HTTPStatus.BAD_REQUEST, f"old size {sub.old} is larger than the "
                                                  f"checkpoint size {sub.size}")
        if sub.size == 0 and sub.root != EMPTY_ROOT:
            return _reply(HTTPStatus.UNPROCESSABLE_ENTITY, "a checkpoint of size 0 must "
                                                           "have the empty tree's root")
        digest = origin_hash(sub.origin)
        with self._log_lock(digest):
            stored = self.stored(sub.origin)
            known_size, known_root = (stored[0], stored[1]) if stored else (0, EMPTY_ROOT)
            if sub.old != known_size:
                return Response(int(HTTPStatus.CONFLICT), f"{known_size}\n", SIZE_CONTENT_TYPE)
            if sub.old == 0 and sub.proof:
                return _reply(HTTPStatus.UNPROCESSABLE_ENTITY,
                              "the consistency proof from size 0 must be empty")
            if sub.old > 0:
                try:
                    verify_consistency(sub.old, sub.size, known_root, sub.root, sub.proof)
                except LedgerError as exc:
                    kept = ""
                    try:
                        self._keep_evidence(digest, sub, known_size, known_root, exc.message)
                    except WitnessConfigError as err:  # the refusal stands regardless
                        kept = f" (evidence not kept: {err.message})"
                    return _reply(HTTPStatus.UNPROCESSABLE_ENTITY,
                                  f"not consistent with the cosigned size {known_size}: "
                                  f"{exc.message}{kept}")
            cosig = self.cosigner.cosign(sub.note.text)
            cosigned = sub.note_text + cosig.line()
            record = {"format": STATE_FORMAT, "origin": sub.origin, "size": sub.size,
                      "root": base64.b64encode(sub.root).decode("ascii"),
                      "checkpoint": cosigned}
            # Persisted (fsynced rename) before the reply: a crash never forgets a size
            # it has already vouched for.
            atomic_write_bytes(self._state_path(digest),
                               (json.dumps(record, sort_keys=True) + "\n").encode(), mode=0o600)
        return Response(int(HTTPStatus.OK), cosig.line())

    def _keep_evidence(self, digest: str, sub: Submission, known_size: int,
                       known_root: bytes, reason: str) -> None:
        """Keep a refused checkpoint that the log's key signed: proof that the log forked
        (the protocol allows logging it; never cosigned). Only the log key's holder can
        add lines, and the file stops growing at EVIDENCE_LIMIT bytes."""
        path = self.folder / LOGS_DIR / f"{digest}.refused.jsonl"
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size >= EVIDENCE_LIMIT:
                return
        record = {"time": int(time.time()), "reason": reason, "known_size": known_size,
                  "known_root": base64.b64encode(known_root).decode("ascii"),
                  "old": sub.old, "size": sub.size, "checkpoint": sub.note_text}
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                while data:  # a short write (e.g. a full disk) must not tear silently
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
        except OSError as exc:
            raise WitnessConfigError(f"cannot keep the refused checkpoint in {path}: {exc}",
                                     location=Location(str(path))) from exc

    def refusals(self, origin: str) -> int:
        """How many signed but inconsistent checkpoints of `origin` were kept."""
        path = self.folder / LOGS_DIR / f"{origin_hash(origin)}.refused.jsonl"
        try:
            return path.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def logs_by_key(self, key_digest: str) -> Response:
        """DockLock's extension: `origin size base64(root)` per line for every registered
        log whose keys include the Ed25519 public key with this SHA-256 (hex), and that
        this witness has cosigned. A log's origin lives in its ledger folder; its key is
        committed (docklock.pub), so a workspace whose ledger was deleted can still ask
        "what have you cosigned for my key?" and notice the history it lost."""
        if not re.fullmatch(r"[0-9a-f]{64}", key_digest):
            return _reply(HTTPStatus.NOT_FOUND, "not a lowercase hex SHA-256 key hash")
        lines: list[str] = []
        for log in load_config(self.folder).logs:
            if not any(hashlib.sha256(v.public).hexdigest() == key_digest
                       for v in log.verifiers()):
                continue
            stored = self.stored(log.origin)
            if stored is not None:
                lines.append(f"{log.origin} {stored[0]} "
                             f"{base64.b64encode(stored[1]).decode('ascii')}\n")
        return Response(int(HTTPStatus.OK), "".join(lines))

    def get_checkpoint(self, digest: str) -> Response:
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return _reply(HTTPStatus.NOT_FOUND, "not a lowercase hex SHA-256 origin hash")
        stored = self._read_state(digest, None)
        if stored is None:
            return _reply(HTTPStatus.NOT_FOUND, "this witness never cosigned that log")
        return Response(int(HTTPStatus.OK), stored[2])


# ----------------------------------------------------------------------------- HTTP


def _handler(witness: Witness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "docklock-witness"
        timeout = REQUEST_TIMEOUT  # bounds a client that sends its body slowly
        protocol_version = "HTTP/1.1"

        def _send(self, response: Response) -> None:
            data = response.body.encode("utf-8")
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/add-checkpoint":
                self._send(_reply(HTTPStatus.NOT_FOUND, "only POST /add-checkpoint"))
                return
            length_s = self.headers.get("Content-Length")
            if length_s is None or not _LENGTH.fullmatch(length_s.strip()):
                self.close_connection = True
                self._send(_reply(HTTPStatus.LENGTH_REQUIRED, "Content-Length required"))
                return
            length = int(length_s.strip())
            if length > MAX_BODY:
                self.close_connection = True
                self._send(_reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  f"body larger than {MAX_BODY} bytes"))
                return
            body = self.rfile.read(length)
            try:
                self._send(witness.add_checkpoint(body))
            except DockLockError as exc:
                self._send(_reply(HTTPStatus.INTERNAL_SERVER_ERROR, exc.message))

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            try:
                if len(parts) == 2 and parts[1] == "checkpoint":
                    self._send(witness.get_checkpoint(parts[0]))
                elif (len(parts) == 4 and parts[:2] == ["docklock", "v1"]
                      and parts[3] == "logs"):
                    self._send(witness.logs_by_key(parts[2]))
                else:
                    self._send(_reply(HTTPStatus.NOT_FOUND,
                                      "GET /<sha256(origin)>/checkpoint"))
            except DockLockError as exc:  # e.g. a damaged state file: say so, stay up
                self._send(_reply(HTTPStatus.INTERNAL_SERVER_ERROR, exc.message))

        def log_message(self, format: str, *args: Any) -> None:
            # One short line per request on stderr; never the body.
            super().log_message(format, *args)

    return Handler


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port_s = text.rpartition(":")
    if not sep or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise WitnessConfigError(f"--listen {text!r} must be HOST:PORT",
                                 hint="e.g. 127.0.0.1:8330 (port 0 picks a free one)")
    return host.strip("[]") or "127.0.0.1", int(port_s)


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but at most `max_connections` at once (more are answered
    503 and closed by the accepting thread, without a thread of their own), and each
    connection is shut down `deadline` seconds after it was accepted: the per-read
    timeout alone lets a client that sends a byte every few seconds hold a thread for
    ever, and enough of them would starve everyone."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *,
                 max_connections: int = MAX_CONNECTIONS,
                 deadline: float = CONNECTION_DEADLINE) -> None:
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.deadline = deadline

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.setblocking(False)  # never wait on this client in the accept loop
                request.recv(MAX_BODY)  # what already arrived: closing on unread data resets
            with contextlib.suppress(OSError):
                request.send(_BUSY)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # Shutting the socket down wakes a handler blocked in recv() (close would not).
        timer = threading.Timer(self.deadline, _cut, (request,))
        timer.daemon = True
        timer.start()
        try:
            super().process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self.slots.release()


_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"Content-Length: 27\r\nConnection: close\r\n\r\ntoo many open connections\r\n")


def _cut(request: Any) -> None:
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


def make_server(folder: Path, listen: str, *, max_connections: int = MAX_CONNECTIONS,
                deadline: float = CONNECTION_DEADLINE) -> ThreadingHTTPServer:
    """A bound server (not yet serving); `server.server_address` has the real port."""
    witness = Witness(folder)
    host, port = parse_listen(listen)
    return BoundedServer((host, port), _handler(witness), max_connections=max_connections,
                         deadline=deadline)


def serve(folder: Path, listen: str, ready: Callable[[str], None]) -> None:
    """Serve until interrupted; `ready(url)` is called once the socket is bound."""
    server = make_server(folder, listen)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    try:
        ready(f"http://{host}:{port}")
        server.serve_forever()
    finally:
        server.server_close()
