"""docklock.yaml's `spec.ledger` (witnesses, quorum), read once per file version.

Every checkpoint asks for it; only a workspace that names witnesses then loads the
witnessing code (docklock.ledger.witnessing), so a plan or apply without witnesses does
not import it (house rule 12).
"""

from __future__ import annotations

from docklock._fs import FileCache
from docklock.model import LedgerSpec
from docklock.workspace import WorkspacePaths

# docklock.yaml's `spec.ledger`: every checkpoint asks for it, and validating the file
# costs ~10 ms, half a checkpoint's budget. A changed file is re-read.
_SETTINGS: FileCache[LedgerSpec | None] = FileCache()


def ledger_settings(paths: WorkspacePaths) -> LedgerSpec | None:
    """`spec.ledger` of docklock.yaml (None without a docklock.yaml or a ledger section)."""
    return _SETTINGS.get(paths.config, lambda: _read(paths), None)


def _read(paths: WorkspacePaths) -> LedgerSpec | None:
    from docklock.load import load_cluster
    from docklock.model import ClusterSpec

    spec = load_cluster(paths).spec
    settings = spec.ledger if isinstance(spec, ClusterSpec) else None
    if settings is not None:
        from docklock.ledger.witnessing import _check_quorum

        _check_quorum(paths, settings)
    return settings


def witnessed(paths: WorkspacePaths) -> bool:
    """True when docklock.yaml names witnesses to cosign checkpoints."""
    settings = ledger_settings(paths)
    return settings is not None and bool(settings.witnesses)
