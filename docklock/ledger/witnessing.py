"""The ledger's side of witnessing: ask witnesses to cosign, keep their cosignatures,
and check them (and the witnesses' own views) in `ledger verify`.

- `after_checkpoint(ledger, cp)` is called at the end of `Ledger.checkpoint`, AFTER the
  checkpoint is durably written: the local ledger is always complete and valid, and a
  missed quorum is reported as an error (WitnessError, exit 1) by the command. A later
  checkpoint (even a no-op one) asks again, so a witness that was down catches up.
- Per witness: `old` is the size this ledger last had cosigned by it (from
  `cosignatures.jsonl`; 0 at first). On 409 the client retries (ATTEMPTS requests in
  all) with the witness's size and a proof from that size. If the witness is ahead of
  us, its cosigned checkpoint is fetched and compared with the local ledger as it is
  now: a concurrent command's newer checkpoint of this ledger supersedes ours (fine);
  otherwise it is a rollback (or a fork). A 422 is a fork.
- The witnesses count by public key (one key under two names is one witness), and a
  quorum above their number is a located error in docklock.yaml.
- `cosignatures.jsonl` (in `.docklock/ledger/`, or the ledger's PostgreSQL storage;
  written only here, through `Ledger.storage`): one JSON record per line per
  cosignature: witness name and key, URL, size, root, the cosignature line, timestamp.
  Records are self-authenticating (the cosignature must verify over the checkpoint).
- `verify_witnesses(paths)`: the newest checkpoint needs `quorum` valid cosignatures
  from configured witnesses; every reachable witness is asked for its latest cosigned
  checkpoint of our origin (GET <url>/<sha256(origin)>/checkpoint, the protocol's
  monitoring endpoint) and the local ledger must neither be BEHIND it (rollback,
  deletion) nor DIVERGE from it (fork). Without witnesses it says plainly that rollback
  cannot be detected.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docklock.errors import LedgerError, Location, SpecError, WitnessError
from docklock.ledger.merkle import CompactRange, consistency_proof, leaf_hash
from docklock.ledger.note import CheckpointBody, NoteError, note_verifier_key, parse_note
from docklock.ledger.settings import ledger_settings
from docklock.ledger.store import Checkpoint, Ledger
from docklock.model import LedgerSpec, WitnessRef
from docklock.workspace import WorkspacePaths

TIMEOUT = 5.0
ATTEMPTS = 3  # add-checkpoint requests per witness and checkpoint (409s retried)


def _check_quorum(paths: WorkspacePaths, settings: LedgerSpec) -> None:
    """A quorum larger than the number of distinct witnesses can never be met: say so
    where it is written, rather than fail every checkpoint with "quorum not reached"."""
    distinct = len(_unique(settings)[0])
    if settings.quorum is None or settings.quorum <= distinct:
        return
    line, column = 0, 0
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for i, text in enumerate(paths.config.read_text(encoding="utf-8").splitlines(), 1):
            if text.lstrip().startswith("quorum:"):
                line, column = i, len(text) - len(text.lstrip()) + 1
    raise SpecError(
        f"spec.ledger.quorum is {settings.quorum} but only {distinct} distinct witness"
        f"{'es are' if distinct != 1 else ' is'} listed (a witness key listed twice, even "
        "under another name, counts once)",
        location=Location(str(paths.config), line, column),
        hint="lower spec.ledger.quorum or list more witnesses")


def log_identity(paths: WorkspacePaths) -> tuple[str, str]:
    """(origin, note verifier key) a witness needs to register this workspace's ledger."""
    from docklock.ledger.keys import load_keyring

    ledger = Ledger.open(paths)
    # The origin is fixed when the ledger is created (docklock.ledger.store); fix it now
    # if nothing was written yet, so the witness registers the origin the ledger will use.
    with ledger._locked():  # the ledger's own lock: same package
        ledger.store_origin()
    key = load_keyring(paths).current_verifier().public_key
    return ledger.origin, note_verifier_key(ledger.origin, key)


def signer_identities(paths: WorkspacePaths, origin: str) -> list[tuple[str, str]]:
    """(name, note verifier key) of each active team signer of docklock.pub: a witness
    accepts their checkpoints once each is registered with `add-log --signer`."""
    from docklock.ledger.keys import load_keyring

    return [(s.name, note_verifier_key(origin, s.key))
            for s in load_keyring(paths).signers if s.active]


# -------------------------------------------------------------------- cosignature file


@dataclass(frozen=True)
class CosignatureRecord:
    witness: str
    key: str
    url: str
    size: int
    root: str  # base64
    cosignature: str  # the signature line, with its final newline
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        return {"witness": self.witness, "key": self.key, "url": self.url, "size": self.size,
                "root": self.root, "cosignature": self.cosignature,
                "timestamp": self.timestamp}

    @classmethod
    def from_dict(cls, d: Any) -> CosignatureRecord | None:
        try:
            return cls(str(d["witness"]), str(d["key"]), str(d["url"]), int(d["size"]),
                       str(d["root"]), str(d["cosignature"]), int(d["timestamp"]))
        except (KeyError, TypeError, ValueError):
            return None


def cosignatures(ledger: Ledger) -> list[CosignatureRecord]:
    """Stored records, oldest first; unparseable lines (e.g. a torn last one) are skipped:
    a record only counts once its cosignature verifies, so nothing here is trusted."""
    data = ledger.storage.read_cosignatures()
    if data is None:
        return []
    out: list[CosignatureRecord] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            rec = CosignatureRecord.from_dict(json.loads(line))
        except ValueError:
            continue
        if rec is not None:
            out.append(rec)
    return out


def _store(ledger: Ledger, rec: CosignatureRecord) -> None:
    line = json.dumps(rec.to_dict(), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    try:
        # Appended, not rewritten: another command may be storing its own record now.
        ledger.storage.append_cosignature(line)
    except OSError as exc:
        raise _store_error(ledger.storage.cosignatures_label, exc) from exc


def _store_error(path: Path | str, exc: OSError) -> LedgerError:
    return LedgerError(f"could not record a witness cosignature in {path}: "
                       f"{exc.strerror or exc}", location=Location(str(path)),
                       hint="free disk space (or fix the file system) and rerun: the next "
                            "checkpoint asks the witnesses again")


# ------------------------------------------------------------------------- cosigning


@dataclass(frozen=True)
class Outcome:
    witness: str
    url: str
    ok: bool
    message: str
    witness_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"witness": self.witness, "url": self.url, "ok": self.ok,
                "message": self.message, "witness_size": self.witness_size}


@dataclass(frozen=True)
class CosignReport:
    size: int
    required: int
    outcomes: tuple[Outcome, ...]

    @property
    def cosigned(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def ok(self) -> bool:
        return self.cosigned >= self.required

    def error(self) -> WitnessError:
        failed = "; ".join(f"{o.witness}: {o.message}" for o in self.outcomes if not o.ok)
        return WitnessError(
            f"witness quorum not reached for checkpoint size {self.size}: {self.cosigned} of "
            f"{len(self.outcomes)} witnesses cosigned, {self.required} required ({failed})",
            hint="the checkpoint itself is written and valid; fix or start the witnesses and "
                 "rerun (the next command that checkpoints asks again); `docklock ledger "
                 "verify` shows what each witness has seen")


def _identity(w: WitnessRef) -> str | bytes:
    """What makes two listed witnesses the same one: the public key. A cosignature
    (type 0x04/0x06) does not cover the key's name, so one key listed under two names
    would otherwise fill two quorum slots with one signature. An unparseable key stays
    itself (it is reported, never counted)."""
    try:
        return bytes(_verifier(w).vkey.public)
    except NoteError:
        return w.key


def _unique(settings: LedgerSpec) -> tuple[list[WitnessRef], int]:
    """The configured witnesses, one per public key (a witness listed twice, under any
    name, counts once), and the number of cosignatures required (the quorum, default
    all)."""
    unique = list({_identity(w): w for w in reversed(settings.witnesses)}.values())[::-1]
    return unique, settings.quorum if settings.quorum is not None else len(unique)


def _verifier(w: WitnessRef) -> Any:
    from docklock.witness.cosignature import CosignatureVerifier

    return CosignatureVerifier.parse(w.key)


class _Leaves:
    """Leaf hashes of the first `size` entries, read once and only if a proof is needed."""

    def __init__(self, ledger: Ledger, size: int) -> None:
        self.ledger, self.size = ledger, size
        self._leaves: list[bytes] | None = None

    def get(self) -> list[bytes]:
        if self._leaves is None:
            leaves: list[bytes] = []
            for line in self.ledger.iter_lines(strict=False):
                if len(leaves) >= self.size:
                    break
                leaves.append(leaf_hash(line))
            self._leaves = leaves
        return self._leaves

    def root_at(self, size: int) -> bytes:
        rng = CompactRange()
        rng.extend(self.get()[:size])
        return rng.root()


def _known_sizes(records: Iterable[CosignatureRecord]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for rec in records:
        sizes[rec.key] = max(sizes.get(rec.key, 0), rec.size)
    return sizes


def _has_cosignature(records: Iterable[CosignatureRecord], w: WitnessRef, text: str,
                     size: int, root: str) -> bool:
    for rec in records:
        if rec.key == w.key and rec.size == size and rec.root == root:
            try:
                if _verifier(w).find(text, rec.cosignature) is not None:
                    return True
            except LedgerError:
                continue
    return False


def cosign(ledger: Ledger, cp: Checkpoint, settings: LedgerSpec, *,
           timeout: float = TIMEOUT) -> CosignReport:
    """Ask every configured witness to cosign `cp` (already written locally)."""
    from docklock.witness.client import post_add_checkpoint

    text = parse_note(cp.note).text
    root = base64.b64encode(cp.root).decode("ascii")
    records = cosignatures(ledger)
    known = _known_sizes(records)
    leaves = _Leaves(ledger, cp.size)
    outcomes: list[Outcome] = []
    witnesses, required = _unique(settings)
    for w in witnesses:
        try:
            verifier = _verifier(w)
        except NoteError as exc:
            outcomes.append(Outcome(w.key.split("+")[0], w.url, False,
                                    f"bad witness key in docklock.yaml: {exc.message}"))
            continue
        name = verifier.name
        if _has_cosignature(records, w, text, cp.size, root):
            outcomes.append(Outcome(name, w.url, True, "already cosigned", cp.size))
            continue
        old = min(known.get(w.key, 0), cp.size)
        try:
            # 409: we guessed its size wrong (another command of this workspace may be
            # cosigning too); try again from its size, a bounded number of times.
            for _attempt in range(ATTEMPTS):
                reply = post_add_checkpoint(
                    w.url, old, consistency_proof(leaves.get(), old, cp.size) if old else [],
                    cp.note, timeout=timeout)
                witness_size = reply.known_size()
                if witness_size is None or witness_size > cp.size or witness_size == old:
                    break
                old = witness_size
        except WitnessError as exc:
            outcomes.append(Outcome(name, w.url, False, exc.message))
            continue
        size = reply.known_size()
        if size is not None and size > cp.size:  # a newer checkpoint, or a rollback
            outcomes.append(_ahead(ledger, w, verifier, cp, size, timeout=timeout))
            continue
        outcomes.append(_outcome(ledger, w, verifier, cp, text=text, root=root, old=old,
                                 reply=reply))
    return CosignReport(cp.size, required, tuple(outcomes))


def _ahead(ledger: Ledger, w: WitnessRef, verifier: Any, cp: Checkpoint, witness_size: int,
           *, timeout: float) -> Outcome:
    """The witness has cosigned more than `cp` holds. Either another command of this
    workspace checkpointed after us and its cosigning overtook ours (witnesses are asked
    after the ledger lock is released), or this ledger was rolled back. Tell them apart
    by the witness's own cosigned checkpoint and the local ledger as it is NOW: if the
    local entries reach that size and give that root, `cp` is superseded by a cosigned,
    consistent checkpoint of this very ledger, which is fine."""
    from docklock.witness.client import get_checkpoint

    name = verifier.name
    try:
        reply = get_checkpoint(w.url, cp.origin, timeout=timeout)
        if reply.status != 200:
            raise WitnessError(f"HTTP {reply.status}")
        note = parse_note(reply.body)
        body = CheckpointBody.parse(note.text)
        found = verifier.find(note.text, "".join(s.line() for s in note.signatures
                                                  if verifier.matches(s)))
        if found is None or body.origin != cp.origin or body.size < witness_size:
            raise WitnessError("its checkpoint is not cosigned by it, or not this log's")
    except LedgerError as exc:  # WitnessError, NoteError and SignatureError included
        return Outcome(name, w.url, False,
                       f"it has cosigned size {witness_size}, this checkpoint is size "
                       f"{cp.size}, and its checkpoint could not be checked against this "
                       f"ledger ({exc.message})", witness_size)
    leaves = _Leaves(ledger, body.size)
    local = len(leaves.get())
    if local < body.size:
        return Outcome(name, w.url, False,
                       f"it has cosigned size {body.size}, this ledger holds only {local}: "
                       "the ledger was rolled back or replaced", body.size)
    if leaves.root_at(body.size) != body.root:
        return Outcome(name, w.url, False,
                       f"it has cosigned size {body.size} with another root than this "
                       "ledger's: the ledger forked", body.size)
    return Outcome(name, w.url, True,
                   f"superseded: it has cosigned size {body.size} of this ledger (a newer "
                   "checkpoint, by a concurrent command), which extends this one", body.size)


def _outcome(ledger: Ledger, w: WitnessRef, verifier: Any, cp: Checkpoint, *, text: str,
             root: str, old: int, reply: Any) -> Outcome:
    name = verifier.name
    first = reply.body.strip().splitlines()[0] if reply.body.strip() else ""
    if reply.status == 200:
        try:
            found = verifier.find(text, reply.body)
        except LedgerError as exc:
            return Outcome(name, w.url, False, f"its reply does not verify: {exc.message}")
        if found is None:
            return Outcome(name, w.url, False, "its reply holds no cosignature by its key")
        sig, timestamp = found
        _store(ledger, CosignatureRecord(name, w.key, w.url, cp.size, root, sig.line(),
                                         timestamp))
        return Outcome(name, w.url, True, "cosigned", cp.size)
    if reply.status == 409:
        size = reply.known_size()
        return Outcome(name, w.url, False, f"it still disagrees on the old size (it has "
                                           f"{size}); another writer is checkpointing", size)
    if reply.status == 422:
        return Outcome(name, w.url, False,
                       f"refused: this checkpoint (size {cp.size}) is not consistent with "
                       f"the size {old} it cosigned: the ledger forked ({first})", old)
    if reply.status == 403:
        return Outcome(name, w.url, False,
                       "refused the log signature: register this ledger's current key there "
                       "(`docklock witness log-key`, then `docklock witness add-log "
                       "--rotate` on the witness)")
    if reply.status == 404:
        return Outcome(name, w.url, False,
                       f"does not witness log {cp.origin}: register it there with "
                       "`docklock witness add-log`")
    return Outcome(name, w.url, False, f"HTTP {reply.status}: {first}")


def after_checkpoint(ledger: Ledger, cp: Checkpoint) -> None:
    """The hook at the end of `Ledger.checkpoint`: cosign, raise if the quorum fails."""
    settings = ledger_settings(ledger.paths)
    if settings is None or not settings.witnesses:
        return
    report = cosign(ledger, cp, settings)
    if not report.ok:
        raise report.error()


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class WitnessView:
    witness: str
    url: str
    status: str  # ok | behind | diverged | unreachable | unknown | invalid
    message: str
    witness_size: int | None = None
    local_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"witness": self.witness, "url": self.url, "status": self.status,
                "message": self.message, "witness_size": self.witness_size,
                "local_size": self.local_size}


@dataclass(frozen=True)
class WitnessCheck:
    configured: bool
    required: int = 0
    latest_size: int | None = None
    cosigned: tuple[str, ...] = ()  # witnesses with a valid cosignature on the newest cp
    views: tuple[WitnessView, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "configured": self.configured, "required": self.required,
                "latest_size": self.latest_size, "cosigned": list(self.cosigned),
                "views": [v.to_dict() for v in self.views], "problems": list(self.problems),
                "notes": list(self.notes)}

    def error(self) -> WitnessError:
        return WitnessError("; ".join(self.problems),
                            location=Location(".docklock/ledger"),
                            hint="a witness vouches for a history this ledger does not "
                                 "have: restore the newest copy of .docklock/ledger, or "
                                 "investigate who replaced it")


NO_WITNESSES = ("no witnesses are configured (spec.ledger.witnesses in docklock.yaml): a "
                "rolled-back, replaced or deleted ledger cannot be detected")


def verify_witnesses(paths: WorkspacePaths, *, timeout: float = TIMEOUT,
                     require_reachable: bool = False) -> WitnessCheck:
    """Quorum of cosignatures on the newest checkpoint + each reachable witness's view.

    With `require_reachable` (`ledger verify --require-witnesses`, for CI), fewer than
    a quorum of witnesses answering is a failure rather than a note: an attacker who can
    replace the ledger may also be able to cut the witnesses off."""
    from docklock.witness.client import get_checkpoint

    settings = ledger_settings(paths)
    if settings is None or not settings.witnesses:
        if require_reachable:
            return WitnessCheck(False, problems=(NO_WITNESSES,))
        return WitnessCheck(False, notes=(NO_WITNESSES,))
    ledger = Ledger.open(paths)
    problems: list[str] = []
    notes: list[str] = []
    try:
        latest = ledger.latest_checkpoint()
    except LedgerError:
        latest = None  # a torn record: reported by the ledger's own verification
    local_size = sum(1 for _ in ledger.iter_lines(strict=False))
    leaves = _Leaves(ledger, local_size)
    records = cosignatures(ledger)
    witnesses, required = _unique(settings)
    cosigned: list[str] = []
    if latest is not None:
        text = parse_note(latest.note).text
        root = base64.b64encode(latest.root).decode("ascii")
        missing: list[str] = []
        for w in witnesses:
            name = w.key.split("+")[0]
            if _has_cosignature(records, w, text, latest.size, root):
                cosigned.append(name)
            else:
                missing.append(name)
        if len(cosigned) < required:
            problems.append(
                f"the newest checkpoint (size {latest.size}) has {len(cosigned)} valid "
                f"witness cosignature(s), the quorum is {required} (missing: "
                f"{', '.join(missing)})")
    views: list[WitnessView] = []
    keys = _public_keys(paths)
    for w in witnesses:
        view = _view(ledger, w, leaves, local_size=local_size, timeout=timeout,
                     get=get_checkpoint)
        views.append(view)
        if view.status in ("behind", "diverged", "invalid"):
            problems.append(view.message)
        elif view.status == "unreachable":
            notes.append(view.message)
            continue
        elif view.status == "unknown":
            notes.append(view.message)  # e.g. a witness reset: the quorum check still holds
        problems.extend(_other_ledgers(ledger, w, keys, local_size, timeout))
    answered = sum(1 for v in views if v.status not in ("unreachable", "invalid"))
    if require_reachable and answered < required:
        problems.append(f"only {answered} of {len(witnesses)} witnesses answered, the quorum "
                        f"is {required}: a rollback cannot be ruled out")
    return WitnessCheck(True, required, latest.size if latest else None,
                        tuple(cosigned), tuple(views), tuple(problems), tuple(notes))


def _view(ledger: Ledger, w: WitnessRef, leaves: _Leaves, *, local_size: int,
          timeout: float, get: Any) -> WitnessView:
    try:
        verifier = _verifier(w)
    except NoteError as exc:
        return WitnessView(w.key.split("+")[0], w.url, "invalid",
                           f"bad witness key in docklock.yaml: {exc.message}")
    name = verifier.name
    try:
        reply = get(w.url, ledger.origin, timeout=timeout)
    except WitnessError as exc:
        return WitnessView(name, w.url, "unreachable",
                           f"witness {name} not reachable, rollback not checked against it: "
                           f"{exc.message}", local_size=local_size)
    if reply.status == 404:
        return WitnessView(name, w.url, "unknown", f"witness {name} has never cosigned "
                                                   f"{ledger.origin}", 0, local_size)
    if reply.status != 200:
        return WitnessView(name, w.url, "unreachable",
                           f"witness {name} answered HTTP {reply.status}; rollback not "
                           "checked against it", local_size=local_size)
    try:
        note = parse_note(reply.body)
        body = CheckpointBody.parse(note.text)
        found = verifier.find(note.text, "".join(s.line() for s in note.signatures
                                                  if verifier.matches(s)))
    except LedgerError as exc:
        return WitnessView(name, w.url, "invalid",
                           f"witness {name} sent a checkpoint that does not verify: "
                           f"{exc.message}", local_size=local_size)
    if found is None or body.origin != ledger.origin:
        return WitnessView(name, w.url, "invalid",
                           f"witness {name} sent a checkpoint without its cosignature or for "
                           "another origin", local_size=local_size)
    if body.size > local_size:
        return WitnessView(
            name, w.url, "behind",
            f"the local ledger is BEHIND witness {name}: the witness cosigned size "
            f"{body.size}, the local ledger holds {local_size} entries (it was rolled back "
            "to an older copy, or deleted)", body.size, local_size)
    local_root = leaves.root_at(body.size)
    if local_root != body.root:
        return WitnessView(
            name, w.url, "diverged",
            f"the local ledger DIVERGES from witness {name} at size {body.size}: the "
            f"witness cosigned root {base64.b64encode(body.root).decode()}, the local "
            f"entries give {base64.b64encode(local_root).decode()} (local size "
            f"{local_size}): another copy of this ledger was checkpointed (a fork)",
            body.size, local_size)
    return WitnessView(name, w.url, "ok",
                       f"witness {name} cosigned size {body.size}, consistent with the local "
                       f"ledger (size {local_size})", body.size, local_size)


def _public_keys(paths: WorkspacePaths) -> list[bytes]:
    """The Ed25519 halves of every key in docklock.pub (none if there is no keyring)."""
    from docklock.errors import KeyMaterialError
    from docklock.ledger.keys import load_keyring

    try:
        return [k.ed25519 for k in load_keyring(paths).keys]
    except (KeyMaterialError, LedgerError, OSError):
        return []


def _other_ledgers(ledger: Ledger, w: WitnessRef, keys: list[bytes], local_size: int,
                   timeout: float) -> list[str]:
    """Ledgers signed by this workspace's keys that the witness cosigned under ANOTHER
    origin: what is left to see when the ledger folder (and its origin) was deleted."""
    from docklock.witness.client import logs_by_key

    name = w.key.split("+")[0]
    problems: list[str] = []
    seen: set[str] = set()
    for key in keys:
        try:
            logs = logs_by_key(w.url, key, timeout=timeout)
        except WitnessError:
            return problems
        for origin, size, _root in logs or ():
            if origin == ledger.origin or origin in seen or size == 0:
                continue
            seen.add(origin)
            problems.append(
                f"witness {name} cosigned {size} entries of ledger {origin}, signed by this "
                f"workspace's key, but the local ledger is {ledger.origin} with "
                f"{local_size} entries: the ledger was deleted or replaced")
    return problems
