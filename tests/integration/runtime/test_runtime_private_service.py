"""When no Podman API answers, connect() starts a private service and stops it after.

The private service is pointed at the harness's store (CONTAINERS_STORAGE_CONF) so the
test never touches the host's default Podman store, and the default socket is replaced
by one that cannot exist.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PodmanHarness

from docklock.errors import PodmanUnavailableError
from docklock.objects import LABEL_CLUSTER, ContainerConfig
from docklock.runtime import connect
from docklock.runtime.podman import unix_socket_path


def _with_key(conf: str, section: str, line: str) -> str:
    """`line` (key = value) added under [section], unless the harness already set the key."""
    key = line.split("=", 1)[0].strip()
    if any(existing.strip().startswith(f"{key} ") or existing.strip().startswith(f"{key}=")
           for existing in conf.splitlines()):
        return conf
    header = f"[{section}]"
    if header in conf.splitlines():
        return conf.replace(header, f"{header}\n{line}", 1)
    return f"{conf.rstrip()}\n\n{header}\n{line}\n"


def _private_env(podman: PodmanHarness, tmp_path: Path) -> dict[str, str]:
    """Settings that make a plain `podman system service` use the harness's store.

    Mirrors the harness's global options (--root, --runroot and, if it uses them,
    --tmpdir and --network-config-dir) as storage.conf / containers.conf settings.
    """
    options = dict(zip(podman.global_args[::2], podman.global_args[1::2], strict=True))
    storage = tmp_path / "storage.conf"
    storage.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{options["--root"]}"\n'
        f'runroot = "{options["--runroot"]}"\n'
    )
    conf = Path(podman.env["CONTAINERS_CONF"]).read_text()  # runc, ulimits, ...
    if "--tmpdir" in options:
        conf = _with_key(conf, "engine", f'tmp_dir = "{options["--tmpdir"]}"')
    if "--network-config-dir" in options:
        conf = _with_key(conf, "network",
                         f'network_config_dir = "{options["--network-config-dir"]}"')
    (tmp_path / "containers.conf").write_text(conf)
    env = dict(podman.env)
    env["CONTAINERS_CONF"] = str(tmp_path / "containers.conf")
    env["CONTAINERS_STORAGE_CONF"] = str(storage)
    return env


def test_private_service_serves_the_command_and_stops(podman: PodmanHarness,
                                                      tmp_path: Path) -> None:
    env = _private_env(podman, tmp_path)
    runtime = connect(env=env, default_url=f"unix://{tmp_path}/no-such-dir/podman.sock")
    with runtime:
        assert runtime.private is True
        assert runtime.source == "private service"
        service = runtime.service
        assert service is not None
        assert service.running
        sock = unix_socket_path(runtime.url)
        assert sock is not None
        assert Path(sock).exists()
        assert runtime.url != podman.url
        # Same store as the harness: the test image is there, and a container started
        # through the private service outlives it.
        assert runtime.image_exists(podman.image)
        runtime.create_container(ContainerConfig(
            name="rt-private", image=podman.image, command=("sleep", "300"),
            labels={LABEL_CLUSTER: "rtprivate"}))
        runtime.start_container("rt-private")
    assert runtime.service is None
    assert not service.running
    assert not service.folder.exists()
    assert not Path(sock).exists()
    status = podman.podman("inspect", "rt-private", "--format", "{{.State.Status}}")
    assert status.stdout.strip() == "running"


def test_explicit_url_is_never_replaced_by_a_private_service(podman: PodmanHarness,
                                                             tmp_path: Path) -> None:
    env = _private_env(podman, tmp_path)  # podman is on PATH and would start
    env["DOCKLOCK_PODMAN_URL"] = f"unix://{tmp_path}/gone.sock"
    with pytest.raises(PodmanUnavailableError, match=r"gone\.sock"):
        connect(env=env)
