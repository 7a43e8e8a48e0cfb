"""docklock.runtime.hostports: who listens on a host port (issue 11 C14's hint)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from docklock.runtime.hostports import Listener, listeners, listening_inodes

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
          "timeout inode\n")


def fake_proc(tmp_path: Path) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(
        HEADER
        # 127.0.0.1:8080 LISTEN, inode 111; 0.0.0.0:8080 ESTABLISHED (01), inode 222
        + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
          "        0 111 1 0000000000000000 100 0 0 10 0\n"
        + "   1: 00000000:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0"
          "        0 222 1 0000000000000000 100 0 0 10 0\n")
    (proc / "net" / "tcp6").write_text(
        HEADER
        + "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000"
          " 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n")
    for pid, inode, comm in ((42, 111, "httpd"), (7, 999, "other"), (50, 333, "conmon")):
        fd = proc / str(pid) / "fd"
        fd.mkdir(parents=True)
        os.symlink(f"socket:[{inode}]", fd / "3")
        (proc / str(pid) / "comm").write_text(comm + "\n")
    return proc


def test_listening_sockets_on_the_port_are_found_in_both_tables(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    assert listening_inodes(8080, proc) == {"111", "333"}
    assert listening_inodes(8081, proc) == set()


def test_their_processes_are_named(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path)
    assert listeners(8080, proc) == [Listener(42, "httpd"), Listener(50, "conmon")]
    assert str(Listener(42, "httpd")) == "pid 42 (httpd)"
    assert listeners(9, proc) == []


def test_a_real_listener_of_this_process_is_found() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert os.getpid() in [w.pid for w in listeners(port)]
