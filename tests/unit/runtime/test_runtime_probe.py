"""Malformed Podman URLs are one-line errors, and probing a URL has a hard deadline.

No Podman needed: the URLs point at nothing (a closed port, a missing socket), and the
"hung transport" is a probe that blocks, standing in for podman-py's ssh tunnel wait.
"""

from __future__ import annotations

import threading
import time

import pytest

import docklock.runtime.podman as rt
from docklock.errors import PodmanUnavailableError
from docklock.runtime.podman import connect, normalize_url, resolve_url, url_problem


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("tcp://host:99999", "out of range"),
        ("tcp://host:port", "Port could not be cast"),
        ("tcp://", "names no host"),
        ("ssh:///run/podman/podman.sock", "names no host"),
        ("unix://", "names no socket"),
    ],
)
def test_malformed_url_is_one_line_naming_it(bad: str, why: str) -> None:
    assert why in url_problem(bad)
    with pytest.raises(PodmanUnavailableError) as info:
        resolve_url(bad, env={})
    text = info.value.explain()
    assert "\n" not in text
    assert f"--podman-url {bad!r} is not a Podman API URL" in text
    assert why in text


@pytest.mark.parametrize("good", ["tcp://[::1]:8080", "unix:///run/podman/podman.sock",
                                  "ssh://core@host:2222/run/podman/podman.sock"])
def test_wellformed_urls_pass(good: str) -> None:
    assert url_problem(good) == ""
    assert normalize_url(good) == good


def test_a_hung_probe_is_given_up_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hung(_url: str, _timeout: float) -> str:
        release.wait(30)
        return ""

    monkeypatch.setattr(rt, "_probe_once", hung)
    monkeypatch.setattr(rt, "PROBE_GRACE", 0.2)
    start = time.monotonic()
    try:
        reason = rt._probe("tcp://127.0.0.1:1", timeout=0.3)
    finally:
        release.set()
    assert time.monotonic() - start < 5
    assert reason == "no answer within 0.5 s"


def test_ssh_url_that_refuses_is_reported_at_once() -> None:
    start = time.monotonic()
    with pytest.raises(PodmanUnavailableError) as info:
        connect("ssh://nobody@127.0.0.1:1/run/podman/podman.sock", env={"PATH": "/usr/bin:/bin"})
    assert time.monotonic() - start < 20
    text = info.value.explain()
    assert "\n" not in text
    assert "ssh://nobody@127.0.0.1:1/run/podman/podman.sock (--podman-url: " in text
    # ssh's own reason, or that there is no ssh client to try with
    assert "ssh: " in text or "no ssh client" in text
