"""The witness under hostile or broken peers: malformed headers, damaged state files,
stalled replies, and clients that trickle bytes to hold connections (issue 11 review,
7 and 8). Every wait here is bounded by a socket timeout or a deadline."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from witnesshelp import Log, make_witness

from docklock.errors import WitnessError
from docklock.witness.client import get_checkpoint, post_add_checkpoint
from docklock.witness.server import (
    LOGS_DIR,
    Witness,
    WitnessConfigError,
    make_server,
    origin_hash,
)


@contextlib.contextmanager
def _served(folder: Path, **bounds: Any) -> Iterator[tuple[str, int]]:
    server = make_server(folder, "127.0.0.1:0", **bounds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    _SERVERS[port] = server
    try:
        yield f"http://127.0.0.1:{port}", port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


_SERVERS: dict[int, Any] = {}


def _exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(4096):
                chunks.append(chunk)
        return b"".join(chunks)


def test_a_non_ascii_digit_content_length_is_refused_not_a_crash(tmp_path: Path) -> None:
    # "²" passes str.isdigit(); int("²") raises. Latin-1 is how HTTP headers are read.
    with _served(make_witness(tmp_path / "w", Log.new(3))) as (_url, port):
        reply = _exchange(port, b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n"
                                b"Content-Length: \xb2\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 411"), reply[:80]


def test_a_damaged_state_file_is_reported_not_a_crash(tmp_path: Path) -> None:
    log = Log.new(5)
    folder = make_witness(tmp_path / "w", log)
    with _served(folder) as (url, _port):
        assert post_add_checkpoint(url, 0, [], log.note(3)).status == 200
        state = folder / LOGS_DIR / f"{origin_hash(log.origin)}.json"
        for damage in ({"root": None}, {"root": "not base64!"}, {"checkpoint": 7}):
            d = json.loads(state.read_text()) | damage
            state.write_text(json.dumps({k: v for k, v in d.items() if v is not None}))
            view = get_checkpoint(url, log.origin)
            assert view.status == 500, damage
            assert "is damaged" in view.body
            r = post_add_checkpoint(url, 3, [], log.note(3))
            assert r.status == 500, damage
            with pytest.raises(WitnessConfigError, match="is damaged"):
                Witness(folder).stored(log.origin)
        state.write_text("{not json")
        assert get_checkpoint(url, log.origin).status == 500


def test_a_witness_that_stalls_its_error_body_gives_a_witness_error() -> None:
    """urllib raises HTTPError once the headers are in; reading the body can then time
    out, and that must still be a WitnessError (not a raw TimeoutError)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        release = threading.Event()

        def stall() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 409 Conflict\r\nContent-Type: text/x.tlog.size\r\n"
                                 b"Content-Length: 100\r\n\r\n12")
                release.wait(5)

        thread = threading.Thread(target=stall, daemon=True)
        thread.start()
        start = time.monotonic()
        try:
            with pytest.raises(WitnessError, match="broke off its HTTP 409 reply"):
                post_add_checkpoint(f"http://127.0.0.1:{port}", 0, [], Log.new(1).note(1),
                                    timeout=0.5)
        finally:
            release.set()
            thread.join(timeout=10)
        assert time.monotonic() - start < 4


def _trickler(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\n")  # never finishes
    return s


def test_trickling_clients_are_capped_and_cut_at_the_deadline(tmp_path: Path) -> None:
    log = Log.new(4)
    with _served(make_witness(tmp_path / "w", log), max_connections=2,
                 deadline=1.5) as (url, port):
        tricklers = [_trickler(port) for _ in range(2)]
        try:
            slots = _SERVERS[port].slots
            waited = time.monotonic()
            while slots._value > 0 and time.monotonic() - waited < 5:  # both accepted
                time.sleep(0.05)
            assert slots._value == 0
            # A third client is not queued behind them: answered 503 at once.
            start = time.monotonic()
            reply = _exchange(port, b"")  # the answer comes before any request
            assert reply.startswith(b"HTTP/1.1 503"), reply[:80]
            assert time.monotonic() - start < 1.5  # the deadline would be 1.5 s
            # Sending a byte now and then does not keep a connection alive past the
            # deadline (each byte would reset a per-read timeout).
            cut_at: list[float] = []
            for s in tricklers:
                s.settimeout(0.25)
            begin = time.monotonic()
            while len(cut_at) < len(tricklers) and time.monotonic() - begin < 8:
                for s in tricklers:
                    if s.fileno() < 0:
                        continue
                    try:
                        s.sendall(b"X")
                        if s.recv(1) == b"":
                            raise ConnectionError
                    except TimeoutError:
                        continue
                    except OSError:
                        cut_at.append(time.monotonic() - begin)
                        s.close()
            assert len(cut_at) == 2, "a trickling client was never cut off"
            assert max(cut_at) < 5.0  # deadline 1.5 s, plus slack for a loaded machine
        finally:
            for s in tricklers:
                s.close()
        # The slots are free again: a real client is served. The server releases a slot
        # just after it closes the connection, so the client may see the close first.
        waited = time.monotonic()
        while slots._value < 2 and time.monotonic() - waited < 5:
            time.sleep(0.05)
        assert slots._value == 2
        assert post_add_checkpoint(url, 0, [], log.note(4), timeout=5).status == 200


def test_one_trickler_does_not_delay_other_clients(tmp_path: Path) -> None:
    log = Log.new(4)
    with _served(make_witness(tmp_path / "w", log)) as (url, port), \
            contextlib.closing(_trickler(port)):
        start = time.monotonic()
        assert post_add_checkpoint(url, 0, [], log.note(4), timeout=5).status == 200
        assert time.monotonic() - start < 3.0  # the trickler may wait 10 s per read
