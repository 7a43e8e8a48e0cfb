"""Seccomp profile generation: the base minus the deny list, errnos, clone3 fallback."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from docklock.cage import resolve_cage, seccomp_profile
from docklock.cage.levels import DETERMINISTIC_DENY, HARDENED_DENY
from docklock.cage.seccomp import (
    CLONE_NAMESPACE_FLAGS,
    ENOSYS,
    EPERM,
    PACKAGED_PROFILE,
    allowed_syscalls,
    base_profile,
    base_profile_path,
    denied_with_errno,
    profile_bytes,
    profile_digest,
)
from docklock.objects import canonical_json, sha256_hex


def rules_naming(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in profile["syscalls"] if name in r["names"]]


def test_base_profile_is_podmans() -> None:
    base = base_profile()
    assert base["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "mount" in allowed_syscalls(base)  # Podman relies on capabilities for mount
    assert base_profile_path().is_file()


def test_packaged_fallback_is_a_valid_podman_profile() -> None:
    packaged = json.loads(PACKAGED_PROFILE.read_text())
    assert packaged["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "read" in allowed_syscalls(packaged)
    assert seccomp_profile(["mount"], base=packaged)["defaultErrnoRet"] == ENOSYS


def test_empty_deny_list_is_the_base_itself() -> None:
    assert seccomp_profile([]) == base_profile()


def test_hardened_profile_denies_its_list_with_the_right_errno() -> None:
    profile = seccomp_profile(HARDENED_DENY)
    assert profile["defaultErrnoRet"] == ENOSYS
    denied = denied_with_errno(profile)
    assert set(denied) == set(HARDENED_DENY)
    assert denied["mount"] == EPERM
    assert denied["unshare"] == EPERM
    assert denied["ptrace"] == EPERM
    # glibc >= 2.34 falls back from clone3 to clone only on ENOSYS.
    assert denied["clone3"] == ENOSYS
    assert denied["io_uring_setup"] == ENOSYS
    allowed = allowed_syscalls(profile)
    assert not allowed & set(HARDENED_DENY)
    assert {"read", "write", "futex", "execve"} <= allowed


def test_denied_names_leave_every_base_rule_including_capability_gated_ones() -> None:
    profile = seccomp_profile(["bpf", "setns"])
    for name in ("bpf", "setns"):
        actions = {(r["action"], r.get("comment")) for r in rules_naming(profile, name)}
        assert actions == {("SCMP_ACT_ERRNO", "docklock cage: denied")}, name


def test_unshare_denial_restricts_clone_flags() -> None:
    profile = seccomp_profile(["unshare"])
    clone_rules = rules_naming(profile, "clone")
    assert clone_rules, "clone must stay allowed for threads and fork"
    for rule in clone_rules:
        assert rule["action"] == "SCMP_ACT_ALLOW"
        (arg,) = rule["args"]
        assert arg["op"] == "SCMP_CMP_MASKED_EQ"
        assert arg["value"] == CLONE_NAMESPACE_FLAGS
        assert arg["valueTwo"] == 0
    assert denied_with_errno(profile)["clone3"] == ENOSYS


def test_denying_clone_itself_wins_over_the_filtered_clone_rule() -> None:
    # Found by the property test below: unshare and clone denied together.
    profile = seccomp_profile(["unshare", "clone"])
    assert {r["action"] for r in rules_naming(profile, "clone")} == {"SCMP_ACT_ERRNO"}


def test_deterministic_denies_getrandom_with_enosys() -> None:
    denied = denied_with_errno(seccomp_profile(DETERMINISTIC_DENY))
    assert denied["getrandom"] == ENOSYS


def test_profile_digest_is_of_the_canonical_bytes() -> None:
    profile = seccomp_profile(HARDENED_DENY)
    assert profile_digest(profile) == sha256_hex(canonical_json(profile))
    assert profile_bytes(profile) == canonical_json(profile)
    assert json.loads(profile_bytes(profile)) == profile


def test_settings_and_deny_list_give_the_same_profile() -> None:
    s = resolve_cage("hardened", floor="standard", profiles={})
    assert seccomp_profile(s) == seccomp_profile(s.denied_syscalls)
    assert profile_digest(seccomp_profile(s)) == s.seccomp_digest


def test_generation_does_not_touch_the_cached_base() -> None:
    before = base_profile()
    seccomp_profile(HARDENED_DENY)
    assert base_profile() == before


ALL_NAMES = sorted({n for r in base_profile()["syscalls"] for n in r["names"]}
                   | set(DETERMINISTIC_DENY))


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from(ALL_NAMES), min_size=1, max_size=25))
def test_any_deny_list_is_never_allowed_and_everything_else_is_kept(deny: set[str]) -> None:
    profile = seccomp_profile(deny)
    denied = denied_with_errno(profile)
    assert set(deny) <= set(denied)
    for name in deny:
        for rule in rules_naming(profile, name):
            assert rule["action"] == "SCMP_ACT_ERRNO", (name, rule)
    kept = allowed_syscalls(base_profile()) - deny - {"clone", "clone3"}
    assert kept <= allowed_syscalls(profile)
