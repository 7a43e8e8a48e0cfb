"""The stdlib HTTP client (http.client) for plain Podman API calls, unix socket or TCP.

Why not podman-py here: it pulls in requests and urllib3 (about 0.1 s of imports, more
than a no-op plan's Podman work), while a refresh is three GETs. docklock.runtime.podman
sends its plain request/response calls through here for unix://, tcp:// and http://
URLs and keeps podman-py for what it does beyond that (ssh:// tunnels, container
create, image build, streamed logs and exec).

The HTTP parsing is http.client's (review findings 6 and 7: a security tool does not
keep its own HTTP parser). It is imported on the first call, not with this module, so
`docklock --version` and commands that never call Podman do not pay for it (~15 ms).

Invariants:
- One persistent connection per thread (the executor's workers each get their own), as
  requests' pool does. A connection the server closed while idle, or that holds bytes
  nobody asked for, is noticed before it is reused (the check urllib3 makes) and
  replaced; a request is never retried after it was sent.
- Every answer is read to its end before the connection is used again (http.client
  makes one response object per request); whatever a server sends beyond an answer is
  never taken as the next answer.
- 1xx interim answers (100 Continue, 103 Early Hints...) are skipped; at most
  `_MAX_INTERIM` of them.
- A body is at most `MAX_BODY` bytes (declared or counted), Content-Length must be
  ASCII digits and chunk sizes ASCII hex digits; anything else is a BrokenAnswer.
- Every failure is an OSError (BrokenAnswer, TimeoutError, ConnectionError...) or a
  StatusError, never an http.client exception, so callers map it to "lost the Podman
  API" rather than a traceback.
"""

from __future__ import annotations

import functools
import json
import re
import select
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

if TYPE_CHECKING:
    import http.client

# The libpod API version in request paths. Podman serves every 4.x/5.x version prefix
# with its own API; this is the version DockLock supports (docs: Podman >= 4.3).
API_PREFIX = "/v4.3.0/libpod"
SCHEMES = ("unix", "tcp", "http")
USER_AGENT = "DockLock"
MAX_BODY = 256 * 1024 * 1024  # the largest answer body accepted (a full inspect is < 1 MiB)
_PIECE = 1024 * 1024  # bodies are read in pieces of at most this, never by a declared size
_MAX_INTERIM = 20  # 1xx answers skipped before the final one
_DIGITS = re.compile(rb"[0-9]{1,19}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


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


class AnswerTooLarge(BrokenAnswer):
    """The answer's body is larger than MAX_BODY (declared or sent)."""


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
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _dropped(conn):
            self._discard(conn)
            conn = None
        if conn is None:
            unix_cls, tcp_cls = _classes()
            if self._unix is not None:
                conn = unix_cls(self._unix, timeout=timeout)
            else:
                conn = tcp_cls(self._host, self._port, timeout=timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        conn.timeout = timeout  # for a reconnect after an answer that closed it
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

    def _discard(self, conn: http.client.HTTPConnection) -> None:
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
        import http.client

        target = API_PREFIX + quote(path if path.startswith("/") else "/" + path,
                                    safe="/:@!$&'()*+,;=-._~%")
        query = _query(params)
        if query:
            target += "?" + query
        method = method.upper()
        conn = self._connection(timeout if timeout is not None else self.timeout)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self._host_header)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Accept", "*/*")
            if body is not None or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders(body)
            try:
                answer = conn.getresponse()
                content = _read_body(answer)
            except (http.client.HTTPException, ValueError) as exc:
                raise BrokenAnswer(_broken_reason(exc)) from exc
        except BaseException:
            self._discard(conn)  # a half-sent request or half-read answer is not reused
            raise
        if answer.will_close:
            self._discard(conn)
        return Response(answer.status, answer.reason, content)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when the idle connection was closed by the server (readable = EOF) or holds
    bytes it was not asked for; the check urllib3 makes before reusing a connection."""
    if conn.sock is None:
        return False  # not connected yet
    try:
        readable, _, _ = select.select([conn.sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _read_body(answer: http.client.HTTPResponse) -> bytes:
    """The whole body, read in bounded pieces, after checking how it is framed."""
    coding = answer.getheader("transfer-encoding")
    if coding is not None and coding.strip().lower() != "chunked":
        raise BrokenAnswer(f"Podman sent an unsupported Transfer-Encoding: {coding[:40]!r}")
    declared: int | None = None
    if not answer.chunked:
        lengths = {str(v).strip() for v in answer.headers.get_all("content-length") or ()}
        for value in lengths:
            if not _DIGITS.fullmatch(value.encode("latin-1", "replace")):
                raise BrokenAnswer(f"Podman sent a bad Content-Length: {value[:40]!r}")
        if len({int(v) for v in lengths}) > 1:
            raise BrokenAnswer("Podman sent two different Content-Lengths")
        if lengths:
            declared = int(lengths.pop())
            if declared > MAX_BODY:
                raise AnswerTooLarge(_too_large())
    parts: list[bytes] = []
    total = 0
    while piece := answer.read(_PIECE):
        total += len(piece)
        if total > MAX_BODY:
            raise AnswerTooLarge(_too_large())
        parts.append(piece)
    if answer.length:  # http.client stops quietly at EOF before Content-Length is met
        raise BrokenAnswer(f"Podman's answer broke off ({total} of {declared} bytes)")
    return b"".join(parts)


def _too_large() -> str:
    return f"Podman's answer is larger than {MAX_BODY // (1024 * 1024)} MiB"


def _broken_reason(exc: BaseException) -> str:
    import http.client

    if isinstance(exc, http.client.IncompleteRead):
        return "Podman's answer broke off"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "Podman closed the connection without an answer"
    if isinstance(exc, (http.client.BadStatusLine, http.client.UnknownProtocol)):
        return f"Podman's answer is not HTTP: {str(exc)[:60]!r}"
    return f"Podman's answer is not valid HTTP ({type(exc).__name__}: {str(exc)[:60]})"


@functools.cache
def _classes() -> tuple[type[http.client.HTTPConnection], type[http.client.HTTPConnection]]:
    """(unix-socket connection, TCP connection) classes, made on the first call so that
    importing this module does not import http.client."""
    import http.client

    class StrictResponse(http.client.HTTPResponse):
        """http.client's response, stricter where it is lenient: every 1xx interim
        answer is skipped (it skips only 100), and a chunk size is 1-16 ASCII hex
        digits (int(x, 16) takes '-1', '0x10', '1_0' and spaces)."""

        def _read_status(self) -> tuple[str, int, str]:
            for _ in range(_MAX_INTERIM):
                version, status, reason = super()._read_status()  # type: ignore[misc]
                if not 100 <= status < 200 or status == 101:
                    return version, status, reason
                http.client.parse_headers(self.fp)  # an interim answer's fields: unused
            raise BrokenAnswer(f"Podman sent over {_MAX_INTERIM} interim (1xx) answers")

        def _read_next_chunk_size(self) -> int:
            line: bytes = self.fp.readline(65537)
            size = line.split(b";", 1)[0].strip(b" \t\r\n")
            if len(line) > 65536 or not _HEX.fullmatch(size):
                self._close_conn()  # type: ignore[attr-defined]
                raise BrokenAnswer(f"Podman sent a bad chunk size: {size[:20]!r}")
            return int(size, 16)

    class TCPConnection(http.client.HTTPConnection):
        response_class = StrictResponse

    class UnixConnection(http.client.HTTPConnection):
        response_class = StrictResponse

        def __init__(self, path: str, *, timeout: float | None) -> None:
            super().__init__("localhost", timeout=timeout)
            self.path = path

        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
            self.sock = sock

    return UnixConnection, TCPConnection


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
