"""Read-only commands never create or change keys (issue 11 B8), and `keys import/export`.

A "fresh clone" is a workspace with the committed files only: docklock.yaml, specs and
docklock.pub, but no `.docklock/` (no private key, no ledger).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from docklock.errors import KeyMaterialError
from docklock.ledger import Ledger, ensure_keys, load_keyring, require_signer
from docklock.workspace import WorkspacePaths

CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: t}\nspec: {}\n"
Run = Callable[..., tuple[int, str, str]]



def _workspace(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "docklock.yaml").write_text(CLUSTER)
    (root / "specs").mkdir()
    return root


@pytest.fixture
def origin_and_clone(tmp_path: Path, run: Run) -> tuple[Path, Path]:
    origin = _workspace(tmp_path / "origin")
    assert run(origin, "keys", "init")[0] == 0
    clone = _workspace(tmp_path / "clone")
    shutil.copy2(origin / "docklock.pub", clone / "docklock.pub")
    return origin, clone


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".docklock" in p.parts and "keys" in p.parts)


def test_plan_in_a_fresh_clone_leaves_docklock_pub_byte_identical(
        origin_and_clone: tuple[Path, Path], run: Run) -> None:
    _, clone = origin_and_clone
    committed = (clone / "docklock.pub").read_bytes()
    for args in (("plan", "--no-refresh"), ("validate",), ("plan", "--no-refresh",
                                                            "--format", "json")):
        code, _, err = run(clone, *args)
        assert code == 0, err
        assert (clone / "docklock.pub").read_bytes() == committed
        assert _files(clone) == []  # no key files, no keys folder
    code, _, err = run(clone, "plan", "--no-refresh")
    assert "not recorded in the ledger" in err
    assert not (clone / ".docklock" / "ledger" / "entries.jsonl").exists()


def test_signing_commands_say_the_key_is_missing_and_how_to_get_it(
        origin_and_clone: tuple[Path, Path], run: Run) -> None:
    _, clone = origin_and_clone
    committed = (clone / "docklock.pub").read_bytes()
    for args in (("plan", "--no-refresh", "--out", str(clone / "p.plan")),
                 ("keys", "rotate")):
        code, _, err = run(clone, *args)
        assert code == 1, args
        assert "private key is not in this workspace" in err
        assert "keys import" in err
    assert not (clone / "p.plan").exists()
    assert (clone / "docklock.pub").read_bytes() == committed
    # apply / run reach the key through ensure_keys: the same refusal, no new key
    with pytest.raises(KeyMaterialError, match="private key is not in this workspace"):
        ensure_keys(WorkspacePaths(clone))
    assert (clone / "docklock.pub").read_bytes() == committed


def test_export_then_import_makes_the_clone_able_to_sign(
        origin_and_clone: tuple[Path, Path], run: Run, tmp_path: Path) -> None:
    origin, clone = origin_and_clone
    exported = tmp_path / "key.pem"
    assert run(origin, "keys", "export", str(exported))[0] == 0
    assert exported.stat().st_mode & 0o777 == 0o600
    code, _, err = run(origin, "keys", "export", str(exported))
    assert code == 1
    assert "already exists" in err
    code, out, err = run(clone, "keys", "import", str(exported))
    assert code == 0, err
    keyid = load_keyring(WorkspacePaths(clone)).current
    assert keyid in out
    assert require_signer(WorkspacePaths(clone)).keyid == keyid
    # The committed docklock.pub names the origin's ledger (keys init started it), so the
    # clone plans but records nothing until that ledger is copied too.
    code, _, err = run(clone, "plan", "--no-refresh")
    assert code == 0, err
    assert "ledger is missing" in err
    assert not (clone / ".docklock" / "ledger" / "entries.jsonl").exists()
    import shutil
    shutil.copytree(origin / ".docklock" / "ledger", clone / ".docklock" / "ledger",
                    dirs_exist_ok=True)
    before = Ledger.open(WorkspacePaths(origin)).size
    code, _, err = run(clone, "plan", "--no-refresh")
    assert code == 0, err
    assert Ledger.open(WorkspacePaths(clone)).size == before + 1
    assert run(clone, "ledger", "verify")[0] == 0


def test_import_refuses_a_key_that_is_not_the_current_one(
        origin_and_clone: tuple[Path, Path], run: Run, tmp_path: Path) -> None:
    _, clone = origin_and_clone
    stranger = _workspace(tmp_path / "stranger")
    assert run(stranger, "keys", "init")[0] == 0
    assert run(stranger, "keys", "export", str(tmp_path / "other.pem"))[0] == 0
    code, _, err = run(clone, "keys", "import", str(tmp_path / "other.pem"))
    assert code == 1
    assert "current key of docklock.pub" in err
    assert _files(clone) == []


def test_plan_without_any_keyring_creates_nothing(tmp_path: Path, run: Run) -> None:
    ws = _workspace(tmp_path / "new")
    code, _, err = run(ws, "plan", "--no-refresh")
    assert code == 0, err
    assert not (ws / "docklock.pub").exists()
    assert _files(ws) == []
    code, _, err = run(ws, "plan", "--no-refresh", "--out", str(ws / "p.plan"))
    assert code == 1
    assert "keys init" in err
    # the first apply (ensure_keys) may create the key where no docklock.pub exists
    signer = ensure_keys(WorkspacePaths(ws))
    assert load_keyring(WorkspacePaths(ws)).current == signer.keyid
