"""importers/write.py: all files or none, no overwrite without force, the target
workspace's spec folder and floor."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from docklock.errors import SpecError
from docklock.importers.write import ImportWriteError, gitignore_text, target_settings, write_all


def test_writes_every_file_and_creates_folders(tmp_path: Path) -> None:
    files = [(tmp_path / "ws" / "docklock.yaml", "a\n"),
             (tmp_path / "ws" / "specs" / "web.yaml", "b\n")]
    assert write_all(files, force=False) == [p for p, _ in files]
    assert [p.read_text() for p, _ in files] == ["a\n", "b\n"]
    assert sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["docklock.yaml", "specs"]


def test_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "web.yaml").write_text("mine\n")
    files = [(tmp_path / "specs" / "db.yaml", "new\n"), (tmp_path / "specs" / "web.yaml", "x\n")]
    with pytest.raises(ImportWriteError, match=r"would overwrite .*web\.yaml") as info:
        write_all(files, force=False)
    assert "--force" in info.value.hint
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == ["web.yaml"]
    assert (tmp_path / "specs" / "web.yaml").read_text() == "mine\n"


def test_force_replaces(tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text("old\n")
    write_all([(tmp_path / "web.yaml", "new\n")], force=True)
    assert (tmp_path / "web.yaml").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web.yaml"]  # no stage left


def test_a_failure_while_moving_puts_everything_back(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    (ws / "specs").mkdir(parents=True)
    (ws / "specs" / "web.yaml").write_text("old web\n")
    files = [(ws / "specs" / "web.yaml", "new web\n"), (ws / "specs" / "db.yaml", "db\n"),
             (ws / "specs" / "new" / "x.yaml", "x\n")]
    real = os.replace
    calls = {"n": 0}

    def failing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls["n"] += 1
        if str(dst).endswith("x.yaml"):
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="No space"):
        write_all(files, force=True)
    monkeypatch.setattr(os, "replace", real)
    assert calls["n"] >= 3
    assert (ws / "specs" / "web.yaml").read_text() == "old web\n"
    assert sorted(p.name for p in (ws / "specs").iterdir()) == ["web.yaml"]


def test_target_without_a_workspace(tmp_path: Path) -> None:
    t = target_settings(tmp_path)
    assert (t.spec_dir, t.floor, t.has_workspace) == (tmp_path / "specs", "standard", False)


def test_target_reads_spec_folder_and_floor(tmp_path: Path) -> None:
    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: x}\n"
        "spec: {specs: [conf, more], securityLevel: hardened}\n")
    t = target_settings(tmp_path)
    assert (t.spec_dir, t.floor, t.has_workspace) == ((tmp_path / "conf").resolve(),
                                                      "hardened", True)


@pytest.mark.parametrize(("text", "message"), [
    ("kind: Cluster\nspec: {specs: [../elsewhere]}\n", "outside the workspace"),
    ("kind: Cluster\nspec: {specs: [a\n", "invalid YAML"),
], ids=["spec folder outside", "yaml error"])
def test_target_with_a_bad_docklock_yaml(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "docklock.yaml").write_text(text)
    with pytest.raises(SpecError, match=message) as info:
        target_settings(tmp_path)
    assert info.value.location is not None


def test_gitignore_gets_the_state_folder_once(tmp_path: Path) -> None:
    assert gitignore_text(tmp_path) == ("# DockLock's local state, ledger, keys and caches\n"
                                        ".docklock/\n")
    (tmp_path / ".gitignore").write_text("node_modules")
    amended = gitignore_text(tmp_path)
    assert amended is not None
    assert amended.startswith("node_modules\n#")
    write_all([(tmp_path / ".gitignore", amended)], force=False,
              amend=[tmp_path / ".gitignore"])
    assert gitignore_text(tmp_path) is None
