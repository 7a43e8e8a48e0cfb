"""The ledger's files: entries, checkpoints and the tree sidecar. Only this module writes them.

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

Each entry also records `prev`, the leaf hash of the entry before it. The Merkle tree
proves integrity; the chain lets `verify` name the exact entry that changed.

A line without its final newline is a torn write: every reader reports it (naming the
line) and appends refuse to continue until `repair` moves the fragment aside.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from docklock._fs import fsync_dir
from docklock.errors import LedgerError, Location, ValidationError, WorkspaceError
from docklock.ledger.keys import Signer
from docklock.ledger.merkle import CompactRange, leaf_hash
from docklock.ledger.note import CheckpointBody, origin_for, sign_note
from docklock.objects import canonical_json
from docklock.workspace import WorkspacePaths

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_FILE = "checkpoints.jsonl"
TREE_FILE = "tree.json"
LOCK_FILE = "ledger.lock"
TREE_FORMAT = "docklock.io/ledger-tree/v1"
SAVE_EVERY = 64
ENTRY_KEYS = frozenset(
    {"seq", "time", "actor", "commit", "serial", "type", "payload", "payload_digest", "prev"})
_HEX64 = re.compile(r"[0-9a-f]{64}")


class EntryType(StrEnum):
    PLAN = "plan"
    APPLY_START = "apply-start"
    CHANGE = "change"
    APPLY_END = "apply-end"
    DRIFT = "drift"
    WITNESS = "witness"
    KEY_ROTATION = "key-rotation"


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "time": self.time, "actor": self.actor, "commit": self.commit,
            "serial": self.serial, "type": self.type.value, "payload": dict(self.payload),
            "payload_digest": self.payload_digest, "prev": self.prev,
        }

    def line(self) -> bytes:
        return canonical_json(self.to_dict())

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
        if keys != ENTRY_KEYS:
            missing = sorted(ENTRY_KEYS - keys)
            extra = sorted(keys - ENTRY_KEYS)
            raise LedgerError(f"entry fields wrong (missing {missing}, unexpected {extra})")
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
                   d["payload_digest"], d["prev"])

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

    def save(self, path: Path) -> None:
        # A cache: atomic against a crash of this process (rename), but not fsynced; after
        # a power loss it may lag the entries file and is caught up or rebuilt.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(canonical_json(self.to_dict()) + b"\n")
        os.replace(tmp, path)


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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_last_line(path: Path) -> tuple[bytes, bool] | None:
    """(last line, complete?) of a file without reading all of it; None if empty."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return None
            block = 1 << 16
            pos = end
            buf = b""
            while pos > 0:
                step = min(block, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
                body = buf[:-1] if buf.endswith(b"\n") else buf
                cut = body.rfind(b"\n")
                if cut >= 0:
                    return body[cut + 1:], buf.endswith(b"\n")
            body = buf[:-1] if buf.endswith(b"\n") else buf
            return body, buf.endswith(b"\n")
    except FileNotFoundError:
        return None


class Ledger:
    """Append-only, checkpointed ledger of one workspace. Open with `Ledger.open`."""

    def __init__(self, paths: WorkspacePaths, cluster: str, *,
                 clock: Callable[[], str] = entry_time, who: str | None = None,
                 commit: str | None = None, detect_commit: bool = True) -> None:
        self.paths = paths
        self.cluster = cluster
        self.origin = origin_for(cluster)
        self.dir = paths.ledger
        self.entries_path = self.dir / ENTRIES_FILE
        self.checkpoints_path = self.dir / CHECKPOINTS_FILE
        self.tree_path = self.dir / TREE_FILE
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
             clock: Callable[[], str] = entry_time) -> Ledger:
        return cls(paths, cluster or cluster_name(paths), clock=clock)

    # -- locking and the tree sidecar

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextlib.contextmanager
    def shared_lock(self) -> Iterator[None]:
        """Held by readers that need a consistent snapshot (verify) while appends wait."""
        if not self.dir.is_dir():
            yield
            return
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def _entries_size(self) -> int:
        try:
            return self.entries_path.stat().st_size
        except FileNotFoundError:
            return 0

    def load_tree(self) -> TreeState | None:
        """tree.json as stored, or None if missing or unreadable."""
        try:
            data = json.loads(self.tree_path.read_bytes())
            return TreeState.from_dict(data) if isinstance(data, dict) else None
        except (FileNotFoundError, ValueError, LedgerError):
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
        with self.entries_path.open("rb") as f:
            f.seek(st.offset)
            rest = b""
            remaining = end - st.offset
            while remaining > 0:
                chunk = f.read(min(remaining, 1 << 24))
                if not chunk:
                    break
                remaining -= len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    if validate:
                        self._check_follows(line, st)
                    st.add(line)
            if rest:
                raise self.torn_error(st.size + 1, len(rest))

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

    def torn_error(self, line: int, nbytes: int) -> LedgerError:
        return LedgerError(
            f"ledger line {line} is incomplete ({nbytes} bytes without a final newline): "
            "a write was torn by a crash, or the file was truncated",
            location=Location(str(self.entries_path), line),
            hint="run `docklock ledger repair` to move the fragment aside, then "
                 "`docklock ledger verify`")

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
        with self._locked():
            st = self.state()
            prev = st.head.hex()
            body = canonical_json(make_payload(st.size, prev))
            normalised = json.loads(body)  # what readers will see: lists, not tuples
            if not isinstance(normalised, dict):
                raise LedgerError("a ledger payload must be a JSON object")
            created = st.offset == 0
            entry = Entry(st.size, self._clock(), self.actor, self.commit, serial, etype,
                          normalised, "sha256:" + hashlib.sha256(body).hexdigest(), prev)
            line = entry.line()
            fd = os.open(self.entries_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _write_all(fd, line + b"\n")
                os.fdatasync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.dir)
            st.add(line)
            # tree.json is a cache: rewriting it costs about as much as the fdatasync, so it
            # is saved every SAVE_EVERY appends, at each checkpoint and on close(). A reader
            # that finds it behind the file catches up from its offset (validating seq and
            # prev of every line it adopts), so a lagging cache is never wrong, only older.
            self._unsaved += 1
            if self._unsaved >= SAVE_EVERY:
                self._save_tree(st)
        return entry

    def _save_tree(self, st: TreeState) -> None:
        st.save(self.tree_path)
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

    def checkpoint(self, signer: Signer) -> Checkpoint:
        """Sign the current tree head and append it (no-op if the latest already covers it)."""
        with self._locked():
            st = self.state()
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
                    return latest
                self._check_cache(st, latest)
            cp = make_checkpoint(self.origin, st.range, st.offset, signer)
            self._append_checkpoint(cp)
            self._save_tree(st)
        return cp

    def _check_cache(self, st: TreeState, latest: Checkpoint) -> None:
        """Re-derive the tree from the latest checkpoint before signing a new head, so a
        damaged tree.json can never make us sign a root the entries do not have."""
        rng = latest.compact_range()
        if rng.root() != latest.root:
            raise LedgerError("the latest checkpoint's compact range does not hash to its root",
                              location=Location(str(self.checkpoints_path)),
                              hint="run `docklock ledger verify`")
        with self.entries_path.open("rb") as f:
            f.seek(latest.offset)
            data = f.read(st.offset - latest.offset)
        lines = data.split(b"\n")
        if lines.pop() != b"" or len(lines) != st.size - latest.size:
            raise LedgerError("tree.json does not match the entries since the last checkpoint",
                              location=Location(str(self.tree_path)),
                              hint="run `docklock ledger verify`")
        for line in lines:
            rng.append(leaf_hash(line))
        if rng.hashes != st.range.hashes:
            raise LedgerError("tree.json does not match the entries since the last checkpoint",
                              location=Location(str(self.tree_path)),
                              hint="delete tree.json to rebuild it, then `docklock ledger "
                                   "verify`")

    def _append_checkpoint(self, cp: Checkpoint) -> None:
        fd = os.open(self.checkpoints_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, cp.line() + b"\n")
            os.fdatasync(fd)
        finally:
            os.close(fd)

    def repair(self) -> list[Path]:
        """Move torn last lines (entries and checkpoints) into `torn-*.bin` files."""
        moved: list[Path] = []
        with self._locked():
            for path in (self.entries_path, self.checkpoints_path):
                last = read_last_line(path)
                if last is None or last[1]:
                    continue
                fragment = last[0]
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                keep = self.dir / f"torn-{path.stem}-{stamp}.bin"
                keep.write_bytes(fragment)
                fd = os.open(keep, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with path.open("r+b") as f:
                    f.truncate(path.stat().st_size - len(fragment))
                    f.flush()
                    os.fsync(f.fileno())
                moved.append(keep)
            self._state = None
        return moved

    # -- reading

    def latest_checkpoint(self) -> Checkpoint | None:
        last = read_last_line(self.checkpoints_path)
        if last is None:
            return None
        line, complete = last
        if not complete:
            n = sum(1 for _ in self.checkpoints_path.open("rb"))
            raise LedgerError(
                f"checkpoint line {n} is incomplete (torn write)",
                location=Location(str(self.checkpoints_path), n),
                hint="run `docklock ledger repair`, then `docklock ledger verify`")
        return Checkpoint.from_line(line)

    def checkpoint_lines(self) -> list[bytes]:
        """Raw checkpoint records (a torn last record is returned without a newline marker
        and reported by `checkpoints()` / verify)."""
        try:
            data = self.checkpoints_path.read_bytes()
        except FileNotFoundError:
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
        try:
            f = self.entries_path.open("rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(start_offset)
            rest = b""
            while chunk := f.read(1 << 24):
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
        try:
            f = self.entries_path.open("rb")
        except FileNotFoundError:
            return []
        with f:
            end = f.seek(0, os.SEEK_END)
            pos, buf = end, b""
            while pos > 0 and buf.count(b"\n") <= n:
                step = min(1 << 16, pos)
                pos -= step
                f.seek(pos)
                buf = f.read(step) + buf
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


def make_checkpoint(origin: str, rng: CompactRange, offset: int, signer: Signer) -> Checkpoint:
    """Sign the tree head of `rng` (C2SP checkpoint body, hybrid signed note)."""
    root = rng.root()
    note = sign_note(CheckpointBody(origin, rng.size, root).text(), origin, signer)
    return Checkpoint(origin, rng.size, root, note, offset, tuple(rng.hashes), signer.keyid)
