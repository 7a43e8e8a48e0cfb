"""Seccomp profiles as OCI/Podman JSON, generated from the host's default profile.

The base is the profile Podman itself uses (/usr/share/containers/seccomp.json, else
/etc/containers/seccomp.json, else the copy shipped in docklock/cage/data). A cage's
profile is that base minus its denied syscalls, which get explicit ERRNO rules:

- EPERM for most, the answer a caged program expects for "not allowed";
- ENOSYS where userland has a fallback it only takes on ENOSYS: glibc >= 2.34 creates
  threads with clone3 and falls back to clone only on ENOSYS (EPERM would break every
  pthread_create), libraries fall back from getrandom to /dev/urandom, io_uring users
  fall back to plain syscalls.
- A deterministic Job's cage (docklock.cage.replay) also allows personality(2) with
  ADDR_NO_RANDOMIZE, the one value its launcher sets to turn ASLR off.
- When `unshare` is denied, `clone` is only allowed without namespace flags (clone's
  flags are a register seccomp can inspect; clone3's are in memory it cannot, hence
  clone3 → ENOSYS), so namespaces cannot be created through the back door.

`defaultErrnoRet` is ENOSYS (38) for everything the profile does not list. Profiles
are identified by the SHA-256 of their canonical JSON; the file name carries it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from docklock.errors import CageError
from docklock.objects import CageSettings, canonical_json, sha256_hex

HOST_PROFILES: tuple[Path, ...] = (
    Path("/usr/share/containers/seccomp.json"),
    Path("/etc/containers/seccomp.json"),
)
PACKAGED_PROFILE = Path(__file__).resolve().parent / "data" / "seccomp-default.json"

EPERM = 1
ENOSYS = 38
ENOSYS_SYSCALLS: frozenset[str] = frozenset({
    "clone3", "getrandom", "io_uring_setup", "io_uring_enter", "io_uring_register",
})
# personality(2): PER_LINUX | ADDR_NO_RANDOMIZE, what docklock-launch asks for.
ADDR_NO_RANDOMIZE = 0x0040000
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (the mask Docker uses too).
CLONE_NAMESPACE_FLAGS = 0x7E020000
_S390 = ["s390", "s390x"]
COMMENT = "docklock cage: denied"


def base_profile_path() -> Path:
    """The default profile Podman uses on this host, or the packaged copy."""
    for path in HOST_PROFILES:
        if path.is_file():
            return path
    return PACKAGED_PROFILE


@lru_cache(maxsize=8)
def _load(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, ValueError) as exc:
        raise CageError(f"cannot read the seccomp profile {path}: {exc}",
                        hint="reinstall containers-common or pass a valid profile") from exc
    return text


def base_profile(path: Path | None = None) -> dict[str, Any]:
    """A fresh copy of the base profile (parsed once per process)."""
    data: dict[str, Any] = json.loads(_load(str(path or base_profile_path())))
    return data


def profile_digest(profile: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(profile))


def profile_bytes(profile: Mapping[str, Any]) -> bytes:
    """The exact bytes written to disk: their SHA-256 is the profile's digest."""
    return canonical_json(profile)


def base_profile_digest(path: Path | None = None) -> str:
    return profile_digest(base_profile(path))


def errno_for(syscall: str) -> int:
    return ENOSYS if syscall in ENOSYS_SYSCALLS else EPERM


def seccomp_profile(settings_or_deny: CageSettings | Iterable[str], *,
                    base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The profile for a cage (or a bare deny list): the base minus the denied syscalls.

    With nothing denied this is the base profile itself (what Podman applies by default).
    """
    aslr_off = False
    if isinstance(settings_or_deny, CageSettings):
        deny = set(settings_or_deny.denied_syscalls)
        replay = settings_or_deny.replay
        aslr_off = replay is not None and replay.launcher_digest is not None
    else:
        deny = set(settings_or_deny)
    profile = copy.deepcopy(dict(base)) if base is not None else base_profile()
    if not deny and not aslr_off:
        return profile
    restrict_clone = "unshare" in deny
    if restrict_clone:
        deny.add("clone3")
    rules: list[dict[str, Any]] = []
    for rule in profile.get("syscalls", []):
        names = [n for n in rule.get("names", [])
                 if n not in deny and not (restrict_clone and n == "clone")]
        if names:
            rules.append({**rule, "names": names})
    if restrict_clone and "clone" not in deny:
        rules.extend(_clone_without_namespaces())
    for errno in (EPERM, ENOSYS):
        names = sorted(n for n in deny if errno_for(n) == errno)
        if names:
            rules.append({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno,
                          "comment": COMMENT})
    if aslr_off:
        rules.append(_personality_no_aslr())
    profile["syscalls"] = rules
    profile["defaultAction"] = "SCMP_ACT_ERRNO"
    profile["defaultErrnoRet"] = ENOSYS
    profile["defaultErrno"] = "ENOSYS"
    return profile


def _personality_no_aslr() -> dict[str, Any]:
    # The deterministic job's launcher sets exactly this persona (Podman's default
    # profile allows only 0, PER_LINUX32, UNAME26 and the query).
    return {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": ADDR_NO_RANDOMIZE, "valueTwo": 0,
                      "op": "SCMP_CMP_EQ"}],
            "comment": "docklock cage: the launcher turns ASLR off"}


def _clone_without_namespaces() -> list[dict[str, Any]]:
    # clone's flags are argument 0, except on s390 where the first two are swapped.
    def rule(index: int) -> dict[str, Any]:
        return {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": index, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                          "op": "SCMP_CMP_MASKED_EQ"}],
                "comment": "docklock cage: clone without namespace flags"}
    return [{**rule(0), "excludes": {"arches": _S390}},
            {**rule(1), "includes": {"arches": _S390}}]


def allowed_syscalls(profile: Mapping[str, Any]) -> frozenset[str]:
    """Names some unconditional ALLOW rule lets through (conditions ignored)."""
    return frozenset(
        n for rule in profile.get("syscalls", [])
        if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("args")
        and not rule.get("includes")
        for n in rule.get("names", [])
    )


def denied_with_errno(profile: Mapping[str, Any]) -> dict[str, int]:
    """Every syscall an explicit DockLock ERRNO rule denies, with its errno."""
    return {
        n: int(rule.get("errnoRet", EPERM))
        for rule in profile.get("syscalls", [])
        if rule.get("comment") == COMMENT
        for n in rule.get("names", [])
    }
