"""Cages: security levels, seccomp profiles, the determinism cage, witnesses and replay.

Public API (everything else is internal):

- `resolve_cage(name, floor=, profiles=, seed=, cages_dir=, cap_add=)` → CageSettings
  (pure: the render step calls it for every container);
- `write_cage_files(settings, cages_dir)` writes the files a cage points at (apply and
  `docklock run` call it before creating a container);
- `podman_create_kwargs(config)` maps a ContainerConfig to podman-py create kwargs;
- `seccomp_profile(settings_or_deny_list)` renders a profile as OCI/Podman JSON;
- `LEVELS`, `ALIASES`, `level_rank(name)`.
"""

from __future__ import annotations

from docklock.cage.files import cage_seed, write_cage_files
from docklock.cage.levels import (
    ALIASES,
    DETERMINISTIC,
    HARDENED,
    LEVELS,
    STANDARD,
    canonical_level,
    level_rank,
    resolve_cage,
)
from docklock.cage.podman_args import podman_create_kwargs
from docklock.cage.seccomp import profile_digest, seccomp_profile

__all__ = [
    "ALIASES",
    "DETERMINISTIC",
    "HARDENED",
    "LEVELS",
    "STANDARD",
    "cage_seed",
    "canonical_level",
    "level_rank",
    "podman_create_kwargs",
    "profile_digest",
    "resolve_cage",
    "seccomp_profile",
    "write_cage_files",
]
