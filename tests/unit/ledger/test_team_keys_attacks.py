"""Keys for a team under attack (issue 14 review): the ledger, not docklock.pub, decides
which signers are in charge, and only the workspace key enrols or removes them.

Alice holds the workspace key; Bob and Eve are signers. Eve is removed, keeps her private
key, and edits her copy of docklock.pub so it no longer says so. Each test checks that
DockLock refuses BEFORE writing: the entries and checkpoints are byte for byte what they
were, so the shared append-only ledger is not left broken for everyone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from docklock.errors import KeyMaterialError, LedgerError
from docklock.ledger import EntryType, HybridSigner, Ledger, load_keyring, verify_ledger
from docklock.ledger.keys import SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, public_keyring_path
from docklock.ledger.trust import (
    KeyHistory,
    replay_keys,
    trust_payload,
    trust_signer,
    untrust_signer,
)
from docklock.workspace import WorkspacePaths

FAST = "mldsa65-ed25519"
RootRun = Callable[..., tuple[int, str, str]]


def _work(paths: WorkspacePaths, signer: HybridSigner, n: int = 2) -> None:
    """A command run with `signer`: n entries and a checkpoint."""
    with Ledger(paths, "t", signer=signer) as ledger:
        for i in range(n):
            ledger.append("change", {"address": f"Service/default/w{ledger.size}-{i}"})
        ledger.checkpoint(signer)


def _snapshot(paths: WorkspacePaths) -> tuple[bytes, bytes]:
    ledger = Ledger(paths, "t")
    return ledger.entries_path.read_bytes(), ledger.checkpoints_path.read_bytes()


def _edit_signer(paths: WorkspacePaths, name: str, **fields: int | None) -> None:
    """Change a signer's entry in docklock.pub by hand (None deletes the field)."""
    path = public_keyring_path(paths)
    data = json.loads(path.read_text())
    for listed in data["signers"]:
        if listed["name"] == name:
            for key, value in fields.items():
                if value is None:
                    listed.pop(key, None)
                else:
                    listed[key] = value
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture
def team(workspace: WorkspacePaths, signer: HybridSigner) -> tuple[HybridSigner, HybridSigner]:
    """Alice trusts Bob and Eve; both sign work; then Alice removes Eve."""
    bob, eve = HybridSigner.generate(FAST), HybridSigner.generate(FAST)
    _work(workspace, signer)
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    trust_signer(workspace, eve.public_key, "eve", signer=signer)
    _work(workspace, bob)
    _work(workspace, eve)
    untrust_signer(workspace, "eve", signer=signer)
    assert verify_ledger(workspace).ok
    return bob, eve


@pytest.mark.parametrize("forged", [
    pytest.param({"until": None}, id="until-deleted"),
    pytest.param({"until": 10_000}, id="until-moved-later"),
])
def test_a_removed_signer_with_a_doctored_docklock_pub_cannot_sign(
        workspace: WorkspacePaths, team: tuple[HybridSigner, HybridSigner],
        forged: dict[str, int | None]) -> None:
    """The reviewer's finding: Eve's copy of docklock.pub says she is still trusted; her
    append and her checkpoint are refused, and nothing is written."""
    _, eve = team
    _edit_signer(workspace, "eve", **forged)
    before = _snapshot(workspace)
    # (With `until` still there, docklock.pub itself refuses her; without it, the
    # ledger's key-trust entry does.)
    for attempt in (lambda ledger: ledger.append("change", {"address": "x"}),
                    lambda ledger: ledger.checkpoint(eve)):
        with pytest.raises(LedgerError, match="removed"):
            attempt(Ledger(workspace, "t", signer=eve))
    # Nor can she remove the others: that is the workspace key's job alone.
    with pytest.raises(KeyMaterialError) as info:
        untrust_signer(workspace, "bob", signer=eve)
    assert "only the workspace key" in f"{info.value.message} {info.value.hint}"
    assert _snapshot(workspace) == before


def test_the_attack_through_the_cli_exits_1_and_writes_nothing(
        workspace: WorkspacePaths, team: tuple[HybridSigner, HybridSigner], run: RootRun,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, eve = team
    _edit_signer(workspace, "eve", until=None)
    (workspace.root / "specs").mkdir()
    key = tmp_path / "eve.key"
    key.write_bytes(eve.to_pem(None))
    key.chmod(0o600)
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    monkeypatch.setenv(SIGNING_KEY_FILE_ENV, str(key))
    before = _snapshot(workspace)
    code, _, err = run(workspace.root, "keys", "untrust", "bob")
    assert code == 1
    assert "only the workspace key" in err
    code, _, err = run(workspace.root, "plan", "--no-refresh", "--out",
                       str(tmp_path / "p.plan"))
    assert code == 1
    assert "removed it" in err
    assert _snapshot(workspace) == before


def test_a_removed_signer_with_an_honest_docklock_pub_is_refused(
        workspace: WorkspacePaths, team: tuple[HybridSigner, HybridSigner]) -> None:
    _, eve = team
    before = _snapshot(workspace)
    with pytest.raises(LedgerError, match="removed by `keys untrust`"):
        Ledger(workspace, "t", signer=eve).append("change", {"address": "x"})
    with pytest.raises(LedgerError, match="removed by `keys untrust`"):
        Ledger(workspace, "t", signer=eve).checkpoint(eve)
    assert _snapshot(workspace) == before


def test_even_the_workspace_key_refuses_to_sign_when_docklock_pub_disagrees(
        workspace: WorkspacePaths, signer: HybridSigner,
        team: tuple[HybridSigner, HybridSigner]) -> None:
    """A docklock.pub rolled back past `keys untrust` (or edited) is named before signing,
    as `ledger verify` names it, instead of being signed over."""
    good = public_keyring_path(workspace).read_bytes()
    listed_until = json.loads(good)["signers"][1]["until"]
    _edit_signer(workspace, "eve", until=None)
    before = _snapshot(workspace)
    with pytest.raises(LedgerError, match=r"says signer eve .* is trusted, but entry seq") \
            as info:
        Ledger(workspace, "t", signer=signer).append("change", {"address": "x"})
    assert "pull the newer docklock.pub" in (info.value.hint or "")
    _edit_signer(workspace, "eve", until=listed_until)
    _edit_signer(workspace, "bob", since=2)
    with pytest.raises(LedgerError, match=r"gives signer bob .* sizes 2\.\."):
        Ledger(workspace, "t", signer=signer).append("change", {"address": "x"})
    assert _snapshot(workspace) == before
    public_keyring_path(workspace).write_bytes(good)
    _work(workspace, signer)
    assert verify_ledger(workspace).ok


def test_a_signer_written_into_docklock_pub_by_hand_blocks_signing(
        workspace: WorkspacePaths, signer: HybridSigner) -> None:
    mallory = HybridSigner.generate(FAST)
    _work(workspace, signer)
    load_keyring(workspace).with_signer(mallory.public_key, "mallory", 0).save(
        public_keyring_path(workspace))
    before = _snapshot(workspace)
    with pytest.raises(LedgerError, match="no key-trust entry of this ledger adds it"):
        _work(workspace, signer)
    with pytest.raises(LedgerError, match="not in charge at the end"):
        _work(workspace, mallory)
    assert _snapshot(workspace) == before


def test_a_signer_cannot_trust_or_untrust(workspace: WorkspacePaths, signer: HybridSigner,
                                          team: tuple[HybridSigner, HybridSigner]) -> None:
    bob, _ = team
    carol = HybridSigner.generate(FAST)
    before = _snapshot(workspace), public_keyring_path(workspace).read_bytes()
    with pytest.raises(KeyMaterialError, match="is a signer: only the workspace key") as info:
        trust_signer(workspace, carol.public_key, "carol", signer=bob)
    assert "whoever holds the workspace key" in (info.value.hint or "")
    with pytest.raises(KeyMaterialError, match="is a signer: only the workspace key"):
        untrust_signer(workspace, "eve", signer=bob)
    assert (_snapshot(workspace), public_keyring_path(workspace).read_bytes()) == before


def test_a_key_trust_entry_endorsed_by_a_signer_is_refused_by_signing_and_verify(
        workspace: WorkspacePaths, signer: HybridSigner,
        team: tuple[HybridSigner, HybridSigner]) -> None:
    """Bob's own code skips `keys trust`'s check and appends a key-trust entry for Carol,
    listing her in his docklock.pub: the ledger rule refuses it all the same."""
    bob, _ = team
    carol = HybridSigner.generate(FAST)
    ledger = Ledger(workspace, "t", signer=bob)
    entry = ledger.append_with(EntryType.KEY_TRUST, lambda seq, prev: trust_payload(
        ledger.origin, bob, "add", carol.keyid, public=carol.public_key, name="carol",
        seq=seq, prev=prev))
    load_keyring(workspace).with_signer(carol.public_key, "carol", entry.seq).save(
        public_keyring_path(workspace))
    checkpoints = Ledger(workspace, "t").checkpoints_path.read_bytes()
    for who in (bob, signer):
        with pytest.raises(LedgerError, match="is a signer: only the workspace key"):
            Ledger(workspace, "t", signer=who).checkpoint(who)
    assert Ledger(workspace, "t").checkpoints_path.read_bytes() == checkpoints
    problem = verify_ledger(workspace).problem
    assert problem is not None
    assert "only the workspace key" in problem.message


def test_an_interrupted_untrust_blocks_signing_until_it_is_finished(
        workspace: WorkspacePaths, signer: HybridSigner,
        team: tuple[HybridSigner, HybridSigner]) -> None:
    bob, _ = team
    ledger = Ledger(workspace, "t", signer=signer)
    entry = ledger.append_with(EntryType.KEY_TRUST, lambda seq, prev: trust_payload(
        ledger.origin, signer, "remove", bob.keyid, public=None, name="bob", seq=seq,
        prev=prev))
    # ... and the process died before docklock.pub recorded `until`.
    with pytest.raises(LedgerError, match=f"entry seq {entry.seq} removed it") as info:
        Ledger(workspace, "t", signer=signer).checkpoint(signer)
    assert "run `docklock keys untrust` again" in (info.value.hint or "")
    result = untrust_signer(workspace, "bob", signer=signer)
    assert result.resumed
    assert result.checkpoint.size == entry.seq + 1
    assert verify_ledger(workspace).ok


def _replay(paths: WorkspacePaths) -> tuple[KeyHistory, list[int]]:
    """replay_keys up to the newest checkpoint, as a new command would (a new Ledger
    object); also the byte offsets it started reading the entries at."""
    ledger = Ledger(paths, "t")
    latest = ledger.latest_checkpoint()
    assert latest is not None
    starts: list[int] = []
    read = ledger.storage.read_entries

    def recording(offset: int = 0, end: int | None = None) -> Iterator[bytes]:
        starts.append(offset)
        return read(offset, end)

    ledger.storage.read_entries = recording  # type: ignore[method-assign]
    return replay_keys(ledger, load_keyring(paths), latest.size, latest.offset), starts


def test_the_replay_finds_key_entries_across_chunk_boundaries(
        workspace: WorkspacePaths, signer: HybridSigner,
        team: tuple[HybridSigner, HybridSigner], monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan searches bytes per chunk: a key-trust line split between two reads (here
    reads of 1 to 40 bytes) is found all the same."""
    import docklock.ledger.storage as storage

    bob, eve = team
    anchor = workspace.cache / "ledger-keys.json"
    anchor.unlink()
    whole, _ = _replay(workspace)
    assert whole.chain == signer.keyid
    assert whole.team == {bob.keyid}
    listed = {s.keyid: (s.since, s.until) for s in load_keyring(workspace).signers}
    assert whole.trusted == listed
    assert listed[eve.keyid][1] is not None
    for size in range(1, 41):
        monkeypatch.setattr(storage, "CHUNK", size)
        anchor.unlink()
        assert _replay(workspace) == (whole, [0]), size


def test_a_command_replays_only_the_entries_since_the_last_one(
        workspace: WorkspacePaths, signer: HybridSigner,
        team: tuple[HybridSigner, HybridSigner]) -> None:
    """The clone's anchor (.docklock/cache/ledger-keys.json) saves re-reading the ledger;
    it counts only with the same docklock.pub and the same bytes at its end."""
    _, eve = team
    first, starts = _replay(workspace)
    # The team fixture's commands left an anchor (at the checkpoint before the last).
    assert len(starts) == 1
    assert starts[0] > 0
    before = Ledger(workspace, "t").latest_checkpoint()
    assert before is not None
    _work(workspace, signer)
    again, starts = _replay(workspace)
    assert (again, starts) == (first, [before.offset])
    # Another docklock.pub (here: Eve's doctored copy) means a full replay ...
    good = public_keyring_path(workspace).read_bytes()
    _edit_signer(workspace, "eve", until=None)
    doctored, starts = _replay(workspace)
    assert starts == [0]
    assert eve.keyid not in doctored.team
    public_keyring_path(workspace).write_bytes(good)
    assert _replay(workspace)[1] == [0]  # (the anchor was the doctored copy's)
    now = Ledger(workspace, "t").latest_checkpoint()
    assert now is not None
    assert _replay(workspace)[1] == [now.offset]
    # ... and so do other bytes where the anchor ends (a replaced ledger, say).
    anchor = workspace.cache / "ledger-keys.json"
    data = json.loads(anchor.read_text())
    data["line"] = "00" * 32
    anchor.write_text(json.dumps(data))
    assert _replay(workspace)[1] == [0]


def test_a_key_in_the_environment_with_one_half_says_what_the_value_must_be(
        workspace: WorkspacePaths, signer: HybridSigner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reviewer LOW 2: a CI secret holding only one of the two PEM blocks."""
    from docklock.ledger import require_signer

    pem = signer.to_pem(None).decode()
    first = pem[:pem.index("-----END ")]
    first += pem[len(first):].split("\n", 1)[0] + "\n"
    monkeypatch.delenv(SIGNING_KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(SIGNING_KEY_ENV, first)
    with pytest.raises(KeyMaterialError, match="two PEM private keys, found 1") as info:
        require_signer(workspace)
    assert info.value.hint == ("the value must be the whole file `docklock keys export` "
                               "wrote: the ML-DSA and Ed25519 halves")
