"""`docklock init -C X [DIR]` makes the workspace in X (or X/DIR), as `git -C X init` does,
instead of ignoring -C and writing into the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.cli import main


def test_init_honours_dash_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "-C", "ws1"]) == 0
    assert (tmp_path / "ws1" / "docklock.yaml").is_file()
    assert not (tmp_path / "docklock.yaml").exists()


def test_init_dir_is_relative_to_dash_c(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "-C", "ws2", "sub", "--name", "two"]) == 0
    assert "name: two" in (tmp_path / "ws2" / "sub" / "docklock.yaml").read_text()
    assert not (tmp_path / "sub").exists()
