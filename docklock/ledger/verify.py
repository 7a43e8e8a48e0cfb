"""`ledger verify` and inclusion proofs: recompute everything, name the first bad place.

Verification, in ledger order, stopping at the first problem:
1. every checkpoint record parses, has this cluster's origin, and sizes never decrease;
2. the entries are read in chunks from the ledger's storage (16 MiB for files); every
   line is hashed into a compact range (one node hash per leaf, amortised), so each
   checkpoint's root is compared against the recomputed root at exactly its size without
   rebuilding anything;
3. at each checkpoint: its signed note verifies (both hybrid halves) with the key in
   charge at that point: the GENESIS key of docklock.pub (`genesis`, or its first key),
   then only whatever signed key-rotation entries hand over to; its root equals the
   recomputed root, and its unsigned hints (byte offset, compact range) are right. The key
   in charge at the end must be docklock.pub's `current` key, so a retired key can never
   extend or rewrite history (issue 11 A1). With a team (issue 14) "in charge" is a set:
   the chain's key plus the signers that endorsed `key-trust` entries added (and did not
   remove) so far; any of them may sign a checkpoint, and the report names who did.
   Two consecutive checkpoints whose roots both equal the roots recomputed from one
   sequence of leaves are consistent by construction (a consistency proof between them
   exists); `merkle.verify_consistency` is what a remote client with only the two heads
   uses instead;
4. when a root does not match, the entries since the previous checkpoint are parsed to
   find the culprit: broken JSON, non-canonical bytes, a wrong seq (missing, duplicated
   or swapped entries), a payload that no longer matches its digest, or a broken `prev`
   link (the entry before the link was edited, or the link itself);
5. entries after the latest checkpoint (not yet signed) get the same parsed checks plus
   their per-entry signatures (docklock.ledger.trust) by the key in charge: a line written
   without the private key fails here; a torn last line is reported with its line number;
   tree.json must match the recomputation (an unreadable tree.json is a warning: it is a
   cache). Entries covered by a checkpoint are authenticated by it (the command that
   signed it checked their signatures first), which keeps this pass a hashing pass;
6. a ledger with no entries and no checkpoints fails when docklock.pub records that this
   workspace's ledger was signed (it was deleted); duplicated checkpoint records fail.

`--from-checkpoint` starts from the second-newest checkpoint's compact range (which must
hash to that checkpoint's signed root) instead of entry 0: it re-checks the newest
command's entries, the last two checkpoints and their consistency, and the unsigned tail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docklock.errors import LedgerError, Location, SignatureError
from docklock.ledger.keys import KeyLookup, Keyring, load_keyring
from docklock.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    inclusion_proof,
    leaf_hash,
    verify_inclusion,
)
from docklock.ledger.note import CheckpointBody, open_note
from docklock.ledger.rotation import check_rotation
from docklock.ledger.storage import LedgerStorage
from docklock.ledger.store import (
    KEY_ROTATION_SUFFIX,
    Checkpoint,
    Entry,
    Ledger,
    TreeState,
    cluster_name,
)
from docklock.ledger.trust import KEY_TRUST, KEY_TRUST_SUFFIX, EntryKeys, check_trust
from docklock.workspace import WorkspacePaths

PROOF_FORMAT = "docklock.io/inclusion-proof/v1"


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with a ledger, and where it is."""

    kind: str  # entry | checkpoint | tree | keys
    message: str
    file: str
    line: int = 0
    seq: int | None = None
    checkpoint: int | None = None  # 1-based record number in checkpoints.jsonl
    hint: str = ""

    def where(self) -> str:
        if self.kind == "entry" and self.seq is not None:
            return f"entry seq {self.seq} (line {self.line})"
        if self.kind == "checkpoint" and self.checkpoint is not None:
            return f"checkpoint {self.checkpoint} (line {self.line} of checkpoints.jsonl)"
        return Path(self.file).name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "file": self.file,
                "line": self.line, "seq": self.seq, "checkpoint": self.checkpoint,
                "where": self.where(), "hint": self.hint}

    def error(self) -> LedgerError:
        return LedgerError(f"{self.where()}: {self.message}",
                           location=Location(self.file, self.line), hint=self.hint)


@dataclass(frozen=True)
class VerifyReport:
    origin: str
    entries: int  # entries read
    checkpoints: int  # checkpoint records
    checked_checkpoints: int  # signatures and roots verified
    verified_from: int  # first entry recomputed (0 unless from a checkpoint)
    unsigned_tail: int  # entries after the newest checkpoint
    keys: tuple[str, ...]  # key ids that signed checkpoints, in order
    root: str  # base64 root over all entries read
    seconds: float
    problem: Problem | None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "origin": self.origin, "entries": self.entries,
            "checkpoints": self.checkpoints, "checked_checkpoints": self.checked_checkpoints,
            "verified_from": self.verified_from, "unsigned_tail": self.unsigned_tail,
            "keys": list(self.keys), "root": self.root, "seconds": round(self.seconds, 3),
            "problem": self.problem.to_dict() if self.problem else None,
            "warnings": list(self.warnings),
        }

    def raise_for_problem(self) -> None:
        if self.problem is not None:
            raise self.problem.error()


class _Found(Exception):
    """Internal control flow: carries the first problem out of the pass."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


_REVERIFY = "restore the ledger from a copy, or investigate who changed it"


class _Run:
    """One verification pass; state shared by the fast loop and the slow localiser."""

    def __init__(self, ledger: Ledger, keys: Keyring) -> None:
        self.ledger = ledger
        self.keys = keys
        self.entries_file = str(ledger.entries_path)
        # How hints name the stores: file names, or the PostgreSQL backend's tables.
        local = ledger.storage.kind == "local"
        self.entries_name = "entries.jsonl" if local else "the ledger's entry rows"
        self.cps_name = "checkpoints.jsonl" if local else "the ledger's checkpoint rows"
        self.cps_verb = "is" if local else "are"
        self.tree_name = "tree.json" if local else "the ledger's tree cache row"
        self.cps_file = str(ledger.checkpoints_path)
        # The trust chain starts at the genesis key, never at "any key in docklock.pub".
        self.active: str | None = keys.genesis_keyid
        self.signers: list[str] = []
        self.warnings: list[str] = []
        self.boundary_active: str | None = self.active  # key in charge after `boundary`
        self.handover: tuple[int, str | None, str] | None = None  # newest key rotation
        # Keys for a team: signers in charge beside the chain's key (`active`), as key-trust
        # entries add and remove them; `boundary_team` is the set after `boundary`.
        self.team: set[str] = set()
        self.boundary_team: frozenset[str] = frozenset()
        self.trusted: dict[str, tuple[int, int | None]] = {}  # signer -> (since, until) seen
        self.checked = 0
        self.records: list[Checkpoint] = []
        self.tree_head: bytes | None = None  # tree.json's record of the last leaf
        self.tree_size = -1
        self.boundary: tuple[int, int, bytes | None] = (0, 0, b"")

    # -- problems

    def entry_problem(self, seq: int, line: int, message: str, hint: str = _REVERIFY) -> _Found:
        return _Found(Problem("entry", message, self.entries_file, line, seq, hint=hint))

    def cp_problem(self, index: int, message: str, hint: str = _REVERIFY, *,
                   seq: int | None = None) -> _Found:
        return _Found(Problem("checkpoint", message, self.cps_file, index, seq=seq,
                              checkpoint=index, hint=hint))

    # -- step 1: checkpoint records

    def load_checkpoints(self) -> None:
        lines = self.ledger.checkpoint_lines()
        if lines and lines[-1]:
            n = len(lines)
            raise self.cp_problem(n, f"record is incomplete ({len(lines[-1])} bytes without "
                                     "a final newline): a torn write or a truncated file",
                                  hint="run `docklock ledger repair`")
        prev_size = 0
        for i, line in enumerate(lines[:-1], 1):
            try:
                cp = Checkpoint.from_line(line)
            except LedgerError as exc:
                raise self.cp_problem(i, exc.message) from exc
            if cp.origin != self.ledger.origin:
                raise self.cp_problem(i, f"origin is {cp.origin!r}, expected "
                                         f"{self.ledger.origin!r}")
            if cp.size < prev_size:
                raise self.cp_problem(i, f"size {cp.size} is smaller than the previous "
                                         f"checkpoint's {prev_size}: the log was rolled back")
            if self.records and (cp.size, cp.root, cp.keyid) == (
                    self.records[-1].size, self.records[-1].root, self.records[-1].keyid):
                raise self.cp_problem(i, f"duplicates checkpoint {i - 1} (same size {cp.size}, "
                                         "root and key): records were copied or replayed",
                                      hint="remove the duplicate line, or restore "
                                           "checkpoints.jsonl from a backup")
            prev_size = cp.size
            self.records.append(cp)

    # -- step 3: one checkpoint

    def check_signature(self, index: int, cp: Checkpoint) -> None:
        # Any key in charge at this size may sign: the chain's key or an active signer.
        in_charge = None if self.active is None else (self.active, *sorted(self.team))
        try:
            _, verifier = open_note(cp.note, self.ledger.origin, self.keys,
                                    only_keyid=in_charge)
        except SignatureError as exc:
            if self.active is not None and self.keys.lookup(self.active) is not None:
                others = [k for k in self.keys.trusted_keyids() if k not in (in_charge or ())]
                try:
                    _, other = open_note(cp.note, self.ledger.origin, self.keys)
                except (SignatureError, LedgerError):
                    other = None
                if other is not None and other.keyid in others:
                    team = (" or a trusted signer (" + ", ".join(
                        self.keys.label(k) for k in sorted(self.team)) + ")"
                        if self.team else "")
                    raise self.cp_problem(
                        index, f"signed by key {self.keys.label(other.keyid)}, but the active "
                               f"key at size {cp.size} is {self.active[:16]}{team} (keys may "
                               "only change through a key-rotation or key-trust entry)") \
                        from exc
            raise self.cp_problem(index, f"signature: {exc.message}", hint=exc.hint
                                  or _REVERIFY) from exc
        except LedgerError as exc:
            raise self.cp_problem(index, exc.message) from exc
        if self.keys.signer(verifier.keyid) is None:
            self.active = verifier.keyid
        if in_charge is None:
            # From a checkpoint (`--from-checkpoint`): the history that set the chain key
            # and the signers is not read; docklock.pub's intervals stand in for it.
            if self.active is None:
                self.active = self._chain_at(cp.size)
            self.team = set(self.keys.signers_at(cp.size))
        if not self.signers or self.signers[-1] != verifier.keyid:
            self.signers.append(verifier.keyid)

    def _chain_at(self, size: int) -> str:
        """The chain's key docklock.pub records for `size` (its current key before any
        rotation)."""
        for k in self.keys.keys:
            span = self.keys.spans.get(k.keyid)
            if span is not None and span[0] <= size and (span[1] is None or size <= span[1]):
                return k.keyid
        return self.keys.current

    # -- key trust (fast path sees the line suffix, as for rotations)

    def trust(self, line: bytes, seq: int, prev_leaf: bytes | None) -> None:
        try:
            entry = Entry.from_line(line)
            if entry.seq != seq or (prev_leaf is not None and entry.prev != prev_leaf.hex()):
                raise LedgerError("key-trust entry is out of place (seq or prev hash wrong)")
            change = check_trust(entry, self.ledger.origin, self.keys, self.active, self.team)
        except LedgerError as exc:
            self._stop_in_range(seq, exc.message)
            return
        if change.action == "add":
            self.team.add(change.keyid)
            self.trusted[change.keyid] = (seq + 1, None)
        else:
            self.team.discard(change.keyid)
            since = self.trusted.get(change.keyid, (0, None))[0]
            self.trusted[change.keyid] = (since, seq)

    def check_hints(self, index: int, cp: Checkpoint, offset: int, hashes: list[bytes]) -> None:
        if cp.offset != offset or list(cp.range) != hashes:
            raise self.cp_problem(index, "its unsigned hints (byte offset / compact range) do "
                                         "not match the entries", hint="the record was edited")

    # -- key rotation (fast path sees the line suffix)

    def rotation(self, line: bytes, seq: int, prev_leaf: bytes | None) -> None:
        try:
            entry = Entry.from_line(line)
            if entry.seq != seq or (prev_leaf is not None and entry.prev != prev_leaf.hex()):
                raise LedgerError("key-rotation entry is out of place (seq or prev hash wrong)")
            before = self.active
            self.active = check_rotation(entry, self.ledger.origin, self.keys, self.active)
            self.handover = (seq, before, self.active)
        except LedgerError as exc:
            self._stop_in_range(seq, exc.message)

    # -- step 4/5: parse entries to find the culprit

    def localise(self, start_seq: int, start_offset: int, prev: bytes | None, *,
                 end_seq: int | None = None) -> None:
        """Parse entries from `start_offset` to EOF; raise for the first wrong one.

        With `end_seq` (a checkpoint whose root did not match) the culprit must lie before
        it; if nothing is found the caller blames the checkpoint itself.
        """
        seq, prev_leaf = start_seq, prev
        pending: int | None = None  # seq of an entry whose prev link is broken
        # Unsigned tail: every entry must be signed by the key in charge at its position.
        tail_keys = EntryKeys(self.keys) if end_seq is None else None
        in_charge = self.boundary_active
        team = set(self.boundary_team)
        # A torn last line is left out here: run() reports it, naming the line.
        for line in self.ledger.iter_lines(start_offset, strict=False):
            leaf = leaf_hash(line)
            try:
                entry = Entry.from_line(line)
            except LedgerError as exc:
                self._blame_link(pending, next_link_ok=False)
                raise self.entry_problem(seq, seq + 1, exc.message) from exc
            link_ok = prev_leaf is None or entry.prev == prev_leaf.hex()
            self._blame_link(pending, next_link_ok=link_ok)
            if entry.line() != line:
                raise self.entry_problem(seq, seq + 1, "the line is not the entry's canonical "
                                                       "JSON: it was edited")
            if entry.seq != seq:
                raise self.entry_problem(
                    seq, seq + 1, f"found seq {entry.seq} where seq {seq} belongs: an entry "
                                  "is missing, duplicated or out of order")
            if not entry.digest_ok():
                raise self.entry_problem(seq, seq + 1, "payload does not match its "
                                                       "payload_digest: the payload was edited")
            if not link_ok:
                pending = seq
            if tail_keys is not None and in_charge is not None and link_ok:
                _, problem = tail_keys.check_any(entry, self.ledger.origin,
                                                 (in_charge, *sorted(team)))
                if problem is not None:
                    raise self.entry_problem(
                        seq, seq + 1, f"not covered by a checkpoint, and {problem}",
                        hint=f"remove it by restoring {self.entries_name} from a backup; no "
                             "DockLock command will sign over it")
                if entry.type.value == "key-rotation":
                    # The same hand-over check as everywhere else (endorsement by the key
                    # in charge, acceptance by the new one); the hot loop's `rotation`
                    # already moved self.active past it.
                    try:
                        in_charge = check_rotation(entry, self.ledger.origin, self.keys,
                                                   in_charge)
                    except LedgerError as exc:
                        raise self.entry_problem(seq, seq + 1, exc.message) from exc
                elif entry.type.value == KEY_TRUST:
                    try:
                        change = check_trust(entry, self.ledger.origin, self.keys, in_charge,
                                             team)
                    except LedgerError as exc:
                        raise self.entry_problem(seq, seq + 1, exc.message) from exc
                    if change.action == "add":
                        team.add(change.keyid)
                    else:
                        team.discard(change.keyid)
            prev_leaf = leaf
            seq += 1
        if seq == start_seq:
            return
        # The last entry has no successor to vouch for it; tree.json's head (written when
        # it was appended) is the only other record of its hash.
        last_intact = (self.tree_head is None or self.tree_size != seq
                       or self.tree_head == prev_leaf)
        self._blame_link(pending, next_link_ok=last_intact)
        if not last_intact and (end_seq is None or seq - 1 < end_seq):
            raise self.entry_problem(seq - 1, seq, "the entry was edited: its hash differs "
                                                   "from the one tree.json recorded when it "
                                                   "was appended")

    def _blame_link(self, pending: int | None, *, next_link_ok: bool) -> None:
        """Link (seq-1 -> seq) is broken. If seq's successor still links to seq, seq is
        intact and seq-1 was edited; otherwise seq itself (its prev field) was edited."""
        if pending is None:
            return
        seq = pending
        if next_link_ok:
            raise self.entry_problem(seq - 1, seq,
                                     f"the entry was edited: its hash no longer matches the "
                                     f"prev hash recorded by entry seq {seq}")
        raise self.entry_problem(seq, seq + 1, "its prev hash does not match the entry before "
                                               "it: the entry was edited")

    # -- the whole pass

    def run(self, from_checkpoint: bool) -> dict[str, Any]:
        self.check_identity()
        self.load_checkpoints()
        tree = self.ledger.load_tree()
        if tree is None and self.ledger.storage.tree_exists():
            self.warnings.append("tree.json is unreadable or malformed; it is only a cache "
                                 "(the next command rebuilds it), but nothing DockLock wrote "
                                 "looks like that: check who changed it")
        if tree is not None and tree.size:
            self.tree_head, self.tree_size = tree.head, tree.size
        records = self.records
        start = 0  # index into records of the first checkpoint still to check
        rng = CompactRange()
        offset = 0
        prev_leaf: bytes | None = b""
        if from_checkpoint and records:
            start = max(0, len(records) - 2)
            base = records[start]
            # Any trusted key may sign the base (the chain before it is not read); the key
            # in charge at the end must still be the current one.
            self.active = None
            self.check_signature(start + 1, base)
            rng = base.compact_range()
            if rng.root() != base.root:
                raise self.cp_problem(start + 1, "its compact range hint does not hash to its "
                                                 "signed root; run a full `ledger verify`")
            offset = base.offset
            prev_leaf = None if base.size else b""  # the first link is not checkable
            self.checked += 1
            start += 1
        verified_from = rng.size
        self.boundary = (rng.size, offset, prev_leaf)
        self.boundary_active, self.boundary_team = self.active, frozenset(self.team)

        # Checkpoints at the starting size (e.g. of an empty tree) need no entries.
        while start < len(records) and records[start].size == rng.size:
            self._at_checkpoint(start, rng, offset)
            self.boundary_active, self.boundary_team = self.active, frozenset(self.team)
            start += 1

        sha = hashlib.sha256
        stack = rng.hashes
        size = rng.size
        # tree.json may lag the file (it is a cache), but the state it records must be the
        # real state at its size: compared when the loop passes that size, reported last.
        tree_size = tree.size if tree is not None and tree.size >= size else -1
        tree_ok = tree is None or tree.size < size  # too old to compare (from a checkpoint)
        if tree is not None and tree_size == size:
            tree_ok = self._tree_matches(tree, offset, stack, prev_leaf)
        next_index = start
        next_size = records[next_index].size if next_index < len(records) else -1
        rest = b""
        first_line_checked = verified_from == 0
        # The hot loop: one leaf hash and amortised one node hash per line, nothing
        # parsed. Inlined on purpose; a method call per line would double its cost.
        for chunk in self.ledger.storage.read_entries(offset):
            # Rotation and key-trust entries are rare: test each line only in chunks
            # holding one.
            rotations = KEY_ROTATION_SUFFIX in chunk or KEY_ROTATION_SUFFIX in (
                rest[-len(KEY_ROTATION_SUFFIX):] + chunk[:len(KEY_ROTATION_SUFFIX)])
            trusts = KEY_TRUST_SUFFIX in chunk or KEY_TRUST_SUFFIX in (
                rest[-len(KEY_TRUST_SUFFIX):] + chunk[:len(KEY_TRUST_SUFFIX)])
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            if not first_line_checked and lines:
                self._check_first(lines[0], size)
                first_line_checked = True
            for line in lines:
                if not line:
                    self._stop_in_range(size, "empty line")
                leaf = sha(b"\x00" + line).digest()
                h = leaf
                s = size
                while s & 1:
                    h = sha(b"\x01" + stack.pop() + h).digest()
                    s >>= 1
                stack.append(h)
                size += 1
                offset += len(line) + 1
                if rotations and line.endswith(KEY_ROTATION_SUFFIX):
                    self.rotation(line, size - 1, prev_leaf)
                elif trusts and line.endswith(KEY_TRUST_SUFFIX):
                    self.trust(line, size - 1, prev_leaf)
                prev_leaf = leaf
                if size == tree_size:
                    tree_ok = self._tree_matches(tree, offset, stack, prev_leaf)
                while size == next_size:
                    rng.size = size
                    self._at_checkpoint(next_index, rng, offset)
                    self.boundary = (size, offset, prev_leaf)
                    self.boundary_active, self.boundary_team = (self.active,
                                                                frozenset(self.team))
                    next_index += 1
                    next_size = (records[next_index].size if next_index < len(records)
                                 else -1)
        rng.size = size
        # Entries after the newest checked checkpoint are not signed yet: parse them all.
        b_size, b_offset, b_prev = self.boundary
        self.localise(b_size, b_offset, b_prev)
        if rest:
            raise self.entry_problem(
                size, size + 1, f"the line is incomplete ({len(rest)} bytes without a final "
                                "newline): a torn write, or the file was truncated",
                hint="run `docklock ledger repair` if a command crashed; otherwise restore "
                     "the ledger")
        if next_index < len(records):
            cp = records[next_index]
            raise self.cp_problem(
                next_index + 1, f"covers {cp.size} entries but the ledger holds only {size}: "
                                f"entries seq {size}..{cp.size - 1} are missing (the entries "
                                "file was truncated)", seq=size)
        if tree is not None and tree.size > size and tree.offset > offset:
            raise self.entry_problem(
                size, size + 1, f"entries seq {size}..{tree.size - 1} are missing: tree.json "
                                f"recorded {tree.size} entries (the entries file was "
                                "truncated)")
        if not tree_ok and tree is not None:
            # Same size and offset: only the recorded hashes differ, so say that instead
            # of printing two equal figures as if they disagreed.
            detail = (f"its hashes differ from the ones recomputed over the {size} entries"
                      if (tree.size, tree.offset) == (size, offset) else
                      f"it records {tree.size} entries ending at byte {tree.offset}; the "
                      f"file holds {size} ending at byte {offset}")
            raise _Found(Problem(
                "tree", f"{self.tree_name} does not match the entries ({detail})",
                str(self.ledger.tree_path),
                hint=f"delete {self.tree_name}; the next command rebuilds it"))
        if size and not records:
            # Every DockLock command that appends also signs a checkpoint, so entries
            # with no checkpoint at all mean checkpoints.jsonl was removed or emptied —
            # which would otherwise let a consistently rewritten history pass.
            raise _Found(Problem(
                "checkpoint", f"{size} entries but no signed checkpoint: "
                              f"{self.cps_name} {self.cps_verb} missing or empty",
                str(self.ledger.checkpoints_path),
                hint="if the first DockLock command crashed before signing, the next plan "
                     f"or apply signs one; otherwise restore {self.cps_name} from a "
                     "backup: without it nothing proves who wrote these entries"))
        if verified_from == 0:
            self.check_signers()
        if (self.handover is not None and self.handover[2] == self.active
                and self.handover[1] == self.keys.current):
            # The newest rotation hands over from the current key to one docklock.pub
            # lists but does not mark current: `keys rotate` stopped before its swap.
            raise _Found(Problem(
                "keys", f"`keys rotate` did not finish: entry seq {self.handover[0]} hands "
                        f"signing over from the current key {self.keys.current[:16]} to "
                        f"{self.active[:16]}, but {Path(self.keys.source).name} does not "
                        "mark the new key current yet",
                str(self.ledger.entries_path), seq=self.handover[0],
                hint="run `docklock keys rotate` again where .docklock/keys/pending.key is "
                     "to finish it; if docklock.pub was restored from before the rotation, "
                     "restore the newer one instead"))
        if self.active is not None and self.active != self.keys.current and (
                records or size):
            raise _Found(Problem(
                "keys", f"the key in charge at the end of the ledger is {self.active[:16]}, "
                        f"but the current key of {Path(self.keys.source).name} is "
                        f"{self.keys.current[:16]}: the ledger was signed by a retired key, "
                        "or rolled back to before a `keys rotate`",
                str(self.ledger.checkpoints_path),
                hint="restore the ledger from a backup (a retired key cannot extend it); if "
                     "`keys rotate` was interrupted, .docklock/keys/pending.key holds the new "
                     "private key"))
        return {"entries": size, "verified_from": verified_from, "root": rng.root(),
                "tail": size - (records[-1].size if records else 0)}

    def check_signers(self) -> None:
        """docklock.pub's signers must be exactly what the ledger's key-trust entries say:
        signing trusts docklock.pub's intervals (trust.authenticate_tail), so a keyring
        rolled back to before a `keys untrust`, or a signer written in by hand, is named
        here (a full pass only: it needs every key-trust entry)."""
        from docklock.ledger.trust import signer_disagreement

        found = signer_disagreement(self.keys, self.trusted, signing=False)
        if found is not None:
            message, hint = found
            raise _Found(Problem("keys", message, self.keys.source, hint=hint))

    def check_identity(self) -> None:
        """A4/B9: docklock.pub names the ledger it has signed; it must be this one, and
        it must still be there."""
        marker = self.keys.ledger
        if not marker:
            return
        source = Path(self.keys.source).name
        storage = self.ledger.storage
        empty = storage.entries_size() == 0 and not storage.checkpoint_data().strip(b"\n")
        if empty:
            raise _Found(Problem(
                "keys", f"the ledger is missing: {source} records that ledger {marker} was "
                        f"signed, but {self.ledger.dir} holds no entries and no checkpoints",
                str(self.ledger.dir),
                hint="restore .docklock/ledger from a backup; it was deleted"))
        if marker != self.ledger.origin:
            raise _Found(Problem(
                "keys", f"this ledger is {self.ledger.origin}, but {source} records ledger "
                        f"{marker}: the ledger was replaced", str(self.ledger.dir),
                hint="restore .docklock/ledger (and ledger.json) from a backup"))

    @staticmethod
    def _tree_matches(tree: TreeState | None, offset: int, stack: list[bytes],
                      prev_leaf: bytes | None) -> bool:
        if tree is None:
            return True
        if tree.offset != offset or tree.range.hashes != stack:
            return False
        return prev_leaf is None or tree.size == 0 or tree.head == prev_leaf

    def _stop_in_range(self, seq: int, message: str) -> None:
        """A problem seen by the fast loop at `seq`: an earlier culprit wins if there is one."""
        b_size, b_offset, b_prev = self.boundary
        try:
            self.localise(b_size, b_offset, b_prev, end_seq=seq)
        except _Found as found:
            if found.problem.seq is not None and found.problem.seq < seq:
                raise
        raise self.entry_problem(seq, seq + 1, message)

    def _check_first(self, line: bytes, seq: int) -> None:
        try:
            entry = Entry.from_line(line)
        except LedgerError as exc:
            raise self.entry_problem(seq, seq + 1, exc.message) from exc
        if entry.seq != seq:
            raise self.entry_problem(seq, seq + 1, f"found seq {entry.seq} where seq {seq} "
                                                   "belongs (checkpoint offset hint wrong?)")

    def _at_checkpoint(self, index: int, rng: CompactRange, offset: int) -> None:
        cp = self.records[index]
        n = index + 1
        self.check_signature(n, cp)
        if rng.root() != cp.root:
            b_size, b_offset, b_prev = self.boundary
            self.localise(b_size, b_offset, b_prev, end_seq=cp.size)
            raise self.cp_problem(
                n, f"its signed root does not match entries 0..{cp.size - 1}, yet every entry "
                   "parses and links: the entries were rewritten consistently, or the "
                   "checkpoint was made for other entries")
        self.check_hints(n, cp, offset, rng.hashes)
        self.checked += 1


def verify_ledger(paths: WorkspacePaths, *, keyring: Keyring | None = None,
                  cluster: str | None = None, from_checkpoint: bool = False,
                  storage: LedgerStorage | None = None) -> VerifyReport:
    """Verify the workspace's ledger; never raises for a damaged ledger (see `problem`).

    `storage`: verify the ledger held there instead of the one docklock.yaml's backend
    names (`state migrate` verifies its source before copying it)."""
    started = time.perf_counter()
    ledger = Ledger(paths, cluster or cluster_name(paths), who="verify", detect_commit=False,
                    storage=storage)
    keys = keyring or load_keyring(paths)
    run = _Run(ledger, keys)
    problem: Problem | None = None
    result: dict[str, Any] = {"entries": 0, "verified_from": 0, "root": EMPTY_ROOT, "tail": 0}
    with ledger.shared_lock():  # a consistent snapshot: appends wait until we are done
        try:
            result = run.run(from_checkpoint)
        except _Found as found:
            problem = found.problem
    return VerifyReport(
        origin=ledger.origin, entries=int(result["entries"]), checkpoints=len(run.records),
        checked_checkpoints=run.checked, verified_from=int(result["verified_from"]),
        unsigned_tail=int(result["tail"]), keys=tuple(run.signers),
        root=base64.b64encode(result["root"]).decode("ascii"),
        seconds=time.perf_counter() - started, problem=problem, warnings=tuple(run.warnings))


# ------------------------------------------------------------------ inclusion proofs


@dataclass(frozen=True)
class InclusionProof:
    """Everything needed to check offline that one entry is in a signed checkpoint."""

    origin: str
    seq: int
    entry: str  # the entry's exact line (canonical JSON)
    tree_size: int
    path: tuple[bytes, ...]
    checkpoint: str  # the signed note
    keyid: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": PROOF_FORMAT, "origin": self.origin, "seq": self.seq,
                "entry": self.entry, "tree_size": self.tree_size,
                "path": [base64.b64encode(h).decode("ascii") for h in self.path],
                "checkpoint": self.checkpoint, "keyid": self.keyid}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InclusionProof:
        if not isinstance(d, Mapping) or d.get("format") != PROOF_FORMAT:
            raise ProofError(f"not a DockLock inclusion proof (format {PROOF_FORMAT} expected)")
        try:
            return cls(str(d["origin"]), int(d["seq"]), str(d["entry"]), int(d["tree_size"]),
                       tuple(base64.b64decode(h, validate=True) for h in d["path"]),
                       str(d["checkpoint"]), str(d.get("keyid", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProofError(f"inclusion proof is malformed: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> InclusionProof:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ProofError(f"cannot read proof {path}: {exc}",
                             location=Location(str(path))) from exc
        return cls.from_dict(data)


def prove_inclusion(ledger: Ledger, seq: int) -> InclusionProof:
    """Inclusion proof of entry `seq` against the newest checkpoint."""
    cp = ledger.latest_checkpoint()
    if cp is None or not 0 <= seq < cp.size:
        covered = cp.size if cp else 0
        raise LedgerError(f"entry seq {seq} is not covered by a checkpoint (the newest covers "
                          f"{covered} entries)",
                          hint="checkpoints are written at the end of every command")
    leaves: list[bytes] = []
    line_of_seq = b""
    sha = hashlib.sha256
    for i, line in enumerate(ledger.iter_lines()):
        if i >= cp.size:
            break
        if i == seq:
            line_of_seq = line
        leaves.append(sha(b"\x00" + line).digest())
    if len(leaves) < cp.size:
        raise LedgerError(f"the ledger holds {len(leaves)} entries, fewer than the "
                          f"checkpoint's {cp.size}", hint="run `docklock ledger verify`")
    path = inclusion_proof(leaves, seq, cp.size)
    # Refuse to hand out a proof that does not verify against the signed root.
    verify_inclusion(leaves[seq], seq, cp.size, path, cp.root)
    return InclusionProof(ledger.origin, seq, line_of_seq.decode("utf-8"), cp.size,
                          tuple(path), cp.note, cp.keyid)


def keys_for_size(keyring: Keyring, size: int) -> tuple[str, ...]:
    """Key ids allowed to sign a checkpoint of `size` (issue 11 A1, for offline proofs).

    `keys rotate` records each key's interval in docklock.pub; before any rotation only
    the current (= genesis) key signs. A keyring from before intervals were recorded that
    lists several keys trusts only its current key offline (`ledger verify` still walks
    the chain)."""
    if not keyring.spans:
        return (keyring.current, *sorted(keyring.signers_at(size)))
    allowed = []
    for keyid in keyring.trusted_keyids():
        span = keyring.span(keyid)
        if span is not None and span[0] <= size and (span[1] is None or size <= span[1]):
            allowed.append(keyid)
    return tuple(allowed)


def verify_inclusion_proof(proof: InclusionProof, keys: KeyLookup) -> Entry:
    """Check a proof offline: the checkpoint's hybrid signature by a key that was in
    charge at its size, then the Merkle path."""
    if isinstance(keys, Keyring):
        allowed = keys_for_size(keys, proof.tree_size)
        if not allowed:
            raise ProofError(f"no key of {keys.source} was in charge at size "
                             f"{proof.tree_size}")
        note = None
        failure: SignatureError | None = None
        for keyid in allowed:
            try:
                note, _ = open_note(proof.checkpoint, proof.origin, keys, only_keyid=keyid)
                break
            except SignatureError as exc:
                failure = exc
        if note is None:
            assert failure is not None
            raise ProofError(
                f"the checkpoint is not signed by the key in charge at size "
                f"{proof.tree_size} ({', '.join(k[:16] for k in allowed)}): "
                f"{failure.message}",
                hint="a retired key may only sign checkpoints of its own interval") \
                from failure
    else:
        note, _ = open_note(proof.checkpoint, proof.origin, keys)
    body = CheckpointBody.parse(note.text)
    if body.origin != proof.origin or body.size != proof.tree_size:
        raise ProofError(f"proof claims {proof.origin} size {proof.tree_size}, but the "
                         f"checkpoint is {body.origin} size {body.size}")
    line = proof.entry.encode("utf-8")
    entry = Entry.from_line(line)
    if entry.line() != line:
        raise ProofError("the entry in the proof is not in canonical form")
    if entry.seq != proof.seq:
        raise ProofError(f"the entry in the proof has seq {entry.seq}, not {proof.seq}")
    if not entry.digest_ok():
        raise ProofError("the entry's payload does not match its payload_digest")
    verify_inclusion(leaf_hash(line), proof.seq, proof.tree_size, proof.path, body.root)
    return entry
