"""Podman calls of the daily verbs: logs, exec, restart, and the per-container rows of
`get pods` / `describe`.

Everything here takes a connected `PodmanRuntime` (docklock.runtime.podman) and uses
its public methods where they exist; the raw API requests it lacks (a streaming log
read, exec, one list call with the fields the pods table needs, a raw inspect) go
through the runtime's own request helpers, so errors come out as the same one-line
PodmanErrors and every request is counted in `runtime.api_calls`.

`exec_interactive` is the one subprocess: `podman --remote --url URL exec -i -t ...`,
because a terminal needs a hijacked, bidirectional connection the HTTP client does not
offer. Arguments are a list (never a shell).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from docklock.errors import PodmanError
from docklock.objects import LABEL_CLUSTER
from docklock.runtime.podman import PodmanRuntime

STDOUT = 1
STDERR = 2


def _path(name: str) -> str:
    return quote(name, safe="/:@")


# ---------------------------------------------------------------- logs


@dataclass(frozen=True)
class LogChunk:
    """One line (with its newline, if it had one) a container wrote, and where to."""

    stream: int  # STDOUT | STDERR
    data: bytes
    time: str = ""  # RFC 3339 timestamp Podman stamped on it ("" if not asked)


def _split_timestamp(data: bytes) -> tuple[str, bytes]:
    head, sep, rest = data.partition(b" ")
    if sep and head[:4].isdigit() and b"T" in head:
        return head.decode("ascii", "replace"), rest
    return "", data


def read_frames(read: Callable[[int], bytes]) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) frames of Podman's multiplexed stream, read as they come.

    A stream that is not framed (a container with a terminal) comes out as stdout
    chunks. Ends at the end of the stream."""
    head = _read_exact(read, 8)
    if not head:
        return
    if head[0] not in (0, 1, 2) or head[1:4] != b"\0\0\0":
        yield STDOUT, head
        while chunk := read(65536):
            yield STDOUT, chunk
        return
    while len(head) == 8:
        (size,) = struct.unpack(">I", head[4:8])
        payload = _read_exact(read, size)
        yield (STDERR if head[0] == 2 else STDOUT), payload
        head = _read_exact(read, 8)


def _read_exact(read: Callable[[int], bytes], size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def stream_logs(runtime: PodmanRuntime, name: str, *, follow: bool = False,
                tail: int | None = None, timestamps: bool = True) -> Iterator[LogChunk]:
    """The container's log lines, stdout and stderr apart, in order; with `follow`,
    new lines as they are written until the container stops (or the caller stops
    reading). `tail`: only the last N lines first."""
    params: dict[str, Any] = {"stdout": True, "stderr": True, "follow": follow,
                              "timestamps": timestamps}
    if tail is not None:
        params["tail"] = str(tail)
    what = f"reading logs of container {name}"
    api = runtime._client.api
    try:
        response = api.get(f"/containers/{_path(name)}/logs", params=params, stream=True)
        response.raise_for_status()
    except Exception as exc:  # podman-py / requests errors: the runtime's wording
        raise runtime._wrap(what, exc) from exc
    try:
        pending: dict[int, bytes] = {STDOUT: b"", STDERR: b""}
        for stream, payload in read_frames(response.raw.read):
            buf = pending[stream] + payload
            *lines, rest = buf.split(b"\n")
            pending[stream] = rest
            for line in lines:
                yield _chunk(stream, line + b"\n", timestamps)
        for stream, rest in pending.items():
            if rest:
                yield _chunk(stream, rest, timestamps)
    except OSError as exc:
        raise runtime._wrap(what, exc) from exc
    finally:
        response.close()


def _chunk(stream: int, line: bytes, timestamps: bool) -> LogChunk:
    if not timestamps:
        return LogChunk(stream, line)
    stamp, rest = _split_timestamp(line)
    return LogChunk(stream, rest, stamp)


# ---------------------------------------------------------------- exec


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int


def exec_api(runtime: PodmanRuntime, name: str, command: Sequence[str], *,
             on_output: Callable[[int, bytes], None]) -> ExecOutcome:
    """Run `command` in the running container `name` (no stdin, no terminal); its
    stdout and stderr go to `on_output(stream, data)` as they come."""
    what = f"running {command[0]!r} in container {name}"
    created = runtime._json(
        what, "post", f"/containers/{_path(name)}/exec",
        body={"AttachStdout": True, "AttachStderr": True, "AttachStdin": False,
              "Tty": False, "Cmd": list(command)})
    exec_id = str(created.get("Id", ""))
    api = runtime._client.api
    try:
        response = api.post(f"/exec/{exec_id}/start", data=json.dumps(
            {"Detach": False, "Tty": False}), headers={"Content-Type": "application/json"},
            stream=True)
        response.raise_for_status()
    except Exception as exc:
        raise runtime._wrap(what, exc) from exc
    try:
        for stream, payload in read_frames(response.raw.read):
            on_output(stream, payload)
    finally:
        response.close()
    info = runtime._json(what, "get", f"/exec/{exec_id}/json")
    code = info.get("ExitCode")
    return ExecOutcome(int(code) if isinstance(code, int) else -1)


def exec_interactive(runtime: PodmanRuntime, name: str, command: Sequence[str], *,
                     interactive: bool, tty: bool,
                     env: Mapping[str, str] | None = None) -> ExecOutcome:
    """`podman --remote --url URL exec [-i] [-t] NAME CMD...` with this process's
    terminal; its exit code."""
    podman_bin = shutil.which("podman")
    if podman_bin is None:
        raise PodmanError("exec -i/-t needs the podman command, and none is on PATH",
                          hint="install podman, or drop -i/-t to run through the API")
    args = [podman_bin, "--remote", "--url", runtime.url, "exec"]
    if interactive:
        args.append("-i")
    if tty:
        args.append("-t")
    args += [name, *command]
    environ = dict(os.environ if env is None else env)
    environ.pop("CONTAINER_HOST", None)
    done = subprocess.run(args, env=environ, check=False)
    return ExecOutcome(done.returncode)


# ---------------------------------------------------------------- restart


@dataclass(frozen=True)
class HealthWait:
    """How a restarted container settled: `ok`, its health, what the check said."""

    ok: bool
    health: str
    message: str
    checks: int = 0


def restart_container(runtime: PodmanRuntime, name: str, *, stop_timeout: int) -> str:
    """Stop (graceful, `stop_timeout` s) and start again; the container's id."""
    runtime.stop_container(name, timeout=stop_timeout)
    runtime.start_container(name)
    return runtime.inspect_container(name).id


def wait_healthy(runtime: PodmanRuntime, name: str, *, has_healthcheck: bool,
                 interval: float, limit: float, min_ready: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> HealthWait:
    """Run the healthcheck until it passes (ok), the container reports unhealthy or
    stops, or `limit` seconds pass. Without a healthcheck: still running after
    `min_ready` seconds."""
    if not has_healthcheck:
        sleep(min_ready)
        info = runtime.inspect_container(name)
        if info.running:
            return HealthWait(True, "", "running")
        return HealthWait(False, "", f"exited with code {info.exit_code}")
    start = time.monotonic()
    delay = min(0.2, interval)
    checks = 0
    last = ""
    while True:
        sleep(delay)
        result = runtime.run_healthcheck(name)
        checks += 1
        last = result.output or last
        if not result.running:
            info = runtime.inspect_container(name)
            return HealthWait(False, "", f"exited with code {info.exit_code}", checks)
        if result.passed and result.failing_streak == 0:
            return HealthWait(True, "healthy", "healthy", checks)
        waited = time.monotonic() - start
        if result.status == "unhealthy":
            return HealthWait(False, "unhealthy", f"unhealthy after {checks} check(s) in "
                              f"{waited:.1f}s; last health output: {last.strip() or '(none)'}",
                              checks)
        if waited >= limit:
            return HealthWait(False, result.status, f"not healthy within {limit:.0f}s "
                              f"(health: {result.status or 'none'}); last health output: "
                              f"{last.strip() or '(none)'}", checks)
        delay = interval


# ---------------------------------------------------------------- pods (one list call)


@dataclass(frozen=True)
class ContainerRow:
    """One container as `get pods` lists it (from ONE list call for all of them)."""

    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    state: str = ""
    health: str = ""
    image: str = ""
    ports: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    exit_code: int | None = None
    restarts: int = 0
    started_at: float = 0.0  # Unix seconds, 0 if never started
    created_at: float = 0.0


def list_containers(runtime: PodmanRuntime, cluster: str) -> tuple[ContainerRow, ...]:
    """Every container labelled with `cluster`: one list call."""
    payload = runtime._json(
        f"listing containers of cluster {cluster}", "get", "/containers/json",
        params={"all": True, "filters": json.dumps({"label": [f"{LABEL_CLUSTER}={cluster}"]})})
    return tuple(container_row(item) for item in payload or ())


def container_row(item: Mapping[str, Any]) -> ContainerRow:
    """A libpod list entry as a ContainerRow (pure)."""
    names = item.get("Names") or [item.get("Id", "")]
    state = str(item.get("State", ""))
    status = str(item.get("Status", ""))
    health = status if status in ("healthy", "unhealthy", "starting") else ""
    exit_code = int(item.get("ExitCode") or 0) if state in ("exited", "stopped") else None
    ports = []
    for p in item.get("Ports") or ():
        host_ip = p.get("host_ip") or "0.0.0.0"  # noqa: S104 - Podman's own default
        ports.append(f"{host_ip}:{p.get('host_port')}->{p.get('container_port')}/"
                     f"{p.get('protocol') or 'tcp'}")
    return ContainerRow(
        name=str(names[0]).lstrip("/"), id=str(item.get("Id", "")),
        labels=dict(item.get("Labels") or {}), state=state, health=health,
        image=str(item.get("Image", "")), ports=tuple(ports),
        networks=tuple(sorted(str(n) for n in item.get("Networks") or ())),
        exit_code=exit_code, restarts=int(item.get("Restarts") or 0),
        started_at=epoch(item.get("StartedAt")), created_at=epoch(item.get("Created")))


def epoch(value: Any) -> float:
    """Unix seconds from Podman's Unix number or RFC 3339 text (0.0 if unset; pure)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if value > 0 else 0.0
    text = str(value or "").strip()
    if not text or text.startswith("0001-01-01"):
        return 0.0
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return max(float(text), 0.0)
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if match is None:
        return 0.0
    zone = match.group(3) or "Z"
    stamp = datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone))
    fraction = float(match.group(2)) if match.group(2) else 0.0
    return stamp.timestamp() + fraction


def inspect_raw(runtime: PodmanRuntime, name: str) -> dict[str, Any]:
    """The container's full inspect document (describe shows a few of its fields)."""
    data = runtime._json(f"inspecting container {name}", "get",
                         f"/containers/{_path(name)}/json")
    return dict(data) if isinstance(data, Mapping) else {}


__all__ = ["STDERR", "STDOUT", "ContainerRow", "ExecOutcome", "HealthWait", "LogChunk",
           "container_row", "epoch", "exec_api", "exec_interactive", "inspect_raw",
           "list_containers", "read_frames", "restart_container", "stream_logs",
           "wait_healthy"]
