"""The test harnesses: a private Podman API service with a throwaway store, and a
private PostgreSQL cluster (tests/harness_pg.py; fixtures `postgres_server`, `pg_conninfo`).

Session-scoped: one `podman system service` per test run, with its own storage root,
runroot and containers.conf under a temporary folder, and a small busybox image built
from Debian's busybox-static (no registry is reachable). Tests never touch the host's
default Podman store. At the end every container is removed and the service stopped.

If Podman cannot start a container the Podman tests FAIL with the reason (they never
skip): CI must prove they ran.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness_pg import PostgresServer, fresh_database, start_postgres, stop_postgres

REPO = Path(__file__).resolve().parent.parent
TEST_IMAGE = "localhost/docklock-test/busybox:1"


@dataclass
class PodmanHarness:
    """Handles on the private Podman: its API URL, CLI options and environment."""

    base: Path
    url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    image: str = TEST_IMAGE
    log: Path = field(default_factory=Path)

    @property
    def global_args(self) -> list[str]:
        return ["--root", str(self.base / "root"), "--runroot", str(self.base / "run"),
                "--tmpdir", str(self.base / "tmp")]

    def podman(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the podman CLI against the private store (for out-of-band changes)."""
        return subprocess.run(["podman", *self.global_args, *args], env=self.env,
                              capture_output=True, text=True, check=check, timeout=timeout)

    def containers(self, label: str = "io.docklock.managed-by=docklock") -> list[str]:
        out = self.podman("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}")
        return sorted(line for line in out.stdout.splitlines() if line)

    def cli_env(self, **extra: str) -> dict[str, str]:
        """Environment for running `docklock` as a subprocess against this Podman."""
        env = dict(self.env)
        env["DOCKLOCK_PODMAN_URL"] = self.url
        env["NO_COLOR"] = "1"
        env.update(extra)
        return env

    def start_service(self) -> None:
        sock = self.base / "api.sock"
        if sock.exists():
            sock.unlink()
        log = self.log.open("ab")
        self.process = subprocess.Popen(
            ["podman", *self.global_args, "system", "service", "--time=0", self.url],
            env=self.env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not sock.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop_service(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.process = None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def remove_all(self) -> None:
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("pod", "rm", "-af", check=False)
        self.podman("network", "prune", "-f", check=False)
        self.podman("volume", "prune", "-f", check=False)


def _fail(reason: str) -> None:
    pytest.fail(f"the Podman test harness cannot run: {reason}", pytrace=False)


@pytest.fixture(scope="session")
def podman_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanHarness]:
    """A private Podman API service with a throwaway store and the busybox test image."""
    if shutil.which("podman") is None:
        _fail("no podman binary; run the README's set-up command (./dev test)")
    base = tmp_path_factory.mktemp("podman")
    conf = base / "containers.conf"
    # Rootful Podman shares /etc/containers/networks, /run/libpod and its lock table
    # between every store on the host; a private network folder, tmpdir and file locks
    # keep another run (or the host's own containers) out of ours and ours out of theirs.
    settings = (REPO / "tools" / "containers.conf").read_text()
    settings = settings.replace("[engine]\n", '[engine]\nlock_type = "file"\n', 1)
    settings += f'\n[network]\nnetwork_config_dir = "{base / "networks"}"\n'
    conf.write_text(settings)
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf)
    env.pop("CONTAINER_HOST", None)
    env.pop("DOCKLOCK_PODMAN_URL", None)
    harness = PodmanHarness(base=base, url=f"unix://{base / 'api.sock'}", env=env,
                            log=base / "service.log")
    built = subprocess.run([str(REPO / "tools" / "busybox-image"), TEST_IMAGE,
                            *harness.global_args], env=env, capture_output=True, text=True,
                           check=False)
    if built.returncode != 0:
        _fail(f"building the busybox image failed: {built.stderr.strip()}")
    probe = harness.podman("run", "--rm", "--network", "none", TEST_IMAGE, "echo", "ok",
                           check=False)
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        _fail(f"podman cannot start a container: {probe.stderr.strip()}")
    try:
        harness.start_service()
    except RuntimeError as exc:
        _fail(str(exc))
    try:
        yield harness
    finally:
        harness.remove_all()
        harness.stop_service()
        # The store holds root-owned overlay mounts; unmount before the tmp dir is reaped.
        harness.podman("system", "reset", "-f", check=False, timeout=60)
        _unmount_below(base)


def _unmount_below(base: Path) -> None:
    """Lazily unmount whatever Podman left mounted in the store so tmp cleanup works."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    prefix = str(base)
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


PYTHON_IMAGE = "localhost/docklock-test/debian-python:12"


def build_tool_image(harness: PodmanHarness, tool: str, tag: str) -> str:
    """Build `tag` into the harness's store with tools/<tool> (idempotent: an existing
    image is kept), exactly as the busybox test image is built; fail with the reason."""
    built = subprocess.run([str(REPO / "tools" / tool), tag, *harness.global_args],
                           env=harness.env, capture_output=True, text=True, check=False,
                           timeout=900)
    if built.returncode != 0:
        _fail(f"tools/{tool} {tag} failed: {built.stderr.strip()}")
    return tag


@pytest.fixture(scope="session")
def python_image(podman_harness: PodmanHarness) -> str:
    """Debian 12 with Python 3.11 and the dynamic busybox (tools/debian-image; mmdebstrap,
    about a minute the first time on a machine, cached for 30 days) in the harness store."""
    return build_tool_image(podman_harness, "debian-image", PYTHON_IMAGE)


@pytest.fixture
def podman(podman_harness: PodmanHarness) -> Iterator[PodmanHarness]:
    """Per-test view of the harness that removes every container the test left behind."""
    if podman_harness.process is None or podman_harness.process.poll() is not None:
        podman_harness.start_service()
    yield podman_harness
    podman_harness.remove_all()


def run_cli(args: Sequence[str], *, cwd: Path | None = None,
            env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed `docklock` CLI as a user would (a real process)."""
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# ---------------------------------------------------------------- PostgreSQL harness
# The cluster itself is in tests/harness_pg.py; these fixtures are its pytest face.

@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster (unix socket only) for the session: `.conninfo`
    (role `docklock`, not a superuser, database `docklock`), `.superuser_conninfo`,
    `.new_database(name)` and `.psql(sql, superuser=True)`. Stopped and removed at the
    end; fails (never skips) when PostgreSQL is missing."""
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


@pytest.fixture
def pg_conninfo(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database owned by `docklock` for this test only; its conninfo."""
    with fresh_database(postgres_server) as conninfo:
        yield conninfo
