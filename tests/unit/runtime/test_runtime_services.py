"""Private-service bookkeeping: the runtime folder, owner records, reaping (no Podman).

A stand-in "service" is a real process whose argv carries `system service` (what the
reaper checks before it signals anything); owners are real processes too, dead or alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from docklock.runtime import _services
from docklock.runtime._services import Owner, alive, reap_stale, runtime_root, start_time


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def fake_service() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "system", "service"], start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _folder(root: Path, owner: Owner | None, name: str | None = None) -> Path:
    folder = root / (name or f"svc-{owner.owner_pid if owner else 0}-abc")
    folder.mkdir()
    (folder / "service.log").write_text("log")
    if owner is not None:
        _services.write_owner(folder, owner)
    return folder


def test_start_time_identifies_a_process() -> None:
    me = start_time(os.getpid())
    assert me is not None
    assert alive(os.getpid(), me)
    assert not alive(os.getpid(), me + 1)  # same pid, another process (pid reuse)
    assert start_time(_dead_pid()) is None


def test_runtime_root_is_private_or_refused(tmp_path: Path) -> None:
    root = runtime_root({"DOCKLOCK_RUNTIME_DIR": str(tmp_path / "rt")})
    assert root == tmp_path / "rt"
    assert (root.stat().st_mode & 0o777) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert runtime_root({"DOCKLOCK_RUNTIME_DIR": str(shared)}) is None
    planted = tmp_path / "planted"
    planted.symlink_to(tmp_path / "rt")
    assert runtime_root({"DOCKLOCK_RUNTIME_DIR": str(planted)}) is None
    xdg = runtime_root({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert xdg == tmp_path / "docklock"


def test_an_unsafe_root_still_gives_a_folder_but_reaps_nothing(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    stale = _folder(shared, Owner(_dead_pid(), None))
    folder, tracked = _services.new_folder({"DOCKLOCK_RUNTIME_DIR": str(shared)})
    try:
        assert not tracked
        assert folder.parent != shared
        assert stale.exists()
    finally:
        folder.rmdir()


def test_reap_stops_a_dead_owners_service_and_removes_its_folder(
        tmp_path: Path, fake_service: subprocess.Popen[bytes]) -> None:
    svc = fake_service
    stale = _folder(tmp_path, Owner(_dead_pid(), None, svc.pid, start_time(svc.pid)))
    live = _folder(tmp_path, Owner(os.getpid(), start_time(os.getpid()), 0, None))
    removed = reap_stale(tmp_path)
    assert removed == [stale]
    assert not stale.exists()
    assert live.exists()
    assert svc.wait(timeout=10) == -signal.SIGTERM


def test_reap_never_signals_a_process_that_is_not_the_recorded_service(
        tmp_path: Path, fake_service: subprocess.Popen[bytes]) -> None:
    svc = fake_service
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    try:
        wrong_start = _folder(tmp_path, Owner(_dead_pid(), None, svc.pid,
                                              (start_time(svc.pid) or 0) + 7), "svc-1-a")
        not_podman = _folder(tmp_path, Owner(_dead_pid(), None, other.pid,
                                             start_time(other.pid)), "svc-2-b")
        reap_stale(tmp_path)
        time.sleep(0.2)
        assert svc.poll() is None  # pid reused by another process: left alone
        assert other.poll() is None  # not a `podman system service`: left alone
        assert not wrong_start.exists()
        assert not not_podman.exists()
    finally:
        other.kill()
        other.wait()


def test_owner_alive_with_another_start_time_is_stale(tmp_path: Path) -> None:
    reused = _folder(tmp_path, Owner(os.getpid(), (start_time(os.getpid()) or 0) + 1))
    assert reap_stale(tmp_path) == [reused]


def test_a_folder_without_owner_record_is_judged_by_its_name(tmp_path: Path) -> None:
    dead = _folder(tmp_path, None, f"svc-{_dead_pid()}-x")
    mine = _folder(tmp_path, None, f"svc-{os.getpid()}-y")  # being set up right now
    other = tmp_path / "not-ours"
    other.mkdir()
    assert reap_stale(tmp_path) == [dead]
    assert mine.exists()
    assert other.exists()


def test_parent_death_signal_reaches_the_grandchild(tmp_path: Path) -> None:
    """A parent that arms die_with_parent() and is SIGKILLed takes its child along."""
    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", f"""
import subprocess, sys, time
from docklock.runtime._services import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         preexec_fn=die_with_parent())
open({str(pidfile)!r}, "w").write(str(child.pid))
time.sleep(60)
"""])
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child = int(pidfile.read_text())
    started = start_time(child)
    assert alive(child, started)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(child, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child, started)


def _term_and_wait() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # delivered at the next bytecode boundary
    time.sleep(1)


def test_sigterm_becomes_one_keyboard_interrupt() -> None:
    guard = _services.TermAsInterrupt()
    # Start from the default disposition whatever the test runner installed, and put
    # the runner's handler back afterwards, so the test always runs.
    runner = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        guard.install()
        try:
            with pytest.raises(KeyboardInterrupt):
                _term_and_wait()
            os.kill(os.getpid(), signal.SIGTERM)  # a second one, during clean-up: ignored
            time.sleep(0.1)
        finally:
            guard.uninstall()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, runner)


def test_a_killed_docklock_takes_its_ssh_probe_tunnel_along(tmp_path: Path) -> None:
    """`ssh -N` never ends by itself: the probe's ssh must die with DockLock too."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"  # logs in "forever": never opens the forwarded socket
    fake.write_text(f'#!/bin/sh\necho $$ > {tmp_path}/ssh.pid\nexec sleep 60\n')
    fake.chmod(0o755)
    parent = subprocess.Popen([sys.executable, "-c", """
import os
from docklock.runtime.podman import _ssh_problem
_ssh_problem("ssh://nobody@example.invalid/run/podman/podman.sock", 60)
"""], env={**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"})
    pidfile = tmp_path / "ssh.pid"
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    ssh = int(pidfile.read_text())
    started = start_time(ssh)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while alive(ssh, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = alive(ssh, started)
    if leaked:
        os.kill(ssh, signal.SIGKILL)  # our own child's child: do not leave it
    assert not leaked
