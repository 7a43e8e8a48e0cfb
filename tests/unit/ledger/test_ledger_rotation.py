"""`keys rotate` (docklock.ledger.rotation): durable renames, the ledger marker kept,
and verify's view of an interrupted rotation."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock import _fs
from docklock.ledger import HybridSigner, Ledger, load_keyring, rotate_keys, verify_ledger
from docklock.ledger.keys import retired_key_path, signing_key_path
from docklock.workspace import WorkspacePaths


def test_rotation_syncs_both_key_folders_after_the_renames(
        workspace: WorkspacePaths, signer: HybridSigner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename is durable only once its folder is synced (issue 11 review finding 5)."""
    calls: list[tuple[Path, bool, bool]] = []
    real = _fs.fsync_dir

    def spy(path: Path) -> None:
        # Record whether the swap had happened when the folder was synced.
        pending = (workspace.keys / "pending.key").exists()
        retired = retired_key_path(workspace, signer.keyid).exists()
        calls.append((Path(path), pending, retired))
        real(path)

    monkeypatch.setattr(_fs, "fsync_dir", spy)
    result = rotate_keys(workspace)
    after_swap = {path for path, pending, retired in calls if retired and not pending}
    assert retired_key_path(workspace, signer.keyid).parent in after_swap
    assert signing_key_path(workspace).parent in after_swap
    assert load_keyring(workspace).current == result.new_keyid


def test_rotation_keeps_the_ledger_marker_its_first_checkpoint_wrote(
        workspace: WorkspacePaths, signer: HybridSigner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The old key's checkpoint inside rotate may be the ledger's first (a command died
    before its own): the marker it writes in docklock.pub must survive the staging save
    (issue 11 review finding 11), even if the rotation stops right after it."""
    ledger = Ledger.open(workspace, signer=signer)
    ledger.append("apply-start", {"plan": "x"})  # a command that died before signing
    ledger.close()
    assert load_keyring(workspace).ledger == ""

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("power cut")

    ledger = Ledger.open(workspace, signer=signer)
    monkeypatch.setattr(ledger, "append_with", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        rotate_keys(workspace, ledger=ledger)
    assert load_keyring(workspace).ledger == ledger.origin
    assert verify_ledger(workspace).ok


def test_an_interrupted_rotation_is_named_and_finished_by_rotating_again(
        workspace: WorkspacePaths, signer: HybridSigner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped after its key-rotation entry, before the key swap: verify says so (not
    'signed by a retired key'), and `keys rotate` again completes it with the staged key
    (issue 11 review finding 12)."""
    from docklock.errors import LedgerError
    from docklock.ledger import record_event, rotation

    record_event(workspace, "plan", {"n": 1}, create_keys=False)

    def crash(_folder: Path) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(rotation, "private_folder", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        rotate_keys(workspace)
    monkeypatch.undo()
    staged = (workspace.keys / "pending.key").read_bytes()
    report = verify_ledger(workspace)
    assert report.problem is not None
    assert "`keys rotate` did not finish" in report.problem.message
    assert "retired key" not in report.problem.message
    assert report.problem.seq == 1
    with pytest.raises(LedgerError):  # nothing signs until the rotation is finished
        record_event(workspace, "plan", {"n": 2}, create_keys=False)

    result = rotate_keys(workspace)
    assert result.old_keyid == signer.keyid
    assert result.entry.seq == 1  # the interrupted entry, not a second rotation
    assert signing_key_path(workspace).read_bytes() == staged
    assert load_keyring(workspace).current == result.new_keyid
    assert not (workspace.keys / "pending.key").exists()
    assert verify_ledger(workspace).ok
    record_event(workspace, "plan", {"n": 3}, create_keys=False)
    assert verify_ledger(workspace).ok
