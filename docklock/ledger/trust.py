"""Who may write and sign what: per-entry signatures, the team's key set, and the checks
made before signing.

Every entry carries `sig`, an Ed25519 signature by the Ed25519 half of a key in charge
when it was appended, over

    ENTRY_DOMAIN || origin || 0x0A || the entry's canonical JSON without `sig`

(~50 µs to make, so an append stays well under 1 ms; an ML-DSA signature per entry would
cost ~1 ms and 4.6 kB). The domain prefix keeps these messages apart from the other uses
of the same Ed25519 half: composite message representatives start with
"CompositeAlgorithmSignatures2025", note texts with their origin line "docklock.io/...".

"In charge" is a SET of keys (keys for a team, docs/team-keys.md): the rotation chain's
key (the genesis key, then whatever `key-rotation` entries hand over to) plus every
signer that a `key-trust` entry added and no later `key-trust` entry removed. Any key of
the set may sign entries and checkpoints at that position, so the ledger records who
signed what (an entry's `sig` verifies with exactly one key: `identify_signer`). A
`key-trust` entry counts only when its `endorsement`, a hybrid signature (ctx
docklock/key-trust) over origin, action, key id, public key, name, endorser and the
entry's own seq and prev, is by the chain's key: only the workspace key enrols or
removes signers (a signer signs work, so a leaked signer key cannot let another in). A
key it adds must be listed under `signers` in docklock.pub, so every new signer is a
reviewable commit. Only the chain's key rotates; a removed signer's history stays valid.

Invariants (docs/adr/0002-ledger-format.md):
- A command signs a checkpoint only with a key docklock.pub trusts to sign now (its
  `current` key or an active signer) and only over entries it can authenticate
  (`authenticate_tail`): the set in charge at the newest checkpoint is what the
  ledger's own key-rotation and key-trust entries say (`replay_keys`: one bytes search
  of the entries stream), never what docklock.pub alone says; that checkpoint must be
  signed by a key of that set; every entry after it must carry a valid signature by a
  key in charge at its position (key-rotation and key-trust entries, checked in full,
  change the set); the chain's key at the end must be docklock.pub's `current`; the
  signer must be in charge at the end; and docklock.pub's signers must agree with the
  ledger's key-trust entries (`check_signers_agree`, the check `ledger verify` makes).
  A line appended by anyone without a private key in charge therefore never gets
  covered by a signature, and `ledger verify` reports it in the unsigned tail; a
  removed signer whose copy of docklock.pub lost its `until` signs nothing.
- Entries already covered by a verified checkpoint are authenticated by it; `ledger verify`
  checks per-entry signatures only after the newest checkpoint (and of the rare key-trust
  entries), so verifying 1M entries stays a hashing pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from docklock.errors import KeyMaterialError, LedgerError, Location, SignatureError
from docklock.ledger.keys import (
    CTX_TRUST,
    HybridPublicKey,
    HybridSignatureError,
    Keyring,
    public_keyring_path,
)
from docklock.objects import canonical_json

if TYPE_CHECKING:
    from docklock.ledger.keys import HybridSigner, TrustedSigner
    from docklock.ledger.store import Checkpoint, Entry, Ledger
    from docklock.workspace import WorkspacePaths

ENTRY_DOMAIN = b"docklock/ledger-entry/v1\n"
KEY_ROTATION = "key-rotation"
KEY_TRUST = "key-trust"  # docklock.ledger.store.EntryType.KEY_TRUST
# Canonical JSON sorts keys and "type" sorts last: a key-trust line ends with this, so
# `ledger verify`'s hashing loop spots one without parsing (as it does key-rotation lines).
KEY_TRUST_SUFFIX = b',"type":"key-trust"}'
_FOREIGN_HINT = ("an entry was written without the signing key (or edited): restore "
                 "`.docklock/ledger/entries.jsonl` from a backup, or investigate who wrote it; "
                 "`docklock ledger verify` names it")


@runtime_checkable
class EntrySigner(Protocol):
    """What appending needs: the key id and a plain Ed25519 signature by its Ed25519 half."""

    @property
    def keyid(self) -> str: ...

    @property
    def public_key(self) -> HybridPublicKey: ...

    def sign_ed25519(self, message: bytes) -> bytes: ...


def entry_message(origin: str, unsigned_line: bytes) -> bytes:
    return ENTRY_DOMAIN + origin.encode("utf-8") + b"\n" + unsigned_line


def sign_entry(signer: EntrySigner, origin: str, unsigned_line: bytes) -> str:
    return base64.b64encode(signer.sign_ed25519(entry_message(origin, unsigned_line))) \
        .decode("ascii")


class EntryKeys:
    """Ed25519 public keys by key id, built once per pass."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._eds: dict[str, ed25519.Ed25519PublicKey] = {}

    def _key(self, keyid: str) -> ed25519.Ed25519PublicKey | None:
        key = self._eds.get(keyid)
        if key is None:
            verifier = self.keyring.lookup(keyid)
            if verifier is None:
                return None
            key = ed25519.Ed25519PublicKey.from_public_bytes(verifier.public_key.ed25519)
            self._eds[keyid] = key
        return key

    def check(self, entry: Entry, origin: str, keyid: str) -> str | None:
        """None if `entry` is signed by `keyid`; otherwise what is wrong."""
        return self.check_any(entry, origin, (keyid,))[1]

    def check_any(self, entry: Entry, origin: str,
                  keyids: Collection[str]) -> tuple[str | None, str | None]:
        """(the key of `keyids` that signed `entry`, None), or (None, what is wrong). The
        set in charge is small (a team's keys), so each is tried in turn."""
        if not entry.sig:
            return None, "the entry has no signature (written without the signing key?)"
        try:
            raw = base64.b64decode(entry.sig, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        message = entry_message(origin, entry.unsigned_line())
        unknown: list[str] = []
        for keyid in keyids:
            key = self._key(keyid)
            if key is None:
                unknown.append(keyid)
                continue
            try:
                key.verify(raw, message)
            except (InvalidSignature, ValueError):
                continue
            return keyid, None
        if unknown and len(unknown) == len(keyids):
            return None, f"key {unknown[0][:16]} is not in {self.keyring.source}"
        if len(keyids) == 1:
            (only,) = keyids
            return None, (f"its signature does not verify with key {only[:16]}, the key in "
                          "charge at that point: it was written without the signing key, "
                          "or edited")
        names = ", ".join(self.keyring.label(k) for k in keyids)
        return None, (f"its signature does not verify with any key in charge at that point "
                      f"({names}): it was written without a signing key, or edited")


def identify_signer(entry: Entry, origin: str, keyring: Keyring,
                    keys: EntryKeys | None = None) -> str | None:
    """The key id of whichever key in `keyring` signed `entry` (None: no key listed there
    did, or the entry has no signature). For `ledger show`: who signed what."""
    keyid, _ = (keys or EntryKeys(keyring)).check_any(entry, origin,
                                                      keyring.trusted_keyids())
    return keyid


def load_trusted_keyring(ledger: Ledger) -> Keyring:
    path = public_keyring_path(ledger.paths)
    try:
        return Keyring.load(path)
    except KeyMaterialError as exc:
        raise LedgerError(f"cannot sign the ledger: {exc.message}", location=exc.location,
                          hint=exc.hint or "restore docklock.pub") from exc


# ------------------------------------------------------------------ key-trust entries


def trust_statement(origin: str, action: str, keyid: str, *, public: HybridPublicKey | None,
                    name: str, by: str, seq: int, prev: str) -> bytes:
    """What a key-trust endorsement signs: bound to this ledger and this position, so it
    cannot be replayed elsewhere (as rotation statements are)."""
    return canonical_json({
        "statement": "docklock key trust", "origin": origin, "action": action,
        "keyid": keyid, "public": public.to_dict() | {"created": None} if public else None,
        "name": name, "by": by, "seq": seq, "prev": prev,
    })


def trust_payload(origin: str, by: HybridSigner, action: str, keyid: str, *,
                  public: HybridPublicKey | None, name: str, seq: int,
                  prev: str) -> dict[str, Any]:
    msg = trust_statement(origin, action, keyid, public=public, name=name, by=by.keyid,
                          seq=seq, prev=prev)
    payload: dict[str, Any] = {
        "action": action, "keyid": keyid, "name": name, "by": by.keyid,
        "summary": f"{'trust' if action == 'add' else 'untrust'} signer {name} "
                   f"{keyid[:16]}",
        "endorsement": base64.b64encode(by.sign(msg, context=CTX_TRUST)).decode("ascii"),
    }
    if public is not None:
        payload["public"] = public.to_dict()
    return payload


@dataclass(frozen=True)
class TrustChange:
    """A verified key-trust entry: `keyid` joins (add) or leaves (remove) the set in
    charge; `by` endorsed it."""

    action: str
    keyid: str
    name: str
    by: str


def check_trust(entry: Entry, origin: str, keyring: Keyring, chain: str | None,
                team: Collection[str]) -> TrustChange:
    """Verify a key-trust entry against the set in charge before it (`chain` key plus
    `team` signers; chain None: unknown, from a partial verify); LedgerError otherwise."""
    p: Mapping[str, Any] = entry.payload
    try:
        action = str(p["action"])
        keyid = str(p["keyid"])
        name = str(p["name"])
        by = str(p["by"])
        endorsement = base64.b64decode(str(p["endorsement"]), validate=True)
        public = HybridPublicKey.from_dict(p["public"]) if action == "add" else None
    except (KeyError, TypeError, binascii.Error, KeyMaterialError) as exc:
        raise LedgerError(f"key-trust payload is malformed: {exc}") from exc
    if action not in ("add", "remove"):
        raise LedgerError(f"key-trust action {action!r} is neither add nor remove")
    if public is not None and public.keyid != keyid:
        raise LedgerError(f"key-trust names key {keyid[:16]} but carries key "
                          f"{public.keyid[:16]}")
    if chain is not None and by != chain:
        # Only the workspace key enrols or removes keys: a signer (a teammate, CI's key
        # from a secret) signs work, so a leaked signer key cannot let in another.
        what = "a signer" if by in team else "not in charge at that point"
        raise LedgerError(f"key-trust is endorsed by key {keyring.label(by)}, which is {what}: "
                          f"only the workspace key ({chain[:16]}) adds or removes signers")
    endorser = keyring.lookup(by)
    if endorser is None:
        raise LedgerError(f"key-trust is endorsed by key {by[:16]}, which is not in "
                          f"{keyring.source}")
    msg = trust_statement(origin, action, keyid, public=public, name=name, by=by,
                          seq=entry.seq, prev=entry.prev)
    try:
        endorser.verify(msg, endorsement, context=CTX_TRUST)
    except HybridSignatureError as exc:
        raise LedgerError(f"key-trust endorsement by {keyring.label(by)}: {exc.message}") \
            from exc
    if action == "add":
        assert public is not None
        if keyid == chain or keyid in team:
            raise LedgerError(f"key-trust adds key {keyid[:16]}, which is already in charge")
        listed = keyring.signer(keyid)
        if listed is None or listed.key.composite != public.composite:
            raise LedgerError(
                f"key-trust adds signer {name} ({keyid[:16]}), which is not listed under "
                f"signers in {keyring.source}",
                hint="commit and pull the docklock.pub written by `docklock keys trust` "
                     "(every signer must be in it)")
    elif keyid not in team:
        raise LedgerError(f"key-trust removes key {keyid[:16]}, which is not a trusted "
                          "signer at that point (the chain's key is replaced with `keys "
                          "rotate`, not removed)")
    return TrustChange(action, keyid, name, by)


# ------------------------------------------------------------------ before signing


@dataclass
class KeyHistory:
    """Who is in charge after a prefix of the ledger, as its key-rotation and key-trust
    entries say (never as docklock.pub says): the chain's key, the signers in charge, and
    each signer's (since, until) so far, in docklock.pub's terms."""

    chain: str
    team: set[str]
    trusted: dict[str, tuple[int, int | None]]

    def copy(self) -> KeyHistory:
        return KeyHistory(self.chain, set(self.team), dict(self.trusted))

    def apply(self, entry: Entry, origin: str, keyring: Keyring) -> None:
        """Follow one entry (only key-rotation and key-trust entries change anything);
        LedgerError when it does not check out against the keys in charge before it."""
        from docklock.ledger.rotation import check_rotation

        if entry.type.value == KEY_ROTATION:
            self.chain = check_rotation(entry, origin, keyring, self.chain)
        elif entry.type.value == KEY_TRUST:
            change = check_trust(entry, origin, keyring, self.chain, self.team)
            if change.action == "add":
                self.team.add(change.keyid)
                self.trusted[change.keyid] = (entry.seq + 1, None)
            else:
                self.team.discard(change.keyid)
                since = self.trusted.get(change.keyid, (0, None))[0]
                self.trusted[change.keyid] = (since, entry.seq)


# Canonical JSON sorts keys, and the entry's "type" sorts last: a key entry's line ends
# `,"type":"key-rotation"}` or `,"type":"key-trust"}`. One search for the common part
# finds both (a payload value spelling it is never followed by the line's end).
_KEY_MARK = b'"type":"key-'
_KEY_ENDS = (b'trust"}\n', b'rotation"}\n')
# The newest replay per Ledger object (a command authenticates before its first append
# and again before its checkpoint): in memory only, never a file or row another process
# could edit, and only reused with the same docklock.pub.
_REPLAYED: weakref.WeakKeyDictionary[Ledger, tuple[str, int, int, KeyHistory]] = \
    weakref.WeakKeyDictionary()


def replay_keys(ledger: Ledger, keyring: Keyring, size: int, offset: int) -> KeyHistory:
    """The KeyHistory of the first `size` entries (`offset` bytes, a line boundary).

    Rotation and key-trust lines are rare and recognisable by their end, so this is one
    bytes search over the stream, parsing only the lines found (about as long as reading
    the stream: ~60 ms per 100k entries on files, ~0.9 s from PostgreSQL). A later call
    carries on from where the last one stopped: on the same Ledger object from memory,
    in a later command from this clone's `.docklock/cache/ledger-keys.json`
    (`_load_anchor`). Entries are not hashed here: the newest checkpoint, whose signature
    the caller checks against the result, covers them, and `ledger verify` catches bytes
    changed under it.
    """
    ring = hashlib.sha256(canonical_json(keyring.to_dict())).hexdigest()
    cached = _REPLAYED.get(ledger)
    if cached is not None and cached[0] == ring and cached[1] <= size and cached[2] <= offset:
        history, from_offset = cached[3].copy(), cached[2]
    else:
        anchor = _load_anchor(ledger, ring, size, offset)
        history, from_offset = anchor or (KeyHistory(keyring.genesis_keyid, set(), {}), 0)
    start = from_offset
    rest = b""  # the start of a line the previous chunk ended in
    server_side = getattr(ledger.storage, "lines_ending_with", None)
    if server_side is not None:  # PostgreSQL: the server ships only the key lines
        ends = tuple(b"," + _KEY_MARK + e.rstrip(b"\n") for e in _KEY_ENDS)
        for line in server_side(ends, from_offset, offset):
            _replay_line(ledger, keyring, history, line)
        from_offset = offset  # nothing left for the stream loop below
    for chunk in ledger.storage.read_entries(from_offset, offset):
        for line in _key_lines(rest, chunk):
            _replay_line(ledger, keyring, history, line)
        cut = chunk.rfind(b"\n") + 1
        rest = rest + chunk if cut == 0 else chunk[cut:]
    if rest:
        raise LedgerError(f"the newest checkpoint's byte offset {offset} is not at the end "
                          "of an entry", location=Location(str(ledger.checkpoints_path)),
                          hint="run `docklock ledger verify`")
    _REPLAYED[ledger] = (ring, size, offset, history.copy())
    if offset > start:
        _save_anchor(ledger, ring, size, offset, history)
    return history


# A clone's own record of the last replay, so each command reads only the entries since
# (a PostgreSQL ledger of 100k entries is ~1 s to ship). It lives in this clone's
# .docklock/cache, never in the shared ledger storage (whose cache rows any holder of the
# connection may edit), and counts only for the same ledger origin, the same docklock.pub
# and the same bytes at its end (the hash of the last entry line it covered); anything
# else, or any doubt, means a full replay.
_ANCHOR_FORMAT = "docklock.io/ledger-keys-cache/v1"
_ANCHOR_LINE = 4096  # the last covered line's bytes are compared up to this length


def _anchor_path(ledger: Ledger) -> Path:
    return ledger.paths.cache / "ledger-keys.json"


def _last_line(ledger: Ledger, offset: int) -> bytes:
    """The last line before byte `offset` (up to _ANCHOR_LINE bytes of it, newline
    included)."""
    data = ledger.storage.read_entries_at(max(0, offset - _ANCHOR_LINE), min(offset,
                                                                            _ANCHOR_LINE))
    return data[data.rfind(b"\n", 0, len(data) - 1) + 1:]


def _load_anchor(ledger: Ledger, ring: str, size: int,
                 offset: int) -> tuple[KeyHistory, int] | None:
    try:
        d = json.loads(_anchor_path(ledger).read_bytes())
        if (d["format"] != _ANCHOR_FORMAT or d["origin"] != ledger.origin
                or d["keyring"] != ring or not 0 < int(d["offset"]) <= offset
                or not 0 < int(d["size"]) <= size):
            return None
        at = int(d["offset"])
        if hashlib.sha256(_last_line(ledger, at)).hexdigest() != d["line"]:
            return None
        history = KeyHistory(str(d["chain"]), {str(k) for k in d["team"]},
                             {str(k): (int(v[0]), None if v[1] is None else int(v[1]))
                              for k, v in d["trusted"].items()})
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return history, at


def _save_anchor(ledger: Ledger, ring: str, size: int, offset: int,
                 history: KeyHistory) -> None:
    from docklock._fs import atomic_write_bytes

    body = {"format": _ANCHOR_FORMAT, "origin": ledger.origin, "keyring": ring,
            "size": size, "offset": offset,
            "line": hashlib.sha256(_last_line(ledger, offset)).hexdigest(),
            "chain": history.chain, "team": sorted(history.team),
            "trusted": {k: list(v) for k, v in sorted(history.trusted.items())}}
    path = _anchor_path(ledger)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, canonical_json(body) + b"\n")
    except OSError:
        pass  # a cache: the next command replays from the start


def _key_lines(rest: bytes, chunk: bytes) -> list[bytes]:
    """The complete key-entry lines that end in `chunk` (`rest`: the start of the line
    the previous chunk ended in)."""
    found: list[bytes] = []
    ends = tuple(b"," + _KEY_MARK + e for e in _KEY_ENDS)
    reach = max(len(e) for e in ends)
    if rest and _KEY_MARK in rest[-reach:] + chunk[:reach]:
        # Rare: a line whose mark starts before this chunk and ends in it.
        newline = chunk.find(b"\n")
        if 0 <= newline < reach:
            line = rest + chunk[:newline + 1]
            # (A mark starting in `chunk` is the loop's below.)
            if line.endswith(ends) and line.rfind(_KEY_MARK) < len(rest):
                found.append(line[:-1])
    pos = chunk.find(_KEY_MARK)
    while pos >= 0:
        tail = pos + len(_KEY_MARK)
        ending = next((e for e in _KEY_ENDS if chunk.startswith(e, tail)), None)
        comma = chunk[pos - 1:pos] if pos > 0 else rest[-1:]
        if ending is not None and comma == b",":
            start = chunk.rfind(b"\n", 0, pos) + 1
            line = chunk[start:tail + len(ending) - 1]
            found.append(rest + line if start == 0 else line)
        pos = chunk.find(_KEY_MARK, tail)
    return found


def _replay_line(ledger: Ledger, keyring: Keyring, history: KeyHistory, line: bytes) -> None:
    from docklock.ledger.store import Entry

    try:
        entry = Entry.from_line(line)
    except LedgerError as exc:
        raise LedgerError(f"refusing to sign: a key entry of the ledger is unreadable: "
                          f"{exc.message}", location=Location(str(ledger.entries_path)),
                          hint="`docklock ledger verify` shows the damage") from exc
    try:
        history.apply(entry, ledger.origin, keyring)
    except LedgerError as exc:
        raise LedgerError(
            f"refusing to sign: the ledger's key entry seq {entry.seq} does not check out: "
            f"{exc.message}", location=Location(str(ledger.entries_path), entry.seq + 1),
            hint=exc.hint or "`docklock ledger verify` shows the damage; restore the ledger "
                             "or docklock.pub from a backup") from exc


def authenticate_tail(ledger: Ledger, signer_keyid: str, latest: Checkpoint | None,
                      entries: Sequence[Entry]) -> Keyring:
    """Refuse (LedgerError) to sign over anything the signer cannot vouch for.

    `entries` are the parsed entries after `latest` (already checked for seq/prev links
    by the caller). Returns the keyring it checked against.
    """
    from docklock.ledger.note import open_note

    keyring = load_trusted_keyring(ledger)
    where = Location(str(ledger.entries_path))
    if keyring.lookup(signer_keyid) is None:
        raise LedgerError(f"the signing key {signer_keyid[:16]} is not listed in "
                          f"{keyring.source}", hint="restore the matching docklock.pub, or "
                                                    "have the workspace key's holder run "
                                                    "`docklock keys trust` with this key's "
                                                    "public half")
    if not keyring.may_sign(signer_keyid):
        # A retired key signs nothing new, even over a ledger restored from before the
        # rotation (where the chain alone would still put it in charge); nor does a
        # removed signer.
        removed = keyring.signer(signer_keyid) is not None
        raise LedgerError(f"the signing key {keyring.label(signer_keyid)} is not the current "
                          f"key {keyring.current[:16]} of {keyring.source}"
                          + (" (it is a signer removed by `keys untrust`)" if removed else ""),
                          hint="only the current key or an active signer may sign; a retired "
                               "key cannot extend the ledger")
    if keyring.ledger and keyring.ledger != ledger.origin:
        raise LedgerError(
            f"{keyring.source} belongs to ledger {keyring.ledger}, but this ledger is "
            f"{ledger.origin}: the ledger was deleted or replaced",
            location=Location(str(ledger.dir)),
            hint="restore .docklock/ledger from a backup; to start over on purpose, "
                 "`docklock keys init --force` makes a new key and keyring")
    if latest is None:
        rotations = [e for e in entries if e.type.value == KEY_ROTATION]
        chain = str(rotations[0].payload.get("old_keyid", "")) if rotations \
            else keyring.current
        if chain != keyring.genesis_keyid:
            raise LedgerError(
                f"the first checkpoint must be signed by the genesis key "
                f"{keyring.genesis_keyid[:16]} of {keyring.source}, not {chain[:16]}",
                location=where, hint="sign with the workspace's original key, or restore "
                                     "docklock.pub")
        history = KeyHistory(chain, set(), {})
    else:
        # Who is in charge at the newest checkpoint comes from the ledger's own key
        # entries, never from docklock.pub alone: a removed signer whose copy of
        # docklock.pub lost its `until` is still removed (reviewer finding, issue 14).
        history = replay_keys(ledger, keyring, latest.size, latest.offset)
        in_charge = (history.chain, *sorted(history.team))
        try:
            open_note(latest.note, ledger.origin, keyring, only_keyid=in_charge)
        except (SignatureError, LedgerError) as exc:
            raise LedgerError(
                f"the newest checkpoint (size {latest.size}) is not signed by the key in "
                f"charge {history.chain[:16]}" + (" or a trusted signer" if history.team
                                                  else "")
                + f": {exc.message}",
                location=Location(str(ledger.checkpoints_path)),
                hint="`docklock ledger verify` shows the damage; restore the ledger from a "
                     "backup") from exc
    keys = EntryKeys(keyring)
    for entry in entries:
        _, problem = keys.check_any(entry, ledger.origin,
                                    (history.chain, *sorted(history.team)))
        if problem is not None:
            raise LedgerError(
                f"refusing to sign over entry seq {entry.seq}: {problem}",
                location=Location(str(ledger.entries_path), entry.seq + 1), hint=_FOREIGN_HINT)
        try:
            history.apply(entry, ledger.origin, keyring)
        except LedgerError as exc:
            raise LedgerError(f"refusing to sign over entry seq {entry.seq}: {exc.message}",
                              location=Location(str(ledger.entries_path), entry.seq + 1),
                              hint=exc.hint or _FOREIGN_HINT) from exc
    chain = history.chain
    if chain != keyring.current:
        raise LedgerError(
            f"the key in charge of this ledger is {chain[:16]}, not the signing key "
            f"{keyring.current[:16]} of {keyring.source}", location=where,
            hint="only the current key may sign; a retired key cannot extend the ledger")
    if signer_keyid != chain and signer_keyid not in history.team:
        seen = history.trusted.get(signer_keyid)
        if seen is not None and seen[1] is not None:
            raise LedgerError(
                f"the signing key {keyring.label(signer_keyid)} is not in charge at the end "
                f"of this ledger: key-trust entry seq {seen[1]} removed it", location=where,
                hint="a removed key signs nothing new, whatever a copy of docklock.pub says; "
                     "ask the workspace key's holder to trust a new key")
        raise LedgerError(
            f"the signing key {keyring.label(signer_keyid)} is not in charge at the end of "
            f"this ledger: no key-trust entry here adds it (or one removed it)",
            location=where,
            hint="this clone's ledger may be older than its docklock.pub: use the shared "
                 "backend or the signing workspace's .docklock/ledger")
    check_signers_agree(keyring, history.trusted)
    return keyring


def check_signers_agree(keyring: Keyring,
                        trusted: Mapping[str, tuple[int, int | None]]) -> None:
    """docklock.pub's signers must be exactly what the ledger's key-trust entries say
    (the check `ledger verify` makes, there over the whole ledger): signing over a ledger
    that a docklock.pub with a signer rolled back, edited or written in by hand disagrees
    with would hand that copy's view to whoever verifies next. Names docklock.pub."""
    found = signer_disagreement(keyring, trusted, signing=True)
    if found is not None:
        message, hint = found
        raise LedgerError(f"refusing to sign: {message}", location=Location(keyring.source),
                          hint=hint)


def signer_disagreement(keyring: Keyring, trusted: Mapping[str, tuple[int, int | None]],
                        *, signing: bool) -> tuple[str, str] | None:
    """(message, hint) for the first signer docklock.pub lists otherwise than the
    ledger's key-trust entries (`trusted`: key id -> (since, until)); None if they agree.
    `signing`: the hints of a command about to sign, else those of `ledger verify`."""
    source = Path(keyring.source).name
    for listed in keyring.signers:
        seen = trusted.get(listed.keyid)
        if seen == (listed.since, listed.until):
            continue
        who = f"signer {listed.name} ({listed.keyid[:16]})"
        if seen is None:
            return (f"{source} lists {who}, but no key-trust entry of this ledger adds it",
                    "remove it from docklock.pub, or "
                    + ("have the workspace key's holder run" if signing else "run")
                    + " `docklock keys trust` with its public key file")
        if listed.until is None and seen[1] is not None:
            if signing:
                return (f"{source} says {who} is trusted, but entry seq {seen[1]} removed it",
                        "pull the newer docklock.pub (with its `until`); if `keys untrust` "
                        "stopped before writing it, run `docklock keys untrust` again to "
                        "finish")
            return (f"{source} says {who} is trusted, but entry seq {seen[1]} removed it: "
                    "docklock.pub was rolled back to before a `keys untrust`",
                    "restore the newer docklock.pub (with its `until`)")
        return (f"{source} gives {who} sizes "
                f"{listed.since}..{'' if listed.until is None else listed.until}, but the "
                f"ledger's key-trust entries give {seen[0]}.."
                f"{'' if seen[1] is None else seen[1]}",
                "restore the docklock.pub written by `keys trust` / `keys untrust`")
    return None


# ------------------------------------------------------------------ keys trust / untrust


@dataclass(frozen=True)
class TrustResult:
    action: str  # add | remove
    keyid: str
    name: str
    by: str
    entry: Entry
    checkpoint: Checkpoint
    resumed: bool  # finished an earlier run that stopped after its entry


def trust_signer(paths: WorkspacePaths, key: HybridPublicKey, name: str, *,
                 signer: HybridSigner | None = None, passphrase: str | None = None,
                 ledger: Ledger | None = None) -> TrustResult:
    """`keys trust`: a key in charge adds `key` as signer `name`: a signed key-trust entry,
    then docklock.pub lists it (since = the entry's seq + 1), then a checkpoint."""
    from docklock.ledger.keys import TrustedSigner, load_keyring

    keyring, signer, ledger = _prepare(paths, signer, passphrase, ledger)
    TrustedSigner(key, name, 1)  # checks the name before anything is written
    if any(k.keyid == key.keyid for k in keyring.keys):
        raise KeyMaterialError(f"key {key.keyid[:16]} is this workspace's own key "
                               f"({'current' if key.keyid == keyring.current else 'retired'})",
                               hint="trust the public key of another person or of CI")
    listed = keyring.signer(key.keyid)
    pending = _pending(ledger, key.keyid, "add")
    if listed is not None and pending is None:
        state = (f"trusted since size {listed.since}" if listed.active else
                 f"removed at size {listed.until}; make a new key for it")
        raise KeyMaterialError(f"key {key.keyid[:16]} is already listed as signer "
                               f"{listed.name} ({state})")
    clash = next((s for s in keyring.signers if s.name == name and s.active), None)
    if clash is not None and clash.keyid != key.keyid:
        raise KeyMaterialError(f"signer name {name} is taken by key {clash.keyid[:16]}",
                               hint="choose another --name, or `keys untrust` that key first")
    entry = pending or ledger.append_with(
        KEY_TRUST, lambda seq, prev: trust_payload(ledger.origin, signer, "add", key.keyid,
                                                   public=key, name=name, seq=seq,
                                                   prev=prev))
    load_keyring(paths).with_signer(key, name, entry.seq).save(public_keyring_path(paths))
    checkpoint = ledger.checkpoint(signer)
    return TrustResult("add", key.keyid, name, signer.keyid, entry, checkpoint,
                       pending is not None)


def untrust_signer(paths: WorkspacePaths, which: str, *, signer: HybridSigner | None = None,
                   passphrase: str | None = None,
                   ledger: Ledger | None = None) -> TrustResult:
    """`keys untrust`: a key in charge removes a signer (by key id, a prefix of at least
    8 hex digits, or its name); docklock.pub keeps it with `until` = the entry's seq, so
    what it signed stays valid."""
    from docklock.ledger.keys import load_keyring

    keyring, signer, ledger = _prepare(paths, signer, passphrase, ledger)
    target = find_signer(keyring, which)
    if target.keyid == signer.keyid:
        raise KeyMaterialError(f"{target.name} cannot remove its own key",
                               hint="run `keys untrust` with another key in charge")
    pending = _pending(ledger, target.keyid, "remove")
    if not target.active and pending is None:
        raise KeyMaterialError(f"signer {target.name} ({target.keyid[:16]}) was already "
                               f"removed (it signed sizes up to {target.until})")
    entry = pending or ledger.append_with(
        KEY_TRUST, lambda seq, prev: trust_payload(ledger.origin, signer, "remove",
                                                   target.keyid, public=None,
                                                   name=target.name, seq=seq, prev=prev))
    load_keyring(paths).without_signer(target.keyid, entry.seq) \
        .save(public_keyring_path(paths))
    checkpoint = ledger.checkpoint(signer)
    return TrustResult("remove", target.keyid, target.name, signer.keyid, entry, checkpoint,
                       pending is not None)


def find_signer(keyring: Keyring, which: str) -> TrustedSigner:
    """The signer named `which` (name, key id, or key id prefix of 8+ hex digits)."""
    wanted = which.strip().lower()
    found = [s for s in keyring.signers if s.name == which.strip()]
    if not found and len(wanted) >= 8:
        found = [s for s in keyring.signers if s.keyid.startswith(wanted)]
    if len(found) != 1:
        listed = ", ".join(f"{s.name} {s.keyid[:16]}" for s in keyring.signers) or "none"
        raise KeyMaterialError(
            f"{'no' if not found else 'more than one'} signer in {keyring.source} matches "
            f"{which!r} (signers: {listed})",
            hint="give a signer's name or at least 8 hex digits of its key id "
                 "(`docklock keys show`)")
    return found[0]


def _prepare(paths: WorkspacePaths, signer: HybridSigner | None, passphrase: str | None,
             ledger: Ledger | None) -> tuple[Keyring, HybridSigner, Ledger]:
    from docklock.ledger.keys import load_keyring, require_signer
    from docklock.ledger.store import Ledger as LedgerClass

    signer = signer or require_signer(paths, passphrase=passphrase)
    keyring = load_keyring(paths)
    if not keyring.may_sign(signer.keyid):
        raise KeyMaterialError(
            f"the signing key {keyring.label(signer.keyid)} is neither the current key of "
            f"{public_keyring_path(paths).name} nor an active signer",
            hint="only the workspace key may add or remove signers")
    if signer.keyid != keyring.current:
        # A signer (a teammate, CI's key from a secret) signs work but never enrols or
        # removes keys: a leaked signer key cannot let another one in (check_trust makes
        # the same rule for the ledger's key-trust entries).
        raise KeyMaterialError(
            f"the signing key {keyring.label(signer.keyid)} is a signer: only the workspace "
            f"key {keyring.current[:16]} (docklock.pub's current key) may add or remove "
            "signers",
            hint="ask whoever holds the workspace key to run `docklock keys trust` / "
                 "`docklock keys untrust`")
    ledger = ledger or LedgerClass.open(paths, signer=signer)
    ledger.signer = signer
    return keyring, signer, ledger


def _pending(ledger: Ledger, keyid: str, action: str) -> Entry | None:
    """A key-trust entry for `keyid`/`action` after the newest checkpoint: a `keys trust`
    or `untrust` that stopped before updating docklock.pub; finishing it (same entry)
    beats appending a second one."""
    latest = ledger.latest_checkpoint()
    found = None
    for entry in ledger.entries(latest.size if latest is not None else 0):
        if (entry.type.value == KEY_TRUST and entry.payload.get("keyid") == keyid
                and entry.payload.get("action") == action):
            found = entry
    return found
