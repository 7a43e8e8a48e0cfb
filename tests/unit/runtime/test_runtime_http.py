"""docklock.runtime._http: the stdlib client (http.client) behind plain Podman API calls.

It must say what podman-py + requests said (query encoding, error reasons), survive
what a long-lived connection meets (an idle connection closed by the server, a timeout,
chunked answers), and hold against a hostile or broken service (review findings 6, 7:
surplus bytes after an answer, 1xx interim answers, huge or non-ASCII sizes, bodies over
the cap): against a small HTTP server and scripted byte servers on unix sockets.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import socketserver
import subprocess
import sys
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


class _Scripted:
    """A unix-socket server that sends scripted bytes: `answers[n]` answers the n-th
    request (over all connections), as pieces (seconds to wait, bytes; None: hang up);
    then it closes the connection if `close` says so, else waits for the next request
    or the client's hang-up. Connections and requests are counted."""

    def __init__(self, path: Path, answers: list[list[tuple[float, bytes | None]]], *,
                 close: bool = False) -> None:
        self.answers, self.close, self.connections, self.requests = answers, close, 0, 0
        self.url = f"unix://{path}"
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(str(path))
        self._srv.listen(4)
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        with conn:
            try:
                while True:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        more = conn.recv(65536)
                        if not more:
                            return
                        data += more
                    with self._lock:
                        n, self.requests = self.requests, self.requests + 1
                    for delay, piece in self.answers[min(n, len(self.answers) - 1)]:
                        time.sleep(delay)
                        if piece is None:
                            return  # hang up here
                        conn.sendall(piece)
                    if self.close:
                        return
            except OSError:
                return

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._srv.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._srv.close()


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Any]:
    made: list[_Scripted] = []

    def make(*answers: bytes | list[tuple[float, bytes | None]],
             close: bool = False) -> _Scripted:
        srv = _Scripted(tmp_path / f"s{len(made)}.sock",
                        [[(0.0, a)] if isinstance(a, bytes) else a for a in answers],
                        close=close)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


SECOND = _ok(b'{"second": true}')


@pytest.mark.parametrize(("answer", "expected"), [
    ([(0.0, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"until\": \"close\"}"),
      (0.0, None)], {"until": "close"}),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", []),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", []),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
     b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"
     b"Content-Length: 2\r\n\r\n[]", []),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nT: v\r\n\r\n",
     {}),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n"
     b"A\r\n[1, 2, 3 ]\r\n0\r\n\r\n", [1, 2, 3]),  # chunked wins over Content-Length
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", {}),
])
def test_answer_framings_and_the_next_answer_is_the_next_requests(
        scripted: Any, answer: bytes, expected: Any) -> None:
    srv = scripted(answer, SECOND)
    client = _http.Client(srv.url, timeout=5)
    assert client.request("get", "/x").json() == expected
    assert client.request("get", "/y").json() == {"second": True}
    client.close()


@pytest.mark.parametrize("later", [0.0, 0.2])
def test_bytes_after_an_answer_are_never_served_as_the_next_answer(
        scripted: Any, later: float) -> None:
    """Surplus after a complete answer (in the same packet, or arriving while the
    connection is idle) is dropped with its connection, never read as the answer to
    the next request."""
    fake = _ok(b'{"fake": true}')
    first = [(0.0, _ok(b"[]") + fake)] if not later else [(0.0, _ok(b"[]")), (later, fake)]
    srv = scripted(first, SECOND)
    client = _http.Client(srv.url, timeout=5)
    assert client.request("get", "/x").json() == []
    time.sleep(0.4)  # the surplus has arrived
    assert client.request("get", "/y").json() == {"second": True}
    assert srv.requests == 2
    if later:  # seen on the idle connection: a new one was opened
        assert srv.connections == 2
    client.close()


def _lost(url: str) -> PodmanError:
    with PodmanRuntime(url, timeout=5) as rt, \
            pytest.raises(PodmanError, match="lost the Podman API at") as info:
        rt.list_live("demo")
    assert "\n" not in info.value.explain()
    return info.value


@pytest.mark.parametrize("answer", [
    b"",  # closed without a word
    b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  # cut off
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # bad chunk
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n[1, 2",  # cut-off chunk
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"ffffffffffff\r\n[]",  # a 281 TB chunk: no MemoryError, broke off
    b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 150 + b"\r\n[]",  # too many headers
])
def test_broken_answers_are_a_lost_service_not_a_traceback(scripted: Any,
                                                           answer: bytes) -> None:
    _lost(scripted(answer, close=True).url)


@pytest.mark.parametrize(("head", "why"), [
    (b"Content-Length: \xb2", "Content-Length"),  # latin-1 '²': isdigit(), not a number
    (b"Content-Length: \xd9\xa1\xd9\xa0", "Content-Length"),  # Arabic-Indic 10, UTF-8
    (b"Content-Length: \xef\xbc\x92", "Content-Length"),  # fullwidth 2
    (b"Content-Length: 1_0", "Content-Length"),  # int() takes it
    (b"Content-Length: +2", "Content-Length"),
    (b"Content-Length: -1", "Content-Length"),  # http.client would read until close
    (b"Content-Length: 2\r\nContent-Length: 3", "two different"),
    (b"Transfer-Encoding: gzip, chunked", "Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\n\r\n-1", "bad chunk size"),
    (b"Transfer-Encoding: chunked\r\n\r\n0x2", "bad chunk size"),
    (b"Transfer-Encoding: chunked\r\n\r\n1_0", "bad chunk size"),
    (b"Transfer-Encoding: chunked\r\n\r\n+2", "bad chunk size"),
    (b"Transfer-Encoding: chunked\r\n\r\n\xd9\xa2", "bad chunk size"),  # Arabic-Indic 2
    (b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 17, "bad chunk size"),  # > 16 digits
])
def test_sizes_are_ascii_digits_refused_at_once_otherwise(scripted: Any, head: bytes,
                                                          why: str) -> None:
    """What int() or http.client would take (or read until close, here never) is a
    broken answer, told at once while the service keeps the connection open."""
    srv = scripted(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n[]\r\n")
    started = time.monotonic()
    error = _lost(srv.url)
    assert why in error.message
    assert time.monotonic() - started < 2  # not the 5 s timeout


def test_interim_answers_are_bounded(scripted: Any) -> None:
    interim = b"HTTP/1.1 103 Early Hints\r\n\r\n" * 30
    error = _lost(scripted(interim + _ok(b"[]")).url)
    assert "interim (1xx) answers" in error.message


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n[]",
    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n[]" % (_http.MAX_BODY + 1),
])
def test_a_declared_size_over_the_cap_is_one_line_not_a_memory_error(
        scripted: Any, answer: bytes) -> None:
    srv = scripted(answer)  # the connection stays open: the answer is never waited for
    error = _lost(srv.url)
    assert "answer is larger than 256 MiB" in error.message


CHUNKED_1024 = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"200\r\n" + b"x" * 512 + b"\r\n") * 2 + b"0\r\n\r\n")


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n" + b"x" * 1025,
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 3000,
    CHUNKED_1024.replace(b"0\r\n\r\n", b"1\r\nx\r\n0\r\n\r\n"),
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\n" + b"x" * 3000,
])
def test_a_body_over_the_cap_is_refused_whatever_its_framing(
        scripted: Any, monkeypatch: pytest.MonkeyPatch, answer: bytes) -> None:
    monkeypatch.setattr(_http, "MAX_BODY", 1024)
    monkeypatch.setattr(_http, "_PIECE", 256)  # the cap is checked after every piece
    error = _lost(scripted([(0.0, answer), (0.0, None)]).url)
    assert "answer is larger than 0 MiB" in error.message


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + b"x" * 1024, CHUNKED_1024])
def test_a_body_at_the_cap_is_read_whole(scripted: Any, monkeypatch: pytest.MonkeyPatch,
                                         answer: bytes) -> None:
    monkeypatch.setattr(_http, "MAX_BODY", 1024)
    monkeypatch.setattr(_http, "_PIECE", 256)
    client = _http.Client(scripted(answer, SECOND).url, timeout=5)
    assert client.request("get", "/x").content == b"x" * 1024
    assert client.request("get", "/y").json() == {"second": True}
    client.close()


def test_http_client_is_imported_by_the_first_call_not_before(server: tuple[str, _Server],
                                                               ) -> None:
    code = ("import sys\nfrom docklock.runtime import connect, PodmanRuntime, _http\n"
            "before = 'http.client' in sys.modules\n"
            f"c = _http.Client({server[0]!r}, timeout=5)\n"
            "assert c.request('get', '/x').status_code == 200\n"
            "print(before, 'http.client' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
