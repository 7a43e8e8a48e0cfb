"""The seeded random stream and the cage files written for it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from docklock.cage import cage_seed, resolve_cage, write_cage_files
from docklock.cage.determinism import (
    RANDOM_STREAM_SIZE,
    random_source_name,
    random_stream,
    write_random_source,
)
from docklock.errors import CageError


def test_stream_is_sha256_counter_mode() -> None:
    stream = random_stream(7, 64)
    assert stream[:32] == hashlib.sha256(b"docklock/random/v1/7/0").digest()
    assert stream[32:] == hashlib.sha256(b"docklock/random/v1/7/1").digest()


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert random_stream(7) == random_stream(7)
    assert random_stream(7)[:32] != random_stream(8)[:32]
    assert len(random_stream(7)) == RANDOM_STREAM_SIZE
    assert random_stream(7, 10) == random_stream(7)[:10]


def test_source_is_content_addressed(tmp_path: Path) -> None:
    path = write_random_source(tmp_path, 5)
    data = path.read_bytes()
    assert path.name == f"random-{hashlib.sha256(data).hexdigest()}.bin"
    assert path.name == random_source_name(5)
    mtime = path.stat().st_mtime_ns
    assert write_random_source(tmp_path, 5) == path
    assert path.stat().st_mtime_ns == mtime  # idempotent: not rewritten


def test_write_cage_files_writes_profile_and_stream(tmp_path: Path) -> None:
    s = resolve_cage("deterministic", floor="standard", profiles={}, seed=9, cages_dir=tmp_path)
    assert cage_seed(s) == 9
    write_cage_files(s, tmp_path)
    assert s.seccomp_profile_path is not None
    assert s.random_source is not None
    profile_file = Path(s.seccomp_profile_path)
    raw = profile_file.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == s.seccomp_digest
    assert json.loads(raw)["defaultErrnoRet"] == 38
    assert Path(s.random_source).read_bytes() == random_stream(9)
    write_cage_files(s, tmp_path)  # again: a no-op
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [profile_file.name, Path(s.random_source).name])


def test_write_cage_files_for_standard_writes_nothing(tmp_path: Path) -> None:
    s = resolve_cage("standard", floor="standard", profiles={}, cages_dir=tmp_path)
    write_cage_files(s, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_write_cage_files_refuses_a_stale_digest(tmp_path: Path) -> None:
    s = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path)
    with pytest.raises(CageError, match="changed since it was planned"):
        write_cage_files(replace(s, seccomp_digest="0" * 64), tmp_path)


def test_write_cage_files_refuses_a_foreign_folder(tmp_path: Path) -> None:
    s = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path / "a")
    with pytest.raises(CageError, match="not under"):
        write_cage_files(s, tmp_path / "b")
