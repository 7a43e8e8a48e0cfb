"""Podman URL resolution, the private-service starter's failures, and pure payload mapping.

None of these need Podman: unreachable URLs are sockets that do not exist, and the
"podman" binaries are stand-ins that fail the way a broken install does.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from docklock.errors import PodmanError, PodmanUnavailableError
from docklock.runtime import ContainerInfo, PrivateService, connect, demux_logs, resolve_url
from docklock.runtime.podman import (
    ROOT_SOCKET,
    _hint_for,
    _live_container,
    default_socket,
    normalize_url,
    unix_socket_path,
)

FLAG = "unix:///flag.sock"
ENV = "unix:///env.sock"
WS = "unix:///workspace.sock"


@pytest.mark.parametrize(
    ("flag", "env_url", "ws_url", "url", "source"),
    [
        pytest.param(FLAG, ENV, WS, FLAG, "--podman-url", id="flag-wins"),
        pytest.param(None, ENV, WS, ENV, "DOCKLOCK_PODMAN_URL", id="env-before-workspace"),
        pytest.param(None, None, WS, WS, "docklock.yaml", id="workspace"),
        pytest.param("", "", WS, WS, "docklock.yaml", id="empty-values-skipped"),
        pytest.param(None, None, None, f"unix://{ROOT_SOCKET}", "default socket",
                     id="default-root"),
    ],
)
def test_resolution_order(flag: str | None, env_url: str | None, ws_url: str | None,
                          url: str, source: str) -> None:
    env = {"DOCKLOCK_PODMAN_URL": env_url} if env_url is not None else {}
    choice = resolve_url(flag, env=env, workspace_url=ws_url, uid=0)
    assert (choice.url, choice.source) == (url, source)
    assert choice.explicit == (source != "default socket")


def test_rootless_default_uses_runtime_dir() -> None:
    assert default_socket(1000, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == \
        "unix:///run/user/1000/podman/podman.sock"
    assert default_socket(1234, {}) == "unix:///run/user/1234/podman/podman.sock"
    assert default_socket(0, {"XDG_RUNTIME_DIR": "/run/user/0"}) == f"unix://{ROOT_SOCKET}"


def test_default_url_override_is_not_explicit() -> None:
    choice = resolve_url(None, env={}, default_url="/tmp/x.sock")
    assert choice == type(choice)("unix:///tmp/x.sock", "default socket", explicit=False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("/run/podman/podman.sock", "unix:///run/podman/podman.sock"),
        ("unix:///run/podman/podman.sock", "unix:///run/podman/podman.sock"),
        ("tcp://127.0.0.1:8888", "tcp://127.0.0.1:8888"),
        ("ssh://core@host:22/run/podman/podman.sock", "ssh://core@host:22/run/podman/podman.sock"),
        ("  http://localhost:8080 ", "http://localhost:8080"),
    ],
)
def test_normalize_accepts(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["podman.sock", "ftp://host/x", "unix:/x", "localhost:8080"])
def test_normalize_rejects_with_source(bad: str) -> None:
    with pytest.raises(PodmanUnavailableError,
                       match=r"DOCKLOCK_PODMAN_URL .* not a Podman API URL"):
        resolve_url(None, env={"DOCKLOCK_PODMAN_URL": bad})


def test_unix_socket_path() -> None:
    assert unix_socket_path("unix:///run/podman/podman.sock") == "/run/podman/podman.sock"
    assert unix_socket_path("tcp://h:1") is None


def test_explicit_url_that_does_not_answer_is_one_line_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(PodmanUnavailableError) as info:
        connect(None, env={"DOCKLOCK_PODMAN_URL": url, "PATH": os.environ["PATH"]})
    text = info.value.explain()
    assert "\n" not in text
    assert url in text
    assert "DOCKLOCK_PODMAN_URL" in text
    assert "no socket there" in text
    assert "podman system service" in info.value.hint


def test_stale_socket_file_is_reported_as_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "stale.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the file stays, nobody listens
    with pytest.raises(PodmanUnavailableError, match="connection refused"):
        connect(f"unix://{path}", env={})


def test_default_without_podman_binary_names_url_and_fix(tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    default = f"unix://{tmp_path}/default.sock"
    with pytest.raises(PodmanUnavailableError) as info:
        connect(env={"PATH": str(empty_bin)}, default_url=default)
    message = info.value.explain()
    assert default in message
    assert "no podman binary" in message
    assert "./dev demo" in info.value.hint


def test_default_with_start_service_disabled(tmp_path: Path) -> None:
    default = f"unix://{tmp_path}/default.sock"
    with pytest.raises(PodmanUnavailableError, match="default socket: no socket there"):
        connect(env={"PATH": os.environ["PATH"]}, default_url=default, start_service=False)


def _fake_podman(tmp_path: Path, body: str) -> str:
    script = tmp_path / "podman"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where PrivateService makes its socket folder, to check it cleans up."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _left_in(tmp: Path) -> list[Path]:
    """Everything under `tmp` but the (empty) per-user runtime folder services live in."""
    root = tmp / f"docklock-{os.geteuid()}"
    return sorted(p for p in tmp.rglob("*") if p != root)


def test_private_service_that_exits_reports_its_output(tmp_path: Path,
                                                       private_tmp: Path) -> None:
    fake = _fake_podman(tmp_path, 'echo "Error: storage is broken" >&2; exit 125')
    with pytest.raises(PodmanUnavailableError) as info:
        PrivateService.start(fake, env={"PATH": os.environ["PATH"]})
    assert "exited with code 125" in info.value.message
    assert "storage is broken" in info.value.message
    assert "\n" not in info.value.explain()
    assert _left_in(private_tmp) == []


def test_private_service_that_never_answers_is_stopped(tmp_path: Path,
                                                       private_tmp: Path) -> None:
    fake = _fake_podman(tmp_path, 'echo $$ > "$(dirname "$0")/pid"; exec sleep 60')
    with pytest.raises(PodmanUnavailableError, match=r"did not answer within 1s"):
        PrivateService.start(fake, env={"PATH": os.environ["PATH"]}, timeout=1.0)
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped, not left behind
    assert _left_in(private_tmp) == []


def _frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def test_demux_logs_separates_streams_exactly() -> None:
    raw = _frame(1, b"out1\n") + _frame(2, b"err") + _frame(1, b"no-newline")
    assert demux_logs(raw) == (b"out1\nno-newline", b"err")
    assert demux_logs(b"") == (b"", b"")


def test_demux_logs_unframed_is_stdout() -> None:
    assert demux_logs(b"plain tty output\n") == (b"plain tty output\n", b"")


def test_live_container_mapping_from_list_payload() -> None:
    item = {
        "Id": "abc", "Names": ["demo-default-web-0"], "State": "exited", "ExitCode": 3,
        "Status": "", "Image": "localhost/demo/busybox:1", "ImageID": "0151086cc702",
        "Labels": {"io.docklock.config-hash": "h1", "io.docklock.address": "Service/default/web"},
        "Ports": [{"host_ip": "127.0.0.1", "host_port": 18080, "container_port": 8080,
                   "protocol": "tcp"}],
    }
    obj = _live_container(item)
    assert obj.key == "container:demo-default-web-0"
    assert (obj.status, obj.exit_code, obj.health) == ("exited", 3, "")
    assert obj.config_hash == "h1"
    assert obj.address == "Service/default/web"
    assert obj.ports == ("127.0.0.1:18080->8080/tcp",)
    assert obj.image == "0151086cc702"
    assert _live_container({**item, "ImageID": ""}).image == "localhost/demo/busybox:1"
    running = _live_container({**item, "State": "running", "Status": "healthy"})
    assert (running.exit_code, running.health) == (None, "healthy")
    # Podman 5 puts a duration text in Status; it is not a health state.
    assert _live_container({**item, "Status": "Up 2 seconds"}).health == ""


def test_container_info_from_inspect() -> None:
    data = {
        "Id": "abc", "Name": "web", "ImageName": "localhost/demo/busybox:1", "Image": "sha",
        "Config": {"Labels": {"a": "b"}, "Healthcheck": {"Test": ["CMD", "true"]}},
        "State": {"Status": "running", "Running": True, "ExitCode": 0,
                  "StartedAt": "2026-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                  "Health": {"Status": "unhealthy", "FailingStreak": 2,
                             "Log": [{"Output": "old"}, {"Output": "boom\n"}]}},
    }
    info = ContainerInfo.from_inspect(data)
    assert (info.status, info.running, info.health, info.health_output) == \
        ("running", True, "unhealthy", "boom")
    assert (info.started_at, info.finished_at) == ("2026-01-01T00:00:00Z", "")
    assert info.health_failing_streak == 2
    assert info.labels == {"a": "b"}
    assert (info.image, info.image_id) == ("localhost/demo/busybox:1", "sha")


def test_known_podman_failures_get_hints() -> None:
    assert "default_ulimits" in _hint_for(
        "error setting rlimit type 7: operation not permitted")
    assert "runc" in _hint_for("cgroups in hybrid mode not supported")
    assert _hint_for("something else") == ""


def test_runtime_errors_are_podman_errors() -> None:
    from docklock.runtime import PodmanNotFoundError, PodmanTimeoutError

    assert issubclass(PodmanNotFoundError, PodmanError)
    assert issubclass(PodmanTimeoutError, PodmanError)
