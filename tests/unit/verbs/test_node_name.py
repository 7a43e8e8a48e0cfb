"""The NODE column names a host, never a private service's temporary socket path."""

from __future__ import annotations

import socket

import pytest

from docklock.engine.get import node_name


@pytest.mark.parametrize(("url", "node"), [
    ("unix:///tmp/docklock-0/svc-5936-yk5lg7ck/podman.sock", socket.gethostname()),
    ("unix:///run/podman/podman.sock", socket.gethostname()),
    ("ssh://core@node2.example:22/run/podman/podman.sock", "node2.example"),
    ("tcp://10.0.0.7:8888", "10.0.0.7"),
])
def test_node_name(url: str, node: str) -> None:
    assert node_name(url) == node
