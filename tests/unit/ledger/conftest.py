"""Fixtures for the ledger tests: a throwaway workspace, keys, and a small ledger."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_helpers import Built, Clock

from docklock.cli import main
from docklock.ledger import HybridSigner, Ledger, ensure_keys
from docklock.workspace import WorkspacePaths

CLUSTER_YAML = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WorkspacePaths:
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE", raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    (root / "docklock.yaml").write_text(CLUSTER_YAML, encoding="utf-8")
    return WorkspacePaths(root)


@pytest.fixture
def signer(workspace: WorkspacePaths) -> HybridSigner:
    return ensure_keys(workspace)


@pytest.fixture
def build(workspace: WorkspacePaths, signer: HybridSigner) -> Callable[..., Built]:
    """Commands of `groups` entries each, a checkpoint after each, then `tail` unsigned."""

    def _build(groups: tuple[int, ...] = (5, 4, 3), tail: int = 2) -> Built:
        ledger = Ledger(workspace, "t", clock=Clock(), who="alice@host", commit="ab" * 20)
        seq = 0
        sizes = []
        types = ["plan", "apply-start", "change", "change", "apply-end", "drift", "witness"]
        for count in groups:
            for _ in range(count):
                ledger.append(types[seq % len(types)],
                              {"address": f"Service/default/web{seq}", "n": seq,
                               "note": "x" * (seq % 7)}, serial=seq // 3)
                seq += 1
            sizes.append(ledger.checkpoint(signer).size)
        for _ in range(tail):
            ledger.append("drift", {"summary": f"tail {seq}"}, serial=None)
            seq += 1
        ledger.close()  # as a command does when it ends: tree.json records the tail
        return Built(ledger, sizes, tail)

    return _build


# `run(root, *args)`: the CLI on a workspace folder, for tests that make their own.
RootRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> RootRun:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DOCKLOCK_KEY_PASSPHRASE", raising=False)

    def _run(root: Path, *args: str) -> tuple[int, str, str]:
        code = main(["-C", str(root), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return _run
