"""The witness's HTTP layer in-process: routes, bounded bodies, content types."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from witnesshelp import Log, make_witness

from docklock.ledger.keys import HybridSigner
from docklock.witness.client import get_checkpoint, logs_by_key, post_add_checkpoint
from docklock.witness.server import MAX_BODY, SIZE_CONTENT_TYPE, make_server


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Log]]:
    log = Log.new(9)
    server = make_server(make_witness(tmp_path / "w", log), "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _raw(url: str, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest(method, path)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


def test_protocol_over_http(served: tuple[str, Log]) -> None:
    url, log = served
    assert get_checkpoint(url, log.origin).status == 404  # never cosigned yet
    r = post_add_checkpoint(url, 0, [], log.note(4))
    assert r.status == 200
    assert r.body.startswith("\u2014 witness.test/w1 ")
    r = post_add_checkpoint(url, 0, [], log.note(9))
    assert (r.status, r.content_type, r.known_size()) == (409, SIZE_CONTENT_TYPE, 4)
    view = get_checkpoint(url, log.origin)
    assert view.status == 200
    assert view.body.startswith(log.text(4))
    listed = logs_by_key(url, log.signer.public_key.ed25519)
    assert listed == [(log.origin, 4, log.root(4))]
    assert logs_by_key(url, HybridSigner.generate().public_key.ed25519) == []


def test_http_edges(served: tuple[str, Log]) -> None:
    url, _ = served
    status, _, body = _raw(url, "POST", "/add-checkpoint")  # no Content-Length
    assert (status, "Content-Length" in body) == (411, True)
    status, _, _ = _raw(url, "POST", "/add-checkpoint",
                        headers={"Content-Length": str(MAX_BODY + 1)})
    assert status == 413
    assert _raw(url, "POST", "/other", b"x", {"Content-Length": "1"})[0] == 404
    assert _raw(url, "GET", "/nothex/checkpoint")[0] == 404
    assert _raw(url, "GET", "/")[0] == 404
