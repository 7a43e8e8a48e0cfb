"""A small HTTP/1.1 client for the Podman API over a unix socket or TCP, on the stdlib.

Why: podman-py pulls in requests and urllib3 (about 0.1 s of imports, more than a no-op
plan's Podman work), while a refresh is three GETs. docklock.runtime.podman sends its
plain request/response calls through here for unix://, tcp:// and http:// URLs and
keeps podman-py for what it does beyond that (ssh:// tunnels, container create, image
build, streamed logs and exec).

One persistent connection per thread (the executor's workers each get their own), as
requests' pool does; a connection the server closed while idle is noticed before it is
reused (the check urllib3 makes) and replaced, never retried after a request was sent.
"""

from __future__ import annotations

import http.client
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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class Client:
    """Requests to one Podman API service; thread-safe (a connection per thread)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"the scheme {parts.scheme!r} must be one of {SCHEMES}")
        self.timeout = timeout
        self._unix = (parts.netloc + parts.path) if parts.scheme == "unix" else None
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        if conn is None:
            conn = (_UnixConnection(self._unix, self.timeout) if self._unix is not None
                    else http.client.HTTPConnection(self._host, self._port,
                                                    timeout=self.timeout))
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None,
                timeout: float | None = None) -> Response:
        """One call; raises OSError (connection), TimeoutError or http.client errors."""
        target = API_PREFIX + quote(path if path.startswith("/") else "/" + path,
                                    safe="/:@!$&'()*+,;=-._~%")
        query = _query(params)
        if query:
            target += "?" + query
        conn = self._connection()
        send_headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
        if headers:
            send_headers.update(headers)
        wait = timeout if timeout is not None else self.timeout
        try:
            if conn.sock is None:
                conn.timeout = wait
            else:
                conn.sock.settimeout(wait)
            conn.request(method.upper(), target, body=body, headers=send_headers)
            answer = conn.getresponse()
            content = answer.read()
        except BaseException:
            conn.close()  # a half-read answer must not be reused
            raise
        if answer.will_close:
            conn.close()
        return Response(answer.status, answer.reason, content)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


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


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when the idle connection was closed by the server (readable = EOF)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
