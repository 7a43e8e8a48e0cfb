"""ContainerConfig → podman-py `containers.create(**kwargs)`: one pure function.

The cage is applied through podman-py's own keywords (seccomp_profile_path, cap_drop,
cap_add, no_new_privileges, read_only, network_mode, pids_limit, mem_limit, hostname,
timezone, umask), never through `security_opt`, which podman-py forwards as SELinux
labels. podman-py 5.8 rejects its `tmpfs` keyword, so tmpfs mounts go in `mounts`.
No podman import here: runtime/ calls `client.containers.create(**kwargs)`.
"""

from __future__ import annotations

from typing import Any

from docklock.errors import CageError
from docklock.model import Healthcheck
from docklock.objects import ContainerConfig, Mount, ReplaySettings
from docklock.units import duration_ns, memory_bytes

# duration_ns and memory_bytes moved to docklock.units; re-exported for older imports.
__all__ = [
    "CPU_PERIOD_US", "HARDENED_SYSCTLS", "RANDOM_DEVICES", "duration_ns",
    "healthcheck_kwargs", "memory_bytes", "podman_create_kwargs",
]

RANDOM_DEVICES = ("/dev/urandom", "/dev/random")
# Where a deterministic Job sees libfaketime (docklock.cage.replay.PRELOAD_TARGET; not
# imported so this module stays free of host detection).
PRELOAD_TARGET = "/.docklock/libfaketime.so.1"
CPU_PERIOD_US = 100_000
# Unprivileged ICMP sockets ("ping without CAP_NET_RAW") stay off in the stronger cages.
HARDENED_SYSCTLS = {"net.ipv4.ping_group_range": "1 0"}


def healthcheck_kwargs(hc: Healthcheck) -> dict[str, Any]:
    """podman-py's `healthcheck` dict (Docker's HealthConfig: durations in ns)."""
    return {
        "Test": ["CMD", *hc.command],
        "Interval": duration_ns(hc.interval),
        "Timeout": duration_ns(hc.timeout),
        "Retries": hc.retries,
        "StartPeriod": duration_ns(hc.startPeriod),
    }


def _tmpfs_mount(target: str, options: str) -> dict[str, Any]:
    mount: dict[str, Any] = {"type": "tmpfs", "source": "tmpfs", "target": target}
    for option in filter(None, (o.strip() for o in options.split(","))):
        key, _, value = option.partition("=")
        # podman-py forwards only size and mode for tmpfs; Podman adds nosuid,nodev.
        if key in ("size", "mode") and value:
            mount[key] = value
    return mount


def _mount(m: Mount) -> tuple[str, dict[str, Any]]:
    """('mounts', item) for binds and tmpfs, ('volumes', {name: spec}) for volumes."""
    if m.type == "volume":
        return "volumes", {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"}}
    if m.type == "tmpfs":
        return "mounts", _tmpfs_mount(m.target, m.source if "=" in m.source else "")
    if m.type == "bind":
        item: dict[str, Any] = {"type": "bind", "source": m.source, "target": m.target}
        if m.read_only:
            item["read_only"] = True
        return "mounts", item
    raise CageError(f"unknown mount type {m.type!r} for {m.target}")


def _replay_mounts(replay: ReplaySettings) -> list[dict[str, Any]]:
    """Read-only binds: the synthetic /proc and /sys files and the libfaketime preload."""
    mounts: list[dict[str, Any]] = []
    if replay.proc_dir is not None:
        mounts.extend({"type": "bind", "source": f"{replay.proc_dir}/{name}",
                       "target": target, "read_only": True}
                      for target, name in sorted(replay.synthetic.items()))
    if replay.preload is not None:
        mounts.append({"type": "bind", "source": replay.preload, "target": PRELOAD_TARGET,
                       "read_only": True})
    return mounts


def _restart_policy(restart: str) -> dict[str, Any] | None:
    name, _, count = restart.partition(":")
    if name in ("", "no"):
        return None
    policy: dict[str, Any] = {"Name": name}
    if count:
        policy["MaximumRetryCount"] = int(count)
    return policy


def podman_create_kwargs(config: ContainerConfig) -> dict[str, Any]:
    """The keyword arguments for podman-py `client.containers.create(**kwargs)`."""
    cage = config.cage
    kwargs: dict[str, Any] = {"name": config.name, "image": config.image}
    if config.command:
        kwargs["command"] = list(config.command)
    if config.entrypoint:
        kwargs["entrypoint"] = list(config.entrypoint)

    # The cage's pinned env overrides the spec's values (determinism is the promise).
    env = {e.name: e.value for e in config.env}
    env.update({e.name: e.value for e in cage.env})
    if env:
        kwargs["environment"] = env

    mounts: list[dict[str, Any]] = []
    volumes: dict[str, Any] = {}
    for m in config.mounts:
        where, item = _mount(m)
        if where == "mounts":
            mounts.append(item)
        else:
            volumes.update(item)
    if cage.read_only:
        taken = {m["target"] for m in mounts} | {v["bind"] for v in volumes.values()}
        mounts.extend(_tmpfs_mount(path, opts) for path, opts in sorted(cage.tmpfs.items())
                      if path not in taken)
    if cage.random_source is not None:
        mounts.extend({"type": "bind", "source": cage.random_source, "target": dev,
                       "read_only": True} for dev in RANDOM_DEVICES)
    replay = cage.replay
    if replay is not None:
        mounts.extend(_replay_mounts(replay))
    if mounts:
        kwargs["mounts"] = mounts
    if volumes:
        kwargs["volumes"] = volumes

    if cage.network_none:
        kwargs["network_mode"] = "none"
    else:
        if config.networks:
            # The same aliases on every network: `<service>` and `<service>.<namespace>`.
            options: dict[str, Any] = {"aliases": list(config.aliases)} if config.aliases else {}
            kwargs["networks"] = {name: dict(options) for name in config.networks}
        if config.ports:
            ports: dict[str, list[Any]] = {}
            for p in config.ports:
                host: Any = (p.hostIp, p.host) if p.host is not None else {"ip": p.hostIp}
                ports.setdefault(f"{p.container}/{p.protocol}", []).append(host)
            kwargs["ports"] = ports

    if config.healthcheck is not None:
        kwargs["healthcheck"] = healthcheck_kwargs(config.healthcheck)
    if config.user:
        kwargs["user"] = config.user
    if config.workdir:
        kwargs["workdir"] = config.workdir
    if config.cpus:
        kwargs["cpu_period"] = CPU_PERIOD_US
        kwargs["cpu_quota"] = int(config.cpus * CPU_PERIOD_US)
    # The spec's own limits win; the cage supplies the defaults its level requires.
    memory = config.memory or cage.memory
    if memory:
        kwargs["mem_limit"] = memory_bytes(memory)
    pids = config.pids_limit or cage.pids_limit
    if pids:
        kwargs["pids_limit"] = pids
    policy = _restart_policy(config.restart)
    if policy is not None:
        kwargs["restart_policy"] = policy
    kwargs["stop_timeout"] = config.stop_timeout
    if replay is not None and replay.launcher is not None:
        # Podman runs the init as `/run/podman-init -- ENTRYPOINT CMD` with the image's
        # defaults already resolved; the launcher turns ASLR off and execs the command.
        kwargs["init"] = True
        kwargs["init_path"] = replay.launcher
    elif config.init:
        # catatonit as PID 1: it forwards SIGTERM to the command (which, as PID 1, would
        # ignore it unless it installs a handler) and reaps zombies.
        kwargs["init"] = True
    if replay is not None and replay.masked:
        kwargs["masked_paths"] = list(replay.masked)
    if config.labels:
        kwargs["labels"] = dict(config.labels)

    kwargs["cap_drop"] = list(cage.cap_drop)
    if cage.cap_add:
        kwargs["cap_add"] = list(cage.cap_add)
    kwargs["no_new_privileges"] = cage.no_new_privileges
    if cage.read_only:
        kwargs["read_only"] = True
    if cage.seccomp_profile_path is not None:
        kwargs["seccomp_profile_path"] = cage.seccomp_profile_path
    if cage.level != "standard":
        kwargs["sysctls"] = dict(HARDENED_SYSCTLS)
    if cage.hostname:
        kwargs["hostname"] = cage.hostname
    if cage.timezone:
        kwargs["timezone"] = cage.timezone
    if cage.umask:
        kwargs["umask"] = cage.umask
    return kwargs
