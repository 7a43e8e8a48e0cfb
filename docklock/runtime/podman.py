"""The one module that talks to Podman.

Owns: finding the Podman API (`--podman-url`, DOCKLOCK_PODMAN_URL, the workspace's
`podmanUrl`, then the default socket), starting a private `podman system service` for
the duration of a command when nothing answers, and every API call DockLock makes.

Plain request/response calls to unix://, tcp:// and http:// URLs go through a small
stdlib HTTP client (docklock.runtime._http): a no-op plan or apply never imports
podman-py, requests or urllib3 (house rule 12). podman-py is imported on first use for
what it does beyond that: ssh:// URLs, container create, image build, and the streams of
docklock.runtime.verbs.

Invariants:
- Nothing outside docklock.runtime imports podman-py; callers get typed values
  (LiveState, ContainerInfo, HealthCheckResult, ImageInfo), never podman-py objects.
- Every podman-py / HTTP failure leaves as a PodmanError (chained with `from exc`)
  whose message is one line naming the object; a vanished API service is reported
  as such, not as a traceback.
- A URL the user gave explicitly (flag, env, workspace) is the only one tried: if it
  does not answer DockLock fails rather than silently using another Podman.
- Podman 4.3 runs healthchecks from systemd timers; without systemd (containers here,
  CI) they never run on their own, so callers drive them with `run_healthcheck`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse, urlsplit

from docklock.errors import PodmanError, PodmanUnavailableError
from docklock.objects import (
    LABEL_CLUSTER,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    ContainerConfig,
    ContainerDetail,
    LiveImages,
    LiveObject,
    LiveState,
    ObjectKind,
    object_key,
)
from docklock.runtime import _http

if TYPE_CHECKING:
    import podman
    import podman.errors
    import requests

    from docklock.runtime import _services

ENV_URL = "DOCKLOCK_PODMAN_URL"
ROOT_SOCKET = "/run/podman/podman.sock"
SCHEMES = ("unix", "tcp", "http", "ssh")
PING_TIMEOUT = 10.0  # seconds; a socket-activated service may need a moment
PROBE_GRACE = 5.0  # seconds beyond PING_TIMEOUT before a probe is given up as hung
SSH_CONNECT_TIMEOUT = 5  # seconds for ssh's TCP connect (its ConnectTimeout)
SERVICE_START_TIMEOUT = 30.0
SERVICE_STOP_TIMEOUT = 15.0
HEALTH_STATES = frozenset({"healthy", "unhealthy", "starting"})
_ZERO_TIME = "0001-01-01T00:00:00Z"

FIX_HINT = (
    "start one with `podman system service --time=0` (or `systemctl enable --now "
    "podman.socket`), pass --podman-url / set DOCKLOCK_PODMAN_URL, or install podman "
    "so DockLock can start a private service (`./dev demo` does)"
)


class PodmanNotFoundError(PodmanError):
    """The named container, image, network or volume does not exist."""


class PodmanTimeoutError(PodmanError):
    """Podman did not finish an operation (e.g. a container's exit) in time."""


# ---------------------------------------------------------------- URL resolution


@dataclass(frozen=True)
class UrlChoice:
    """The Podman API URL a command uses and where it came from."""

    url: str
    source: str  # --podman-url | DOCKLOCK_PODMAN_URL | docklock.yaml | default socket
    explicit: bool  # given by the user: never replaced by a private service


URL_HINT = "use unix:///run/podman/podman.sock, tcp://HOST:PORT or ssh://USER@HOST/PATH"


def url_problem(text: str) -> str:
    """'' for a URL that can be parsed and names a host (or a unix socket), else why not.

    The scheme is checked by the caller; this catches what would otherwise surface as a
    ValueError deep inside urllib or podman-py (`http://[::1`, `tcp://h:99999`).
    """
    try:
        parts = urlsplit(text)
        _ = parts.port  # ValueError for a port that is not a number in 0..65535
    except ValueError as exc:
        return str(exc)
    if parts.scheme == "unix":
        return "" if parts.netloc or parts.path else "it names no socket"
    return "" if parts.hostname else "it names no host"


def normalize_url(url: str, *, source: str = "URL") -> str:
    """`unix:///path`, `tcp://host:port`, `http://...`, `ssh://...`; a bare path means unix."""
    text = url.strip()
    if text.startswith("/"):
        return f"unix://{text}"
    problem = url_problem(text)
    scheme = "" if problem else urlsplit(text).scheme
    if problem or scheme not in SCHEMES or "://" not in text:
        raise PodmanUnavailableError(
            f"{source} {url!r} is not a Podman API URL" + (f" ({problem})" if problem else ""),
            hint=URL_HINT,
        )
    return text


def default_socket(uid: int, env: Mapping[str, str]) -> str:
    """Podman's own default: the system socket for root, the user's runtime dir otherwise."""
    if uid == 0:
        return f"unix://{ROOT_SOCKET}"
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"unix://{runtime_dir}/podman/podman.sock"


def resolve_url(
    flag: str | None,
    *,
    env: Mapping[str, str],
    workspace_url: str | None = None,
    uid: int | None = None,
    default_url: str | None = None,
) -> UrlChoice:
    """The first of: --podman-url, DOCKLOCK_PODMAN_URL, the workspace's URL, the default."""
    for value, source in ((flag, "--podman-url"), (env.get(ENV_URL), ENV_URL),
                          (workspace_url, "docklock.yaml")):
        if value:
            return UrlChoice(normalize_url(value, source=source), source, explicit=True)
    if default_url:
        return UrlChoice(normalize_url(default_url), "default socket", explicit=False)
    the_uid = os.geteuid() if uid is None else uid
    return UrlChoice(default_socket(the_uid, env), "default socket", explicit=False)


def unix_socket_path(url: str) -> str | None:
    """The socket file of a `unix://` URL (None for network URLs)."""
    parsed = urlparse(url)
    if parsed.scheme != "unix":
        return None
    return parsed.netloc + parsed.path if parsed.netloc else parsed.path


def _probe(url: str, timeout: float = PING_TIMEOUT) -> str:
    """'' if a Podman API answers at `url`, else a short reason why not.

    Never takes much more than `timeout` (+ PROBE_GRACE): the request runs in a daemon
    thread that is abandoned if it hangs (podman-py's ssh transport, for one, waits up
    to 300 s for a tunnel that never opens). An ssh URL is first checked with ssh itself
    (_ssh_problem), which gives ssh's own reason instead of a silent wait.
    """
    if urlsplit(url).scheme == "ssh":
        problem = _ssh_problem(url, timeout)
        if problem:
            return problem
    answer: list[str] = []
    worker = threading.Thread(target=lambda: answer.append(_probe_once(url, timeout)),
                              name="docklock-podman-probe", daemon=True)
    worker.start()
    worker.join(timeout + PROBE_GRACE)
    if not answer:
        return f"no answer within {timeout + PROBE_GRACE:g} s"
    return answer[0]


def _probe_once(url: str, timeout: float) -> str:
    sock = unix_socket_path(url)
    if sock is not None and not os.path.exists(sock):
        return "no socket there"
    if urlsplit(url).scheme in _http.SCHEMES:
        return _probe_light(url, timeout)
    import podman
    import podman.errors

    try:
        client = podman.PodmanClient(base_url=url)
    except (ValueError, podman.errors.PodmanError) as exc:
        return _first_line(str(exc))
    try:
        response = client.api.get("/_ping", timeout=timeout)
        if response.status_code != 200:
            return f"answered HTTP {response.status_code}, not a Podman API"
    except (OSError, podman.errors.PodmanError) as exc:
        return _connection_reason(exc)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return ""


def _probe_light(url: str, timeout: float) -> str:
    try:
        client = _http.Client(url, timeout=timeout)
    except ValueError as exc:
        return _first_line(str(exc))
    try:
        response = client.request("get", "/_ping")
        if response.status_code != 200:
            return f"answered HTTP {response.status_code}, not a Podman API"
    except OSError as exc:
        return _connection_reason(exc)
    finally:
        client.close()
    return ""


def _ssh_problem(url: str, timeout: float) -> str:
    """'' if ssh logs in to the URL's host without a prompt, else ssh's reason why not.

    Opens the same kind of tunnel podman-py does (a local socket forwarded to the URL's
    path), but with BatchMode (no password prompt), a connect timeout, its errors
    captured rather than printed, and a deadline; the tunnel is closed again at once.
    """
    from docklock.runtime import _services

    ssh = shutil.which("ssh")
    if ssh is None:
        return "no ssh client (ssh) installed"
    parts = urlsplit(url)
    folder = Path(tempfile.mkdtemp(prefix="docklock-ssh-"))
    local = folder / "probe.sock"
    command = [ssh, "-N", "-o", "BatchMode=yes",
               "-o", f"ConnectTimeout={max(1, min(SSH_CONNECT_TIMEOUT, int(timeout)))}",
               "-o", "ExitOnForwardFailure=yes", "-o", "StrictHostKeyChecking=accept-new",
               "-L", f"{local}:{parts.path or '/'}"]
    if parts.port:
        command += ["-p", str(parts.port)]
    host = str(parts.hostname)
    command += ["--", f"{parts.username}@{host}" if parts.username else host]
    try:
        # An `ssh -N` tunnel never ends by itself: it must die with DockLock (D21).
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=_services.die_with_parent())  # noqa: PLW1509
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return f"cannot run ssh: {exc.strerror or exc}"
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and not local.exists():
            if time.monotonic() > deadline:
                return f"ssh did not log in within {timeout:.0f} s"
            time.sleep(0.05)
        if local.exists():
            return ""
        assert proc.stderr is not None
        said = [line.strip() for line in proc.stderr.read().decode(errors="replace")
                .splitlines() if line.strip()]
        if not said:
            return f"ssh exited with code {proc.returncode}"
        return f"ssh: {said[-1].removeprefix('ssh: ')}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- private service


@dataclass
class PrivateService:
    """A `podman system service` DockLock started for one command, on a temporary socket."""

    process: subprocess.Popen[bytes]
    folder: Path
    url: str
    guard: _services.TermAsInterrupt | None = None

    @classmethod
    def start(cls, podman_bin: str, *, env: Mapping[str, str],
              timeout: float = SERVICE_START_TIMEOUT) -> PrivateService:
        """Start the service (honouring CONTAINERS_CONF etc. from `env`) and wait for it.

        Its life is tied to this process (docklock.runtime._services): parent-death
        signal, SIGTERM unwinding, and a folder under the per-user runtime folder that
        the next start reaps if this process dies without removing it.
        """
        from docklock.runtime import _services

        folder, tracked = _services.new_folder(env)
        url = f"unix://{folder / 'podman.sock'}"
        guard = _services.TermAsInterrupt()
        guard.install()  # before the child exists: a SIGTERM from here on unwinds
        log = (folder / "service.log").open("wb")
        try:
            # Its own session: a Ctrl-C at the terminal reaches DockLock, which then stops
            # the service in order, instead of killing it under a running API call.
            process = subprocess.Popen(
                [podman_bin, "system", "service", "--time=0", url],
                env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, preexec_fn=_services.die_with_parent(),  # noqa: PLW1509
            )
        except BaseException as exc:
            log.close()
            guard.uninstall()
            shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, OSError):
                raise PodmanUnavailableError(f"cannot run {podman_bin}: {exc.strerror}",
                                             hint=FIX_HINT) from exc
            raise
        finally:
            if not log.closed:
                log.close()
        service = cls(process, folder, url, guard)
        if tracked:
            with contextlib.suppress(OSError):
                _services.write_owner(folder, _services.Owner(
                    os.getpid(), _services.start_time(os.getpid()), process.pid,
                    _services.start_time(process.pid)))
        # Belt and braces: a caller that never closes its runtime (or dies of an
        # unhandled error) still does not leave a `--time=0` service behind.
        atexit.register(service.stop)
        try:
            service._wait_until_ready(timeout)
        except BaseException:  # includes Ctrl-C while waiting
            service.stop()
            raise
        return service

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise PodmanUnavailableError(
                    f"the private `podman system service` exited with code "
                    f"{self.process.returncode}: {self.log_tail() or 'no output'}",
                    hint=FIX_HINT)
            if _probe(self.url, timeout=2.0) == "":
                return
            if time.monotonic() > deadline:
                tail = self.log_tail()
                raise PodmanUnavailableError(
                    f"the private `podman system service` did not answer within {timeout:.0f}s"
                    f"{': ' + tail if tail else ''}", hint=FIX_HINT)
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = (self.folder / "service.log").read_text(errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)

    def stop(self) -> None:
        """Stop the service (containers it started keep running: conmon owns them)."""
        atexit.unregister(self.stop)
        if self.guard is not None:
            self.guard.uninstall()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=SERVICE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=SERVICE_STOP_TIMEOUT)
        shutil.rmtree(self.folder, ignore_errors=True)


# ---------------------------------------------------------------- typed results


@dataclass(frozen=True)
class ContainerInfo:
    """One container as `inspect` reports it.

    `exit_code` is the last exit code (0 for a container that never exited: read it
    together with `status`). `health` is "" for a container without a healthcheck;
    `health_output` is the output of the most recent check.
    """

    id: str
    name: str
    status: str  # created | running | paused | exited | stopped | ...
    running: bool
    exit_code: int
    health: str
    health_output: str
    health_failing_streak: int
    started_at: str  # RFC 3339, "" if never started
    finished_at: str  # RFC 3339, "" if never finished
    labels: Mapping[str, str] = field(default_factory=dict)
    image: str = ""  # the reference it was created from
    image_id: str = ""
    error: str = ""  # the OCI runtime's error when a start failed
    oom_killed: bool = False

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> ContainerInfo:
        state = data.get("State") or {}
        health = state.get("Health") or state.get("Healthcheck") or {}
        log = health.get("Log") or []
        config = data.get("Config") or {}
        return cls(
            id=str(data.get("Id", "")),
            name=str(data.get("Name", "")).lstrip("/"),
            status=str(state.get("Status", "")),
            running=bool(state.get("Running", False)),
            exit_code=int(state.get("ExitCode") or 0),
            health=_health(health.get("Status")),
            health_output=str(log[-1].get("Output", "")).strip() if log else "",
            health_failing_streak=int(health.get("FailingStreak") or 0),
            started_at=_time(state.get("StartedAt")),
            finished_at=_time(state.get("FinishedAt")),
            labels=dict(config.get("Labels") or {}),
            image=str(data.get("ImageName", "")),
            image_id=str(data.get("Image", "")),
            error=_first_line(str(state.get("Error") or "")),
            oom_killed=bool(state.get("OOMKilled", False)),
        )


@dataclass(frozen=True)
class HealthCheckResult:
    """One healthcheck run: whether it passed, and the container's health afterwards.

    `status` follows Podman's retries: a failed check leaves "starting" until `retries`
    consecutive failures make it "unhealthy". A container that is not running cannot be
    checked: `running` is False and `status` is "".
    """

    passed: bool
    status: str  # healthy | unhealthy | starting | ""
    output: str
    failing_streak: int
    running: bool = True


@dataclass(frozen=True)
class ImageInfo:
    id: str
    digest: str
    tags: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- the runtime


class PodmanRuntime:
    """A connection to one Podman API service; a context manager.

    Closing it stops the private service if DockLock started one. Every HTTP request is
    counted (`api_calls`) so tests can hold refresh to one list call.
    """

    def __init__(self, url: str, *, source: str = "", service: PrivateService | None = None,
                 timeout: float | None = None) -> None:
        self.url = url
        self.source = source
        self.service = service
        self._lock = threading.Lock()
        self._local = threading.local()
        self._calls = 0
        self._timeout = timeout
        self._podman_py: podman.PodmanClient | None = None
        self._http: _http.Client | None = None
        self._host_facts: dict[str, str] | None = None  # host_facts(), read once
        if urlsplit(url).scheme in _http.SCHEMES:
            try:
                self._http = _http.Client(url, timeout=timeout)
            except ValueError as exc:
                raise PodmanUnavailableError(
                    f"cannot use Podman URL {url}: {_first_line(str(exc))}",
                    hint=FIX_HINT) from exc
        else:
            _ = self._client  # ssh:// (or anything else): podman-py, checked now

    @property
    def _client(self) -> podman.PodmanClient:
        """podman-py's client, made on first use (create, build, streams, ssh://)."""
        if self._podman_py is None:
            import podman
            import podman.errors

            try:
                client = podman.PodmanClient(base_url=self.url, timeout=self._timeout)
            except (ValueError, podman.errors.PodmanError) as exc:
                raise PodmanUnavailableError(
                    f"cannot use Podman URL {self.url}: {_first_line(str(exc))}",
                    hint=FIX_HINT) from exc
            client.api.hooks["response"].append(self._count)
            self._podman_py = client
        return self._podman_py

    # -- lifecycle

    @property
    def private(self) -> bool:
        """True when DockLock started the service behind this connection."""
        return self.service is not None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._podman_py is not None:
            self._podman_py.close()  # type: ignore[no-untyped-call]
        if self.service is not None:
            self.service.stop()
            self.service = None

    def __enter__(self) -> PodmanRuntime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def api_calls(self) -> int:
        """HTTP requests made through this connection so far (all threads)."""
        return self._calls

    def _count(self, response: requests.Response | None, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self._calls += 1
        self._local.calls = getattr(self._local, "calls", 0) + 1

    def _thread_calls(self) -> int:
        return int(getattr(self._local, "calls", 0))

    # -- raw calls

    def _call(self, what: str, method: str, path: str, *, params: Mapping[str, Any] | None = None,
              body: Any = None, timeout: float | None = None, ok: tuple[int, ...] = ()) -> Any:
        """One API request; returns the response. Statuses in `ok` are not errors."""
        if self._http is not None:
            return self._call_light(self._http, what, method, path, params=params, body=body,
                                    timeout=timeout, ok=ok)
        import podman.errors

        api = self._client.api
        kwargs: dict[str, Any] = {"params": params}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            response = getattr(api, method)(path, **kwargs)
            if response.status_code not in ok:
                response.raise_for_status()
        except (OSError, podman.errors.PodmanError) as exc:
            raise self._wrap(what, exc) from exc
        return response

    def _call_light(self, client: _http.Client, what: str, method: str, path: str, *,
                    params: Mapping[str, Any] | None, body: Any, timeout: float | None,
                    ok: tuple[int, ...]) -> _http.Response:
        data = headers = None
        if body is not None:
            data = json.dumps(body).encode()
            headers = {"Content-Type": "application/json"}
        try:
            response = client.request(method, path, params=params, body=data,
                                      headers=headers, timeout=timeout)
            self._count(None)
            if response.status_code >= 400 and response.status_code not in ok:
                raise _http.StatusError(response)
        except (OSError, _http.StatusError) as exc:
            raise self._wrap(what, exc) from exc
        return response

    def _json(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(what, method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise PodmanError(f"{what}: Podman sent a reply that is not JSON",
                              hint="is the URL a Podman API service?") from exc

    def _wrap(self, what: str, exc: BaseException) -> PodmanError:
        """Turn an HTTP / podman-py / requests failure into one line naming the object."""
        if isinstance(exc, _http.StatusError):
            reason = _api_reason(exc)
            if exc.response.status_code == 404:
                return PodmanNotFoundError(f"{what}: {reason}")
            return PodmanError(f"{what}: {reason}", hint=_hint_for(reason))
        errors = sys.modules.get("podman.errors")  # podman-py raised it only if imported
        if errors is not None:
            if isinstance(exc, errors.NotFound):
                return PodmanNotFoundError(f"{what}: {_api_reason(exc)}")
            if isinstance(exc, errors.APIError) and exc.response is not None:
                reason = _api_reason(exc)
                return PodmanError(f"{what}: {reason}", hint=_hint_for(reason))
            if isinstance(exc, errors.BuildError):
                return PodmanError(f"{what}: {_first_line(str(exc))}",
                                   hint=_hint_for(str(exc)))
        if _is_timeout(exc):
            return PodmanTimeoutError(f"{what}: Podman did not answer in time")
        if isinstance(exc, OSError):
            return PodmanError(
                f"{what}: lost the Podman API at {self.url} ({_connection_reason(exc)})",
                hint="check that the Podman service is running (`docklock podman ping`) and "
                     "run the command again; state keeps every change already made")
        return PodmanError(f"{what}: {_first_line(str(exc))}")

    # -- service

    def ping(self) -> float:
        """Round-trip time of one `_ping`, in seconds."""
        start = time.perf_counter()
        response = self._call("pinging Podman", "get", "/_ping", timeout=PING_TIMEOUT)
        if response.text.strip() != "OK":
            raise PodmanError(f"pinging Podman at {self.url}: unexpected answer "
                              f"{_first_line(response.text)[:80]!r}")
        return time.perf_counter() - start

    def version(self) -> str:
        """Podman's version, e.g. `4.3.1`."""
        data = self._json("reading Podman's version", "get", "/version")
        for component in data.get("Components") or ():
            if component.get("Name") == "Podman Engine":
                return str(component.get("Version", ""))
        return str(data.get("Version", ""))

    def host_facts(self) -> dict[str, str]:
        """What of the host can make a job replay differently elsewhere (a witness's
        `environment`): kernel, arch, distribution, Podman and OCI runtime versions,
        cgroup version from `GET /libpod/info`; CPU model and flags from /proc/cpuinfo.

        The CPU is read on this machine, so only when the service runs here (a unix
        socket or a loopback address); for a remote service those two keys are absent
        rather than wrong. A fact Podman does not report is absent too. One API call per
        connection: the answer is cached (it cannot change while the service runs).
        """
        if self._host_facts is not None:
            return dict(self._host_facts)
        data = self._json("reading Podman's host information", "get", "/info")
        host = data.get("host") or {}
        distro = host.get("distribution") or {}
        runtime = host.get("ociRuntime") or {}
        found = {
            "kernel": host.get("kernel"), "arch": host.get("arch"),
            "distribution": " ".join(str(distro[k]) for k in ("distribution", "version")
                                     if distro.get(k)),
            "podman_version": (data.get("version") or {}).get("Version"),
            "oci_runtime": runtime.get("name"),
            # The first line names the version ("runc version 1.1.5+ds1"); the rest
            # (commit, go, libseccomp) is packaging detail.
            "oci_runtime_version": _first_line(str(runtime.get("version") or "")),
            "cgroup_version": host.get("cgroupVersion"),
        }
        facts = {key: str(value) for key, value in found.items() if value}
        host_name = urlsplit(self.url).hostname
        if urlsplit(self.url).scheme == "unix" or host_name in ("localhost", "127.0.0.1",
                                                                   "::1"):
            try:
                cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
            except OSError:
                cpuinfo = ""
            cpu: dict[str, str] = {}
            for line in cpuinfo.splitlines():
                key, sep, value = line.partition(":")
                if sep:  # the first processor's entry stands for all of them
                    cpu.setdefault(key.strip(), value.strip())
            model = cpu.get("model name") or cpu.get("Model") or cpu.get("CPU part")
            flags = cpu.get("flags") or cpu.get("Features")  # x86 | arm
            if model:
                facts["cpu_model"] = model
            if flags:
                facts["cpu_flags"] = " ".join(sorted(set(flags.split())))
        self._host_facts = facts
        return dict(facts)

    # -- live state (refresh)

    def list_live(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        """Every container labelled with this cluster, running or not: ONE list call.

        `unlabelled=True` lists every container instead (still one call) and puts those
        without this cluster's label in `LiveState.others`, for name-clash checks.
        """
        before = self._thread_calls()
        params: dict[str, Any] = {"all": True}
        if not unlabelled:
            params["filters"] = _label_filter(cluster)
        payload = self._json(
            f"listing containers of cluster {cluster}", "get", "/containers/json",
            params=params)
        return _split(cluster, (_live_container(item) for item in payload or ()),
                      self._thread_calls() - before)

    def container_details(self, names: Iterable[str]) -> tuple[dict[str, ContainerDetail], int]:
        """Inspect each named container for what the list lacks: one call per name.

        Returns the details by name and the calls made; a container removed since the
        list call is simply absent (drift then reports it as removed next time).
        """
        before = self._thread_calls()
        details: dict[str, ContainerDetail] = {}
        for name in names:
            response = self._call(f"inspecting container {name}", "get",
                                  f"/containers/{_path(name)}/json", ok=(404,))
            if response.status_code == 404:
                continue
            try:
                details[name] = container_detail(response.json())
            except ValueError as exc:
                raise PodmanError(f"inspecting container {name}: Podman sent a reply that "
                                  "is not JSON") from exc
        return details, self._thread_calls() - before

    def list_networks(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        """The cluster's networks: ONE list call (`unlabelled`: as in list_live)."""
        before = self._thread_calls()
        payload = self._json(f"listing networks of cluster {cluster}", "get", "/networks/json",
                             params=None if unlabelled else
                             {"filters": _label_filter(cluster)})
        found = []
        for item in payload or ():
            name = str(item.get("name", ""))
            found.append(LiveObject(object_key(ObjectKind.NETWORK, name), ObjectKind.NETWORK,
                                    name, str(item.get("id", "")),
                                    dict(item.get("labels") or {}), "present"))
        return _split(cluster, found, self._thread_calls() - before)

    def list_volumes(self, cluster: str, *, unlabelled: bool = False) -> LiveState:
        """The cluster's volumes: ONE list call (`unlabelled`: as in list_live)."""
        before = self._thread_calls()
        payload = self._json(f"listing volumes of cluster {cluster}", "get", "/volumes/json",
                             params=None if unlabelled else
                             {"filters": _label_filter(cluster)})
        found = []
        for item in payload or ():
            name = str(item.get("Name", ""))
            found.append(LiveObject(object_key(ObjectKind.VOLUME, name), ObjectKind.VOLUME,
                                    name, name, dict(item.get("Labels") or {}), "present"))
        return _split(cluster, found, self._thread_calls() - before)

    def list_images(self) -> LiveImages:
        """Every local image's ids, tags and digests: ONE list call (plan's image check)."""
        before = self._thread_calls()
        payload = self._json("listing images", "get", "/images/json")
        ids: set[str] = set()
        tags: set[str] = set()
        digests: set[str] = set()
        built: dict[str, tuple[str, Mapping[str, str]]] = {}
        for item in payload or ():
            image_id = str(item.get("Id", ""))
            ids.add(image_id)
            # libpod lists tags in RepoTags and (newer) Names; take both.
            names = {str(t) for t in (item.get("RepoTags") or ())}
            names.update(str(t) for t in (item.get("Names") or ()))
            tags.update(names)
            digests.update(str(d) for d in (item.get("RepoDigests") or ()))
            labels = dict(item.get("Labels") or {})
            if labels.get(LABEL_MANAGED_BY) == MANAGED_BY:
                built.update((t, (image_id, labels)) for t in names)
        return LiveImages(frozenset(ids - {""}), frozenset(tags), frozenset(digests),
                          self._thread_calls() - before, built=built)

    def refresh(self, cluster: str) -> LiveState:
        """Containers, networks and volumes of the cluster: three list calls in all."""
        parts = (self.list_live(cluster), self.list_networks(cluster),
                 self.list_volumes(cluster))
        merged: dict[str, LiveObject] = {}
        for part in parts:
            merged.update(part.objects)
        return LiveState(merged, sum(p.api_calls for p in parts))

    # -- images

    def image_exists(self, ref: str) -> bool:
        response = self._call(f"looking up image {ref}", "get", f"/images/{_path(ref)}/exists",
                              ok=(404,))
        return bool(response.status_code == 204)

    def inspect_image(self, ref: str) -> ImageInfo:
        data = self._json(f"inspecting image {ref}", "get", f"/images/{_path(ref)}/json")
        return ImageInfo(
            id=str(data.get("Id", "")), digest=str(data.get("Digest", "")),
            tags=tuple(data.get("RepoTags") or ()), labels=dict(data.get("Labels") or {}))

    def image_id(self, ref: str) -> str:
        return self.inspect_image(ref).id

    def build_image(self, context: Path, containerfile: str, tag: str,
                    build_args: Mapping[str, str] | None = None, *,
                    labels: Mapping[str, str] | None = None) -> str:
        """Build `context` (uploaded as a tar, so a remote Podman works) and return the id."""
        what = f"building image {tag}"
        if not (context / containerfile).is_file():
            raise PodmanError(f"{what}: no {containerfile} in {context}",
                              hint="Image.spec.context must hold the Containerfile")
        kwargs: dict[str, Any] = {"path": str(context), "dockerfile": containerfile, "tag": tag,
                                  "buildargs": dict(build_args or {}), "rm": True}
        if labels:
            kwargs["labels"] = dict(labels)
        client = self._client
        import podman.errors

        try:
            image, _log = client.images.build(**kwargs)
        except (OSError, podman.errors.PodmanError) as exc:
            raise self._wrap(what, exc) from exc
        return str(image.id)

    # -- networks and volumes

    def create_network(self, name: str, labels: Mapping[str, str], internal: bool = False,
                       subnet: str | None = None, *, driver: str = "bridge") -> str:
        """Create a network with DNS between its containers; returns its id."""
        body: dict[str, Any] = {"name": name, "driver": driver, "internal": internal,
                                "labels": dict(labels), "dns_enabled": True}
        if subnet:
            body["subnets"] = [{"subnet": subnet}]
        data = self._json(f"creating network {name}", "post", "/networks/create", body=body)
        return str(data.get("id", ""))

    def remove_network(self, name: str) -> bool:
        """Remove a network; False if it was already gone."""
        response = self._call(f"removing network {name}", "delete", f"/networks/{_path(name)}",
                              ok=(404,))
        return bool(response.status_code != 404)

    def create_volume(self, name: str, labels: Mapping[str, str]) -> str:
        # Podman 4.x reads "Label", later versions "Labels": send both.
        body = {"Name": name, "Label": dict(labels), "Labels": dict(labels)}
        data = self._json(f"creating volume {name}", "post", "/volumes/create", body=body)
        return str(data.get("Name", name))

    def remove_volume(self, name: str) -> bool:
        """Remove a volume; False if it was already gone."""
        response = self._call(f"removing volume {name}", "delete", f"/volumes/{_path(name)}",
                              ok=(404,))
        return bool(response.status_code != 404)

    # -- containers

    def create_container(self, config: ContainerConfig) -> str:
        """Create (not start) a container from its config; returns its id."""
        from docklock.cage import podman_create_kwargs

        what = f"creating container {config.name}"
        kwargs = podman_create_kwargs(config)
        client = self._client
        import podman.errors

        try:
            container = client.containers.create(**kwargs)
        except (OSError, podman.errors.PodmanError) as exc:
            raise self._wrap(what, exc) from exc
        return str(container.id)

    def start_container(self, name: str) -> None:
        # 304: already running, which is what was asked.
        try:
            self._call(f"starting container {name}", "post",
                       f"/containers/{_path(name)}/start", ok=(304,))
        except PodmanError as exc:
            # Paused out of band (drift calls it stopped): Podman refuses to start it,
            # it must be unpaused instead. One inspect, only on this error path.
            if ("state improper" not in exc.message
                    or self.inspect_container(name).status != "paused"):
                raise
            self._call(f"unpausing container {name}", "post",
                       f"/containers/{_path(name)}/unpause")

    def stop_container(self, name: str, timeout: int = 10) -> None:
        self._call(f"stopping container {name}", "post", f"/containers/{_path(name)}/stop",
                   params={"timeout": timeout}, timeout=timeout + PING_TIMEOUT, ok=(304,))

    def remove_container(self, name: str, force: bool = True) -> bool:
        """Remove a container (killing it if `force`); False if it was already gone."""
        # timeout=0: a forced removal kills at once instead of waiting for a PID 1 that
        # ignores SIGTERM (use stop_container first for a graceful stop).
        params: dict[str, Any] = {"force": force, "timeout": 0} if force else {}
        response = self._call(f"removing container {name}", "delete",
                              f"/containers/{_path(name)}", params=params, ok=(404,))
        if response.status_code == 404:
            return False
        with contextlib.suppress(ValueError):
            for report in response.json() or ():
                if isinstance(report, Mapping) and report.get("Err"):
                    raise PodmanError(f"removing container {name}: {_first_line(report['Err'])}")
        return True

    def containers_labelled(self, labels: Mapping[str, str | None]) -> list[str]:
        """Names of every container (running or not) carrying all `labels` (a None value:
        the label with any value): one list call."""
        wanted = [k if v is None else f"{k}={v}" for k, v in sorted(labels.items())]
        payload = self._json("listing labelled containers", "get", "/containers/json",
                             params={"all": True,
                                     "filters": json.dumps({"label": wanted})})
        names = []
        for item in payload or ():
            found = item.get("Names") or [] if isinstance(item, Mapping) else []
            if found:
                names.append(str(found[0]).lstrip("/"))
        return sorted(names)

    def rename_container(self, name: str, new_name: str) -> None:
        """Rename a container (create-before-destroy gives the old one a retired name)."""
        self._call(f"renaming container {name} to {new_name}", "post",
                   f"/containers/{_path(name)}/rename", params={"name": new_name})

    def remove_image(self, ref: str) -> bool:
        """Remove an image DockLock built; False if it was already gone.

        An image still used by a container is refused by Podman (PodmanError saying so).
        """
        response = self._call(f"removing image {ref}", "delete", f"/images/{_path(ref)}",
                              ok=(404,))
        return bool(response.status_code != 404)

    def inspect_container(self, name: str) -> ContainerInfo:
        data = self._json(f"inspecting container {name}", "get",
                          f"/containers/{_path(name)}/json")
        return ContainerInfo.from_inspect(data)

    def container_exists(self, name: str) -> bool:
        response = self._call(f"looking up container {name}", "get",
                              f"/containers/{_path(name)}/exists", ok=(404,))
        return bool(response.status_code == 204)

    def wait_container(self, name: str, timeout: float) -> int:
        """Block until the container has exited (at most `timeout` s); its exit code."""
        what = f"waiting for container {name}"
        try:
            data = self._json(what, "post", f"/containers/{_path(name)}/wait",
                              params={"condition": ["stopped", "exited"]}, timeout=timeout)
        except PodmanTimeoutError as exc:
            raise PodmanTimeoutError(f"container {name} did not exit within {timeout:g}s",
                                     hint="raise the job's timeout, or check its logs") from exc
        if isinstance(data, Mapping):  # some versions answer {"StatusCode": n}
            data = data.get("StatusCode", data.get("ExitCode", -1))
        return int(data)

    def logs(self, name: str) -> tuple[bytes, bytes]:
        """The container's whole stdout and stderr, separately, byte for byte."""
        response = self._call(f"reading logs of container {name}", "get",
                              f"/containers/{_path(name)}/logs",
                              params={"stdout": True, "stderr": True})
        return demux_logs(response.content)

    def run_healthcheck(self, name: str) -> HealthCheckResult:
        """Run the container's healthcheck once now (Podman without systemd never does)."""
        what = f"running the healthcheck of container {name}"
        response = self._call(what, "get", f"/containers/{_path(name)}/healthcheck", ok=(409,))
        if response.status_code == 409:
            reason = _api_text(response)
            if "not running" not in reason:
                raise PodmanError(f"{what}: {reason}", hint=_hint_for(reason))
            return HealthCheckResult(False, "", "container is not running", 0, running=False)
        passed = str(response.json().get("Status", "")) == "healthy"
        info = self.inspect_container(name)
        return HealthCheckResult(passed, info.health, info.health_output,
                                 info.health_failing_streak)

    def copy_from(self, name: str, path: str) -> bytes:
        """A tar archive of `path` inside the container (e.g. a job's output folder)."""
        response = self._call(f"copying {path} out of container {name}", "get",
                              f"/containers/{_path(name)}/archive", params={"path": path})
        return bytes(response.content)


def connect(url: str | None = None, *, workspace_url: str | None = None,
            start_service: bool = True, env: Mapping[str, str] | None = None,
            default_url: str | None = None) -> PodmanRuntime:
    """Connect to Podman; use as `with connect(args.podman_url, workspace_url=...) as rt:`.

    Order: `url` (--podman-url), DOCKLOCK_PODMAN_URL, `workspace_url` (docklock.yaml),
    then the default socket (`default_url` overrides it, for tests). If the default socket
    does not answer and `podman` is installed, a private service is started on a
    temporary socket with the caller's environment (CONTAINERS_CONF is honoured) and
    stopped when the runtime is closed.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    choice = resolve_url(url, env=environ, workspace_url=workspace_url, default_url=default_url)
    reason = _probe(choice.url)
    if not reason:
        return PodmanRuntime(choice.url, source=choice.source)
    tried = f"{choice.url} ({choice.source}: {reason})"
    if choice.explicit and reason.startswith("ssh"):
        raise PodmanUnavailableError(
            f"no Podman API answered at {tried}",
            hint="DockLock needs ssh to log in there without a prompt (a key, e.g. through "
                 f"ssh-agent); check with `ssh HOST true`, or change or remove "
                 f"{choice.source} to use the local Podman")
    if choice.explicit:
        raise PodmanUnavailableError(
            f"no Podman API answered at {tried}",
            hint=f"start one there (`podman system service --time=0 {choice.url}`), or "
                 f"change or remove {choice.source} to use the local Podman")
    if not start_service:
        raise PodmanUnavailableError(f"no Podman API answered at {tried}", hint=FIX_HINT)
    podman_bin = shutil.which("podman", path=environ.get("PATH", os.defpath))
    if podman_bin is None:
        raise PodmanUnavailableError(
            f"no Podman API answered at {tried}, and no podman binary to start a private "
            "service", hint=FIX_HINT)
    service = PrivateService.start(podman_bin, env=environ)
    try:
        return PodmanRuntime(service.url, source="private service", service=service)
    except BaseException:
        service.stop()
        raise


# ---------------------------------------------------------------- helpers (pure)


def demux_logs(raw: bytes) -> tuple[bytes, bytes]:
    """Split Podman's multiplexed log stream (8-byte frame headers) into stdout, stderr."""
    out: list[bytes] = []
    err: list[bytes] = []
    i = 0
    while i + 8 <= len(raw):
        kind = raw[i]
        if kind not in (0, 1, 2) or raw[i + 1:i + 4] != b"\0\0\0":
            # Not framed (a tty container): everything is stdout.
            return raw, b""
        (size,) = struct.unpack(">I", raw[i + 4:i + 8])
        chunk = raw[i + 8:i + 8 + size]
        (err if kind == 2 else out).append(chunk)
        i += 8 + size
    if i < len(raw):
        if i == 0:
            return raw, b""
        out.append(raw[i:])
    return b"".join(out), b"".join(err)


def _live_container(item: Mapping[str, Any]) -> LiveObject:
    names = item.get("Names") or [item.get("Id", "")]
    name = str(names[0]).lstrip("/")
    state = str(item.get("State", ""))
    # Podman 4.x puts the health state in the list's "Status" field when the container
    # has a healthcheck, so no per-container inspect is needed.
    status_field = str(item.get("Status", ""))
    health = _health(status_field)
    exit_code = int(item.get("ExitCode") or 0) if state in ("exited", "stopped") else None
    return LiveObject(
        key=object_key(ObjectKind.CONTAINER, name), kind=ObjectKind.CONTAINER, name=name,
        id=str(item.get("Id", "")), labels=dict(item.get("Labels") or {}), status=state,
        # The image id (what drift compares with the recorded one); the name is in the
        # config hash already. Fall back to the name if a Podman omits the id.
        health=health, image=str(item.get("ImageID") or item.get("Image", "")),
        exit_code=exit_code,
        ports=tuple(_port_text(p) for p in item.get("Ports") or ()),
        # Network membership and mount destinations ride on the same list entry (Podman
        # 4.x); None when a Podman omits them, so drift does not misjudge their absence.
        networks=_names(item, "Networks"), mounts=_names(item, "Mounts"),
    )


def _names(item: Mapping[str, Any], key: str) -> tuple[str, ...] | None:
    if key not in item:
        return None
    return tuple(sorted(str(x) for x in item.get(key) or ()))


def container_detail(data: Mapping[str, Any]) -> ContainerDetail:
    """The inspect-only fields drift compares (limits, restart policy, network aliases)."""
    host = data.get("HostConfig") or {}
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    return ContainerDetail(
        memory=int(host.get("Memory") or 0), cpu_quota=int(host.get("CpuQuota") or 0),
        cpu_period=int(host.get("CpuPeriod") or 0),
        pids_limit=int(host.get("PidsLimit") or 0),
        restart=str((host.get("RestartPolicy") or {}).get("Name") or ""),
        aliases={str(net): tuple(sorted(str(a) for a in (conf or {}).get("Aliases") or ()))
                 for net, conf in networks.items()},
    )


def _port_text(port: Mapping[str, Any]) -> str:
    host_ip = port.get("host_ip") or "0.0.0.0"  # noqa: S104 - Podman's own default
    proto = port.get("protocol") or "tcp"
    return f"{host_ip}:{port.get('host_port')}->{port.get('container_port')}/{proto}"


def _split(cluster: str, found: Iterable[LiveObject], calls: int) -> LiveState:
    """Objects labelled with `cluster` and the others, each keyed by object key."""
    ours: dict[str, LiveObject] = {}
    others: dict[str, LiveObject] = {}
    for obj in found:
        (ours if obj.labels.get(LABEL_CLUSTER) == cluster else others)[obj.key] = obj
    return LiveState(ours, calls, others=others)


def _label_filter(cluster: str) -> str:
    return json.dumps({"label": [f"{LABEL_CLUSTER}={cluster}"]})


def _path(name: str) -> str:
    # Podman's router takes names with slashes (image refs) as they are.
    return quote(name, safe="/:@")


def _health(value: Any) -> str:
    text = str(value or "")
    return text if text in HEALTH_STATES else ""


def _time(value: Any) -> str:
    text = str(value or "")
    return "" if not text or text.startswith("0001-01-01") or text == _ZERO_TIME else text


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= 300 else line[:297] + "..."


def _api_text(response: Any) -> str:
    try:
        body = response.json()
        return _first_line(str(body.get("message") or body.get("cause") or response.text))
    except ValueError:
        return _first_line(response.text)


def _api_reason(exc: podman.errors.APIError | _http.StatusError) -> str:
    explanation = getattr(exc, "explanation", None) or ""
    response = exc.response
    reason = _first_line(str(explanation)) or _first_line(str(exc))
    if response is not None and response.status_code and f"{response.status_code}" not in reason:
        return f"{reason} (HTTP {response.status_code})"
    return reason


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _timeouts() -> tuple[type[BaseException], ...]:
    requests = sys.modules.get("requests")  # its Timeout can be raised only if imported
    return (TimeoutError, requests.Timeout) if requests is not None else (TimeoutError,)


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, _timeouts()) for e in _causes(exc))


def _connection_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, _timeouts()):
            return "timed out"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, FileNotFoundError):
            return "no socket there"
        if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
            return "connection reset"
    text = " ".join(str(c) for c in _causes(exc))
    if "Connection refused" in text:
        return "connection refused"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "connection closed"
    return _first_line(str(exc))


_HINTS: tuple[tuple[str, str], ...] = (
    ("rlimit", "the host's hard RLIMIT_NOFILE is below Podman's default ulimits: set "
               "default_ulimits in containers.conf (see tools/containers.conf; ./dev installs it)"),
    ("hybrid mode", "crun refuses hybrid cgroups: set runtime = \"runc\" in containers.conf "
                    "(see tools/containers.conf)"),
    ("image not known", "build or import the image first (an Image resource is built by apply)"),
    ("no such image", "build or import the image first (an Image resource is built by apply)"),
    # Most specific first: a port clash also says "already in use" (issue 11 C14).
    ("address already in use", "another process or container holds that host port: "
                               "`ss -ltnp` shows who listens"),
    ("already in use", "another container has that name: `podman ps -a` shows it; if it is "
                       "not DockLock's (no io.docklock labels), remove or rename it"),
    ("network not found", "the network is gone: run `docklock plan` and apply again"),
)


def _hint_for(reason: str) -> str:
    lowered = reason.lower()
    for needle, hint in _HINTS:
        if needle in lowered:
            return hint
    return ""
