"""Small file-system helpers shared by the modules that own files.

This module owns no file: it writes only where its caller tells it to. Each owner still
writes only its own files (state/ the state, ledger/ the ledger and keys, cage/ the cage
files and witnesses, load/ the CUE cache).

Invariants of `atomic_write_bytes`:
- a reader sees the old file or the new one, never a torn one (temp file in the same
  folder, fsync, `os.replace`, fsync of the folder);
- the temp file is made by `mkstemp`, so it is 0600 from its creation: a private file is
  never briefly readable by others; it gets its final `mode` before the rename;
- on any error the temp file is removed and the target is left as it was;
- it never creates folders: a missing parent is the caller's mistake (FileNotFoundError),
  so a typo cannot silently make a tree, and each owner decides its folders' modes.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600,
                       exclusive: bool = False) -> None:
    """Replace `path` with `data` atomically; the file ends with `mode`.

    With `exclusive`, `path` must not exist yet: the file is linked into place and
    FileExistsError says another writer created it first (theirs is kept).
    """
    folder = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)  # a buffered file object writes everything (loops on short writes)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def fsync_dir(path: Path) -> None:
    """Make a rename, creation or unlink inside the folder `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block that builds large acyclic data.

    Loading specs, parsing a 10k-object state, rendering and diffing allocate hundreds of
    thousands of dicts and tuples and free no cycles; the collector's repeated full scans
    of them cost more than the work itself and made the cost grow faster than linearly.
    Reference counting still frees everything; the collector resumes after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def utc_now() -> str:
    """ISO 8601 UTC with seconds precision (`2025-01-31T12:00:00Z`).

    The form state, plans, lock records and key records use. Ledger entries keep their
    own microsecond clock on purpose (docklock.ledger.store.entry_time).
    """
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_T = TypeVar("_T")


class FileCache(Generic[_T]):
    """Values derived from a file, re-derived only when the file changes (its mtime, size
    or inode): docklock.yaml's settings are asked for several times per command."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[tuple[int, int, int], _T]] = {}

    def get(self, path: Path, derive: Callable[[], _T], missing: _T) -> _T:
        """`derive()` for the current version of `path`; `missing` when it does not exist."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return missing
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._seen.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        value = derive()
        self._seen[path] = (stamp, value)
        return value
