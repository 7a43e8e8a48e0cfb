"""The state store: atomic serial-numbered writes, corruption refusal, the flock lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from docklock.errors import LockError, StateError
from docklock.model import Address
from docklock.objects import DesiredObject, ObjectKind
from docklock.state import (
    STATE_FORMAT,
    RecordedObject,
    State,
    StateStore,
    locked,
    recorded_config,
)
from docklock.workspace import WorkspacePaths


@pytest.fixture
def paths(tmp_path: Path) -> WorkspacePaths:
    (tmp_path / "docklock.yaml").write_text("kind: Cluster\n")
    return WorkspacePaths(tmp_path)


def _obj(key: str = "container:demo-default-web-1", secret: str = "hunter2") -> DesiredObject:
    config = {"name": "demo-default-web-1", "image": "img",
              "env": [["MODE", "prod", False], ["PASSWORD", secret, True]],
              "cage": {"name": "standard", "level": "standard",
                       "env": [["TOKEN", secret, True]]}}
    return DesiredObject(key=key, kind=ObjectKind.CONTAINER,
                         address=Address("Service", "default", "web"),
                         name="demo-default-web-1", config=config, config_hash="h1",
                         replica=1, depends_on=("network:demo-default-back",),
                         sensitive=("env.PASSWORD",))


def _state_with_one(state: State) -> State:
    rec = RecordedObject.from_desired(_obj(), id="c" * 64, created="2026-01-01T00:00:00Z",
                                      image_id="sha256:" + "a" * 64)
    return state.with_object("Service/default/web", rec)


def test_state_round_trips_through_dict() -> None:
    state = _state_with_one(State(lineage="L", serial=4, cluster="demo"))
    assert State.from_dict(state.to_dict()) == state
    assert state.object_count() == 1
    assert state.without_object("Service/default/web", "container:demo-default-web-1") \
        .resources == {}


def test_missing_state_reads_as_empty_serial_zero(paths: WorkspacePaths) -> None:
    state = StateStore(paths).read(cluster="demo")
    assert (state.lineage, state.serial, state.cluster, state.is_empty) == \
        (None, 0, "demo", True)


def test_first_write_draws_lineage_and_each_write_bumps_serial(paths: WorkspacePaths) -> None:
    store = StateStore(paths)
    with locked(store, command="test"):
        first = store.write(_state_with_one(store.read(cluster="demo")))
        second = store.write(first)
    assert first.serial == 1
    assert second.serial == 2
    assert first.lineage is not None
    assert first.lineage == second.lineage
    on_disk = json.loads(paths.state.read_text())
    assert on_disk["serial"] == 2
    assert on_disk["format"] == STATE_FORMAT
    assert on_disk["lineage"] == first.lineage
    assert json.loads(store.backup_path.read_text())["serial"] == 1
    assert StateStore(paths).read() == second
    assert oct(paths.state.stat().st_mode & 0o777) == "0o600"
    # No temp files are left behind by the atomic writes.
    assert sorted(p.name for p in paths.dot.iterdir()) == \
        ["state.json", "state.json.backup", "state.lock"]


def test_state_file_never_holds_a_sensitive_value(paths: WorkspacePaths) -> None:
    store = StateStore(paths)
    with locked(store, command="test"):
        store.write(_state_with_one(store.read()))
    text = paths.state.read_text()
    assert "hunter2" not in text
    assert "prod" in text  # non-sensitive values are kept for field diffs
    rec = store.read().objects_by_key()["container:demo-default-web-1"][1]
    env = {e[0]: e for e in rec.config["env"]}
    assert env["PASSWORD"][1].startswith("sha256:")
    assert env["PASSWORD"][2] is True


def test_sensitive_digest_changes_with_the_value() -> None:
    a = recorded_config(_obj(secret="one"))
    b = recorded_config(_obj(secret="two"))
    assert a["env"][1][1] != b["env"][1][1]
    assert a["cage"]["env"][0][1] != b["cage"]["env"][0][1]
    assert a == recorded_config(_obj(secret="one"))


def test_write_without_the_lock_is_refused(paths: WorkspacePaths) -> None:
    with pytest.raises(StateError, match="without holding the state lock"):
        StateStore(paths).write(State())
    assert not paths.state.exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "top level is not an object"),
    (b'{"format": 1, "serial": "x"}', "corrupt"),
    (b'{"format": 1, "serial": 1, "resources": {"a": {"objects": {"k": {}}}}}', "corrupt"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_corrupt_state_is_refused_and_never_overwritten(
        paths: WorkspacePaths, content: bytes, message: str) -> None:
    paths.dot.mkdir()
    paths.state.write_bytes(content)
    store = StateStore(paths)
    with pytest.raises(StateError, match=message) as err:
        store.read()
    assert "will not overwrite" in err.value.hint or "restore" in err.value.hint
    with locked(store, command="test"), pytest.raises(StateError):
        store.write(State(lineage="x", serial=0))
    assert paths.state.read_bytes() == content


def test_newer_state_format_is_refused(paths: WorkspacePaths) -> None:
    paths.dot.mkdir()
    paths.state.write_text(json.dumps({"format": STATE_FORMAT + 1, "serial": 1}))
    with pytest.raises(StateError, match=r"upgrade DockLock|reads up to"):
        StateStore(paths).read()


def test_write_refuses_when_the_file_changed_since_it_was_read(paths: WorkspacePaths) -> None:
    store = StateStore(paths)
    with locked(store, command="test"):
        written = store.write(State(cluster="demo"))
    other = StateStore(paths)
    with locked(other, command="other"):
        other.write(other.read())  # serial 2 on disk
    with locked(store, command="test"), pytest.raises(StateError, match="changed since"):
        store.write(written)  # still serial 1 in memory


def test_second_lock_fails_at_once_naming_the_holder(paths: WorkspacePaths) -> None:
    first = StateStore(paths)
    second = StateStore(paths)
    with locked(first, command="docklock apply"):
        start = time.monotonic()
        with pytest.raises(LockError) as err:
            second.lock(command="docklock plan")
        assert time.monotonic() - start < 0.5
    text = err.value.message
    assert f"pid {os.getpid()}" in text
    assert "docklock apply" in text
    assert "since" in text
    assert "force-unlock" in err.value.hint
    # Released: the next one gets it, and the record is gone while nobody holds it.
    assert StateStore(paths).holder() is None
    with locked(second, command="docklock plan"):
        assert second.holder() is not None


def test_lock_held_by_another_process(paths: WorkspacePaths) -> None:
    code = (
        "import sys, time\n"
        "from docklock.state import StateStore\n"
        "from docklock.workspace import WorkspacePaths\n"
        "s = StateStore(WorkspacePaths(__import__('pathlib').Path(sys.argv[1])))\n"
        "lk = s.lock(command='docklock apply --auto-approve')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(paths.root)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockError, match=f"pid {proc.pid} .*docklock apply"):
            StateStore(paths).lock(command="docklock plan")
    finally:
        proc.kill()
        proc.wait()
    # The kernel dropped the dead holder's flock: its record is stale and is overwritten.
    with locked(StateStore(paths), command="docklock plan") as lk:
        assert StateStore(paths).holder() == lk.info


def test_lock_timeout_waits_for_the_holder(paths: WorkspacePaths) -> None:
    holder = StateStore(paths).lock(command="docklock apply")
    timer = threading.Timer(0.3, holder.release)
    timer.start()
    try:
        start = time.monotonic()
        with locked(StateStore(paths), command="docklock plan", timeout=5):
            waited = time.monotonic() - start
    finally:
        timer.cancel()
    assert 0.2 < waited < 4


def test_lock_timeout_expires(paths: WorkspacePaths) -> None:
    with locked(StateStore(paths), command="docklock apply"):
        start = time.monotonic()
        with pytest.raises(LockError, match=r"waited 0\.3s"):
            StateStore(paths).lock(command="docklock plan", timeout=0.3)
        assert time.monotonic() - start >= 0.3


def test_force_unlock_checks_the_id_and_breaks_a_held_lock(paths: WorkspacePaths) -> None:
    stuck = StateStore(paths).lock(command="docklock apply")
    store = StateStore(paths)
    with pytest.raises(LockError, match="does not match"):
        store.force_unlock("not-the-id")
    info, held = store.force_unlock(stuck.info.id)
    assert info == stuck.info
    assert held is True
    # A new writer can lock and write although the stuck process still holds the old inode.
    with locked(store, command="docklock apply"):
        store.write(store.read())
    stuck.release()  # must not disturb the new lock file
    assert StateStore(paths).read().serial == 1


def test_force_unlock_when_nothing_is_locked(paths: WorkspacePaths) -> None:
    with pytest.raises(LockError, match="not locked"):
        StateStore(paths).force_unlock(None)


def test_force_unlock_without_id_removes_a_stale_record(paths: WorkspacePaths) -> None:
    paths.dot.mkdir()
    paths.state_lock.write_text(json.dumps({"id": "old", "pid": 999999, "host": "h",
                                            "command": "docklock apply", "since": "t"}))
    info, held = StateStore(paths).force_unlock(None)
    assert info is not None
    assert info.id == "old"
    assert held is False
    assert not paths.state_lock.exists()
