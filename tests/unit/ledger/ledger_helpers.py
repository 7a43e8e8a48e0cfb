"""Shared helpers for the ledger tests (a unique module name: test folders have no
__init__.py, and another area's conftest may also be imported as `conftest`)."""

from __future__ import annotations

from dataclasses import dataclass

from docklock.ledger import Ledger


class Clock:
    """Deterministic, increasing timestamps."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"2025-01-01T00:00:{self.n // 1000000:02d}.{self.n % 1000000:06d}Z"


@dataclass
class Built:
    ledger: Ledger
    checkpoint_sizes: list[int]
    tail: int
