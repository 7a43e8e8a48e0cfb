"""docklock.yaml's `spec.ledger` (witnesses, quorum), read once per file version.

Every checkpoint asks for it; only a workspace that names witnesses then loads the
witnessing code (docklock.ledger.witnessing), so a plan or apply without witnesses does
not import it (house rule 12).
"""

from __future__ import annotations

from pathlib import Path

from docklock.model import LedgerSpec
from docklock.workspace import WorkspacePaths

# docklock.yaml's `spec.ledger` by (path, mtime, size): every checkpoint asks for it, and
# validating the file costs ~10 ms, half a checkpoint's budget. A changed file is re-read.
_SETTINGS: dict[Path, tuple[tuple[int, int, int], LedgerSpec | None]] = {}


def ledger_settings(paths: WorkspacePaths) -> LedgerSpec | None:
    """`spec.ledger` of docklock.yaml (None without a docklock.yaml or a ledger section)."""
    try:
        st = paths.config.stat()
    except FileNotFoundError:
        return None
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _SETTINGS.get(paths.config)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    from docklock.load import load_cluster
    from docklock.model import ClusterSpec

    spec = load_cluster(paths).spec
    settings = spec.ledger if isinstance(spec, ClusterSpec) else None
    if settings is not None:
        from docklock.ledger.witnessing import _check_quorum

        _check_quorum(paths, settings)
    _SETTINGS[paths.config] = (stamp, settings)
    return settings


def witnessed(paths: WorkspacePaths) -> bool:
    """True when docklock.yaml names witnesses to cosign checkpoints."""
    settings = ledger_settings(paths)
    return settings is not None and bool(settings.witnesses)
