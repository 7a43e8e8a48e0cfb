"""resolve_cage: levels, alias, floor, CageProfiles, digests, purity."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.cage import ALIASES, LEVELS, level_rank, resolve_cage
from docklock.cage.levels import DETERMINISTIC_DENY, HARDENED_DENY
from docklock.cage.seccomp import base_profile_digest
from docklock.errors import CageError
from docklock.model import CageProfileSpec

NO_PROFILES: dict[str, CageProfileSpec] = {}


def profile(**spec: object) -> CageProfileSpec:
    return CageProfileSpec.from_dict(spec)


def test_levels_rank_weakest_first() -> None:
    assert LEVELS == ("standard", "hardened", "deterministic")
    assert [level_rank(n) for n in LEVELS] == [0, 1, 2]
    assert level_rank("military-grade") == level_rank("deterministic")
    assert ALIASES["military-grade"] == "deterministic"


def test_none_means_the_floor() -> None:
    s = resolve_cage(None, floor="hardened", profiles=NO_PROFILES)
    assert (s.name, s.level) == ("hardened", "hardened")


def test_standard_uses_podmans_default_profile() -> None:
    s = resolve_cage("standard", floor="standard", profiles=NO_PROFILES, cages_dir=Path("/c"))
    assert s.seccomp_profile_path is None
    assert s.seccomp_digest == base_profile_digest()
    assert s.cap_drop == ("ALL",)
    assert s.no_new_privileges
    assert not s.read_only
    assert s.pids_limit is not None
    assert s.denied_syscalls == ()
    assert not s.network_none


def test_hardened_adds_read_only_root_profile_and_limits(tmp_path: Path) -> None:
    s = resolve_cage("hardened", floor="standard", profiles=NO_PROFILES, cages_dir=tmp_path)
    assert s.read_only
    assert "/tmp" in s.tmpfs
    assert s.memory
    assert s.pids_limit
    assert set(HARDENED_DENY) == set(s.denied_syscalls)
    for name in ("mount", "umount2", "unshare", "setns", "ptrace", "bpf", "keyctl",
                 "add_key", "request_key", "kexec_load", "kexec_file_load",
                 "perf_event_open", "userfaultfd", "open_by_handle_at", "init_module",
                 "finit_module", "delete_module", "pivot_root", "swapon", "swapoff",
                 "reboot"):
        assert name in s.denied_syscalls, name
    assert s.seccomp_profile_path == str(tmp_path / f"seccomp-{s.seccomp_digest}.json")
    assert not s.network_none
    assert "getrandom" not in s.denied_syscalls


def test_deterministic_pins_everything(tmp_path: Path) -> None:
    s = resolve_cage("deterministic", floor="standard", profiles=NO_PROFILES, seed=7,
                     cages_dir=tmp_path)
    env = {e.name: e.value for e in s.env}
    assert env["TZ"] == "UTC"
    assert env["LC_ALL"] == "C"
    assert env["PYTHONHASHSEED"] == "0"
    assert env["SOURCE_DATE_EPOCH"].isdigit()
    assert env["DOCKLOCK_SEED"] == "7"
    assert s.network_none
    assert s.hostname
    assert s.timezone == "UTC"
    assert s.umask == "0022"
    assert set(s.denied_syscalls) == set(DETERMINISTIC_DENY)
    assert "getrandom" in s.denied_syscalls
    assert s.random_source is not None
    assert Path(s.random_source).parent == tmp_path


def test_military_grade_is_deterministic() -> None:
    mg = resolve_cage("military-grade", floor="standard", profiles=NO_PROFILES, seed=1)
    det = resolve_cage("deterministic", floor="standard", profiles=NO_PROFILES, seed=1)
    assert mg.level == "deterministic"
    assert mg.seccomp_digest == det.seccomp_digest
    assert mg.denied_syscalls == det.denied_syscalls


@pytest.mark.parametrize(("asked", "floor"), [
    ("standard", "hardened"),
    ("standard", "deterministic"),
    ("hardened", "deterministic"),
    ("hardened", "military-grade"),
])
def test_weaker_than_floor_is_an_error(asked: str, floor: str) -> None:
    with pytest.raises(CageError, match="weaker than the cluster's securityLevel"):
        resolve_cage(asked, floor=floor, profiles=NO_PROFILES)


def test_profile_weaker_than_floor_is_an_error() -> None:
    with pytest.raises(CageError, match="weaker"):
        resolve_cage("web", floor="deterministic", profiles={"web": profile(extends="hardened")})


@pytest.mark.parametrize(("name", "floor", "message"), [
    ("nope", "standard", "unknown cage 'nope'"),
    ("standard", "ultra", "unknown security level 'ultra'"),
])
def test_unknown_names(name: str, floor: str, message: str) -> None:
    with pytest.raises(CageError, match=message):
        resolve_cage(name, floor=floor, profiles=NO_PROFILES)


def test_profile_must_extend_a_level() -> None:
    profiles = {"a": profile(extends="b"), "b": profile(extends="hardened")}
    with pytest.raises(CageError, match="not a level"):
        resolve_cage("a", floor="standard", profiles=profiles)


def test_profile_extends_a_level_with_additions(tmp_path: Path) -> None:
    spec = profile(extends="hardened", denySyscalls=["chmod"], allowSyscalls=["ptrace"],
                   capAdd=[{"name": "net_bind_service", "reason": "port 80"}],
                   memory="128Mi", pids=64, env={"MODE": "caged"})
    s = resolve_cage("web", floor="standard", profiles={"web": spec}, cages_dir=tmp_path,
                     cap_add=["chown"])
    assert (s.name, s.level) == ("web", "hardened")
    assert "chmod" in s.denied_syscalls
    assert "ptrace" not in s.denied_syscalls
    assert s.cap_add == ("CHOWN", "NET_BIND_SERVICE")
    assert (s.memory, s.pids_limit) == ("128Mi", 64)
    assert {e.name: e.value for e in s.env} == {"MODE": "caged"}
    plain = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path)
    assert s.seccomp_digest != plain.seccomp_digest
    assert s.digest != plain.digest


def test_profile_cannot_allow_what_the_floor_denies() -> None:
    spec = profile(extends="hardened", allowSyscalls=["mount"])
    with pytest.raises(CageError, match="allows mount"):
        resolve_cage("p", floor="hardened", profiles={"p": spec})
    # With a standard floor the same profile is allowed (it is still at least hardened-ish).
    s = resolve_cage("p", floor="standard", profiles={"p": spec})
    assert "mount" not in s.denied_syscalls


def test_standard_profile_with_denies_gets_a_generated_profile(tmp_path: Path) -> None:
    spec = profile(extends="standard", denySyscalls=["ptrace"])
    s = resolve_cage("p", floor="standard", profiles={"p": spec}, cages_dir=tmp_path)
    assert s.denied_syscalls == ("ptrace",)
    assert s.seccomp_profile_path is not None
    assert s.seccomp_digest != base_profile_digest()


def test_deterministic_pins_win_over_profile_env() -> None:
    spec = profile(extends="deterministic", env={"TZ": "Europe/Paris", "EXTRA": "1"})
    s = resolve_cage("p", floor="standard", profiles={"p": spec}, seed=3)
    env = {e.name: e.value for e in s.env}
    assert env["TZ"] == "UTC"
    assert env["EXTRA"] == "1"


def test_seed_changes_the_cage_digest_and_stream(tmp_path: Path) -> None:
    a = resolve_cage("deterministic", floor="standard", profiles={}, seed=7, cages_dir=tmp_path)
    b = resolve_cage("deterministic", floor="standard", profiles={}, seed=8, cages_dir=tmp_path)
    assert a.digest != b.digest
    assert a.random_source != b.random_source
    assert a.seccomp_digest == b.seccomp_digest


def test_resolution_is_pure_and_stable(tmp_path: Path) -> None:
    first = resolve_cage("deterministic", floor="standard", profiles={}, seed=7,
                         cages_dir=tmp_path)
    second = resolve_cage("deterministic", floor="standard", profiles={}, seed=7,
                          cages_dir=tmp_path)
    assert first == second
    assert first.digest == second.digest
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cage_digest_ignores_where_the_workspace_lives(tmp_path: Path) -> None:
    a = resolve_cage("deterministic", floor="standard", profiles={}, cages_dir=tmp_path / "a")
    b = resolve_cage("deterministic", floor="standard", profiles={}, cages_dir=tmp_path / "b")
    assert a.seccomp_profile_path != b.seccomp_profile_path
    assert a.digest == b.digest
