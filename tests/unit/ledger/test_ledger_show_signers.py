"""`ledger show` names who signed each entry and the newest checkpoint (issue 14: "the
ledger recording who signed what")."""

from __future__ import annotations

import pytest
from ledger_helpers import raw_append

from docklock.engine.context import Context
from docklock.engine.ledger import show
from docklock.ledger import HybridSigner, Ledger
from docklock.ledger.trust import trust_signer
from docklock.workspace import WorkspacePaths


def _work(paths: WorkspacePaths, signer: HybridSigner) -> None:
    ledger = Ledger(paths, "t", signer=signer)
    ledger.append("change", {"address": f"Service/default/w{ledger.size}"}, serial=1)
    ledger.checkpoint(signer)
    ledger.close()


def test_show_names_the_workspace_key_and_a_team_signer(
        workspace: WorkspacePaths, signer: HybridSigner) -> None:
    bob = HybridSigner.generate("mldsa65-ed25519")
    _work(workspace, signer)
    trust_signer(workspace, bob.public_key, "bob", signer=signer)
    _work(workspace, bob)
    view = show(Context(workspace))
    labels = [view.signed_by[e.seq] for e in view.entries]
    assert labels[0] == signer.keyid[:16]
    assert labels[-1] == f"bob ({bob.keyid[:16]})"
    assert view.checkpoint_signer == f"bob ({bob.keyid[:16]})"
    doc = view.to_dict()
    assert doc["entries"][-1]["signed_by"] == f"bob ({bob.keyid[:16]})"
    assert doc["checkpoint"]["signed_by"] == f"bob ({bob.keyid[:16]})"


def test_show_marks_an_entry_no_listed_key_signed(
        workspace: WorkspacePaths, signer: HybridSigner) -> None:
    _work(workspace, signer)
    stranger = HybridSigner.generate("mldsa65-ed25519")
    ledger = Ledger(workspace, "t", signer=signer)
    raw_append(ledger, {"who": "mallory"}, signer=stranger)
    ledger.close()
    view = show(Context(workspace))
    assert [view.signed_by[e.seq] for e in view.entries] == [signer.keyid[:16], "?"]


def test_show_checks_only_the_newest_window_and_verifies_the_checkpoint(
        workspace: WorkspacePaths, signer: HybridSigner, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    import docklock.engine.ledger as engine_ledger

    monkeypatch.setattr(engine_ledger, "SIGNER_WINDOW", 2)
    for _ in range(3):
        _work(workspace, signer)
    view = show(Context(workspace))
    assert sorted(view.signed_by) == [1, 2]  # the two newest of three entries
    assert view.to_dict()["entries"][0]["signed_by"] is None
    assert view.checkpoint_signer == signer.keyid[:16]
