"""`StateStore.active_holder`: who holds the state lock now, read without touching it."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from docklock.state import StateStore
from docklock.workspace import WorkspacePaths


def _store(tmp_path: Path) -> StateStore:
    return StateStore(WorkspacePaths(tmp_path))


def test_no_lock_file_and_a_released_lock_have_no_holder(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.active_holder() is None
    with store.lock(command="docklock apply"):
        pass
    assert store.active_holder() is None  # the file is there, the flock is not


def test_the_holder_is_named_while_the_lock_is_held(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.lock(command="docklock apply --auto-approve") as lock:
        holder = store.active_holder()
        assert holder is not None
        assert holder.pid == os.getpid()
        assert holder.command == "docklock apply --auto-approve"
        assert holder.id == lock.info.id


def _hold(root: str, ready: multiprocessing.synchronize.Event,
          done: multiprocessing.synchronize.Event) -> None:
    with StateStore(WorkspacePaths(Path(root))).lock(command="docklock apply"):
        ready.set()
        done.wait(30)


def test_asking_never_takes_the_lock_from_another_process(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), ready, done))
    child.start()
    try:
        assert ready.wait(30)
        for _ in range(50):  # is_locked() would flock for a moment; this must not
            holder = _store(tmp_path).active_holder()
            assert holder is not None
            assert holder.pid == child.pid
    finally:
        done.set()
        child.join(30)
    assert _store(tmp_path).active_holder() is None
