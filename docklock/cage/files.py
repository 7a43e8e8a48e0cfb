"""Writing the host files a cage points at: its seccomp profile and its random stream.

Both are content-addressed under `.docklock/cages/`, written atomically, and never
rewritten with other content, so writing them again is a no-op. apply and `docklock
run` call `write_cage_files` before creating a container: the Podman service reads
the seccomp profile from this host path (so the service must run on this host).
"""

from __future__ import annotations

from pathlib import Path

from docklock._fs import atomic_write_bytes
from docklock.cage.determinism import random_source_name, write_random_source
from docklock.cage.levels import SEED_ENV
from docklock.cage.seccomp import profile_bytes, profile_digest, seccomp_profile
from docklock.errors import CageError
from docklock.objects import CageSettings


def cage_seed(settings: CageSettings) -> int | None:
    """The seed of a deterministic cage (pinned in its env), None for other cages."""
    for env in settings.env:
        if env.name == SEED_ENV:
            return int(env.value)
    return None


def write_cage_files(settings: CageSettings, cages_dir: Path) -> None:
    """Write the seccomp profile and random stream `settings` refer to (idempotent)."""
    if settings.seccomp_profile_path is not None:
        profile = seccomp_profile(settings)
        digest = profile_digest(profile)
        if digest != settings.seccomp_digest:
            raise CageError(
                f"the seccomp profile for cage {settings.name!r} changed since it was "
                f"planned ({settings.seccomp_digest} → {digest})",
                hint="the host's default seccomp profile changed; plan again",
            )
        path = Path(settings.seccomp_profile_path)
        if path.parent.resolve() != cages_dir.resolve():
            raise CageError(f"seccomp profile path {path} is not under {cages_dir}")
        if not (path.is_file() and path.stat().st_size == len(profile_bytes(profile))):
            cages_dir.mkdir(parents=True, exist_ok=True)
            # 0644: the Podman service (maybe another user) reads the profile.
            atomic_write_bytes(path, profile_bytes(profile), mode=0o644)
    if settings.random_source is not None:
        seed = cage_seed(settings)
        if seed is None:
            raise CageError(f"cage {settings.name!r} has a random source but no seed")
        expected = cages_dir / random_source_name(seed)
        if Path(settings.random_source).resolve() != expected.resolve():
            raise CageError(
                f"random source {settings.random_source} does not match seed {seed}",
                hint="plan again",
            )
        write_random_source(cages_dir, seed)
