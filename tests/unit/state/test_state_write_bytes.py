"""StateStore.write_bytes: importing a state document byte for byte (state migrate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.errors import StateError
from docklock.state import StateStore, locked
from docklock.workspace import WorkspacePaths

DOC = (b'{"cluster":"demo","format":1,"lineage":'
       b'"7d2a0c5e-0000-4000-8000-000000000000","resources":{},"serial":41}\n')


def test_imports_bytes_keeping_lineage_and_serial(tmp_path: Path) -> None:
    store = StateStore(WorkspacePaths(tmp_path))
    with locked(store, command="docklock state migrate"):
        state = store.write_bytes(DOC)
        assert (state.lineage, state.serial) == ("7d2a0c5e-0000-4000-8000-000000000000", 41)
        assert store.path.read_bytes() == DOC
        assert store.path.stat().st_mode & 0o777 == 0o600
        # The next ordinary write follows it (serial 42), as after any write.
        assert store.write(store.read()).serial == 42


def test_refuses_an_existing_state_and_leaves_it(tmp_path: Path) -> None:
    store = StateStore(WorkspacePaths(tmp_path))
    with locked(store, command="docklock apply"):
        store.write(store.read(cluster="demo"))
    before = store.path.read_bytes()
    with locked(store, command="docklock state migrate"), \
            pytest.raises(StateError, match="already holds state"):
        store.write_bytes(DOC)
    assert store.path.read_bytes() == before


def test_refuses_without_the_lock_or_with_bad_bytes(tmp_path: Path) -> None:
    store = StateStore(WorkspacePaths(tmp_path))
    with pytest.raises(StateError, match="without holding the state lock"):
        store.write_bytes(DOC)
    with locked(store, command="docklock state migrate"), \
            pytest.raises(StateError, match="not valid JSON"):
        store.write_bytes(b"{not json")
    assert not store.path.exists()
