"""The client side of c2sp.org/tlog-witness: add-checkpoint and the monitor GET.

Every call is bounded: one timeout (default 5 s) per request and at most MAX_RESPONSE
bytes read. Network failures become WitnessError; HTTP statuses are returned as data,
since 409, 422 and 404 carry meaning the caller interprets.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from docklock.errors import WitnessError
from docklock.witness.server import SIZE_CONTENT_TYPE, origin_hash

DEFAULT_TIMEOUT = 5.0
MAX_RESPONSE = 256 * 1024
_DECIMAL = re.compile(r"[0-9]{1,20}")  # ASCII digits only: str.isdigit() takes "²"


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    content_type: str

    def known_size(self) -> int | None:
        """The witness's size from a 409 reply (text/x.tlog.size), else None."""
        if self.status != 409 or not self.content_type.startswith(SIZE_CONTENT_TYPE):
            return None
        text = self.body.strip()
        return int(text) if _DECIMAL.fullmatch(text) else None


def add_checkpoint_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}"] + [base64.b64encode(h).decode("ascii") for h in proof]
    return ("\n".join(lines) + "\n\n" + note).encode("utf-8")


def _check_url(url: str) -> str:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise WitnessError(f"witness URL {url!r} is not http(s)",
                           hint="witness URLs look like http://witness.example:8330")
    return url


def _request(req: urllib.request.Request, url: str, timeout: float) -> Reply:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - checked
            data = resp.read(MAX_RESPONSE + 1)
            status, ctype = resp.status, resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        # The error body is read here, outside the try above: a witness that stalls or
        # drops the connection mid-body must still give a WitnessError.
        try:
            data = exc.read(MAX_RESPONSE + 1)
        except (http.client.HTTPException, OSError) as err:
            raise WitnessError(f"witness {url} broke off its HTTP {exc.code} reply: {err}",
                               hint="check that the witness runs and is not overloaded") \
                from err
        status, ctype = exc.code, exc.headers.get("Content-Type", "") if exc.headers else ""
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WitnessError(f"witness {url} is unreachable: {reason}",
                           hint="check the witness URL in docklock.yaml and that it runs") \
            from exc
    if len(data) > MAX_RESPONSE:
        raise WitnessError(f"witness {url} sent more than {MAX_RESPONSE} bytes")
    return Reply(status, data.decode("utf-8", "replace"), ctype)


def post_add_checkpoint(url: str, old: int, proof: Sequence[bytes], note: str, *,
                        timeout: float = DEFAULT_TIMEOUT) -> Reply:
    endpoint = _check_url(url.rstrip("/") + "/add-checkpoint")
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked: http(s) only
        endpoint, data=add_checkpoint_body(old, proof, note), method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8"})
    return _request(req, endpoint, timeout)


def get_checkpoint(url: str, origin: str, *, timeout: float = DEFAULT_TIMEOUT) -> Reply:
    """The witness's latest cosigned checkpoint of `origin` (404: never cosigned it)."""
    endpoint = _check_url(f"{url.rstrip('/')}/{origin_hash(origin)}/checkpoint")
    req = urllib.request.Request(endpoint, method="GET")  # noqa: S310 - http(s) only
    return _request(req, endpoint, timeout)


def logs_by_key(url: str, ed25519_public: bytes, *,
                timeout: float = DEFAULT_TIMEOUT) -> list[tuple[str, int, bytes]] | None:
    """DockLock witnesses only: (origin, size, root) of every log signed by this key that
    the witness cosigned; None if the witness does not offer the extension."""
    digest = hashlib.sha256(ed25519_public).hexdigest()
    endpoint = _check_url(f"{url.rstrip('/')}/docklock/v1/{digest}/logs")
    req = urllib.request.Request(endpoint, method="GET")  # noqa: S310 - http(s) only
    reply = _request(req, endpoint, timeout)
    if reply.status != 200:
        return None
    out: list[tuple[str, int, bytes]] = []
    for line in reply.body.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not _DECIMAL.fullmatch(parts[1]):
            raise WitnessError(f"witness {url} sent a malformed log list line {line[:60]!r}")
        try:
            root = base64.b64decode(parts[2], validate=True)
        except ValueError as exc:
            raise WitnessError(f"witness {url} sent a malformed root") from exc
        out.append((parts[0], int(parts[1]), root))
    return out
