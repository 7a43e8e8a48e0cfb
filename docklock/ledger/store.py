"""The ledger: entries, checkpoints and the tree sidecar, over a LedgerStorage.

All bytes go through `Ledger.storage` (docklock.ledger.storage): FileLedgerStorage for
`.docklock/ledger/` (the default, described below), the PostgreSQL storage when
docklock.yaml names that backend. The formats and every check are the same on both; only
the files' torn-write repair applies to files alone (`storage.can_tear`).

Layout under `.docklock/ledger/`:
- `entries.jsonl`: one entry per line, each line the canonical JSON of the entry (sorted
  keys, no spaces), so the line bytes ARE the leaf: leaf = SHA-256(0x00 || line).
  Lines are only appended, each with fdatasync before the call returns.
- `checkpoints.jsonl`: one record per line: the signed checkpoint note plus two unsigned
  hints (byte offset of the entries file at that size, and the compact range at that size,
  which is self-authenticating because it must hash to the signed root).
- `tree.json`: a cache of the compact range, size, byte offset and last leaf hash, so an
  append never re-reads the entries file. It is rebuilt if missing and checked by
  `ledger verify`; it is never trusted for security.
- `ledger.lock`: flock held while appending or checkpointing.
- `ledger.json`: the ledger's identity, fixed when its first entry is written: the origin
  `docklock.io/ledger/<cluster>/<random id>` signed into every checkpoint. Renaming the
  cluster later changes nothing; two workspaces with one cluster name never share an
  origin (at a witness). Ledgers from before this file keep the origin their checkpoints
  carry (`docklock.io/ledger/<cluster>`).

Each entry also records `prev`, the leaf hash of the entry before it, and `sig`, an
Ed25519 signature by the key in charge (docklock.ledger.trust). The Merkle tree proves
integrity; the chain lets `verify` name the exact entry that changed; the signature lets a
command refuse to checkpoint over lines it did not write.

API for writers (apply's write-ahead journal relies on it):
- `Ledger.open(paths, cluster, signer=...)`; without `signer` the workspace key is loaded
  on the first append (LedgerError if this workspace has no private key).
- The first `append()` of a Ledger object checks, before writing anything, that its key
  could sign the result (`trust.authenticate_tail`: current key, no foreign or forged
  entry since the newest checkpoint): a command that cannot sign fails before it acts.
- `append()` returns only after the line is on disk (fdatasync). If the write fails
  (ENOSPC, EFBIG, EIO, a short write) the file is truncated back to its previous length
  and LedgerError is raised: nothing half-written stays behind, and the caller must stop
  before making the change it was about to record.
- `checkpoint(signer)` signs the head after `trust.authenticate_tail` accepted every entry
  since the previous checkpoint.

A line without its final newline is a torn write. Readers report it (naming the line).
Writers repair it automatically when it is recognisably the remains of this workspace's
own crashed append (after the newest checkpoint; the bytes are a prefix of a canonical
entry with the next seq and prev): the fragment is moved to `torn-*.bin` and an entry of
type `ledger-repair` records it. Anything else stops with a hint (`ledger repair`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from docklock.errors import LedgerError, Location, ValidationError, WorkspaceError
from docklock.ledger.keys import Keyring, Signer, public_keyring_path
from docklock.ledger.merkle import CompactRange, leaf_hash
from docklock.ledger.note import CheckpointBody, origin_for, sign_note
from docklock.ledger.storage import LedgerStorage, save_cache_file
from docklock.ledger.trust import EntrySigner, authenticate_tail, sign_entry
from docklock.objects import canonical_json
from docklock.workspace import WorkspacePaths

TREE_FORMAT = "docklock.io/ledger-tree/v1"
META_FORMAT = "docklock.io/ledger/v1"
SAVE_EVERY = 64
ENTRY_KEYS = frozenset(
    {"seq", "time", "actor", "commit", "serial", "type", "payload", "payload_digest", "prev"})
SIGNED_ENTRY_KEYS = ENTRY_KEYS | {"sig"}
MAX_TORN_FRAGMENT = 1 << 24
_HEX64 = re.compile(r"[0-9a-f]{64}")


class EntryType(StrEnum):
    PLAN = "plan"
    APPLY_START = "apply-start"
    CHANGE = "change"
    APPLY_END = "apply-end"
    DRIFT = "drift"
    WITNESS = "witness"
    KEY_ROTATION = "key-rotation"
    LEDGER_REPAIR = "ledger-repair"
    STATE_MIGRATE = "state-migrate"  # state + ledger moved to another backend (issue 14)
    STATE_RM = "state-rm"  # resources removed from recorded state by hand
    KEY_TRUST = "key-trust"  # a signer added to (or dropped from) docklock.pub


# Canonical JSON sorts keys, and "type" sorts last: a key-rotation line ends with this.
KEY_ROTATION_SUFFIX = b',"type":"key-rotation"}'


def payload_digest(payload: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One ledger entry; `line()` is exactly what is stored and hashed."""

    seq: int
    time: str
    actor: str
    commit: str | None
    serial: int | None
    type: EntryType
    payload: Mapping[str, Any]
    payload_digest: str
    prev: str  # hex leaf hash of entry seq-1; "" for the first entry
    sig: str = ""  # base64 Ed25519 signature (docklock.ledger.trust); "" in old ledgers

    def to_dict(self) -> dict[str, Any]:
        d = {
            "seq": self.seq, "time": self.time, "actor": self.actor, "commit": self.commit,
            "serial": self.serial, "type": self.type.value, "payload": dict(self.payload),
            "payload_digest": self.payload_digest, "prev": self.prev,
        }
        if self.sig:
            d["sig"] = self.sig
        return d

    def line(self) -> bytes:
        return canonical_json(self.to_dict())

    def unsigned_line(self) -> bytes:
        """What the entry signature covers: the canonical JSON without `sig`."""
        d = self.to_dict()
        d.pop("sig", None)
        return canonical_json(d)

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.line())

    def digest_ok(self) -> bool:
        return payload_digest(self.payload) == self.payload_digest

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Entry:
        """Strict: every field present with the right type, nothing extra."""
        if not isinstance(d, Mapping):
            raise LedgerError("entry is not a JSON object")
        keys = set(d)
        if keys not in (ENTRY_KEYS, SIGNED_ENTRY_KEYS):
            missing = sorted(ENTRY_KEYS - keys)
            extra = sorted(keys - SIGNED_ENTRY_KEYS)
            raise LedgerError(f"entry fields wrong (missing {missing}, unexpected {extra})")
        if "sig" in d and (not isinstance(d["sig"], str) or not d["sig"]):
            raise LedgerError("entry sig is not a non-empty string")
        seq, serial = d["seq"], d["serial"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise LedgerError(f"entry seq {seq!r} is not a non-negative integer")
        if serial is not None and (not isinstance(serial, int) or isinstance(serial, bool)):
            raise LedgerError(f"entry serial {serial!r} is not an integer")
        for name in ("time", "actor", "payload_digest", "prev"):
            if not isinstance(d[name], str):
                raise LedgerError(f"entry {name} is not a string")
        if d["commit"] is not None and not isinstance(d["commit"], str):
            raise LedgerError("entry commit is not a string")
        if not isinstance(d["payload"], Mapping):
            raise LedgerError("entry payload is not an object")
        if d["prev"] and not _HEX64.fullmatch(d["prev"]):
            raise LedgerError("entry prev is not a hex SHA-256")
        try:
            etype = EntryType(d["type"])
        except ValueError:
            raise LedgerError(f"unknown entry type {d['type']!r}") from None
        return cls(seq, d["time"], d["actor"], d["commit"], serial, etype, dict(d["payload"]),
                   d["payload_digest"], d["prev"], d.get("sig", ""))

    @classmethod
    def from_line(cls, line: bytes) -> Entry:
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise LedgerError(f"entry is not valid JSON ({exc.__class__.__name__}: {exc})") \
                from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head plus the unsigned hints stored next to it."""

    origin: str
    size: int
    root: bytes
    note: str  # the full signed note (body, blank line, signature lines)
    offset: int  # byte length of entries.jsonl at `size` (hint)
    range: tuple[bytes, ...]  # compact range at `size` (hint; must hash to `root`)
    keyid: str = ""  # signer key id (hint; the note's key ID is what verifies)

    def to_dict(self) -> dict[str, Any]:
        return {"note": self.note, "offset": self.offset, "keyid": self.keyid,
                "range": [h.hex() for h in self.range]}

    def line(self) -> bytes:
        return canonical_json(self.to_dict())

    def compact_range(self) -> CompactRange:
        return CompactRange(self.size, list(self.range))

    def summary(self) -> dict[str, Any]:
        return {"origin": self.origin, "size": self.size,
                "root": base64.b64encode(self.root).decode("ascii"), "keyid": self.keyid}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        from docklock.ledger.note import parse_note

        if not isinstance(d, Mapping) or not isinstance(d.get("note"), str):
            raise LedgerError("checkpoint record has no note")
        note = parse_note(d["note"])
        body = CheckpointBody.parse(note.text)
        offset = d.get("offset", 0)
        hashes = d.get("range", [])
        if not isinstance(offset, int) or not isinstance(hashes, list):
            raise LedgerError("checkpoint record hints are malformed")
        try:
            rng = tuple(bytes.fromhex(h) for h in hashes)
        except (TypeError, ValueError) as exc:
            raise LedgerError("checkpoint compact range is not hex") from exc
        return cls(body.origin, body.size, body.root, d["note"], offset, rng,
                   str(d.get("keyid", "")))

    @classmethod
    def from_line(cls, line: bytes) -> Checkpoint:
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise LedgerError(f"checkpoint record is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


@dataclass
class TreeState:
    """Contents of tree.json: where the entries file ends and its compact range."""

    range: CompactRange = field(default_factory=CompactRange)
    offset: int = 0
    head: bytes = b""  # leaf hash of the last entry

    @property
    def size(self) -> int:
        return self.range.size

    def add(self, line: bytes) -> bytes:
        leaf = leaf_hash(line)
        self.range.append(leaf)
        self.offset += len(line) + 1
        self.head = leaf
        return leaf

    def to_dict(self) -> dict[str, Any]:
        return {"format": TREE_FORMAT, "size": self.size, "offset": self.offset,
                "hashes": [h.hex() for h in self.range.hashes], "head": self.head.hex()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TreeState:
        if d.get("format") != TREE_FORMAT:
            raise LedgerError(f"tree.json has format {d.get('format')!r}")
        rng = CompactRange.from_dict({"size": d.get("size"), "hashes": d.get("hashes")})
        offset = d.get("offset")
        if not isinstance(offset, int) or offset < 0:
            raise LedgerError("tree.json offset is not a non-negative integer")
        try:
            head = bytes.fromhex(str(d.get("head", "")))
        except ValueError as exc:
            raise LedgerError("tree.json head is not hex") from exc
        return cls(rng, offset, head)

    def data(self) -> bytes:
        """The bytes of tree.json."""
        return canonical_json(self.to_dict()) + b"\n"

    def save(self, path: Path) -> None:
        """Write to a tree.json file, best effort (a cache; see save_cache_file)."""
        save_cache_file(path, self.data())


# ------------------------------------------------------------------ environment helpers


def actor() -> str:
    """`user@host` of whoever runs the command."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def git_commit(start: Path) -> str | None:
    """The commit checked out in the git work tree holding `start`, read from .git files."""
    try:
        gitdir: Path | None = None
        for d in (start.resolve(), *start.resolve().parents):
            dotgit = d / ".git"
            if dotgit.is_dir():
                gitdir = dotgit
                break
            if dotgit.is_file():
                text = dotgit.read_text(encoding="utf-8").strip()
                if text.startswith("gitdir:"):
                    gitdir = (d / text[len("gitdir:"):].strip()).resolve()
                    break
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head) else None
        ref = head[len("ref:"):].strip()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (gitdir, common):
            candidate = base / ref
            if candidate.is_file():
                return candidate.read_text(encoding="utf-8").strip() or None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                parts = line.split(" ")
                if len(parts) == 2 and parts[1] == ref:
                    return parts[0]
    except OSError:
        return None
    return None  # unborn branch: no commit yet


def cluster_name(paths: WorkspacePaths) -> str:
    """`metadata.name` of the Cluster in docklock.yaml, checked as `validate` checks it.

    The name becomes the ledger's origin, signed into every checkpoint, so a name the
    schema rejects (not a DNS label) is refused here too rather than signed.
    """
    from docklock.load import load_cluster

    try:
        return load_cluster(paths).name
    except ValidationError as exc:
        raise WorkspaceError(
            f"{paths.config} has no valid Cluster document with metadata.name: {exc.message}",
            location=exc.location,
            hint="docklock.yaml must be a `kind: Cluster` document with a name; "
                 "`docklock validate` lists every problem") from exc


def entry_time() -> str:
    """ISO 8601 UTC with microseconds: the `time` of ledger entries.

    Finer than docklock._fs.utc_now on purpose (docs/adr/0002-ledger-format.md): one
    apply appends many entries within a second, and their times should still tell them
    apart for a reader.
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ------------------------------------------------------------------------- the ledger


def default_storage(paths: WorkspacePaths) -> LedgerStorage:
    """The storage of the backend docklock.yaml names: `.docklock/ledger/` for `local`
    (imported lazily: a workspace never loads what it does not use)."""
    from docklock.backend import ledger_storage

    return ledger_storage(paths)


def _where(exc: OSError, label: Path | str) -> Path | str:
    """The file an OSError names (FileLedgerStorage sets it), else the storage label."""
    return exc.filename if isinstance(exc.filename, str) and exc.filename else label


class Ledger:
    """Append-only, checkpointed ledger of one workspace. Open with `Ledger.open`."""

    def __init__(self, paths: WorkspacePaths, cluster: str, *,
                 clock: Callable[[], str] = entry_time, who: str | None = None,
                 commit: str | None = None, detect_commit: bool = True,
                 signer: EntrySigner | None = None,
                 storage: LedgerStorage | None = None) -> None:
        self.paths = paths
        self.cluster = cluster
        self.storage = storage if storage is not None else default_storage(paths)
        # Labels, not necessarily files (a Path for files, a string for PostgreSQL): they
        # name the place in messages and error locations (trust.py, verify.py).
        self.dir: Path | str = self.storage.label
        self.entries_path: Path | str = self.storage.entries_label
        self.checkpoints_path: Path | str = self.storage.checkpoints_label
        self.tree_path: Path | str = self.storage.tree_label
        self.meta_path: Path | str = self.storage.meta_label
        self.signer = signer  # signs each appended entry (loaded on first append if None)
        self.origin, self._origin_stored = self._resolve_origin()
        self.repaired: list[Path] = []  # torn fragments moved aside by this object
        self._clock = clock
        # Looked up once per command: a subprocess or file walk per append would cost more
        # than the whole 1 ms budget.
        self.actor = who or actor()
        self.commit = commit if commit is not None or not detect_commit else git_commit(
            paths.root)
        self._state: TreeState | None = None
        self._unsaved = 0  # appends not yet written to tree.json

    @classmethod
    def open(cls, paths: WorkspacePaths, cluster: str | None = None, *,
             clock: Callable[[], str] = entry_time,
             signer: EntrySigner | None = None,
             storage: LedgerStorage | None = None) -> Ledger:
        return cls(paths, cluster or cluster_name(paths), clock=clock, signer=signer,
                   storage=storage)

    # -- identity

    def _resolve_origin(self) -> tuple[str, bool]:
        """(origin, stored in ledger.json?). See the module docstring."""
        stored = read_meta_origin(self.storage)
        if stored is not None:
            return stored, True
        legacy = first_checkpoint_origin(self.storage)
        if legacy is not None:
            return legacy, False
        if self._entries_size() > 0:
            return origin_for(self.cluster), False  # entries of an old ledger, no checkpoint
        return new_origin(self.cluster), False

    def store_origin(self) -> None:
        """Fix the origin in ledger.json (called under the lock before the first write)."""
        if self._origin_stored:
            return
        stored = read_meta_origin(self.storage)  # another process may have been first
        if stored is not None:
            self.origin, self._origin_stored = stored, True
            return
        if self._entries_size() == 0 and first_checkpoint_origin(self.storage) is None:
            keyring = _keyring_if_any(self.paths)
            if keyring is not None and keyring.ledger:
                raise LedgerUnavailableError(
                    f"the ledger is missing: {keyring.source} records that ledger "
                    f"{keyring.ledger} was signed, but {self.dir} holds no entries",
                    location=Location(str(self.dir)),
                    hint="restore .docklock/ledger from a backup (or copy it from the "
                         "workspace that signed it); to start a new ledger on purpose, "
                         "`docklock keys init --force` makes a new key and keyring")
        body = {"format": META_FORMAT, "origin": self.origin, "created": entry_time()}
        try:
            # Does nothing when another writer stored one first: re-read below.
            self.storage.create_meta(canonical_json(body) + b"\n")
        except OSError as exc:
            raise write_error(exc, self.meta_path, "the ledger's identity") from exc
        stored = read_meta_origin(self.storage)
        if stored is None:
            raise LedgerError(f"cannot record the ledger's identity in {self.meta_path}",
                              location=Location(str(self.meta_path)))
        self.origin, self._origin_stored = stored, True

    _store_origin = store_origin  # the old private name (docklock.ledger.witnessing)

    # -- locking and the tree sidecar

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.storage.exclusive())
            except OSError as exc:  # only taking the lock: errors inside pass through
                raise write_error(exc, _where(exc, self.dir), "the lock file") from exc
            yield

    @contextlib.contextmanager
    def shared_lock(self) -> Iterator[None]:
        """Held by readers that need a consistent snapshot (verify) while appends wait."""
        with self.storage.shared():
            yield

    def _entries_size(self) -> int:
        return self.storage.entries_size()

    def load_tree(self) -> TreeState | None:
        """tree.json as stored, or None if missing or unreadable."""
        try:
            raw = self.storage.read_tree()
            if raw is None:
                return None
            data = json.loads(raw)
            return TreeState.from_dict(data) if isinstance(data, dict) else None
        except (ValueError, LedgerError):
            return None

    def state(self) -> TreeState:
        """The tree state matching the entries file, caught up (or rebuilt) if needed."""
        on_disk = self._entries_size()
        st = self._state
        if st is not None and st.offset == on_disk:
            return st
        st = self.load_tree()
        if st is None or st.offset > on_disk:
            st = TreeState()  # missing, unreadable or ahead of the file: rebuild
        if st.offset < on_disk:
            self._catch_up(st, on_disk)
        self._state = st
        return st

    def _catch_up(self, st: TreeState, end: int) -> None:
        """Hash the lines between st.offset and end; refuse a torn or out-of-order line."""
        validate = st.size > 0 or st.offset > 0  # a full rebuild only hashes
        rest = b""
        for chunk in self.storage.read_entries(st.offset, end):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if validate:
                    self._check_follows(line, st)
                st.add(line)
        if rest:
            raise self.torn_error(st.size + 1, len(rest), st)

    def _check_follows(self, line: bytes, st: TreeState) -> None:
        where = Location(str(self.entries_path), st.size + 1)
        try:
            entry = Entry.from_line(line)
        except LedgerError as exc:
            raise LedgerError(f"entry at line {st.size + 1}: {exc.message}", location=where,
                              hint="run `docklock ledger verify` for details") from exc
        if entry.seq != st.size or entry.prev != st.head.hex():
            raise LedgerError(
                f"entry at line {st.size + 1} has seq {entry.seq} but {st.size} was expected "
                "(or its prev hash does not match)", location=where,
                hint="run `docklock ledger verify` for details")

    def torn_error(self, line: int, nbytes: int, st: TreeState | None = None) -> TornLineError:
        return TornLineError(
            f"ledger line {line} is incomplete ({nbytes} bytes without a final newline): "
            "a write was torn by a crash, or the file was truncated",
            location=Location(str(self.entries_path), line),
            hint="if a DockLock command of this workspace crashed, the next command that "
                 "writes the ledger repairs it automatically; otherwise look at it, then "
                 "`docklock ledger repair` moves it aside and `docklock ledger verify` "
                 "checks the rest",
            state=st, fragment=nbytes)

    def _writable_state(self) -> TreeState:
        """state() for writers (under the lock): a torn tail left by our own crashed
        append is moved aside and recorded; anything else raises."""
        try:
            st = self.state()
        except TornLineError as torn:
            if not self.storage.can_tear:
                raise  # a transactional store never tears: this is damage, not a crash
            if torn.state is None or not self._own_torn_tail(torn.state, torn.fragment):
                raise LedgerError(
                    torn.message, location=torn.location,
                    hint="it is not the remains of this workspace's own append, so it was not "
                         "repaired automatically: look at it, then `docklock ledger repair` "
                         "moves it aside and `docklock ledger verify` checks the rest") \
                    from torn
            self._repair_locked(reason="auto")
            st = self.state()
        last = self.storage.last_checkpoint_line() if self.storage.can_tear else None
        if last is not None and not last[1]:
            if not _is_prefix_of_record(last[0]):
                raise self.torn_checkpoint_error()
            self._repair_locked(reason="auto")
        return st

    def _own_torn_tail(self, st: TreeState, nbytes: int) -> bool:
        """Is the fragment recognisably the remains of an append of this ledger?"""
        if not 0 < nbytes <= MAX_TORN_FRAGMENT:
            return False
        latest = self.latest_checkpoint_or_none()
        if latest is not None and latest.size > st.size:
            return False  # it cuts into signed history: never "repaired" silently
        fragment = self.storage.read_entries_at(st.offset, nbytes + 1)
        return len(fragment) == nbytes and is_entry_prefix(fragment, st.size, st.head.hex())

    def latest_checkpoint_or_none(self) -> Checkpoint | None:
        try:
            return self.latest_checkpoint()
        except LedgerError:
            return None

    def torn_checkpoint_error(self) -> LedgerError:
        data = self.storage.checkpoint_data()
        n = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return LedgerError(
            f"checkpoint line {n} is incomplete (torn write)",
            location=Location(str(self.checkpoints_path), n),
            hint="run `docklock ledger repair`, then `docklock ledger verify`")

    # -- writing

    @property
    def size(self) -> int:
        return self.state().size

    def append(self, type: EntryType | str, payload: Mapping[str, Any], *,
               serial: int | None = None) -> Entry:
        """Append one entry durably (fdatasync) and return it."""
        return self.append_with(type, lambda _seq, _prev: payload, serial=serial)

    def append_with(self, type: EntryType | str,
                    make_payload: Callable[[int, str], Mapping[str, Any]], *,
                    serial: int | None = None) -> Entry:
        """Append an entry whose payload depends on its position: `make_payload(seq, prev)`
        runs under the ledger lock (key rotation signs its own position)."""
        etype = EntryType(type)
        signer = self._entry_signer()
        with self._locked():
            self.store_origin()
            st = self._writable_state()
            if not self._preflighted:
                # Once per Ledger object, before anything is written (and so before the
                # change an apply is about to record): could this key sign the result? A
                # foreign or forged tail, a retired key or another keyring fail here.
                self._authenticate(st, signer.keyid)
                self._preflighted = True
            if self.repaired and not self._repair_recorded:
                self._repair_recorded = True
                self._append_locked(st, signer, EntryType.LEDGER_REPAIR,
                                    lambda _s, _p: self._repair_payload(), None)
            return self._append_locked(st, signer, etype, make_payload, serial)

    _repair_recorded = False
    _preflighted = False

    def _authenticate(self, st: TreeState, signer_keyid: str) -> tuple[Checkpoint | None,
                                                                       Keyring]:
        """The newest checkpoint and the keyring, once trust.authenticate_tail accepted
        everything since that checkpoint for `signer_keyid` (under the lock)."""
        latest = self.latest_checkpoint()
        if latest is not None and latest.size > st.size:
            raise LedgerError(
                f"the latest checkpoint covers {latest.size} entries but the ledger "
                f"holds {st.size}", location=Location(str(self.entries_path)),
                hint="the entries file was truncated; run `docklock ledger verify`")
        return latest, authenticate_tail(self, signer_keyid, latest,
                                         self._check_cache(st, latest))

    def _repair_payload(self) -> dict[str, Any]:
        return {"summary": "moved a torn last line (left by a crashed command) aside",
                "files": [p.name for p in self.repaired],
                "digests": ["sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in self.repaired],
                "bytes": [p.stat().st_size for p in self.repaired]}

    def _entry_signer(self) -> EntrySigner:
        if self.signer is None:
            from docklock.ledger.keys import missing_private_key, optional_signer

            self.signer = optional_signer(self.paths)
            if self.signer is None:
                if public_keyring_path(self.paths).exists():
                    raise missing_private_key(self.paths)
                raise LedgerError("cannot append to the ledger: this workspace has no "
                                  "signing key", hint="run `docklock keys init`")
        return self.signer

    def _append_locked(self, st: TreeState, signer: EntrySigner, etype: EntryType,
                       make_payload: Callable[[int, str], Mapping[str, Any]],
                       serial: int | None) -> Entry:
        prev = st.head.hex()
        body = canonical_json(make_payload(st.size, prev))
        normalised = json.loads(body)  # what readers will see: lists, not tuples
        if not isinstance(normalised, dict):
            raise LedgerError("a ledger payload must be a JSON object")
        entry = Entry(st.size, self._clock(), self.actor, self.commit, serial, etype,
                      normalised, "sha256:" + hashlib.sha256(body).hexdigest(), prev)
        entry = dataclasses.replace(entry, sig=sign_entry(signer, self.origin,
                                                          entry.unsigned_line()))
        line = entry.line()
        try:
            # All or nothing: a failed write is cut back by the storage (if even that
            # fails, the fragment is our own torn tail, repaired by the next writer).
            self.storage.append_entry(line, offset=st.offset, seq=st.size)
        except OSError as exc:
            raise LedgerUnavailableError(
                f"could not write to the ledger ({exc.strerror or exc}); nothing was "
                "recorded", location=Location(str(_where(exc, self.entries_path))),
                hint=("free disk space (or fix the file system)" if self.storage.can_tear
                      else "check the database (space, permissions, connection)")
                + " and run the command again; no change was made after this point") from exc
        st.add(line)
        self._after_append(st)
        return entry

    def _after_append(self, st: TreeState) -> None:
        # tree.json is a cache: rewriting it costs about as much as the fdatasync, so it
        # is saved every SAVE_EVERY appends, at each checkpoint and on close(). A reader
        # that finds it behind the file catches up from its offset (validating seq and
        # prev of every line it adopts), so a lagging cache is never wrong, only older.
        self._unsaved += 1
        if self._unsaved >= SAVE_EVERY:
            self._save_tree(st)

    def _save_tree(self, st: TreeState) -> None:
        self.storage.write_tree(st.data())  # best effort: a cache
        self._unsaved = 0

    def close(self) -> None:
        """Write tree.json if appends are pending (also done by checkpoint())."""
        if self._unsaved and self._state is not None:
            with self._locked():
                if self._state.offset == self._entries_size():
                    self._save_tree(self._state)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def checkpoint(self, signer: Signer, *, record_identity: bool = True) -> Checkpoint:
        """Sign the current tree head and append it (no-op if the latest already covers it).

        `record_identity`: a signed checkpoint also records this ledger's origin in
        docklock.pub (A4: deleting the ledger is noticed). Only commands that must sign
        (apply, destroy, run, keys) may change docklock.pub; plan and drift pass False
        (issue 11 B8), so a later signing command records it instead."""

        with contextlib.ExitStack() as held:
            held.enter_context(self._locked())
            self.store_origin()
            st = self._writable_state()
            if self.repaired and not self._repair_recorded:
                self._repair_recorded = True
                entry_signer = self.signer if self.signer is not None else signer
                if isinstance(entry_signer, EntrySigner):
                    self._append_locked(st, entry_signer, EntryType.LEDGER_REPAIR,
                                        lambda _s, _p: self._repair_payload(), None)
            latest = self.latest_checkpoint()
            root = st.range.root()
            if latest is not None:
                if latest.size > st.size:
                    raise LedgerError(
                        f"the latest checkpoint covers {latest.size} entries but the ledger "
                        f"holds {st.size}", location=Location(str(self.entries_path)),
                        hint="the entries file was truncated; run `docklock ledger verify`")
                if (latest.size == st.size and latest.root == root
                        and latest.keyid == signer.keyid):
                    if self._unsaved:
                        self._save_tree(st)
                    held.close()  # unlock first: witnesses may take seconds to answer
                    _after_checkpoint(self, latest)  # a witness that missed it asks again
                    return latest
            # Sign only what this key can vouch for (docklock.ledger.trust).
            latest, keyring = self._authenticate(st, signer.keyid)
            cp = make_checkpoint(self.origin, st.range, st.offset, signer)
            self._append_checkpoint(cp)
            self._save_tree(st)
            if record_identity and keyring.ledger != self.origin:
                # docklock.pub now records that this ledger exists (A4: deleting it is
                # noticed). Written once, with the first checkpoint.
                keyring.with_ledger(self.origin).save(public_keyring_path(self.paths))
        # Witnesses cosign only once the checkpoint is durable locally; a missed quorum
        # raises WitnessError (docklock.ledger.witnessing, docs/adr/0009-witnesses.md).
        _after_checkpoint(self, cp)
        return cp

    def _check_cache(self, st: TreeState, latest: Checkpoint | None) -> list[Entry]:
        """Re-derive the tree from the latest checkpoint before signing a new head, so a
        damaged tree.json can never make us sign a root the entries do not have; returns
        the entries since that checkpoint, parsed and checked for seq and prev links."""
        rng = latest.compact_range() if latest is not None else CompactRange()
        if latest is not None and rng.root() != latest.root:
            raise LedgerError("the latest checkpoint's compact range does not hash to its root",
                              location=Location(str(self.checkpoints_path)),
                              hint="run `docklock ledger verify`")
        start_offset = latest.offset if latest is not None else 0
        start_size = latest.size if latest is not None else 0
        data = b"".join(self.storage.read_entries(start_offset, st.offset))
        lines = data.split(b"\n")
        if lines.pop() != b"" or len(lines) != st.size - start_size:
            raise LedgerError("tree.json does not match the entries since the last checkpoint",
                              location=Location(str(self.tree_path)),
                              hint="run `docklock ledger verify`")
        entries: list[Entry] = []
        prev = None
        for i, line in enumerate(lines):
            seq = start_size + i
            where = Location(str(self.entries_path), seq + 1)
            try:
                entry = Entry.from_line(line)
            except LedgerError as exc:
                raise LedgerError(f"refusing to sign over entry seq {seq}: {exc.message}",
                                  location=where, hint="run `docklock ledger verify`") from exc
            if (entry.line() != line or entry.seq != seq or not entry.digest_ok()
                    or (prev is not None and entry.prev != prev.hex())):
                raise LedgerError(f"refusing to sign over entry seq {seq}: it is not the "
                                  "canonical, linked entry expected there", location=where,
                                  hint="run `docklock ledger verify`")
            prev = leaf_hash(line)
            rng.append(prev)
            entries.append(entry)
        if rng.hashes != st.range.hashes:
            raise LedgerError("tree.json does not match the entries since the last checkpoint",
                              location=Location(str(self.tree_path)),
                              hint="delete tree.json to rebuild it, then `docklock ledger "
                                   "verify`")
        return entries

    def _append_checkpoint(self, cp: Checkpoint) -> None:
        try:
            self.storage.append_checkpoint(cp.line())  # as append(): no torn record left
        except OSError as exc:
            raise write_error(exc, self.checkpoints_path, "the checkpoint") from exc

    def repair(self) -> list[Path]:
        """Move torn last lines (entries and checkpoints) into `torn-*.bin` files."""
        with self._locked():
            return self._repair_locked(reason="manual")

    def _repair_locked(self, *, reason: str) -> list[Path]:
        if not self.storage.can_tear:
            return []  # nothing is ever torn there
        try:
            moved = self.storage.move_torn_tails()
        except OSError as exc:
            raise write_error(exc, _where(exc, self.dir), "the torn fragment") from exc
        self._state = None
        if reason == "auto":
            self.repaired.extend(moved)
        return moved

    # -- reading

    def latest_checkpoint(self) -> Checkpoint | None:
        last = self.storage.last_checkpoint_line()
        if last is None:
            return None
        line, complete = last
        if not complete:
            raise self.torn_checkpoint_error()
        return Checkpoint.from_line(line)

    def checkpoint_lines(self) -> list[bytes]:
        """Raw checkpoint records (a torn last record is returned without a newline marker
        and reported by `checkpoints()` / verify)."""
        data = self.storage.checkpoint_data()
        if not data:
            return []
        return data.split(b"\n")

    def checkpoints(self) -> list[Checkpoint]:
        lines = self.checkpoint_lines()
        if not lines:
            return []
        if lines[-1]:
            raise LedgerError(f"checkpoint line {len(lines)} is incomplete (torn write)",
                              location=Location(str(self.checkpoints_path), len(lines)),
                              hint="run `docklock ledger repair`")
        out: list[Checkpoint] = []
        for i, line in enumerate(lines[:-1], 1):
            try:
                out.append(Checkpoint.from_line(line))
            except LedgerError as exc:
                raise LedgerError(f"checkpoint line {i}: {exc.message}",
                                  location=Location(str(self.checkpoints_path), i)) from exc
        return out

    def iter_lines(self, start_offset: int = 0, *, strict: bool = True) -> Iterator[bytes]:
        """Complete entry lines from a byte offset.

        A torn last line (no final newline) raises LedgerError when `strict`; otherwise it
        is left out (verify reports it separately, naming the line).
        """
        rest = b""
        for chunk in self.storage.read_entries(start_offset):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest and strict:
            raise LedgerError(
                f"the last entry line is incomplete ({len(rest)} bytes without a newline)",
                location=Location(str(self.entries_path)),
                hint="run `docklock ledger repair`, then `docklock ledger verify`")

    def entries(self, start: int = 0) -> Iterator[Entry]:
        offset, seq = 0, 0
        if start > 0:
            for cp in self.checkpoints():
                if seq < cp.size <= start:
                    offset, seq = cp.offset, cp.size
        for line in self.iter_lines(offset):
            if seq >= start:
                yield Entry.from_line(line)
            seq += 1

    def tail(self, n: int) -> list[Entry]:
        """The last n entries, read from the end of the file."""
        if n <= 0:
            return []
        pos, buf = self.storage.entries_size(), b""
        while pos > 0 and buf.count(b"\n") <= n:
            step = min(1 << 16, pos)
            pos -= step
            buf = self.storage.read_entries_at(pos, step) + buf
        if buf and not buf.endswith(b"\n"):
            torn = len(buf) - buf.rfind(b"\n") - 1
            raise LedgerError(
                f"the last entry line is incomplete ({torn} bytes "
                "without a final newline)", location=Location(str(self.entries_path)),
                hint="run `docklock ledger repair`, then `docklock ledger verify`")
        lines = buf.split(b"\n")[:-1]
        if pos > 0:
            lines = lines[1:]  # the first piece may be a partial line
        return [Entry.from_line(line) for line in lines[-n:]]


class LedgerUnavailableError(LedgerError):
    """The ledger cannot be written for an operational reason (full disk, the ledger
    folder absent from this copy of the workspace), as opposed to a ledger whose content
    fails authentication. Read-only commands (plan, drift) warn about this one and go on;
    a ledger that fails authentication stays an error for them too (a security event)."""


def write_error(exc: OSError, path: Path | str, what: str) -> LedgerError:
    """A failed ledger write as a located LedgerError with the hint a full disk needs."""
    return LedgerUnavailableError(
        f"could not write {what} to the ledger ({exc.strerror or exc}); nothing was recorded",
        location=Location(str(path)),
        hint="free disk space (or fix the file system) and run the command again; no "
             "change was made after this point")


class TornLineError(LedgerError):
    """The entries file ends in a line without its newline; carries the state before it."""

    def __init__(self, message: str, *, location: Location, hint: str,
                 state: TreeState | None, fragment: int) -> None:
        super().__init__(message, location=location, hint=hint)
        self.state = state
        self.fragment = fragment


def new_origin(cluster: str) -> str:
    """A fresh, unique ledger origin: the cluster name (for people) and a random id."""
    return origin_for(cluster) + "/" + secrets.token_hex(8)


def read_meta_origin(storage: LedgerStorage) -> str | None:
    """The origin recorded in ledger.json, or None if there is no such record.

    A damaged record is an error, not "no record": guessing an origin would hide tampering.
    """
    path = storage.meta_label
    try:
        raw = storage.read_meta()
        if raw is None:
            return None
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{path} is unreadable: {exc}", location=Location(str(path)),
                          hint="restore it from a backup (it names the ledger's origin)") \
            from exc
    origin = data.get("origin") if isinstance(data, dict) else None
    if not isinstance(origin, str) or data.get("format") != META_FORMAT:
        raise LedgerError(f"{path} is not a DockLock ledger identity file",
                          location=Location(str(path)), hint="restore it from a backup")
    origin_for(origin[len("docklock.io/ledger/"):] if origin.startswith("docklock.io/ledger/")
               else origin)  # the same name rules as origin_for
    return origin


def first_checkpoint_origin(storage: LedgerStorage) -> str | None:
    """The origin of the first checkpoint record (ledgers from before ledger.json)."""
    line = storage.first_checkpoint_line()
    if line is None:
        return None
    try:
        return Checkpoint.from_line(line).origin
    except LedgerError:
        return None


def _keyring_if_any(paths: WorkspacePaths) -> Keyring | None:
    path = public_keyring_path(paths)
    if not path.exists():
        return None
    return Keyring.load(path)


_ENTRY_ORDER = ("actor", "commit", "payload", "payload_digest", "prev", "seq", "serial", "sig",
                "time", "type")
_RECORD_START = b'{"keyid":"'


def _is_prefix_of_record(fragment: bytes) -> bool:
    """A torn checkpoint record: a prefix of a canonical record, valid UTF-8 so far."""
    if len(fragment) <= len(_RECORD_START):
        return _RECORD_START.startswith(fragment)
    return fragment.startswith(_RECORD_START) and _utf8_prefix(fragment)


def _utf8_prefix(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end != len(data) or exc.reason != "unexpected end of data":
            return False
        text = data[:exc.start].decode("utf-8")
    # canonical JSON escapes every control character
    return not any(ord(c) < 0x20 for c in text)


def is_entry_prefix(fragment: bytes, seq: int, prev: str) -> bool:
    """Could `fragment` be the start of the canonical line of entry `seq` after `prev`?

    Canonical JSON puts the keys in a fixed order; every complete value is checked (seq
    and prev must be the expected ones), a cut value must be a plausible start of its
    kind, and nothing but UTF-8 text without raw control characters may appear.
    """
    if not _utf8_prefix(fragment):
        return False
    text = fragment.decode("utf-8", "ignore")
    decoder = json.JSONDecoder()
    pos = 0
    for i, key in enumerate(_ENTRY_ORDER):
        token = ("{" if i == 0 else ",") + f'"{key}":'
        rest = text[pos:]
        if len(rest) <= len(token):
            return token.startswith(rest) or (key == "sig" and ',"time":'.startswith(rest))
        if not rest.startswith(token):
            if key == "sig" and rest.startswith(',"time":'):
                continue  # entries of old ledgers have no sig
            return False
        pos += len(token)
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return _plausible_cut(key, text[pos:], seq, prev)
        if end == len(text):
            return _plausible_cut(key, text[pos:], seq, prev)
        if not _value_ok(key, value, seq, prev):
            return False
        pos = end
    return text[pos:] in ("", "}")


def _value_ok(key: str, value: Any, seq: int, prev: str) -> bool:
    if key == "seq":
        return bool(value == seq) and not isinstance(value, bool)
    if key == "prev":
        return bool(value == prev)
    if key == "payload":
        return isinstance(value, dict)
    if key in ("commit",):
        return value is None or isinstance(value, str)
    if key == "serial":
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    return isinstance(value, str)


def _plausible_cut(key: str, rest: str, seq: int, prev: str) -> bool:
    """`rest` is the beginning of the value of `key`, cut by the crash."""
    if key == "seq":
        return str(seq).startswith(rest)
    if key == "prev":
        return json.dumps(prev).startswith(rest)
    if key == "payload":
        return rest.startswith("{") or rest == ""
    if key in ("commit", "serial") and "null".startswith(rest):
        return True
    if key == "serial":
        return rest.lstrip("-").isdigit() or rest in ("", "-")
    return rest == "" or rest.startswith('"')


def make_checkpoint(origin: str, rng: CompactRange, offset: int, signer: Signer) -> Checkpoint:
    """Sign the tree head of `rng` (C2SP checkpoint body, hybrid signed note)."""
    root = rng.root()
    note = sign_note(CheckpointBody(origin, rng.size, root).text(), origin, signer)
    return Checkpoint(origin, rng.size, root, note, offset, tuple(rng.hashes), signer.keyid)


def _after_checkpoint(ledger: Ledger, cp: Checkpoint) -> None:
    """Witnesses cosign `cp` (docklock.ledger.witnessing, imported only when docklock.yaml
    names witnesses)."""
    from docklock.ledger.settings import witnessed

    if witnessed(ledger.paths):
        from docklock.ledger.witnessing import after_checkpoint

        after_checkpoint(ledger, cp)
