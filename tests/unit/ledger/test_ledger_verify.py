"""`ledger verify` against tampering: every kind of edit, at every position, is named.

The ledger used here has three commands (5, 4 and 3 entries, a checkpoint after each)
and two entries after the newest checkpoint, so damage is tested inside checkpointed
ranges, at range edges, and in the unsigned tail.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_helpers import Built, force_checkpoint, raw_append

from docklock.errors import LedgerError
from docklock.ledger import (
    HybridSigner,
    InclusionProof,
    Keyring,
    Ledger,
    ProofError,
    load_keyring,
    load_signer,
    prove_inclusion,
    rotate_keys,
    verify_inclusion_proof,
    verify_ledger,
)
from docklock.ledger.note import CheckpointBody, parse_note, sign_note
from docklock.ledger.rotation import rotation_payload
from docklock.ledger.verify import VerifyReport
from docklock.objects import canonical_json
from docklock.workspace import WorkspacePaths

ENTRIES = 14
CHECKPOINTS = (5, 9, 12)


@pytest.fixture
def built(build: Callable[..., Built]) -> Built:
    b = build(groups=(5, 4, 3), tail=2)
    assert b.checkpoint_sizes == list(CHECKPOINTS)
    return b


def spans(data: bytes) -> list[tuple[int, int]]:
    """(start, index of the newline) of every line."""
    out, start = [], 0
    while (end := data.find(b"\n", start)) >= 0:
        out.append((start, end))
        start = end + 1
    return out


def verify(ws: WorkspacePaths, **kw: object) -> VerifyReport:
    return verify_ledger(ws, **kw)  # type: ignore[arg-type]


def test_clean_ledger_verifies(built: Built, workspace: WorkspacePaths,
                               signer: HybridSigner) -> None:
    report = verify(workspace)
    assert report.ok, report.problem
    assert report.entries == ENTRIES
    assert (report.checkpoints, report.checked_checkpoints) == (3, 3)
    assert report.unsigned_tail == 2
    assert report.keys == (signer.keyid,)
    state = built.ledger.state()
    assert base64.b64decode(report.root) == state.range.root()
    assert report.to_dict()["problem"] is None
    report.raise_for_problem()


def test_flip_one_byte_anywhere_in_any_entry_names_that_entry(built: Built,
                                                              workspace: WorkspacePaths) -> None:
    path = built.ledger.entries_path
    data = path.read_bytes()
    missed = []
    tried = 0
    for seq, (start, end) in enumerate(spans(data)):
        positions = sorted({*range(start, end, 7), start, end - 1, end})  # end: the newline
        for pos in positions:
            tampered = bytearray(data)
            tampered[pos] ^= 0x01
            path.write_bytes(bytes(tampered))
            problem = verify(workspace).problem
            tried += 1
            if problem is None or problem.seq != seq or problem.kind != "entry":
                missed.append((seq, pos - start, chr(data[pos]), problem))
    path.write_bytes(data)
    assert tried > 300
    assert missed == []
    assert verify(workspace).ok


def test_problem_names_seq_line_and_file(built: Built, workspace: WorkspacePaths) -> None:
    path = built.ledger.entries_path
    data = path.read_bytes()
    start, _ = spans(data)[7]
    pos = data.index(b'"time":"', start) + 10
    path.write_bytes(data[:pos] + b"9" + data[pos + 1:])
    report = verify(workspace)
    assert report.problem is not None
    assert (report.problem.seq, report.problem.line) == (7, 8)
    assert report.problem.file == str(path)
    err = report.problem.error()
    assert isinstance(err, LedgerError)
    assert "entry seq 7 (line 8)" in err.explain()
    with pytest.raises(LedgerError):
        report.raise_for_problem()


def test_delete_any_entry(built: Built, workspace: WorkspacePaths) -> None:
    path = built.ledger.entries_path
    data = path.read_bytes()
    missed = []
    for seq, (start, end) in enumerate(spans(data)):
        path.write_bytes(data[:start] + data[end + 1:])
        problem = verify(workspace).problem
        if problem is None or problem.seq != seq:
            missed.append((seq, problem))
    path.write_bytes(data)
    assert missed == []


def test_swap_any_two_entries(built: Built, workspace: WorkspacePaths) -> None:
    path = built.ledger.entries_path
    data = path.read_bytes()
    lines = data.split(b"\n")[:-1]
    missed = []
    for j in range(ENTRIES):
        for k in range(j + 1, ENTRIES):
            swapped = list(lines)
            swapped[j], swapped[k] = swapped[k], swapped[j]
            path.write_bytes(b"\n".join(swapped) + b"\n")
            problem = verify(workspace).problem
            if problem is None or problem.seq != j:
                missed.append((j, k, problem))
    path.write_bytes(data)
    assert missed == []


def test_truncate_the_file_anywhere(built: Built, workspace: WorkspacePaths) -> None:
    path = built.ledger.entries_path
    data = path.read_bytes()
    boundaries = {end + 1 for _, end in spans(data)}
    cuts = sorted({*range(0, len(data), 23), *boundaries} - {len(data)})
    missed = []
    for cut in cuts:
        path.write_bytes(data[:cut])
        problem = verify(workspace).problem
        complete = data[:cut].count(b"\n")
        if problem is None or problem.seq != complete:
            missed.append((cut, complete, problem))
    path.write_bytes(data)
    assert len(cuts) > 100
    assert missed == []


def _records(ledger: Ledger) -> list[dict[str, object]]:
    return [json.loads(line) for line in ledger.checkpoints_path.read_bytes().splitlines()]


def _write_records(ledger: Ledger, records: list[dict[str, object]]) -> None:
    ledger.checkpoints_path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def _replace_signature(note: str, blob: bytes) -> str:
    # Replaces the composite (first) line; the standard Ed25519 line stays as it was.
    text, sigs = note.split("\n\n")
    first, *rest = sigs.strip().split("\n")
    dash, name, _ = first.split(" ")
    return "".join([f"{text}\n\n{dash} {name} {base64.b64encode(blob).decode()}\n",
                    *(line + "\n" for line in rest)])


def _sig_blob(note: str) -> bytes:
    return base64.b64decode(note.split("\n\n")[1].strip().split("\n")[0].split(" ")[2])


@pytest.mark.parametrize("variant", ["other-checkpoint", "mldsa-bit", "ed25519-bit", "zeros",
                                     "removed"])
def test_replace_a_checkpoint_signature(built: Built, workspace: WorkspacePaths,
                                        signer: HybridSigner, variant: str) -> None:
    ledger = built.ledger
    original = _records(ledger)
    n = signer.alg.mldsa_signature_size
    for k in range(len(original)):
        records = json.loads(json.dumps(original))
        note = str(records[k]["note"])
        blob = bytearray(_sig_blob(note))
        if variant == "other-checkpoint":
            blob = bytearray(_sig_blob(str(original[(k + 1) % 3]["note"])))
        elif variant == "mldsa-bit":
            blob[4 + 100] ^= 0x04
        elif variant == "ed25519-bit":
            blob[4 + n + 7] ^= 0x04
        elif variant == "zeros":
            blob[4:] = bytes(len(blob) - 4)
        if variant == "removed":
            records[k]["note"] = note.split("\n\n", maxsplit=1)[0] + "\n\n"
        else:
            records[k]["note"] = _replace_signature(note, bytes(blob))
        _write_records(ledger, records)
        problem = verify(workspace).problem
        assert problem is not None, (variant, k)
        assert (problem.kind, problem.checkpoint) == ("checkpoint", k + 1), problem
        if variant == "mldsa-bit":
            assert "ML-DSA-87 half" in problem.message
        if variant == "ed25519-bit":
            assert "the Ed25519 half" in problem.message
    _write_records(ledger, original)
    assert verify(workspace).ok


def test_checkpoint_resigned_with_another_key(built: Built, workspace: WorkspacePaths) -> None:
    ledger = built.ledger
    original = _records(ledger)
    attacker = HybridSigner.generate()
    for k in range(len(original)):
        records = json.loads(json.dumps(original))
        text = parse_note(str(records[k]["note"])).text
        records[k]["note"] = sign_note(text, ledger.origin, attacker)
        _write_records(ledger, records)
        problem = verify(workspace).problem
        assert problem is not None
        assert (problem.kind, problem.checkpoint) == ("checkpoint", k + 1)
        assert "no signature by a trusted key" in problem.message
    _write_records(ledger, original)


def test_rewritten_history_resigned_by_an_attacker_is_refused(
        built: Built, workspace: WorkspacePaths) -> None:
    """Edit an entry, rebuild the whole ledger consistently, sign with a foreign key."""
    ledger = built.ledger
    entries = list(ledger.entries())
    attacker = HybridSigner.generate()
    forged_ws = WorkspacePaths(workspace.root / "forged")
    forged_ws.ledger.mkdir(parents=True)
    (forged_ws.ledger / "ledger.json").write_bytes((ledger.dir / "ledger.json").read_bytes())
    forged = Ledger(forged_ws, "t", signer=attacker)
    assert forged.origin == ledger.origin
    for e in entries:
        payload = dict(e.payload)
        if e.seq == 3:
            payload["address"] = "Service/default/evil"
        raw_append(forged, payload, signer=attacker, etype=e.type, serial=e.serial)
        if e.seq + 1 in CHECKPOINTS:
            force_checkpoint(forged, attacker)
    forged.close()
    forged._save_tree(forged.state())
    for name in ("entries.jsonl", "checkpoints.jsonl", "tree.json"):
        (ledger.dir / name).write_bytes((forged.dir / name).read_bytes())
    problem = verify(workspace).problem
    assert problem is not None
    assert (problem.kind, problem.checkpoint) == ("checkpoint", 1)


def test_flip_any_byte_of_a_checkpoint_note_names_it(built: Built,
                                                     workspace: WorkspacePaths) -> None:
    ledger = built.ledger
    original = _records(ledger)
    missed = []
    for k in range(len(original)):
        note = str(original[k]["note"])
        body_len = note.index("\n\n") + 1
        for pos in range(0, body_len):
            chars = list(note)
            chars[pos] = chr(ord(chars[pos]) ^ 0x01)
            records = json.loads(json.dumps(original))
            records[k]["note"] = "".join(chars)
            _write_records(ledger, records)
            problem = verify(workspace).problem
            if problem is None or problem.checkpoint != k + 1:
                missed.append((k, pos, problem))
    _write_records(ledger, original)
    assert missed == []


def test_checkpoints_out_of_order(built: Built, workspace: WorkspacePaths) -> None:
    records = _records(built.ledger)
    records[1], records[2] = records[2], records[1]
    _write_records(built.ledger, records)
    problem = verify(workspace).problem
    assert problem is not None
    assert problem.checkpoint == 3
    assert "rolled back" in problem.message


def test_checkpoint_hints_are_checked(built: Built, workspace: WorkspacePaths) -> None:
    records = _records(built.ledger)
    records[1]["offset"] = int(records[1]["offset"]) + 1  # type: ignore[call-overload]
    _write_records(built.ledger, records)
    problem = verify(workspace).problem
    assert problem is not None
    assert problem.checkpoint == 2
    assert "hints" in problem.message


def test_edited_tree_sidecar_is_reported(built: Built, workspace: WorkspacePaths) -> None:
    state = json.loads(built.ledger.tree_path.read_text())
    state["hashes"][-1] = "00" * 32
    built.ledger.tree_path.write_text(json.dumps(state))
    problem = verify(workspace).problem
    assert problem is not None
    assert problem.kind == "tree"
    # Only a hash differs: the message says so rather than quoting two equal sizes.
    assert "hashes differ" in problem.message


def test_from_checkpoint_checks_the_newest_command(built: Built,
                                                   workspace: WorkspacePaths) -> None:
    report = verify(workspace, from_checkpoint=True)
    assert report.ok, report.problem
    assert report.verified_from == CHECKPOINTS[-2]
    assert report.checked_checkpoints == 2
    path = built.ledger.entries_path
    data = path.read_bytes()
    line_spans = spans(data)
    for seq in (CHECKPOINTS[-2], CHECKPOINTS[-1] - 1, ENTRIES - 1):
        start, _ = line_spans[seq]
        pos = data.index(b'"time":"', start) + 12
        tampered = bytearray(data)
        tampered[pos] ^= 0x01
        path.write_bytes(bytes(tampered))
        problem = verify(workspace, from_checkpoint=True).problem
        assert problem is not None
        assert problem.seq == seq
    # Entries before the base checkpoint are out of its scope (a full verify sees them).
    start, _ = line_spans[0]
    tampered = bytearray(data)
    tampered[data.index(b'"time":"', start) + 12] ^= 0x01
    path.write_bytes(bytes(tampered))
    assert verify(workspace, from_checkpoint=True).ok
    assert verify(workspace).problem is not None
    path.write_bytes(data)


def test_rotation_hands_signing_over(built: Built, workspace: WorkspacePaths,
                                     signer: HybridSigner) -> None:
    result = rotate_keys(workspace, ledger=built.ledger)
    assert result.old_keyid == signer.keyid
    built.ledger.append("plan", {"after": "rotation"})
    new_signer_cp = built.ledger.checkpoint(load_signer(workspace))
    report = verify(workspace)
    assert report.ok, report.problem
    assert report.keys == (signer.keyid, result.new_keyid)
    assert load_keyring(workspace).current == result.new_keyid
    assert new_signer_cp.keyid == result.new_keyid

    # The retired key may not sign after the hand-over, although docklock.pub lists it:
    # DockLock refuses to (A1), and a checkpoint made by other code is caught by verify.
    old_ledger = Ledger(workspace, "t", signer=signer)
    with pytest.raises(LedgerError, match="not the current key"):
        old_ledger.append("plan", {"by": "old key"})
    raw_append(old_ledger, {"by": "old key"}, signer=signer)
    with pytest.raises(LedgerError, match="not the current key"):
        old_ledger.checkpoint(signer)
    force_checkpoint(old_ledger, signer)
    problem = verify(workspace).problem
    assert problem is not None
    assert problem.kind == "checkpoint"
    assert problem.checkpoint == len(built.ledger.checkpoints())
    assert "active key" in problem.message


def test_rotation_with_a_bad_endorsement_is_named(built: Built, workspace: WorkspacePaths,
                                                  signer: HybridSigner) -> None:
    ledger = built.ledger
    new = HybridSigner.generate()
    keyring = load_keyring(workspace).with_key(new.public_key, make_current=True)
    keyring.save(workspace.root / "docklock.pub")

    def forged(seq: int, prev: str) -> dict[str, object]:
        p = rotation_payload(ledger.origin, signer, new, seq, prev)
        p["endorsement"] = p["acceptance"]  # not signed by the old key
        return p

    entry = ledger.append_with("key-rotation", forged)
    with pytest.raises(LedgerError, match="endorsement"):
        ledger.checkpoint(new)  # DockLock never signs over a forged hand-over
    force_checkpoint(ledger, new)
    problem = verify(workspace).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("entry", entry.seq)
    assert "endorsement" in problem.message


def test_rotation_to_a_key_missing_from_the_keyring(built: Built, workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    ledger = built.ledger
    new = HybridSigner.generate()
    entry = ledger.append_with(
        "key-rotation", lambda seq, prev: rotation_payload(ledger.origin, signer, new, seq,
                                                           prev))
    with pytest.raises(LedgerError, match="not listed"):
        ledger.checkpoint(new)
    force_checkpoint(ledger, new)
    problem = verify(workspace).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == ("entry", entry.seq)
    assert "not in" in problem.message


def test_verify_with_an_explicit_keyring(built: Built, workspace: WorkspacePaths) -> None:
    other = HybridSigner.generate()
    problem = verify(workspace, keyring=Keyring((other.public_key,), other.keyid)).problem
    assert problem is not None
    assert problem.checkpoint == 1


def test_empty_ledger_verifies(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    report = verify(workspace)
    assert report.ok
    assert report.entries == 0


# ------------------------------------------------------------------ inclusion proofs


def test_every_entry_has_a_verifying_proof(built: Built, workspace: WorkspacePaths,
                                           tmp_path: Path) -> None:
    keys = load_keyring(workspace)
    for seq in range(CHECKPOINTS[-1]):
        proof = prove_inclusion(built.ledger, seq)
        assert proof.tree_size == CHECKPOINTS[-1]
        path = tmp_path / "p.json"
        path.write_text(json.dumps(proof.to_dict()))
        loaded = InclusionProof.load(path)
        assert loaded == proof
        assert verify_inclusion_proof(loaded, keys).seq == seq
    with pytest.raises(LedgerError, match="not covered by a checkpoint"):
        prove_inclusion(built.ledger, CHECKPOINTS[-1])


def test_tampered_proofs_are_refused(built: Built, workspace: WorkspacePaths) -> None:
    keys = load_keyring(workspace)
    proof = prove_inclusion(built.ledger, 6)
    d = proof.to_dict()

    entry = json.loads(d["entry"])
    entry["time"] = "2030-01-01T00:00:00.000000Z"
    edited_entry = d | {"entry": canonical_json(entry).decode()}
    flipped = [bytearray(base64.b64decode(h)) for h in d["path"]]
    flipped[1][0] ^= 1
    edited_path = d | {"path": [base64.b64encode(bytes(h)).decode() for h in flipped]}
    other_seq = d | {"seq": 5}
    attacker = HybridSigner.generate()
    text = parse_note(d["checkpoint"]).text
    resigned = d | {"checkpoint": sign_note(text, built.ledger.origin, attacker)}
    bigger = CheckpointBody.parse(text)
    wrong_size = d | {"tree_size": bigger.size + 1}
    for bad in (edited_entry, edited_path, other_seq, resigned, wrong_size):
        with pytest.raises(LedgerError):
            verify_inclusion_proof(InclusionProof.from_dict(bad), keys)
    with pytest.raises(ProofError):
        InclusionProof.from_dict({"format": "nope"})


def test_entries_without_any_checkpoint_fail_verify(tmp_path: Path) -> None:
    from docklock.ledger import Ledger, ensure_keys, verify_ledger
    from docklock.workspace import WorkspacePaths

    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n")
    paths = WorkspacePaths(tmp_path)
    signer = ensure_keys(paths)
    with Ledger.open(paths) as ledger:
        for i in range(3):
            ledger.append("plan", {"i": i})
        ledger.checkpoint(signer)
    assert verify_ledger(paths).ok
    (paths.ledger / "checkpoints.jsonl").unlink()
    report = verify_ledger(paths)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.kind == "checkpoint"
    assert "no signed checkpoint" in report.problem.message
