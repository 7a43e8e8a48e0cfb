"""docklock.runtime._http: the stdlib client behind plain Podman API calls.

It must say what podman-py + requests said (query encoding, error reasons) and survive
what a long-lived connection meets (an idle connection closed by the server, a timeout,
chunked answers), against a small HTTP server on a unix socket.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from podman.api.client import APIResponse

from docklock.errors import PodmanError
from docklock.runtime import PodmanNotFoundError, PodmanTimeoutError, _http
from docklock.runtime.podman import PodmanRuntime, _api_reason


@pytest.mark.parametrize("params", [
    {"all": True},
    {"filters": json.dumps({"label": ["io.docklock.cluster=demo"]})},
    {"condition": ["stopped", "exited"]},
    {"force": True, "timeout": 0, "skip": None},
    {"path": "/tmp/out dir/ü"},
])
def test_query_is_encoded_as_requests_encodes_it(params: dict[str, Any]) -> None:
    prepared = requests.Request("GET", "http://h/x", params=params).prepare()
    assert prepared.url is not None
    assert _http._query(params) == prepared.url.partition("?")[2]


@pytest.mark.parametrize(("status", "phrase", "body"), [
    (404, "Not Found", b'{"cause": "no such container", "message": "no container with '
                       b'name or ID \\"x\\" found: no such container", "response": 404}'),
    (500, "Internal Server Error", b'{"cause": "rlimit", "message": "error setting rlimit"}'),
    (409, "Conflict", b'{"message": "only a message"}'),
    (500, "Internal Server Error", b"plain text failure\nsecond line"),
    (400, "Bad Request", b""),
])
def test_error_reason_reads_as_podman_py_reads_it(status: int, phrase: str,
                                                  body: bytes) -> None:
    theirs = requests.Response()
    theirs.status_code, theirs.reason, theirs._content = status, phrase, body
    with pytest.raises(requests.HTTPError) as raised:
        APIResponse(theirs).raise_for_status()
    ours = _http.StatusError(_http.Response(status, phrase, body))
    assert _api_reason(ours) == _api_reason(raised.value)  # type: ignore[arg-type]
    assert str(ours) == str(raised.value)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path.endswith("/slow"):
            time.sleep(1.0)
        if self.path.endswith("/missing"):
            body = b'{"cause": "no such thing", "message": "thing x not found"}'
            self.send_response(404)
        elif self.path.endswith("/close"):
            body = b"bye"
            self.send_response(200)
            self.send_header("Connection", "close")
        else:
            body = json.dumps({"path": self.path}).encode()
            self.send_response(200)
        if self.path.endswith("/chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:5], body[5:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client of /slow hangs up on purpose


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, _Server]]:
    path = tmp_path / "api.sock"
    srv = _Server(str(path), _Handler)
    _Handler.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}", srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_calls_reuse_one_connection_and_decode_chunked_answers(
        server: tuple[str, _Server]) -> None:
    url, _srv = server
    client = _http.Client(url, timeout=5)
    first = client.request("get", "/containers/json", params={"all": True})
    conn = client._local.conn
    second = client.request("get", "/chunked")
    assert first.json() == {"path": f"{_http.API_PREFIX}/containers/json?all=True"}
    assert second.json() == {"path": f"{_http.API_PREFIX}/chunked"}
    assert client._local.conn is conn
    client.close()


def test_a_connection_the_server_closed_is_replaced(server: tuple[str, _Server]) -> None:
    url, _srv = server
    client = _http.Client(url, timeout=5)
    assert client.request("get", "/close").text == "bye"
    time.sleep(0.1)
    assert client.request("get", "/again").status_code == 200
    assert _Handler.seen == [f"{_http.API_PREFIX}/close", f"{_http.API_PREFIX}/again"]
    client.close()


def test_runtime_errors_name_the_object_and_keep_working(server: tuple[str, _Server]) -> None:
    url, _srv = server
    with PodmanRuntime(url) as rt:
        with pytest.raises(PodmanNotFoundError) as missing:
            rt._call("inspecting thing x", "get", "/missing")
        assert missing.value.message == "inspecting thing x: thing x not found (HTTP 404)"
        assert isinstance(missing.value.__cause__, _http.StatusError)
        assert rt._call("looking up thing x", "get", "/missing", ok=(404,)).status_code == 404
        with pytest.raises(PodmanTimeoutError, match="did not answer in time"):
            rt._call("waiting", "get", "/slow", timeout=0.2)
        assert rt._json("listing", "get", "/ok") == {"path": f"{_http.API_PREFIX}/ok"}
        assert rt.api_calls == 3  # answered calls; the timed-out one got no answer


def test_a_service_that_went_away_is_lost_not_a_traceback(tmp_path: Path) -> None:
    with PodmanRuntime(f"unix://{tmp_path / 'gone.sock'}") as rt, \
            pytest.raises(PodmanError, match=r"lost the Podman API at .*no socket there"):
        rt.list_live("demo")


def _canned(path: Path, answer: bytes) -> threading.Thread:
    """A one-connection server that reads a request and sends `answer`, then closes."""
    import socket

    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(answer)
        srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("answer", "expected"), [
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"until\": \"close\"}",
     {"until": "close"}),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", []),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nT: v\r\n\r\n",
     {}),
])
def test_answer_framings(tmp_path: Path, answer: bytes, expected: Any) -> None:
    thread = _canned(tmp_path / "s.sock", answer)
    client = _http.Client(f"unix://{tmp_path / 's.sock'}", timeout=5)
    assert client.request("get", "/x").json() == expected
    client.close()
    thread.join(5)


@pytest.mark.parametrize("answer", [
    b"",  # closed without a word
    b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut off
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk
])
def test_broken_answers_are_a_lost_service_not_a_traceback(tmp_path: Path,
                                                           answer: bytes) -> None:
    thread = _canned(tmp_path / "s.sock", answer)
    with PodmanRuntime(f"unix://{tmp_path / 's.sock'}") as rt, \
            pytest.raises(PodmanError, match="lost the Podman API at") as info:
        rt.list_live("demo")
    assert "\n" not in info.value.explain()
    thread.join(5)
