"""A small HTTP/1.1 client for the Podman API over a unix socket or TCP, on the stdlib.

Why: podman-py pulls in requests and urllib3 (about 0.1 s of imports, more than a no-op
plan's Podman work), while a refresh is three GETs. docklock.runtime.podman sends its
plain request/response calls through here for unix://, tcp:// and http:// URLs and
keeps podman-py for what it does beyond that (ssh:// tunnels, container create, image
build, streamed logs and exec).

One persistent connection per thread (the executor's workers each get their own), as
requests' pool does; a connection the server closed while idle is noticed before it is
reused (the check urllib3 makes) and replaced, never retried after a request was sent.
The protocol is written out here (HTTP/1.1 with Content-Length or chunked answers)
rather than taken from http.client, which imports ssl and the email parser (~10 ms).
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

# The libpod API version in request paths. Podman serves every 4.x/5.x version prefix
# with its own API; this is the version DockLock supports (docs: Podman >= 4.3).
API_PREFIX = "/v4.3.0/libpod"
SCHEMES = ("unix", "tcp", "http")
USER_AGENT = "DockLock"


@dataclass(frozen=True)
class Response:
    """What a call returns: the status, the reason phrase and the whole body."""

    status_code: int
    reason: str
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not JSON (as requests raises)."""
        return json.loads(self.content)


class StatusError(Exception):
    """The API answered with an error status (>= 400); `response` holds the answer.

    `cause`/`message` are read from the body as podman-py reads them (its APIError),
    so messages read the same whichever client made the call."""

    def __init__(self, response: Response) -> None:
        self.response = response
        try:
            body = response.json()
            cause, message = str(body["cause"]), str(body["message"])
        except (ValueError, KeyError, TypeError):
            cause = message = response.text
        self.explanation = message
        kind = "Client" if response.status_code < 500 else "Server"
        text = f"{response.status_code} {kind} Error: {response.reason}"
        super().__init__(f"{text} ({message})" if message else text)
        self.cause = cause


class BrokenAnswer(ConnectionError):
    """The service closed the connection early or sent something that is not HTTP."""


class _Connection:
    """One socket to the service and a buffered reader over it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.used = False

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def dropped(self) -> bool:
        """True when the idle connection was closed by the server (readable = EOF); the
        check urllib3 makes before reusing a pooled connection."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)


class Client:
    """Requests to one Podman API service; thread-safe (a connection per thread)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"the scheme {parts.scheme!r} must be one of {SCHEMES}")
        self.timeout = timeout
        self._unix = (parts.netloc + parts.path) if parts.scheme == "unix" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port or 80
        self._host_header = "localhost" if self._unix is not None else (
            self._host if parts.port is None else f"{self._host}:{parts.port}")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[_Connection] = []

    def _connect(self, timeout: float | None) -> _Connection:
        if self._unix is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self._unix)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self._host, self._port), timeout=timeout)
        conn = _Connection(sock)
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self, timeout: float | None) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.dropped():
            self._discard(conn)
            conn = None
        if conn is None:
            conn = self._connect(timeout)
            self._local.conn = conn
        else:
            conn.sock.settimeout(timeout)
        return conn

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float | None = None) -> Response:
        """One call; raises OSError (connection, BrokenAnswer) or TimeoutError."""
        target = API_PREFIX + quote(path if path.startswith("/") else "/" + path,
                                    safe="/:@!$&'()*+,;=-._~%")
        query = _query(params)
        if query:
            target += "?" + query
        method = method.upper()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}",
                 f"User-Agent: {USER_AGENT}", "Accept: */*"]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        wire = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        conn = self._connection(timeout if timeout is not None else self.timeout)
        try:
            conn.sock.sendall(wire)
            status, reason, content, close = _read_answer(conn.reader, method)
        except BaseException:
            self._discard(conn)  # a half-read answer must not be reused
            raise
        if close:
            self._discard(conn)
        return Response(status, reason, content)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


_MAX_LINE = 65536
_MAX_HEADERS = 100


def _line(reader: Any) -> bytes:
    line: bytes = reader.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE:
        raise BrokenAnswer("Podman sent an over-long line")
    return line


def _read_answer(reader: Any, method: str) -> tuple[int, str, bytes, bool]:
    """(status, reason, body, close the connection after) of one HTTP/1.1 answer."""
    while True:
        first = _line(reader)
        if not first:
            raise ConnectionResetError("Podman closed the connection without an answer")
        version, _, rest = first.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or not code.isdigit():
            raise BrokenAnswer(f"Podman's answer is not HTTP: {first[:60]!r}")
        status = int(code)
        fields: dict[str, str] = {}
        for _ in range(_MAX_HEADERS + 1):
            raw = _line(reader)
            if raw in (b"\r\n", b"\n"):
                break
            if not raw:
                raise BrokenAnswer("Podman's answer broke off in its headers")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise BrokenAnswer(f"Podman sent a malformed header: {raw[:60]!r}")
            fields[name.strip().lower()] = value.strip()
        else:
            raise BrokenAnswer("Podman sent too many headers")
        if status != 100:  # 100 Continue: the real answer follows
            break
    connection = fields.get("connection", "").lower()
    close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, reason, b"", close
    if "chunked" in fields.get("transfer-encoding", "").lower():
        return status, reason, _read_chunked(reader), close
    length = fields.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BrokenAnswer(f"Podman sent a bad Content-Length: {length[:40]!r}")
        content = _read_exactly(reader, int(length))
        return status, reason, content, close
    return status, reason, reader.read(), True  # delimited by the end of the connection


def _read_exactly(reader: Any, size: int) -> bytes:
    data: bytes = reader.read(size)
    if len(data) != size:
        raise BrokenAnswer(f"Podman's answer broke off ({len(data)} of {size} bytes)")
    return data


def _read_chunked(reader: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = _line(reader)
        if not size_line:
            raise BrokenAnswer("Podman's answer broke off between chunks")
        text = size_line.split(b";", 1)[0].strip()
        try:
            size = int(text, 16)
        except ValueError:
            raise BrokenAnswer(f"Podman sent a bad chunk size: {text[:20]!r}") from None
        if size == 0:
            while _line(reader) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields, unused
            return b"".join(parts)
        parts.append(_read_exactly(reader, size))
        if _line(reader) not in (b"\r\n", b"\n"):
            raise BrokenAnswer("Podman sent a chunk without its line end")


def _query(params: Mapping[str, Any] | None) -> str:
    """URL query as requests encodes it: None values dropped, lists repeated."""
    if not params:
        return ""
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items.extend((key, str(v)) for v in value)
        else:
            items.append((key, str(value)))
    return urlencode(items)
