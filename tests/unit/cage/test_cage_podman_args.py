"""ContainerConfig → podman-py create kwargs (pure; table-driven where it helps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.cage import podman_create_kwargs, resolve_cage
from docklock.cage.podman_args import duration_ns, memory_bytes
from docklock.errors import CageError
from docklock.model import EnvVar, Healthcheck, Port
from docklock.objects import CageSettings, ContainerConfig, Mount

STANDARD = CageSettings("standard", "standard", pids_limit=1024)


def config(**fields: object) -> ContainerConfig:
    base: dict[str, object] = {"name": "web-0", "image": "localhost/x:1", "cage": STANDARD}
    base.update(fields)
    return ContainerConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("64Mi", 64 * 1024**2), ("512m", 512 * 1024**2), ("1Gi", 1024**3), ("1g", 1024**3),
    ("100k", 102400), ("1048576", 1048576), ("10b", 10),
])
def test_memory_bytes(text: str, expected: int) -> None:
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "12 parsecs", "Mi", "-1"])
def test_memory_bytes_rejects(bad: str) -> None:
    with pytest.raises(CageError):
        memory_bytes(bad)


@pytest.mark.parametrize(("text", "ns"), [
    ("2s", 2 * 10**9), ("500ms", 5 * 10**8), ("1m30s", 90 * 10**9), ("0s", 0), ("1h", 3600 * 10**9),
])
def test_duration_ns(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


def test_standard_cage_mapping() -> None:
    kw = podman_create_kwargs(config(command=("httpd", "-f")))
    assert kw["name"] == "web-0"
    assert kw["image"] == "localhost/x:1"
    assert kw["command"] == ["httpd", "-f"]
    assert kw["cap_drop"] == ["ALL"]
    assert kw["no_new_privileges"] is True
    assert kw["pids_limit"] == 1024
    assert "seccomp_profile_path" not in kw  # Podman's default profile
    assert "read_only" not in kw
    assert "security_opt" not in kw  # podman-py sends it as SELinux labels
    assert "tmpfs" not in kw  # podman-py 5.8 rejects it
    assert "network_mode" not in kw


def test_hardened_cage_mapping(tmp_path: Path) -> None:
    cage = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path,
                        cap_add=["net_bind_service"])
    kw = podman_create_kwargs(config(cage=cage))
    assert kw["read_only"] is True
    assert kw["seccomp_profile_path"] == cage.seccomp_profile_path
    assert kw["cap_add"] == ["NET_BIND_SERVICE"]
    assert kw["mem_limit"] == memory_bytes(cage.memory or "")
    assert kw["pids_limit"] == cage.pids_limit
    assert {"type": "tmpfs", "source": "tmpfs", "target": "/tmp", "size": "64m",
            "mode": "1777"} in kw["mounts"]
    assert kw["sysctls"] == {"net.ipv4.ping_group_range": "1 0"}


def test_spec_limits_win_over_cage_defaults(tmp_path: Path) -> None:
    cage = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path)
    kw = podman_create_kwargs(config(cage=cage, memory="64Mi", pids_limit=32, cpus=0.5))
    assert kw["mem_limit"] == 64 * 1024**2
    assert kw["pids_limit"] == 32
    assert (kw["cpu_period"], kw["cpu_quota"]) == (100_000, 50_000)


def test_deterministic_cage_mapping(tmp_path: Path) -> None:
    cage = resolve_cage("deterministic", floor="standard", profiles={}, seed=7,
                        cages_dir=tmp_path)
    kw = podman_create_kwargs(config(cage=cage, networks=("backend",),
                                     ports=(Port(80, 8080),),
                                     env=(EnvVar("TZ", "Europe/Paris"), EnvVar("A", "1"))))
    assert kw["network_mode"] == "none"
    assert "networks" not in kw
    assert "ports" not in kw
    assert kw["hostname"] == cage.hostname
    assert kw["timezone"] == "UTC"
    assert kw["umask"] == "0022"
    assert kw["environment"]["TZ"] == "UTC"  # pinned env wins
    assert kw["environment"]["A"] == "1"
    binds = {m["target"]: m for m in kw["mounts"] if m["type"] == "bind"}
    for dev in ("/dev/urandom", "/dev/random"):
        assert binds[dev] == {"type": "bind", "source": cage.random_source, "target": dev,
                              "read_only": True}


def test_ports_networks_mounts_healthcheck_and_policy() -> None:
    cfg = config(
        ports=(Port(8080, 18080), Port(8080, 18081, hostIp="0.0.0.0"), Port(53, None, "udp")),
        networks=("front", "back"),
        mounts=(Mount("volume", "data", "/data"), Mount("bind", "/srv/in", "/in", True),
                Mount("tmpfs", "size=1m", "/scratch")),
        healthcheck=Healthcheck(("wget", "-q", "http://127.0.0.1/"), "2s", "1s", 3, "5s"),
        user="65534", workdir="/www", restart="on-failure:3", stop_timeout=4,
        labels={"io.docklock.address": "Service/default/web"},
        entrypoint=("/bin/sh", "-c"),
    )
    kw = podman_create_kwargs(cfg)
    assert kw["ports"] == {"8080/tcp": [("127.0.0.1", 18080), ("0.0.0.0", 18081)],
                           "53/udp": [{"ip": "127.0.0.1"}]}
    assert kw["networks"] == {"front": {}, "back": {}}
    assert kw["volumes"] == {"data": {"bind": "/data", "mode": "rw"}}
    assert {"type": "bind", "source": "/srv/in", "target": "/in", "read_only": True} \
        in kw["mounts"]
    assert {"type": "tmpfs", "source": "tmpfs", "target": "/scratch", "size": "1m"} \
        in kw["mounts"]
    assert kw["healthcheck"] == {"Test": ["CMD", "wget", "-q", "http://127.0.0.1/"],
                                 "Interval": 2 * 10**9, "Timeout": 10**9, "Retries": 3,
                                 "StartPeriod": 5 * 10**9}
    assert kw["user"] == "65534"
    assert kw["workdir"] == "/www"
    assert kw["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert kw["stop_timeout"] == 4
    assert kw["labels"] == {"io.docklock.address": "Service/default/web"}
    assert kw["entrypoint"] == ["/bin/sh", "-c"]


def test_a_spec_mount_at_tmp_replaces_the_cage_tmpfs(tmp_path: Path) -> None:
    cage = resolve_cage("hardened", floor="standard", profiles={}, cages_dir=tmp_path)
    kw = podman_create_kwargs(config(cage=cage, mounts=(Mount("volume", "t", "/tmp"),)))
    assert not [m for m in kw.get("mounts", []) if m["target"] == "/tmp"]


def test_kwargs_are_accepted_by_podman_py_payload_renderer(tmp_path: Path) -> None:
    # podman-py's own (pure, offline) payload builder must accept every keyword we emit.
    from podman.domain.containers_create import CreateMixin

    cage = resolve_cage("deterministic", floor="standard", profiles={}, cages_dir=tmp_path)
    cfg = config(cage=cage, healthcheck=Healthcheck(("true",)), restart="always",
                 mounts=(Mount("volume", "data", "/data"),), cpus=1.0)
    payload = CreateMixin._render_payload(podman_create_kwargs(cfg))
    assert payload["seccomp_profile_path"] == cage.seccomp_profile_path
    assert payload["read_only_filesystem"] is True
    assert payload["netns"] == {"nsmode": "none"}
    assert payload["no_new_privileges"] is True
    assert payload["umask"] == "0022"
    assert payload["healthconfig"]["Test"] == ["CMD", "true"]
    assert {"destination": "/dev/urandom", "options": ["ro"], "source": cage.random_source,
            "type": "bind"} in payload["mounts"]
    assert payload["restart_policy"] == "always"
