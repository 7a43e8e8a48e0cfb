"""Every PodmanRuntime method against the real Podman of the test harness."""

from __future__ import annotations

import io
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness

from docklock.errors import PodmanError
from docklock.model import Healthcheck, Port
from docklock.objects import (
    LABEL_CLUSTER,
    LABEL_CONFIG_HASH,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    CageSettings,
    ContainerConfig,
    Mount,
)
from docklock.runtime import PodmanNotFoundError, PodmanRuntime, PodmanTimeoutError, connect

CLUSTER = "rttest"


@pytest.fixture
def rt(podman: PodmanHarness) -> Iterator[PodmanRuntime]:
    with connect(podman.url) as runtime:
        yield runtime


def _labels(cluster: str = CLUSTER, **extra: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_CLUSTER: cluster, **extra}


def _config(podman: PodmanHarness, name: str, *command: str, **kw: object) -> ContainerConfig:
    base: dict[str, object] = {"labels": _labels(), "stop_timeout": 1}
    base.update(kw)
    return ContainerConfig(name=name, image=podman.image, command=command, **base)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ping_version_and_source(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    assert rt.ping() > 0
    assert rt.version().split(".")[0].isdigit()
    assert (rt.url, rt.source, rt.private) == (podman.url, "--podman-url", False)


def test_list_live_is_one_call_with_status_health_exit_code(podman: PodmanHarness,
                                                            rt: PodmanRuntime) -> None:
    port = _free_port()
    hc = Healthcheck(("true",), interval="1s")
    rt.create_container(_config(podman, "rt-up", "sleep", "300", healthcheck=hc,
                                ports=(Port(8080, port),),
                                labels=_labels(**{LABEL_CONFIG_HASH: "hash-up"})))
    rt.start_container("rt-up")
    rt.create_container(_config(podman, "rt-done", "sh", "-c", "exit 3"))
    rt.start_container("rt-done")
    assert rt.wait_container("rt-done", 30) == 3
    rt.create_container(_config(podman, "rt-new", "true"))
    rt.create_container(_config(podman, "rt-other", "true", labels=_labels("othercluster")))
    assert rt.run_healthcheck("rt-up").passed

    live = rt.list_live(CLUSTER)

    assert live.api_calls == 1
    assert sorted(live.objects) == ["container:rt-done", "container:rt-new", "container:rt-up"]
    up, done, new = (live.objects[f"container:rt-{n}"] for n in ("up", "done", "new"))
    assert (up.status, up.health, up.exit_code) == ("running", "healthy", None)
    assert up.config_hash == "hash-up"
    assert up.image == rt.image_id(podman.image)  # the id: drift compares ids
    assert up.ports == (f"127.0.0.1:{port}->8080/tcp",)
    assert (done.status, done.exit_code, done.health) == ("exited", 3, "")
    assert new.status == "created"
    assert up.id == rt.inspect_container("rt-up").id


def test_refresh_lists_containers_networks_volumes_in_three_calls(
        podman: PodmanHarness, rt: PodmanRuntime) -> None:
    rt.create_network("rt-net", _labels())
    rt.create_volume("rt-vol", _labels())
    rt.create_container(_config(podman, "rt-c", "true"))
    live = rt.refresh(CLUSTER)
    assert live.api_calls == 3
    assert sorted(live.objects) == ["container:rt-c", "network:rt-net", "volume:rt-vol"]
    assert live.objects["network:rt-net"].labels[LABEL_CLUSTER] == CLUSTER
    assert live.objects["volume:rt-vol"].status == "present"


def test_networks_create_list_remove(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    net_id = rt.create_network("rt-internal", _labels(), internal=True, subnet="10.89.231.0/24")
    assert len(net_id) == 64
    rt.create_network("rt-foreign", _labels("othercluster"))
    listed = rt.list_networks(CLUSTER)
    assert list(listed.objects) == ["network:rt-internal"]
    assert listed.objects["network:rt-internal"].id == net_id
    inspected = podman.podman("network", "inspect", "rt-internal", "--format",
                              "{{.Internal}} {{range .Subnets}}{{.Subnet}}{{end}}").stdout
    assert inspected.split() == ["true", "10.89.231.0/24"]
    with pytest.raises(PodmanError, match=r"creating network rt-internal: .*already"):
        rt.create_network("rt-internal", _labels())
    assert rt.remove_network("rt-internal") is True
    assert rt.remove_network("rt-internal") is False


def test_volumes_create_list_remove(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    assert rt.create_volume("rt-data", _labels()) == "rt-data"
    rt.create_volume("rt-foreign-data", _labels("othercluster"))
    listed = rt.list_volumes(CLUSTER)
    assert list(listed.objects) == ["volume:rt-data"]
    assert listed.objects["volume:rt-data"].labels[LABEL_MANAGED_BY] == MANAGED_BY
    with pytest.raises(PodmanError, match="creating volume rt-data"):
        rt.create_volume("rt-data", _labels())
    assert rt.remove_volume("rt-data") is True
    assert rt.remove_volume("rt-data") is False


def test_images_exist_id_and_inspect(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    assert rt.image_exists(podman.image) is True
    assert rt.image_exists("localhost/docklock-test/absent:1") is False
    expected = podman.podman("image", "inspect", podman.image, "--format", "{{.Id}}").stdout
    assert rt.image_id(podman.image) == expected.strip()
    assert podman.image in rt.inspect_image(podman.image).tags
    with pytest.raises(PodmanNotFoundError, match="inspecting image localhost/nope/nope:1"):
        rt.image_id("localhost/nope/nope:1")


def test_build_image_with_build_args_and_labels(podman: PodmanHarness, rt: PodmanRuntime,
                                               tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text(
        f"FROM {podman.image}\nARG GREETING=unset\nCOPY note.txt /note.txt\n"
        "RUN echo \"$GREETING\" > /greeting\n")
    (tmp_path / "note.txt").write_text("from the context\n")
    tag = "localhost/docklock-test/built:1"
    image_id = rt.build_image(tmp_path, "Containerfile", tag, {"GREETING": "hello"},
                              labels={LABEL_CLUSTER: CLUSTER})
    try:
        assert rt.image_id(tag) == image_id
        assert rt.inspect_image(tag).labels[LABEL_CLUSTER] == CLUSTER
        rt.create_container(ContainerConfig(name="rt-built", image=tag,
                                            command=("cat", "/greeting", "/note.txt")))
        rt.start_container("rt-built")
        assert rt.wait_container("rt-built", 30) == 0
        assert rt.logs("rt-built") == (b"hello\nfrom the context\n", b"")
    finally:
        rt.remove_container("rt-built")
        podman.podman("rmi", "-f", tag, check=False)


def test_build_failure_is_one_line_naming_the_tag(podman: PodmanHarness, rt: PodmanRuntime,
                                                 tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text(f"FROM {podman.image}\nRUN exit 7\n")
    with pytest.raises(PodmanError) as info:
        rt.build_image(tmp_path, "Containerfile", "localhost/docklock-test/broken:1")
    assert info.value.message.startswith("building image localhost/docklock-test/broken:1:")
    assert "\n" not in info.value.explain()
    with pytest.raises(PodmanError, match="no Nope in"):
        rt.build_image(tmp_path, "Nope", "localhost/docklock-test/broken:1")


def test_container_lifecycle_with_cage(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    cage = CageSettings("hardened", "hardened", read_only=True, tmpfs={"/tmp": "size=8m"},
                        pids_limit=64, memory="32Mi")
    config = _config(podman, "rt-life", "sleep", "300", cage=cage)
    container_id = rt.create_container(config)
    created = rt.inspect_container("rt-life")
    assert (created.id, created.status, created.running) == (container_id, "created", False)
    assert created.started_at == ""
    assert created.labels[LABEL_CLUSTER] == CLUSTER
    assert created.image == podman.image
    host = podman.podman("inspect", "rt-life", "--format",
                         "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.PidsLimit}} "
                         "{{.HostConfig.Memory}}").stdout.split()
    assert host == ["true", "64", str(32 * 1024 * 1024)]

    rt.start_container("rt-life")
    rt.start_container("rt-life")  # already running: not an error
    running = rt.inspect_container("rt-life")
    assert running.running
    assert running.started_at

    rt.stop_container("rt-life", timeout=1)
    stopped = rt.inspect_container("rt-life")
    assert stopped.status in ("exited", "stopped")
    assert stopped.exit_code == 137  # busybox sleep as PID 1 ignores SIGTERM: killed
    rt.stop_container("rt-life", timeout=1)  # already stopped: not an error

    assert rt.container_exists("rt-life") is True
    assert rt.remove_container("rt-life") is True
    assert rt.remove_container("rt-life") is False
    assert rt.container_exists("rt-life") is False


def test_remove_running_container_is_immediate(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    rt.create_container(_config(podman, "rt-stubborn", "sleep", "300", stop_timeout=30))
    rt.start_container("rt-stubborn")
    start = time.monotonic()
    assert rt.remove_container("rt-stubborn", force=True) is True
    assert time.monotonic() - start < 10
    assert podman.containers() == []


def test_wait_and_logs_keep_streams_apart_byte_for_byte(podman: PodmanHarness,
                                                        rt: PodmanRuntime) -> None:
    script = "printf 'line1\\n'; printf 'oops' >&2; printf 'no-newline'; exit 3"
    rt.create_container(_config(podman, "rt-logs", "sh", "-c", script))
    rt.start_container("rt-logs")
    assert rt.wait_container("rt-logs", 30) == 3
    assert rt.logs("rt-logs") == (b"line1\nno-newline", b"oops")
    info = rt.inspect_container("rt-logs")
    assert (info.status, info.exit_code) == ("exited", 3)
    assert info.finished_at


def test_wait_timeout_is_a_typed_error(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    rt.create_container(_config(podman, "rt-slow", "sleep", "300"))
    rt.start_container("rt-slow")
    start = time.monotonic()
    with pytest.raises(PodmanTimeoutError, match="container rt-slow did not exit within 1s"):
        rt.wait_container("rt-slow", 1)
    assert time.monotonic() - start < 10
    assert rt.inspect_container("rt-slow").running  # the runtime still works afterwards


def test_healthcheck_runs_follow_retries_and_keep_output(podman: PodmanHarness,
                                                         rt: PodmanRuntime) -> None:
    hc = Healthcheck(("sh", "-c", "echo boom; exit 1"), interval="1h", retries=2)
    rt.create_container(_config(podman, "rt-sick", "sleep", "300", healthcheck=hc))
    not_started = rt.run_healthcheck("rt-sick")
    assert (not_started.running, not_started.passed) == (False, False)
    rt.start_container("rt-sick")
    first = rt.run_healthcheck("rt-sick")
    assert (first.passed, first.status, first.output, first.failing_streak) == \
        (False, "starting", "boom", 1)
    second = rt.run_healthcheck("rt-sick")
    assert (second.status, second.failing_streak) == ("unhealthy", 2)
    info = rt.inspect_container("rt-sick")
    assert (info.health, info.health_output) == ("unhealthy", "boom")
    assert rt.list_live(CLUSTER).objects["container:rt-sick"].health == "unhealthy"


def test_copy_from_returns_a_tar_of_the_path(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    rt.create_container(_config(podman, "rt-out", "sh", "-c",
                                "mkdir -p /tmp/out && echo result > /tmp/out/r.txt"))
    rt.start_container("rt-out")
    assert rt.wait_container("rt-out", 30) == 0
    with tarfile.open(fileobj=io.BytesIO(rt.copy_from("rt-out", "/tmp/out"))) as tar:
        member = tar.extractfile("out/r.txt")
        assert member is not None
        assert member.read() == b"result\n"


def test_errors_are_one_line_with_the_name_and_a_cause(podman: PodmanHarness,
                                                       rt: PodmanRuntime) -> None:
    with pytest.raises(PodmanNotFoundError) as info:
        rt.inspect_container("rt-missing")
    assert info.value.message.startswith("inspecting container rt-missing:")
    assert info.value.__cause__ is not None
    with pytest.raises(PodmanError) as created:
        rt.create_container(ContainerConfig(name="rt-noimage", image="localhost/nope/nope:1"))
    assert "creating container rt-noimage" in created.value.message
    assert "\n" not in created.value.explain()
    rt.create_container(_config(podman, "rt-twice", "true"))
    with pytest.raises(PodmanError, match=r"creating container rt-twice: .*already in use"):
        rt.create_container(_config(podman, "rt-twice", "true"))


def test_lost_service_is_a_clear_error(podman: PodmanHarness) -> None:
    rt = connect(podman.url)
    try:
        rt.ping()
        podman.stop_service()
        with pytest.raises(PodmanError) as info:
            rt.list_live(CLUSTER)
        assert f"lost the Podman API at {podman.url}" in info.value.message
        assert "\n" not in info.value.explain()
    finally:
        rt.close()
        podman.start_service()


def test_api_calls_are_counted(podman: PodmanHarness, rt: PodmanRuntime) -> None:
    before = rt.api_calls
    rt.ping()
    rt.image_exists(podman.image)
    assert rt.api_calls == before + 2


@pytest.mark.parametrize("mount_type", ["volume", "bind"])
def test_mounts_reach_the_container(podman: PodmanHarness, rt: PodmanRuntime,
                                    tmp_path: Path, mount_type: str) -> None:
    if mount_type == "volume":
        rt.create_volume("rt-mvol", _labels())
        source = "rt-mvol"
    else:
        source = str(tmp_path)
    mount = Mount(mount_type, source, "/data")
    rt.create_container(_config(podman, "rt-mount", "sh", "-c", "echo x > /data/f && cat /data/f",
                                mounts=(mount,)))
    rt.start_container("rt-mount")
    assert rt.wait_container("rt-mount", 30) == 0
    assert rt.logs("rt-mount")[0] == b"x\n"
    if mount_type == "bind":
        assert (tmp_path / "f").read_text() == "x\n"


def test_rename_container_and_remove_image(podman: PodmanHarness, rt: PodmanRuntime,
                                           tmp_path: Path) -> None:
    rt.create_container(_config(podman, "rt-old-name", "sleep", "300"))
    rt.rename_container("rt-old-name", "rt-new-name")
    assert rt.container_exists("rt-new-name") is True
    assert rt.container_exists("rt-old-name") is False
    with pytest.raises(PodmanNotFoundError):
        rt.rename_container("rt-old-name", "rt-other")

    (tmp_path / "Containerfile").write_text(f"FROM {podman.image}\nRUN echo x > /x\n")
    tag = "localhost/docklock-test/removable:1"
    rt.build_image(tmp_path, "Containerfile", tag)
    rt.create_container(ContainerConfig(name="rt-uses-image", image=tag,
                                        command=("sleep", "300")))
    with pytest.raises(PodmanError, match="removing image"):
        rt.remove_image(tag)  # still used by a container
    rt.remove_container("rt-uses-image")
    assert rt.remove_image(tag) is True
    assert rt.image_exists(tag) is False
    assert rt.remove_image(tag) is False
