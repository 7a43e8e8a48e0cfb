"""What a user sees when things go wrong: one line on stderr, the right exit code.

The Podman API service is stopped while a command is talking to it; Ctrl-C is sent to
a running command; `--debug` is the only way to get a traceback.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness, run_cli

# A long-running Podman command: 600 pings, one every 50 ms (30 s if nothing stops it).
LONG_PING = ["podman", "ping", "--count", "600", "--interval", "0.05"]


def _docklock() -> str:
    return shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")


@pytest.fixture
def long_command(podman: PodmanHarness) -> Iterator[subprocess.Popen[str]]:
    """`docklock podman ping` running against the harness, already past its first reply."""
    proc = subprocess.Popen([_docklock(), *LONG_PING], env=podman.cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_line(proc, "reply 1:")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def _wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float = 30) -> None:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if marker in line:
                return
    err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
    raise AssertionError(f"command never printed {marker!r}: stdout={seen!r} stderr={err!r}")


def _stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_podman_service_stopped_mid_command_is_one_line_exit_1(
        podman: PodmanHarness, long_command: subprocess.Popen[str]) -> None:
    try:
        podman.stop_service()
        _out, err = long_command.communicate(timeout=60)
    finally:
        podman.start_service()
    assert long_command.returncode == 1
    lines = _stderr_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert f"lost the Podman API at {podman.url}" in lines[0]
    assert "Traceback" not in err


def test_plan_with_podman_gone_is_one_line_exit_1(podman: PodmanHarness,
                                                  tmp_path: Path) -> None:
    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: errtest}\n"
        "spec: {specs: [specs]}\n")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "web.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Service\nmetadata: {name: web}\n"
        f"spec: {{image: {podman.image}, command: [sleep, '300']}}\n")
    assert run_cli(["plan"], cwd=tmp_path, env=podman.cli_env()).returncode == 0
    try:
        podman.stop_service()
        result = run_cli(["plan"], cwd=tmp_path, env=podman.cli_env())
    finally:
        podman.start_service()
    assert result.returncode == 1
    lines = _stderr_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no Podman API answered at")
    assert podman.url in lines[0]
    assert "Traceback" not in result.stderr


def test_ctrl_c_exits_130_with_one_line(podman: PodmanHarness,
                                        long_command: subprocess.Popen[str]) -> None:
    long_command.send_signal(signal.SIGINT)
    _out, err = long_command.communicate(timeout=60)
    assert long_command.returncode == 130
    lines = _stderr_lines(err)
    assert len(lines) == 1, err
    assert "interrupted" in lines[0]
    assert "Traceback" not in err


def test_unreachable_podman_is_one_line_and_debug_adds_the_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, DOCKLOCK_PODMAN_URL=f"unix://{tmp_path}/nothing.sock", NO_COLOR="1")
    plain = run_cli(["podman", "ping"], env=env, cwd=tmp_path)
    assert plain.returncode == 1
    lines = _stderr_lines(plain.stderr)
    assert len(lines) == 1, plain.stderr
    assert "no Podman API answered at" in lines[0]
    assert "nothing.sock" in lines[0]
    assert "Traceback" not in plain.stderr

    debug = run_cli(["--debug", "podman", "ping"], env=env, cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "PodmanUnavailableError" in debug.stderr
    assert _stderr_lines(debug.stderr)[-1] == lines[0]


def test_podman_ping_reports_url_source_and_version(podman: PodmanHarness) -> None:
    result = run_cli(["podman", "ping"], env=podman.cli_env())
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("Podman ")
    assert f"at {podman.url} (DOCKLOCK_PODMAN_URL)" in first


def test_podman_ping_wait_gives_up_with_the_error(tmp_path: Path) -> None:
    env = dict(os.environ, DOCKLOCK_PODMAN_URL=f"unix://{tmp_path}/late.sock", NO_COLOR="1")
    start = time.monotonic()
    result = run_cli(["podman", "ping", "--wait", "1"], env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert time.monotonic() - start >= 1
    assert "late.sock" in result.stderr


def test_podman_ping_uses_the_workspace_podman_url(podman: PodmanHarness,
                                                   tmp_path: Path) -> None:
    """`podman ping` connects as every command does (connect_podman): docklock.yaml's
    spec.podmanUrl when neither --podman-url nor DOCKLOCK_PODMAN_URL is given."""
    (tmp_path / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: pingtest}\n"
        f"spec: {{specs: [specs], podmanUrl: '{podman.url}'}}\n")
    (tmp_path / "specs").mkdir()
    env = podman.cli_env()
    del env["DOCKLOCK_PODMAN_URL"]
    result = run_cli(["podman", "ping"], env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"at {podman.url} (docklock.yaml)" in result.stdout.splitlines()[0]

    # The flag wins, and a workspace whose specs do not load is not in its way.
    (tmp_path / "specs" / "broken.yaml").write_text("kind: Service\nspec: [\n")
    flagged = run_cli(["podman", "ping", "--podman-url", podman.url], env=env, cwd=tmp_path)
    assert flagged.returncode == 0, flagged.stderr
    assert f"at {podman.url} (--podman-url)" in flagged.stdout.splitlines()[0]
    broken = run_cli(["podman", "ping"], env=env, cwd=tmp_path)
    assert broken.returncode == 1
    assert "specs/broken.yaml:" in broken.stderr
    assert "Traceback" not in broken.stderr
