"""One `docklock run` or `verify` of a Job at a time: a per-job lock file.

`.docklock/jobs/<Job.namespace.name>.lock`, held with fcntl.flock (exclusive, blocking)
while a run or verify of that job executes and files its outputs, streams, evidence and
witness. Two verifies of one job at once would otherwise move outputs over each other
and mix evidence from different runs. Other jobs are not blocked. The lock is released
when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from docklock.cage.jobs import JobError
from docklock.model import Address
from docklock.workspace import WorkspacePaths


@contextmanager
def job_lock(paths: WorkspacePaths, address: Address) -> Iterator[None]:
    folder = paths.dot / "jobs"
    path = folder / f"{address.kind}.{address.namespace}.{address.name}.lock"
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # job folders hold outputs and streams: private
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise JobError(f"cannot take the lock of {address} at {path}: {exc.strerror}",
                       hint="run docklock as a user who may write the workspace's "
                            ".docklock/ folder") from exc
    try:
        # Blocking: the holder's own job timeout bounds the wait; Ctrl-C interrupts it.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the flock
