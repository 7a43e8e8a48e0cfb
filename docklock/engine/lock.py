"""The state lock as a use case: `force_unlock` (a stuck lock after a crash)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docklock.engine.context import Context
    from docklock.state import LockInfo


@dataclass(frozen=True)
class Unlocked:
    """The lock record removed (None: it named no holder) and whether its process was
    still alive (it may go on writing state)."""

    info: LockInfo | None
    held: bool

    @property
    def description(self) -> str:
        return self.info.describe() if self.info is not None else "an unnamed lock"

    def to_dict(self) -> dict[str, Any]:
        return {"lock": self.info.to_dict() if self.info is not None else None,
                "held": self.held}


def force_unlock(ctx: Context, lock_id: str | None) -> Unlocked:
    """Remove the state lock `lock_id` (None: whatever lock is there). Raises LockError
    when `lock_id` names another lock than the one held."""
    from docklock.backend import open_state_store

    info, held = open_state_store(ctx.paths).force_unlock(lock_id)
    return Unlocked(info, held)
