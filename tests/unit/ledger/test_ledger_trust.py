"""Attacks on the ledger's trust model (issue 11 A1, A2, A4, A6, B9, D19, D20).

Each test plays the attacker (or the crash) with its own code — writing files directly
and signing with keys it holds — and checks that DockLock refuses to sign over the
result and that `ledger verify` fails naming the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ledger_helpers import force_checkpoint, raw_append

from docklock.errors import LedgerError
from docklock.ledger import (
    HybridSigner,
    InclusionProof,
    Keyring,
    Ledger,
    ProofError,
    init_keys,
    load_keyring,
    prove_inclusion,
    record_event,
    rotate_keys,
    verify_inclusion_proof,
    verify_ledger,
)
from docklock.ledger.keys import public_keyring_path, retired_key_path, signing_key_path
from docklock.workspace import WorkspacePaths


def _commands(paths: WorkspacePaths, signer: HybridSigner, n: int = 2,
              per: int = 3) -> Ledger:
    ledger = Ledger(paths, "t", signer=signer)
    for c in range(n):
        for i in range(per):
            ledger.append("change", {"address": f"Service/default/w{c}-{i}"}, serial=c)
        ledger.checkpoint(signer)
    ledger.close()
    return ledger


# ------------------------------------------------------------------ A1 retired key


def test_retired_key_cannot_rewrite_history_after_a_restore(workspace: WorkspacePaths,
                                                            signer: HybridSigner) -> None:
    """Restore the ledger from before `keys rotate`, append, sign with the retired key."""
    _commands(workspace, signer)
    backup = workspace.root / "ledger-backup"
    shutil.copytree(workspace.ledger, backup)
    rotation = rotate_keys(workspace)
    assert verify_ledger(workspace).ok
    retired = HybridSigner.from_pem(retired_key_path(workspace, signer.keyid).read_bytes(),
                                    None)
    assert retired.keyid == signer.keyid != load_keyring(workspace).current

    shutil.rmtree(workspace.ledger)
    shutil.copytree(backup, workspace.ledger)
    forged = Ledger(workspace, "t", signer=retired)
    # DockLock's own code refuses to write or sign with a retired key ...
    with pytest.raises(LedgerError, match="not the current key"):
        forged.append("change", {"address": "Service/default/evil"})
    raw_append(forged, {"address": "Service/default/evil"}, signer=retired)
    with pytest.raises(LedgerError, match="not the current key"):
        forged.checkpoint(retired)
    # ... and a checkpoint made by other code with it fails verification, with the reason.
    cp = force_checkpoint(forged, retired)
    forged._save_tree(forged.state())
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert report.problem.kind == "keys"
    assert "retired key" in report.problem.message
    assert rotation.new_keyid[:16] in report.problem.message
    # verify-proof applies the same rule: the retired key's interval ended at the rotation
    keyring = load_keyring(workspace)
    assert keyring.span(signer.keyid) == (0, rotation.entry.seq)
    proof = prove_inclusion(forged, cp.size - 1)
    with pytest.raises(ProofError, match="key in charge"):
        verify_inclusion_proof(proof, keyring)


def test_proofs_from_before_a_rotation_still_verify(workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    ledger = _commands(workspace, signer)
    proof = InclusionProof.from_dict(prove_inclusion(ledger, 1).to_dict())
    rotate_keys(workspace)
    entry = verify_inclusion_proof(proof, load_keyring(workspace))  # inside its interval
    assert entry.seq == 1
    new_proof = prove_inclusion(Ledger(workspace, "t"), 1)
    assert verify_inclusion_proof(new_proof, load_keyring(workspace)).seq == 1


def test_first_checkpoint_must_be_signed_by_the_genesis_key(workspace: WorkspacePaths,
                                                            signer: HybridSigner) -> None:
    """Another key in docklock.pub (not handed over to by a rotation) may not start it."""
    other = HybridSigner.generate()
    ring = load_keyring(workspace).with_key(other.public_key, make_current=True)
    ring.save(public_keyring_path(workspace))
    assert ring.genesis_keyid == signer.keyid
    ledger = Ledger(workspace, "t", signer=other)
    with pytest.raises(LedgerError, match="genesis key"):
        ledger.append("plan", {"n": 1})  # checked before anything is written
    assert not ledger.entries_path.exists()
    raw_append(ledger, {"n": 1}, signer=other)
    with pytest.raises(LedgerError, match="genesis key"):
        ledger.checkpoint(other)
    force_checkpoint(ledger, other)
    problem = verify_ledger(workspace).problem
    assert problem is not None
    assert problem.kind == "checkpoint"
    assert "active key" in problem.message


def test_keyring_records_genesis_and_reads_old_files(tmp_path: Path) -> None:
    a, b = HybridSigner.generate(), HybridSigner.generate()
    old_style = {"format": "docklock.io/keyring/v1", "current": b.keyid,
                 "keys": [a.public_key.to_dict(), b.public_key.to_dict()]}
    path = tmp_path / "docklock.pub"
    path.write_text(json.dumps(old_style))
    ring = Keyring.load(path)
    assert ring.genesis_keyid == a.keyid  # files without `genesis`: the first key
    assert ring.spans == {}
    ring.with_rotation(a.keyid, b.keyid, 7).with_ledger("docklock.io/ledger/t/x").save(path)
    again = Keyring.load(path)
    assert again.genesis == a.keyid
    assert (again.span(a.keyid), again.span(b.keyid)) == ((0, 7), (8, None))
    assert again.ledger == "docklock.io/ledger/t/x"


# ------------------------------------------------------------------ A2 keyless append


def test_keyless_append_never_verifies_and_is_never_signed_over(
        workspace: WorkspacePaths, signer: HybridSigner) -> None:
    ledger = _commands(workspace, signer)
    line = raw_append(ledger, {"summary": "looks legitimate"})
    seq = ledger.size - 1
    report = verify_ledger(workspace)
    assert report.problem is not None, "a keyless line must not pass as 'not signed yet'"
    assert (report.problem.kind, report.problem.seq) == ("entry", seq)
    assert "signature" in report.problem.message
    # A signature field copied from another entry does not help either.
    ledger.entries_path.write_bytes(ledger.entries_path.read_bytes()[:-len(line) - 1])
    ledger._state = None
    stolen = next(iter(Ledger(workspace, "t").entries())).sig
    raw_append(Ledger(workspace, "t"), {"summary": "looks legitimate"}, sig=stolen)
    assert verify_ledger(workspace).problem is not None

    # The owner's next command refuses before writing anything (it could not sign).
    with pytest.raises(LedgerError, match=f"refusing to sign over entry seq {seq}") as info:
        record_event(workspace, "plan", {"summary": "owner"})
    assert "without the signing key" in info.value.hint
    assert Ledger(workspace, "t").latest_checkpoint().size == seq  # nothing signed
    assert Ledger(workspace, "t").size == seq + 1  # nothing appended either


def test_crashed_commands_tail_is_signed_by_the_next_command(workspace: WorkspacePaths,
                                                             signer: HybridSigner) -> None:
    """Entries appended by a command that died before its checkpoint are genuine: the
    next command signs over them, and verify accepts them meanwhile."""
    ledger = _commands(workspace, signer)
    ledger.append("apply-start", {"plan": "x"})
    ledger.append("change", {"address": "Service/default/w"})
    report = verify_ledger(workspace)
    assert report.ok
    assert report.unsigned_tail == 2
    _, cp = record_event(workspace, "plan", {"summary": "next"})
    assert cp.size == ledger.size
    assert verify_ledger(workspace).ok


def test_plan_cli_refuses_to_sign_over_a_keyless_append(
        workspace: WorkspacePaths, signer: HybridSigner,
        capsys: pytest.CaptureFixture[str]) -> None:
    from docklock.cli import main

    (workspace.root / "specs").mkdir()
    ledger = _commands(workspace, signer)
    raw_append(ledger, {"summary": "mallory"})
    code = main(["-C", str(workspace.root), "plan", "--no-refresh"])
    err = capsys.readouterr().err
    assert code == 1
    assert "refusing to sign over entry seq 6" in err
    assert "not signed yet" not in err


# ------------------------------------------------------------------ A4 deletion


def test_deleting_the_ledger_is_a_failure_not_zero_entries(workspace: WorkspacePaths,
                                                           signer: HybridSigner) -> None:
    _commands(workspace, signer)
    assert load_keyring(workspace).ledger == Ledger(workspace, "t").origin
    shutil.rmtree(workspace.ledger)
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert "ledger is missing" in report.problem.message
    # and no command silently starts a new one in its place
    with pytest.raises(LedgerError, match="ledger is missing"):
        record_event(workspace, "plan", {"summary": "after deletion"})


def test_a_fresh_workspace_with_keys_and_no_entries_is_fine(workspace: WorkspacePaths,
                                                            signer: HybridSigner) -> None:
    report = verify_ledger(workspace)
    assert report.ok
    assert report.entries == 0
    assert load_keyring(workspace).ledger == ""


def test_replacing_the_ledger_with_another_is_named(workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    _commands(workspace, signer)
    (workspace.ledger / "ledger.json").unlink()
    for name in ("entries.jsonl", "checkpoints.jsonl", "tree.json"):
        (workspace.ledger / name).unlink()
    (workspace.ledger / "entries.jsonl").write_bytes(b"")
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert "ledger is missing" in report.problem.message


# ------------------------------------------------------------------ A6 duplicates, cache


def test_duplicate_checkpoint_lines_are_reported(workspace: WorkspacePaths,
                                                 signer: HybridSigner) -> None:
    ledger = _commands(workspace, signer)
    lines = ledger.checkpoints_path.read_bytes().split(b"\n")[:-1]
    ledger.checkpoints_path.write_bytes(b"\n".join([*lines, lines[-1]]) + b"\n")
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.checkpoint) == ("checkpoint", len(lines) + 1)
    assert "duplicates checkpoint" in report.problem.message


def test_unparseable_tree_json_is_a_warning(workspace: WorkspacePaths,
                                            signer: HybridSigner,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from docklock.cli import main

    ledger = _commands(workspace, signer)
    ledger.tree_path.write_text("{not json")
    report = verify_ledger(workspace)
    assert report.ok
    assert any("tree.json" in w for w in report.warnings)
    assert main(["-C", str(workspace.root), "ledger", "verify"]) == 0
    assert "tree.json is unreadable" in capsys.readouterr().out


# ------------------------------------------------------------------ B9 identity


def test_renaming_the_cluster_keeps_the_ledger_verifiable(workspace: WorkspacePaths,
                                                          signer: HybridSigner) -> None:
    record_event(workspace, "plan", {"summary": "before"})
    origin = Ledger.open(workspace).origin
    workspace.config.write_text(workspace.config.read_text().replace("{name: t}",
                                                                      "{name: renamed}"))
    assert Ledger.open(workspace).cluster == "renamed"
    assert Ledger.open(workspace).origin == origin  # fixed at creation
    record_event(workspace, "plan", {"summary": "after"})
    report = verify_ledger(workspace)
    assert report.ok, report.problem
    assert report.origin == origin
    assert report.entries == 2


def test_two_workspaces_with_one_cluster_name_have_different_origins(
        tmp_path: Path, workspace: WorkspacePaths, signer: HybridSigner) -> None:
    other = WorkspacePaths(tmp_path / "other")
    other.root.mkdir()
    other.config.write_text(workspace.config.read_text())
    init_keys(other)
    record_event(workspace, "plan", {"n": 1})
    record_event(other, "plan", {"n": 1})
    assert Ledger.open(workspace).origin != Ledger.open(other).origin


def test_old_ledgers_keep_their_origin(workspace: WorkspacePaths, signer: HybridSigner) -> None:
    """A ledger from before ledger.json (origin docklock.io/ledger/<cluster>)."""
    workspace.ledger.mkdir(parents=True)
    (workspace.ledger / "ledger.json").write_text(json.dumps(
        {"format": "docklock.io/ledger/v1", "origin": "docklock.io/ledger/t"}))
    _commands(workspace, signer)
    (workspace.ledger / "ledger.json").unlink()  # as an old version left it
    workspace.config.write_text(workspace.config.read_text().replace("{name: t}",
                                                                      "{name: renamed}"))
    ledger = Ledger.open(workspace)
    assert ledger.origin == "docklock.io/ledger/t"  # from its checkpoints
    assert verify_ledger(workspace).ok
    record_event(workspace, "plan", {"summary": "after upgrade"})
    assert json.loads((workspace.ledger / "ledger.json").read_text())["origin"] == \
        "docklock.io/ledger/t"
    assert verify_ledger(workspace).ok


# ------------------------------------------------------------------ D20 torn tail


def _genuine_next_line(workspace: WorkspacePaths, signer: HybridSigner,
                       tmp_path: Path) -> bytes:
    """The exact line the next append would write (made in a copy of the workspace)."""
    copy = WorkspacePaths(tmp_path / "copy")
    shutil.copytree(workspace.root, copy.root)
    ledger = Ledger(copy, "t", signer=signer)
    entry = ledger.append("apply-start", {"plan": "p" * 300, "note": "crash here"})
    return entry.line() + b"\n"


@pytest.mark.parametrize("cut", [1, 9, 40, 250, 600, -60, -1])
def test_torn_tail_of_our_own_crash_is_repaired_and_recorded(
        workspace: WorkspacePaths, signer: HybridSigner, tmp_path: Path, cut: int) -> None:
    ledger = _commands(workspace, signer)
    line = _genuine_next_line(workspace, signer, tmp_path)
    fragment = line[:cut]
    with ledger.entries_path.open("ab") as f:
        f.write(fragment)
    assert verify_ledger(workspace).problem is not None  # reported until a command runs
    entry, cp = record_event(workspace, "plan", {"summary": "next command"})
    moved = sorted(workspace.ledger.glob("torn-entries-*.bin"))
    assert [p.read_bytes() for p in moved] == [fragment]
    entries = list(Ledger(workspace, "t").entries())
    repair = entries[-2]
    assert repair.type.value == "ledger-repair"
    assert repair.payload["files"] == [moved[0].name]
    assert repair.payload["bytes"] == [len(fragment)]
    assert entry.seq == repair.seq + 1
    assert cp.size == entry.seq + 1
    assert verify_ledger(workspace).ok


@pytest.mark.parametrize("garbage", [
    b"garbage without a newline",
    b"\x00\x00\x00\x00",
    b'{"seq":6,"actor":"x"',  # keys out of canonical order
    b'{"actor":"x","commit":null,"payload":{},"payload_digest":"sha256:00","prev":"'
    + b"ab" * 32,  # the wrong prev: not the continuation of this ledger
    b'{"actor":"x","commit":null,"payload":{},"payload_digest":"sha256:00","prev":"PREV",'
    b'"seq":99',  # wrong seq
])
def test_foreign_torn_tail_is_refused_with_the_hint(workspace: WorkspacePaths,
                                                    signer: HybridSigner,
                                                    garbage: bytes) -> None:
    ledger = _commands(workspace, signer)
    garbage = garbage.replace(b"PREV", ledger.state().head.hex().encode())
    with ledger.entries_path.open("ab") as f:
        f.write(garbage)
    with pytest.raises(LedgerError, match="incomplete") as info:
        record_event(workspace, "plan", {"summary": "next"})
    assert "ledger repair" in info.value.hint
    assert ledger.entries_path.read_bytes().endswith(garbage)  # nothing moved
    assert not list(workspace.ledger.glob("torn-*.bin"))


def test_torn_line_inside_signed_history_is_refused(workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    ledger = _commands(workspace, signer)
    data = ledger.entries_path.read_bytes()
    ledger.entries_path.write_bytes(data[:-30])  # cuts into the last checkpointed entry
    (workspace.ledger / "tree.json").unlink()
    with pytest.raises(LedgerError, match="incomplete"):
        record_event(workspace, "plan", {"summary": "next"})
    assert not list(workspace.ledger.glob("torn-*.bin"))


def test_torn_checkpoint_record_of_our_own_crash_is_repaired(workspace: WorkspacePaths,
                                                             signer: HybridSigner) -> None:
    ledger = _commands(workspace, signer)
    with ledger.checkpoints_path.open("ab") as f:
        f.write(b'{"keyid":"' + signer.keyid[:20].encode())
    record_event(workspace, "plan", {"summary": "next"})
    assert len(list(workspace.ledger.glob("torn-checkpoints-*.bin"))) == 1
    assert verify_ledger(workspace).ok


# ------------------------------------------------------------------ D19 failed writes


def test_a_failed_append_leaves_nothing_behind(workspace: WorkspacePaths,
                                               signer: HybridSigner) -> None:
    """A real short write: RLIMIT_FSIZE stops the write part-way (EFBIG), as a full disk
    would (ENOSPC); append must raise LedgerError and cut the file back."""
    ledger = _commands(workspace, signer)
    before = ledger.entries_path.read_bytes()
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from docklock.errors import LedgerError
        from docklock.ledger import Ledger
        from pathlib import Path
        from docklock.workspace import WorkspacePaths
        ledger = Ledger(WorkspacePaths(Path({str(workspace.root)!r})), "t")
        ledger.state()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        limit = {len(before)} + 100
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            ledger.append("change", {{"big": "x" * 20000}})
        except LedgerError as exc:
            print("LedgerError:", exc.message, "|", exc.hint)
            sys.exit(3)
        sys.exit(0)
    """)
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "nothing was recorded" in done.stdout
    assert "free disk space" in done.stdout
    assert ledger.entries_path.read_bytes() == before  # no torn line left behind
    assert verify_ledger(workspace).ok
    record_event(workspace, "plan", {"summary": "disk has room again"})
    assert verify_ledger(workspace).ok


def test_a_failed_checkpoint_write_leaves_no_torn_record(workspace: WorkspacePaths,
                                                         signer: HybridSigner) -> None:
    """D19 for checkpoints: a short write of the checkpoint record is cut back, and the
    error says what to do; the entry appended before it stays, signed, in the tail."""
    ledger = _commands(workspace, signer)
    checkpoints = ledger.checkpoints_path.read_bytes()
    entries_size = ledger.entries_path.stat().st_size
    limit = max(len(checkpoints) + 100, entries_size + 4000)
    assert limit < len(checkpoints) + 5000  # a checkpoint record is larger than that
    script = textwrap.dedent(f"""
        import resource, signal, sys
        from pathlib import Path
        from docklock.errors import LedgerError
        from docklock.ledger import Ledger, load_signer
        from docklock.workspace import WorkspacePaths
        paths = WorkspacePaths(Path({str(workspace.root)!r}))
        signer = load_signer(paths)
        ledger = Ledger(paths, "t", signer=signer)
        ledger.state()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        ledger.append("plan", {{"summary": "before the disk filled"}})
        try:
            ledger.checkpoint(signer)
        except LedgerError as exc:
            print("LedgerError:", exc.message, "|", exc.hint)
            sys.exit(3)
        sys.exit(0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ), check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "could not write the checkpoint" in done.stdout
    assert "free disk space" in done.stdout
    assert ledger.checkpoints_path.read_bytes() == checkpoints
    report = verify_ledger(workspace)
    assert report.ok, report.problem
    assert report.unsigned_tail == 1


def test_keys_files_never_created_by_appending_without_a_key(workspace: WorkspacePaths) -> None:
    ledger = Ledger(workspace, "t")
    with pytest.raises(LedgerError, match="no signing key"):
        ledger.append("plan", {"n": 1})
    assert not signing_key_path(workspace).exists()
    assert not public_keyring_path(workspace).exists()
    assert not ledger.entries_path.exists()


def test_keys_init_force_cannot_adopt_the_old_ledger(workspace: WorkspacePaths,
                                                     signer: HybridSigner) -> None:
    """A new trust root (keys init --force) cannot sign over the old key's ledger; moving
    the old ledger aside starts a new one."""
    _commands(workspace, signer)
    init_keys(workspace, force=True)
    with pytest.raises(LedgerError, match="not signed by the key in charge"):
        record_event(workspace, "plan", {"summary": "new key"})
    workspace.ledger.rename(workspace.root / "old-ledger")
    record_event(workspace, "plan", {"summary": "new ledger"})
    report = verify_ledger(workspace)
    assert report.ok, report.problem
    assert report.entries == 1
