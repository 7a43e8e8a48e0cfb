"""Writing the host files a cage points at: its seccomp profile, its random stream and,
for a deterministic Job, the launcher's copy and the synthetic /proc files.

Both are content-addressed under `.docklock/cages/`, written atomically, and never
rewritten with other content, so writing them again is a no-op. apply and `docklock
run` call `write_cage_files` before creating a container: the Podman service reads
the seccomp profile from this host path (so the service must run on this host).
"""

from __future__ import annotations

import os
from pathlib import Path

from docklock._fs import atomic_write_bytes
from docklock.cage.determinism import random_source_name, write_random_source
from docklock.cage.levels import SEED_ENV
from docklock.cage.seccomp import profile_bytes, profile_digest, seccomp_profile
from docklock.errors import CageError
from docklock.objects import CageSettings, ReplaySettings


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
    if settings.replay is not None:
        _write_replay_files(settings.replay, cages_dir)


def _write_replay_files(replay: ReplaySettings, cages_dir: Path) -> None:
    """The launcher's copy and the synthetic /proc files, content-addressed."""
    from docklock.cage.host import detect_host, file_sha256
    from docklock.cage.replay import (
        files_digest,
        launcher_file_name,
        proc_folder_name,
        synthetic_files,
    )

    if replay.launcher is not None and replay.launcher_digest is not None:
        target = Path(replay.launcher)
        if target.resolve() != (cages_dir / launcher_file_name(replay.launcher_digest)).resolve():
            raise CageError(f"launcher path {target} is not the cages folder's copy",
                            hint="plan again")
        if not target.is_file() or file_sha256(target) != replay.launcher_digest:
            host = detect_host()
            if host.launcher is None or host.launcher_digest != replay.launcher_digest:
                raise CageError(
                    f"the launcher this cage was planned with ({replay.launcher_digest}) "
                    "is not the one this DockLock ships", hint="plan again")
            cages_dir.mkdir(parents=True, exist_ok=True)
            # 0755: Podman bind-mounts it as the container's init and executes it.
            atomic_write_bytes(target, Path(host.launcher).read_bytes(), mode=0o755)
    if replay.proc_dir is not None:
        epoch, cpus, memory = replay.epoch, replay.cpus, replay.memory_bytes
        files = synthetic_files(cpus, memory, epoch)
        digest = files_digest(files)
        folder = Path(replay.proc_dir)
        if digest != replay.proc_digest or (
                folder.resolve() != (cages_dir / proc_folder_name(digest)).resolve()):
            raise CageError(f"the synthetic /proc files of {folder} do not match the plan",
                            hint="plan again")
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)  # noqa: S103 (read by the Podman service and the job's user)
        for name, data in files.items():
            path = folder / name
            if not (path.is_file() and path.read_bytes() == data):
                atomic_write_bytes(path, data, mode=0o644)
    if replay.preload is not None and not Path(replay.preload).is_file():
        raise CageError(f"libfaketime is gone from {replay.preload}",
                        hint="apt-get install libfaketime, or plan again")
