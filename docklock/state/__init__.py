"""Recorded state: `.docklock/state.json` (atomic, serial-numbered) and its lock.

Only this package writes state files. `StateStore(paths)` reads (no lock needed),
writes (lock needed) and locks; `State`/`RecordedObject` are the recorded data.
"""

from docklock.state.model import (
    STATE_FORMAT,
    RecordedObject,
    RecordedResource,
    State,
    recorded_config,
    sensitive_digest,
)
from docklock.state.store import (
    LockInfo,
    StateLock,
    StateStore,
    atomic_write_bytes,
    gc_paused,
    locked,
    utc_now,
)

__all__ = [
    "STATE_FORMAT",
    "LockInfo",
    "RecordedObject",
    "RecordedResource",
    "State",
    "StateLock",
    "StateStore",
    "atomic_write_bytes",
    "gc_paused",
    "locked",
    "recorded_config",
    "sensitive_digest",
    "utc_now",
]
