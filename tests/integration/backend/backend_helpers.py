"""Workspaces on a chosen backend for the issue-14 "must show" tests, run through the CLI.

`workspace_factory` (a fixture: import it into the test module) makes a workspace folder
whose docklock.yaml names `spec.backend` — `{type: local}` or `{type: postgres,
connectionEnv: DOCKLOCK_TEST_PG}` — and a `Workspace` that runs the real `docklock` CLI
in it with the Podman harness's environment plus DOCKLOCK_TEST_PG = the test's own fresh
database. `Workspace.clone(folder)` copies what git would carry (docklock.yaml, specs/,
docklock.pub; never .docklock/) into another folder: a teammate's or a CI job's checkout.

Why not a conftest.py: every conftest.py outside a package is imported under the module
name `conftest`, so one here would replace tests/conftest.py for every
`from conftest import ...` in this folder and in the folders collected after it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import PodmanHarness, run_cli
from harness_pg import PostgresServer
from psycopg.conninfo import conninfo_to_dict

ENV = "DOCKLOCK_TEST_PG"
BACKENDS = ("local", "postgres")
HTTPD = '[httpd, -f, -p, "8080", -h, /www]'
WGET = '[wget, -q, -O-, "http://127.0.0.1:8080/"]'


def cluster_yaml(name: str, backend: str, connection_env: str = ENV) -> str:
    section = ("{type: local}" if backend == "local"
               else f"{{type: postgres, connectionEnv: {connection_env}}}")
    return (f"apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {{name: {name}}}\n"
            f"spec:\n  specs: [specs]\n  securityLevel: standard\n  backend: {section}\n")


def service(name: str, image: str, *, replicas: int = 1, env: dict[str, str] | None = None,
            slow_start: int = 0) -> str:
    """A busybox httpd service with a healthcheck. `slow_start` seconds: httpd starts
    only after that long, so apply (health-gated) holds the state lock that long."""
    command = HTTPD if not slow_start else (
        f'[sh, -c, "sleep {slow_start}; exec httpd -f -p 8080 -h /www"]')
    lines = ["apiVersion: docklock.io/v1", "kind: Service", f"metadata: {{name: {name}}}",
             "spec:", f"  image: {image}", f"  command: {command}", "  stopTimeout: 0",
             f"  replicas: {replicas}",
             f"  healthcheck: {{command: {WGET}, interval: 1s, retries: 60, timeout: 2s}}"]
    if env:
        lines.append("  env: {" + ", ".join(f"{k}: {v!r}" for k, v in env.items()) + "}")
    return "\n".join(lines) + "\n"


def web_and_api(image: str, *, env: dict[str, str] | None = None, slow_start: int = 0) -> str:
    """Two services: web (2 replicas; `env`, `slow_start` as in service()) and api (1)."""
    return (service("web", image, replicas=2, env=env, slow_start=slow_start) + "---\n"
            + service("api", image))


@dataclass
class Workspace:
    """A workspace folder and the environment its CLI runs with."""

    root: Path
    name: str
    backend: str
    env: dict[str, str]
    server: PostgresServer
    conninfo: str

    def __call__(self, *args: str, ok: bool | None = True,
                 timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `docklock -C ROOT ARGS...`; with ok=True assert it exited 0."""
        done = run_cli(["-C", str(self.root), *args], env=self.env, timeout=timeout)
        if ok:
            assert done.returncode == 0, (args, done.returncode, done.stdout, done.stderr)
        return done

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start `docklock -C ROOT ARGS...` without waiting (stdout/stderr piped)."""
        exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
        return subprocess.Popen([exe, "-C", str(self.root), *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def write_specs(self, text: str) -> None:
        (self.root / "specs").mkdir(exist_ok=True)
        (self.root / "specs" / "app.yaml").write_text(text)

    def clone(self, folder: Path, *, env: dict[str, str] | None = None) -> Workspace:
        """What `git clone` gives a teammate or CI: the committed files, no .docklock/."""
        folder.mkdir(parents=True)
        for item in ("docklock.yaml", "docklock.pub"):
            if (self.root / item).exists():
                shutil.copy2(self.root / item, folder / item)
        shutil.copytree(self.root / "specs", folder / "specs")
        return Workspace(folder, self.name, self.backend, dict(env or self.env), self.server,
                         self.conninfo)

    def sql(self, query: str, params: list[object] | None = None, *,
            superuser: bool = False) -> list[tuple[Any, ...]]:
        """Rows of `query` on this workspace's database (as `docklock` by default)."""
        database = conninfo_to_dict(self.conninfo)["dbname"]
        assert isinstance(database, str)
        return self.server.psql(query, superuser=superuser, database=database, params=params)

    def lock_holder(self) -> tuple[Any, ...] | None:
        rows = self.sql("SELECT pid, host, command, lock_id FROM docklock_locks "
                        "WHERE workspace = %s", [self.name])
        return rows[0] if rows else None

    def wait_for_lock_holder(self, pid: int, timeout: float = 60) -> tuple[Any, ...]:
        """Poll until the holder row names `pid` (the process has the state lock)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                row = self.lock_holder()
            except Exception:  # the table appears on DockLock's first connect
                row = None
            if row is not None and row[0] == pid:
                return row
            time.sleep(0.1)
        raise AssertionError(f"pid {pid} never became the state lock holder")


WorkspaceFactory = Callable[..., Workspace]


@pytest.fixture
def workspace_factory(podman: PodmanHarness, postgres_server: PostgresServer,
                      pg_conninfo: str, tmp_path: Path) -> WorkspaceFactory:
    """make(name, backend, specs, folder="ws", connection_env=ENV) -> Workspace on
    `backend` ("local" or "postgres"; the database is this test's own, its conninfo in
    the variable `connection_env`), its CLI pointed at the Podman harness."""

    def make(name: str, backend: str, specs: str, folder: str = "ws",
             connection_env: str = ENV) -> Workspace:
        assert backend in BACKENDS
        root = tmp_path / folder
        root.mkdir(parents=True)
        (root / "docklock.yaml").write_text(cluster_yaml(name, backend, connection_env))
        ws = Workspace(root, name, backend, podman.cli_env(**{connection_env: pg_conninfo}),
                       postgres_server, pg_conninfo)
        ws.write_specs(specs)
        return ws

    return make
