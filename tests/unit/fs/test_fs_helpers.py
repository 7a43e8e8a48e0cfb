"""docklock._fs: the one atomic writer, fsync of folders, the GC pause and the clock."""

from __future__ import annotations

import gc
import os
import re
from pathlib import Path

import pytest

from docklock._fs import atomic_write_bytes, fsync_dir, gc_paused, utc_now
from docklock.state.store import atomic_write_bytes as reexported_writer
from docklock.state.store import gc_paused as reexported_pause


def test_writes_replaces_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"one")
    assert target.read_bytes() == b"one"
    assert target.stat().st_mode & 0o777 == 0o600  # private unless asked otherwise
    atomic_write_bytes(target, b"two", mode=0o644)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]  # no temp file left


def test_the_file_is_private_until_it_has_its_name(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[int] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        modes.append(os.stat(src).st_mode & 0o777)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_bytes(tmp_path / "key", b"secret")
    assert modes == [0o600]


def test_never_creates_missing_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "missing" / "f", b"x")
    assert not (tmp_path / "missing").exists()


def test_a_failed_write_leaves_the_target_and_no_temp_file(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inside").write_text("x")  # os.replace onto a non-empty folder fails
    with pytest.raises(IsADirectoryError):
        atomic_write_bytes(tmp_path / "dir", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_exclusive_keeps_what_is_already_there(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    atomic_write_bytes(target, b"first", exclusive=True)
    with pytest.raises(FileExistsError):
        atomic_write_bytes(target, b"second", exclusive=True)
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_fsync_dir_needs_a_folder(tmp_path: Path) -> None:
    fsync_dir(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        fsync_dir(tmp_path / "f")


def _fail_while_paused() -> None:
    with gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")


def test_gc_paused_restores_the_collector_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        _fail_while_paused()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_utc_now_has_seconds_precision() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())


def test_state_store_reexports_the_helpers() -> None:
    # plan, render, the CLI and the benches import them from docklock.state.store.
    assert reexported_writer is atomic_write_bytes
    assert reexported_pause is gc_paused
