"""The seeded random stream a deterministic cage binds over /dev/urandom and /dev/random.

Stream = SHA-256 in counter mode: block i is SHA-256("docklock/random/v1/<seed>/<i>"),
concatenated up to RANDOM_STREAM_SIZE bytes. Same seed, same bytes, on every host and
every run; another seed, unrelated bytes. A program that reads past the end gets EOF
(1 MiB is far more than seeding a PRNG needs). The file is content-addressed: its name
carries the SHA-256 of its bytes, so a file is never rewritten with other content.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from docklock._fs import atomic_write_bytes

RANDOM_STREAM_SIZE = 1 << 20
_DOMAIN = "docklock/random/v1"


def random_stream(seed: int, size: int = RANDOM_STREAM_SIZE) -> bytes:
    """`size` bytes derived from `seed` (SHA-256 counter mode)."""
    blocks = []
    produced = 0
    counter = 0
    while produced < size:
        block = hashlib.sha256(f"{_DOMAIN}/{seed}/{counter}".encode()).digest()
        blocks.append(block)
        produced += len(block)
        counter += 1
    return b"".join(blocks)[:size]


@lru_cache(maxsize=64)
def random_stream_digest(seed: int, size: int = RANDOM_STREAM_SIZE) -> str:
    return hashlib.sha256(random_stream(seed, size)).hexdigest()


def random_source_name(seed: int, size: int = RANDOM_STREAM_SIZE) -> str:
    """The content-addressed file name of a seed's stream."""
    return f"random-{random_stream_digest(seed, size)}.bin"


def write_random_source(cages_dir: Path, seed: int, size: int = RANDOM_STREAM_SIZE) -> Path:
    """Write the seed's stream under `cages_dir` (atomic; a no-op when already there)."""
    path = cages_dir / random_source_name(seed, size)
    if path.is_file() and path.stat().st_size == size:
        return path
    cages_dir.mkdir(parents=True, exist_ok=True)
    # 0644: bound read-only into containers whose user may not be the file's owner.
    atomic_write_bytes(path, random_stream(seed, size), mode=0o644)
    return path
