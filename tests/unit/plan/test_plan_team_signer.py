"""A saved plan signed by an active team signer (CI's key) loads where docklock.pub
trusts it; a removed signer's or an unknown key's plan is refused (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docklock.errors import DockLockError
from docklock.ledger.dsse import sign_plan
from docklock.ledger.keys import HybridSigner, Keyring, public_keyring_path
from docklock.plan import PLAN_FORMAT, load_plan
from docklock.workspace import WorkspacePaths


def _workspace(tmp_path: Path) -> tuple[WorkspacePaths, HybridSigner, HybridSigner]:
    paths = WorkspacePaths(tmp_path)
    owner = HybridSigner.generate("mldsa65-ed25519")
    ci = HybridSigner.generate("mldsa65-ed25519")
    keyring = Keyring((owner.public_key,), owner.keyid).with_signer(ci.public_key, "ci", 4)
    keyring.save(public_keyring_path(paths))
    return paths, owner, ci


def _saved(tmp_path: Path, signer: HybridSigner) -> Path:
    plan = {"format": PLAN_FORMAT, "cluster": "demo", "serial": 3, "spec_digest": "sha256:0",
            "changes": []}
    out = tmp_path / "reviewed.plan"
    out.write_text(json.dumps(sign_plan(plan, signer)))
    return out


def test_plan_signed_by_an_active_signer_is_accepted(tmp_path: Path) -> None:
    paths, _, ci = _workspace(tmp_path)
    plan = load_plan(_saved(tmp_path, ci), paths)
    assert (plan.cluster, plan.serial) == ("demo", 3)


def test_plan_signed_by_a_removed_signer_is_refused(tmp_path: Path) -> None:
    paths, _, ci = _workspace(tmp_path)
    keyring = Keyring.load(public_keyring_path(paths)).without_signer(ci.keyid, 9)
    keyring.save(public_keyring_path(paths))
    with pytest.raises(DockLockError):
        load_plan(_saved(tmp_path, ci), paths)


def test_plan_signed_by_an_unknown_key_is_refused(tmp_path: Path) -> None:
    paths, _, _ = _workspace(tmp_path)
    stranger = HybridSigner.generate("mldsa65-ed25519")
    with pytest.raises(DockLockError):
        load_plan(_saved(tmp_path, stranger), paths)
