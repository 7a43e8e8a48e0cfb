"""The harness itself: a private store that really runs containers."""

from __future__ import annotations

from conftest import PodmanHarness


def test_private_service_runs_a_container(podman: PodmanHarness) -> None:
    out = podman.podman("run", "--rm", "--network", "none", podman.image, "sh", "-c",
                        "echo hello-from-busybox")
    assert out.stdout.strip() == "hello-from-busybox"


def test_api_socket_answers(podman: PodmanHarness) -> None:
    import podman as podman_py

    with podman_py.PodmanClient(base_url=podman.url) as client:
        assert client.ping()
        names = [tag for img in client.images.list() for tag in img.tags]
    assert podman.image in names


def test_store_is_private(podman: PodmanHarness) -> None:
    info = podman.podman("info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
    assert info.startswith(str(podman.base))
