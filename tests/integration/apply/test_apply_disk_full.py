"""Issue 11 D19 on real Podman: the ledger is written ahead, and a full disk stops apply.

The workspace lives on a small tmpfs of its own. While `docklock apply` creates twelve
services one at a time, the test fills the file system to the last byte. Whatever
happened then, every container that exists in Podman must have its intent recorded in
the ledger before it was created (a `change` entry with status `pending` for its create
step): apply changes nothing it could not record. Once space is freed, apply converges
(no duplicates), and `ledger verify` passes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from applyhelp import cli, make_workspace, service
from conftest import PodmanHarness

pytestmark = pytest.mark.podman

SERVICES = 12
SLEEPER = '[sleep, "600"]'


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(mnt)],
                   check=True, capture_output=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def fill(folder: Path) -> Path:
    """Write a file until the file system is full to the byte; return it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 8, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def pending_creates(ws: Path) -> set[str]:
    """Container names whose create step has a write-ahead `pending` entry."""
    out: set[str] = set()
    for line in (ws / ".docklock" / "ledger" / "entries.jsonl").read_bytes().splitlines():
        entry = json.loads(line)
        payload = entry.get("payload") or {}
        if entry.get("type") == "change" and payload.get("status") == "pending" and \
                str(payload.get("step", "")).startswith("create:container:"):
            out.add(payload["step"].removeprefix("create:container:"))
    return out


def test_disk_full_mid_apply_changes_nothing_unrecorded_then_converges(
        podman: PodmanHarness, small_fs: Path) -> None:
    c = "td19"
    specs = "---\n".join(service(f"s{i:02d}", podman.image, command=SLEEPER, health=False)
                         for i in range(SERVICES))
    ws = make_workspace(small_fs / "ws", c, specs)
    names = {f"{c}-default-s{i:02d}-1" for i in range(SERVICES)}

    filled: list[Path] = []
    stop = threading.Event()

    def filler() -> None:
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            if len(podman.containers(f"io.docklock.cluster={c}")) >= 2:
                filled.append(fill(small_fs))
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=filler)
    watcher.start()
    try:
        done = cli(podman, ws, "apply", "--auto-approve", "--parallelism", "1")
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert filled, "the disk was never filled: apply finished too soon?"
    created = set(podman.containers(f"io.docklock.cluster={c}"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "No space left on device" in done.stderr or "stopped" in done.stderr, done.stderr
    assert created < names, created  # it stopped before the end
    # The write-ahead property: nothing exists in Podman whose intent is not recorded.
    unrecorded = created - pending_creates(ws)
    assert not unrecorded, (unrecorded, done.stdout, done.stderr)

    filled[0].unlink()
    # Before anything else runs, the ledger is in a documented state: valid, or entries
    # the halted apply could not checkpoint, which the next command signs.
    early = cli(podman, ws, "ledger", "verify")
    assert early.returncode == 0 or "the next plan or apply signs" in early.stderr, \
        early.stdout + early.stderr
    again = cli(podman, ws, "apply", "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(podman.containers(f"io.docklock.cluster={c}")) == names  # no duplicates
    plan = cli(podman, ws, "plan", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    verify = cli(podman, ws, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    with contextlib.suppress(FileNotFoundError):
        filled[0].unlink()
