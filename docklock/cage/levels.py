"""Built-in cage levels and the pure resolution of a cage name into CageSettings.

Levels rank standard < hardened < deterministic; each one includes everything the weaker
ones do. `military-grade` is an alias of the strongest. A CageProfile extends one level
and adds denied syscalls, capabilities (with a reason), limits and pinned env.

Invariant: `resolve_cage` is pure apart from reading the host's default seccomp profile
(cached) and hashing; it never writes. `write_cage_files` (in this package) writes the
files the settings point at, and apply/run call it before creating a container.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from docklock.cage.determinism import random_source_name
from docklock.cage.seccomp import base_profile_digest, profile_digest, seccomp_profile
from docklock.errors import CageError
from docklock.model import CageProfileSpec, EnvVar
from docklock.objects import CageSettings

STANDARD = "standard"
HARDENED = "hardened"
DETERMINISTIC = "deterministic"

LEVELS: tuple[str, ...] = (STANDARD, HARDENED, DETERMINISTIC)  # weakest first
ALIASES: Mapping[str, str] = {"military-grade": DETERMINISTIC}

# Syscalls the hardened level takes away on top of Podman's default profile. Each one
# either changes the container's view of the system (mounts, namespaces), inspects or
# alters other processes or the kernel, or is a well-known kernel attack surface.
HARDENED_DENY: tuple[str, ...] = (
    # mounts and namespaces
    "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
    "fsopen", "fsconfig", "fsmount", "fspick", "pivot_root", "chroot",
    "unshare", "setns",
    # clone3's flags cannot be inspected, so it gets ENOSYS and glibc falls back to clone
    "clone3",
    # other processes and the kernel
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "process_madvise", "bpf", "perf_event_open", "userfaultfd", "syslog",
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    # kernel keyring
    "keyctl", "add_key", "request_key",
    # file handles (container escape primitive)
    "open_by_handle_at", "name_to_handle_at",
    # setting clocks and host identity (clock_adjtime and adjtimex stay: with modes 0
    # they only read the clock, and setting it needs CAP_SYS_TIME, which is dropped)
    "settimeofday", "stime", "clock_settime", "clock_settime64",
    "sethostname", "setdomainname", "vhangup",
    # raw I/O and obsolete interfaces
    "iopl", "ioperm", "lookup_dcookie", "quotactl", "quotactl_fd", "nfsservctl",
    "uselib", "ustat", "sysfs", "_sysctl", "fanotify_init",
    # io_uring bypasses seccomp for the operations it performs
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)

# The deterministic level also takes the kernel's entropy away: getrandom fails with
# ENOSYS so libraries fall back to /dev/urandom, which is bound to the seeded stream.
DETERMINISTIC_DENY: tuple[str, ...] = (*HARDENED_DENY, "getrandom")

DEFAULT_PIDS: Mapping[str, int] = {STANDARD: 1024, HARDENED: 256, DETERMINISTIC: 256}
DEFAULT_MEMORY: Mapping[str, str | None] = {
    STANDARD: None, HARDENED: "512Mi", DETERMINISTIC: "512Mi",
}
HARDENED_TMPFS: Mapping[str, str] = {"/tmp": "size=64m,mode=1777"}

DETERMINISTIC_HOSTNAME = "docklock-cage"
DETERMINISTIC_TIMEZONE = "UTC"
DETERMINISTIC_UMASK = "0022"
# 1980-01-01T00:00:00Z: the earliest time zip and many archivers can represent.
SOURCE_DATE_EPOCH = "315532800"
SEED_ENV = "DOCKLOCK_SEED"


def pinned_env(seed: int) -> tuple[EnvVar, ...]:
    """Env the deterministic level pins (it overrides the spec's values)."""
    return (
        EnvVar("TZ", "UTC"),
        EnvVar("LC_ALL", "C"),
        EnvVar("LANG", "C"),
        EnvVar("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH),
        EnvVar("PYTHONHASHSEED", "0"),
        # The seed is part of the env so it is part of the cage digest (a new seed is a
        # new cage) and the program can see which stream it was given.
        EnvVar(SEED_ENV, str(seed)),
    )


def canonical_level(name: str) -> str:
    """A level name with aliases resolved; CageError for anything else."""
    level = ALIASES.get(name, name)
    if level not in LEVELS:
        known = ", ".join((*LEVELS, *ALIASES))
        raise CageError(f"unknown security level {name!r}", hint=f"use one of: {known}")
    return level


def level_rank(name: str) -> int:
    """0 for standard, 1 hardened, 2 deterministic (aliases resolved)."""
    return LEVELS.index(canonical_level(name))


def resolve_cage(
    name: str | None,
    *,
    floor: str,
    profiles: Mapping[str, CageProfileSpec],
    seed: int | None = None,
    cages_dir: Path | None = None,
    cap_add: Iterable[str] = (),
) -> CageSettings:
    """Resolve a level, alias or CageProfile name into the effective CageSettings.

    `name` None means the floor. `cap_add` are the resource's own capAdd entries (merged
    with the profile's). A cage weaker than `floor` raises CageError. With `cages_dir`
    the seccomp profile and random stream get their content-addressed host paths there
    (the files are written later by `write_cage_files`).
    """
    floor_level = canonical_level(floor)
    asked = floor if name is None else name
    profile: CageProfileSpec | None = None
    if asked in LEVELS or asked in ALIASES:
        level = canonical_level(asked)
    elif asked in profiles:
        profile = profiles[asked]
        if profile.extends not in LEVELS and profile.extends not in ALIASES:
            raise CageError(
                f"CageProfile {asked!r} extends {profile.extends!r}, which is not a level",
                hint=f"a CageProfile extends one of: {', '.join((*LEVELS, *ALIASES))}",
            )
        level = canonical_level(profile.extends)
    else:
        known = ", ".join((*LEVELS, *ALIASES, *sorted(profiles)))
        raise CageError(f"unknown cage {asked!r}", hint=f"use one of: {known}")

    if LEVELS.index(level) < LEVELS.index(floor_level):
        raise CageError(
            f"cage {asked!r} ({level}) is weaker than the cluster's securityLevel "
            f"{floor_level!r}",
            hint=f"ask for {floor_level!r} or stronger, or lower securityLevel in "
                 "docklock.yaml",
        )

    deny = list(_level_deny(level))
    caps = [c.upper() for c in cap_add]
    memory = DEFAULT_MEMORY[level]
    pids = DEFAULT_PIDS[level]
    env: dict[str, EnvVar] = {}
    if profile is not None:
        floor_deny = set(_level_deny(floor_level))
        weakening = sorted(set(profile.allowSyscalls) & floor_deny)
        if weakening:
            raise CageError(
                f"CageProfile {asked!r} allows {', '.join(weakening)}, which the "
                f"securityLevel {floor_level!r} denies",
                hint="remove them from allowSyscalls or lower the cluster's securityLevel",
            )
        allowed = set(profile.allowSyscalls)
        deny = [s for s in deny if s not in allowed]
        deny.extend(s for s in profile.denySyscalls if s not in deny)
        caps.extend(c.name.upper() for c in profile.capAdd)
        memory = profile.memory or memory
        pids = profile.pids or pids
        env.update({e.name: e for e in profile.env})

    hostname = timezone = umask = None
    random_source: str | None = None
    if level == DETERMINISTIC:
        effective_seed = 0 if seed is None else seed
        # The level's pins win over the profile's extra env: determinism is the promise.
        env.update({e.name: e for e in pinned_env(effective_seed)})
        hostname, timezone, umask = (DETERMINISTIC_HOSTNAME, DETERMINISTIC_TIMEZONE,
                                     DETERMINISTIC_UMASK)
        if cages_dir is not None:
            random_source = str(cages_dir / random_source_name(effective_seed))

    denied = tuple(sorted(set(deny)))
    draft = CageSettings(
        name=asked,
        level=level,
        cap_drop=("ALL",),
        cap_add=tuple(sorted(set(caps))),
        no_new_privileges=True,
        read_only=level != STANDARD,
        tmpfs=dict(HARDENED_TMPFS) if level != STANDARD else {},
        network_none=level == DETERMINISTIC,
        hostname=hostname,
        pids_limit=pids,
        memory=memory,
        env=tuple(env[k] for k in sorted(env)),
        timezone=timezone,
        umask=umask,
        random_source=random_source,
        denied_syscalls=denied,
    )
    if not denied:
        # Podman's own default profile: nothing to generate or write.
        return replace(draft, seccomp_digest=base_profile_digest())
    digest = profile_digest(seccomp_profile(draft))
    path = str(cages_dir / f"seccomp-{digest}.json") if cages_dir is not None else None
    return replace(draft, seccomp_digest=digest, seccomp_profile_path=path)


def _level_deny(level: str) -> tuple[str, ...]:
    if level == DETERMINISTIC:
        return DETERMINISTIC_DENY
    if level == HARDENED:
        return HARDENED_DENY
    return ()
