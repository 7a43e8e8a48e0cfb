"""Keys for a team (issue 14): trusted signers beside the rotation chain.

Alice holds the workspace key (docklock.pub's `current`); Bob and CI get keys of their
own, added with a signed key-trust entry (`trust_signer`) and listed under `signers` in
docklock.pub. Each test signs with the keys it holds and checks what DockLock accepts,
what it refuses before signing, and what `ledger verify` says.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from ledger_helpers import force_checkpoint, raw_append

from docklock.errors import KeyMaterialError, LedgerError
from docklock.ledger import (
    EntryType,
    HybridSigner,
    Keyring,
    Ledger,
    load_keyring,
    rotate_keys,
    verify_ledger,
)
from docklock.ledger.keys import TrustedSigner, public_keyring_path
from docklock.ledger.trust import (
    KEY_TRUST_SUFFIX,
    check_trust,
    identify_signer,
    trust_payload,
    trust_signer,
    untrust_signer,
)
from docklock.workspace import WorkspacePaths

FAST = "mldsa65-ed25519"  # key generation and signing are quicker than the default pairing


def _work(paths: WorkspacePaths, signer: HybridSigner, n: int = 2) -> Ledger:
    """A command run with `signer`: n entries and a checkpoint."""
    ledger = Ledger(paths, "t", signer=signer)
    for i in range(n):
        ledger.append("change", {"address": f"Service/default/w{ledger.size}-{i}"}, serial=1)
    ledger.checkpoint(signer)
    ledger.close()
    return ledger


@pytest.fixture
def bob() -> HybridSigner:
    return HybridSigner.generate(FAST)


def test_keyring_without_signers_is_written_as_before_and_signers_round_trip(
        tmp_path: Path, bob: HybridSigner) -> None:
    alice = HybridSigner.generate(FAST)
    ring = Keyring((alice.public_key,), alice.keyid)
    assert "signers" not in ring.to_dict()  # an old docklock.pub is rewritten unchanged
    team = ring.with_signer(bob.public_key, "bob", 4)
    path = tmp_path / "docklock.pub"
    team.save(path)
    loaded = Keyring.load(path)
    assert loaded.signers == (TrustedSigner(bob.public_key, "bob", 5),)
    assert loaded.trusted_keyids() == (alice.keyid, bob.keyid)
    assert loaded.lookup(bob.keyid) is not None
    assert loaded.signers_at(4) == frozenset()
    assert loaded.signers_at(5) == {bob.keyid}
    assert loaded.may_sign(bob.keyid)
    assert loaded.label(bob.keyid) == f"bob ({bob.keyid[:16]})"
    removed = loaded.without_signer(bob.keyid, 9)
    removed.save(path)
    again = Keyring.load(path)
    assert again.signers[0].until == 9
    assert again.signers_at(9) == {bob.keyid}
    assert again.signers_at(10) == frozenset()
    assert not again.may_sign(bob.keyid)
    assert again.to_dict() == removed.to_dict()


@pytest.mark.parametrize("bad", [
    pytest.param({"since": "1"}, id="since-not-int"),
    pytest.param({"name": "two words"}, id="name-with-space"),
    pytest.param({"name": ""}, id="no-name"),
    pytest.param({"since": 0}, id="since-zero"),
    pytest.param({"keyid": "00" * 32}, id="keyid-mismatch"),
])
def test_malformed_signer_entries_are_refused(tmp_path: Path, bob: HybridSigner,
                                              bad: dict[str, object]) -> None:
    alice = HybridSigner.generate(FAST)
    d = Keyring((alice.public_key,), alice.keyid).with_signer(bob.public_key, "bob", 0) \
        .to_dict()
    d["signers"][0].update(bad)
    with pytest.raises(KeyMaterialError):
        Keyring.from_dict(d)


def test_a_trusted_signer_signs_and_the_ledger_records_who_signed_what(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    _work(workspace, signer)
    result = trust_signer(workspace, bob.public_key, "bob", signer=signer)
    assert result.entry.type is EntryType.KEY_TRUST
    assert result.checkpoint.size == result.entry.seq + 1
    listed = load_keyring(workspace).signer(bob.keyid)
    assert listed is not None
    assert (listed.name, listed.since) == ("bob", result.entry.seq + 1)
    bob_ledger = _work(workspace, bob, n=3)
    assert bob_ledger.latest_checkpoint().keyid == bob.keyid  # type: ignore[union-attr]
    _work(workspace, signer)  # and Alice signs over Bob's entries
    report = verify_ledger(workspace)
    assert report.ok, report.problem
    keyring = load_keyring(workspace)
    signed_by = [identify_signer(e, bob_ledger.origin, keyring) for e in bob_ledger.entries()]
    trust_seq = result.entry.seq
    assert signed_by[trust_seq] == signer.keyid  # the key-trust entry: Alice
    assert signed_by[trust_seq + 1:trust_seq + 4] == [bob.keyid] * 3
    assert signed_by[-1] == signer.keyid


def test_a_key_nobody_trusted_cannot_append_or_sign(workspace: WorkspacePaths,
                                                    signer: HybridSigner,
                                                    bob: HybridSigner) -> None:
    _work(workspace, signer)
    with pytest.raises(LedgerError, match="not listed in"):
        Ledger(workspace, "t", signer=bob).append("change", {"address": "x"})
    # docklock.pub lists Bob, but no key-trust entry in the ledger adds him: refused too.
    load_keyring(workspace).with_signer(bob.public_key, "bob", 0).save(
        public_keyring_path(workspace))
    with pytest.raises(LedgerError, match="not in charge at the end"):
        Ledger(workspace, "t", signer=bob).append("change", {"address": "x"})


def test_a_removed_signer_signs_nothing_new_but_its_history_still_verifies(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    _work(workspace, bob)
    removed = untrust_signer(workspace, "bob", signer=signer)
    listed = load_keyring(workspace).signer(bob.keyid)
    assert listed is not None
    assert listed.until == removed.entry.seq
    with pytest.raises(LedgerError, match="removed by `keys untrust`"):
        Ledger(workspace, "t", signer=bob).append("change", {"address": "x"})
    _work(workspace, signer)
    assert verify_ledger(workspace).ok
    with pytest.raises(KeyMaterialError, match="already removed"):
        untrust_signer(workspace, bob.keyid[:12], signer=signer)


def test_a_signer_removed_in_the_unsigned_tail_cannot_sign_over_it(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    """The removal is an entry: even before docklock.pub records `until`, it counts."""
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    ledger = Ledger(workspace, "t", signer=signer)
    ledger.append_with(EntryType.KEY_TRUST, lambda seq, prev: trust_payload(
        ledger.origin, signer, "remove", bob.keyid, public=None, name="bob", seq=seq,
        prev=prev))
    with pytest.raises(LedgerError, match="not in charge at the end"):
        Ledger(workspace, "t", signer=bob).checkpoint(bob)


def test_trust_and_untrust_need_a_key_in_charge(workspace: WorkspacePaths,
                                                signer: HybridSigner,
                                                bob: HybridSigner) -> None:
    carol = HybridSigner.generate(FAST)
    with pytest.raises(KeyMaterialError, match="neither the current key"):
        trust_signer(workspace, carol.public_key, "carol", signer=bob)
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    # Only the workspace key adds and removes signers: Bob, a signer, may do neither,
    # and nothing is written when he tries.
    before = Ledger(workspace, "t").entries_path.read_bytes()
    with pytest.raises(KeyMaterialError, match="is a signer: only the workspace key"):
        trust_signer(workspace, carol.public_key, "carol", signer=bob)
    with pytest.raises(KeyMaterialError, match="is a signer: only the workspace key"):
        untrust_signer(workspace, "bob", signer=bob)
    assert Ledger(workspace, "t").entries_path.read_bytes() == before
    assert load_keyring(workspace).signer(carol.keyid) is None
    trust_signer(workspace, carol.public_key, "carol", signer=signer)
    with pytest.raises(KeyMaterialError, match="already listed"):
        trust_signer(workspace, carol.public_key, "carol2", signer=signer)
    with pytest.raises(KeyMaterialError, match="own key"):
        trust_signer(workspace, signer.public_key, "alice", signer=signer)
    with pytest.raises(KeyMaterialError, match="no signer"):
        untrust_signer(workspace, "dave", signer=signer)
    _work(workspace, carol)
    assert verify_ledger(workspace).ok


def test_a_key_trust_entry_for_a_key_missing_from_docklock_pub_is_refused(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    """Every signer must be in docklock.pub (a reviewable commit): an old docklock.pub
    that does not list Bob blocks signing over his key-trust entry."""
    before = public_keyring_path(workspace).read_bytes()
    ledger = Ledger(workspace, "t", signer=signer)
    ledger.append_with(EntryType.KEY_TRUST, lambda seq, prev: trust_payload(
        ledger.origin, signer, "add", bob.keyid, public=bob.public_key, name="bob",
        seq=seq, prev=prev))
    public_keyring_path(workspace).write_bytes(before)
    with pytest.raises(LedgerError, match="not listed under signers"):
        ledger.checkpoint(signer)


def test_an_interrupted_trust_is_finished_by_running_it_again(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    ledger = Ledger(workspace, "t", signer=signer)
    entry = ledger.append_with(EntryType.KEY_TRUST, lambda seq, prev: trust_payload(
        ledger.origin, signer, "add", bob.keyid, public=bob.public_key, name="bob",
        seq=seq, prev=prev))
    # ... and the process died before docklock.pub listed Bob.
    result = trust_signer(workspace, bob.public_key, "bob", signer=signer)
    assert result.resumed
    assert result.entry == entry
    assert Ledger(workspace, "t").size == entry.seq + 1  # no second key-trust entry
    assert verify_ledger(workspace).ok


@pytest.mark.parametrize("field", ["name", "keyid", "by", "endorsement", "action"])
def test_a_key_trust_entry_is_bound_to_its_endorsement(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner,
        field: str) -> None:
    result = trust_signer(workspace, bob.public_key, "bob", signer=signer)
    keyring = load_keyring(workspace)
    origin = Ledger(workspace, "t").origin
    good = result.entry
    assert check_trust(good, origin, keyring, signer.keyid, ()).keyid == bob.keyid
    changed = {"name": "mallory", "keyid": "ab" * 32, "by": bob.keyid,
               "endorsement": base64.b64encode(b"\0" * 4000).decode(),
               "action": "remove"}[field]
    forged = dataclasses.replace(good, payload=dict(good.payload) | {field: changed})
    with pytest.raises(LedgerError, match="key-trust"):
        check_trust(forged, origin, keyring, signer.keyid, ())
    # Replayed at another position, the same payload no longer verifies.
    moved = dataclasses.replace(good, seq=good.seq + 1)
    with pytest.raises(LedgerError, match="endorsement"):
        check_trust(moved, origin, keyring, signer.keyid, ())


def test_key_trust_lines_end_with_the_suffix_verify_looks_for(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    lines = Ledger(workspace, "t").entries_path.read_bytes().splitlines()
    assert [line.endswith(KEY_TRUST_SUFFIX) for line in lines] == [True]


def test_a_forged_checkpoint_by_an_untrusted_key_fails_verify(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    """Listing a key in docklock.pub is not enough: the ledger must add it."""
    ledger = _work(workspace, signer)
    load_keyring(workspace).with_signer(bob.public_key, "bob", 0).save(
        public_keyring_path(workspace))
    raw_append(ledger, {"address": "x"}, signer=bob)
    force_checkpoint(Ledger(workspace, "t"), bob)
    report = verify_ledger(workspace)
    assert not report.ok
    assert report.problem is not None
    assert report.problem.kind == "checkpoint"


def test_rotating_the_workspace_key_keeps_the_team(workspace: WorkspacePaths,
                                                  signer: HybridSigner,
                                                  bob: HybridSigner) -> None:
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    rotated = rotate_keys(workspace)
    assert load_keyring(workspace).signer(bob.keyid) is not None
    _work(workspace, bob)
    report = verify_ledger(workspace)
    assert report.ok, report.problem
    assert rotated.new_keyid in report.keys
    assert bob.keyid in report.keys


def test_only_the_chain_key_rotates(workspace: WorkspacePaths, signer: HybridSigner,
                                    bob: HybridSigner) -> None:
    """`keys rotate` in Bob's clone (his key is the workspace key file there) refuses."""
    from docklock.ledger.keys import write_signing_key

    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    write_signing_key(workspace, bob)
    with pytest.raises(KeyMaterialError, match="not the current key") as info:
        rotate_keys(workspace)
    assert "only the chain's key rotates" in info.value.hint


def test_docklock_pub_from_before_teams_still_loads(workspace: WorkspacePaths,
                                                    signer: HybridSigner) -> None:
    data = json.loads(public_keyring_path(workspace).read_text())
    assert "signers" not in data
    assert load_keyring(workspace).signers == ()


def test_verify_names_a_docklock_pub_rolled_back_to_before_an_untrust(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    trusted = public_keyring_path(workspace).read_bytes()
    removed = untrust_signer(workspace, "bob", signer=signer)
    assert verify_ledger(workspace).ok
    public_keyring_path(workspace).write_bytes(trusted)  # git checkout of the old file
    problem = verify_ledger(workspace).problem
    assert problem is not None
    assert problem.kind == "keys"
    assert f"entry seq {removed.entry.seq} removed it" in problem.message
    assert "rolled back" in problem.message


def test_verify_names_a_signer_written_into_docklock_pub_by_hand(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    _work(workspace, signer)
    load_keyring(workspace).with_signer(bob.public_key, "bob", 0).save(
        public_keyring_path(workspace))
    problem = verify_ledger(workspace).problem
    assert problem is not None
    assert problem.kind == "keys"
    assert "no key-trust entry of this ledger adds it" in problem.message


def test_verify_from_a_checkpoint_accepts_a_signer_signed_base(
        workspace: WorkspacePaths, signer: HybridSigner, bob: HybridSigner) -> None:
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    _work(workspace, bob)
    _work(workspace, bob)
    report = verify_ledger(workspace, from_checkpoint=True)
    assert report.ok, report.problem
    assert report.keys == (bob.keyid,)
