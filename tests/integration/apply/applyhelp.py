"""Helpers for the apply integration tests: workspaces on disk and CLI calls."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conftest import PodmanHarness, run_cli

HEALTH = ('{command: [wget, -q, -O-, "http://127.0.0.1:8080/"], interval: 1s, retries: 3, '
          'timeout: 2s}')
HTTPD = '[httpd, -f, -p, "8080", -h, /www]'


def service(name: str, image: str, *, replicas: int = 1, depends: Sequence[str] = (),
            condition: str = "healthy", env: Mapping[str, str] | None = None,
            command: str = HTTPD, entrypoint: str | None = None, health: bool = True,
            extra: str = "") -> str:
    lines = ["apiVersion: docklock.io/v1", "kind: Service", f"metadata: {{name: {name}}}",
             "spec:", f"  image: {image}", f"  command: {command}", "  stopTimeout: 0",
             f"  replicas: {replicas}"]
    if entrypoint:
        lines.append(f"  entrypoint: {entrypoint}")
    if env:
        lines.append("  env: {" + ", ".join(f"{k}: {v}" for k, v in env.items()) + "}")
    if depends:
        lines.append("  dependsOn: [" + ", ".join(
            f"{{name: {d}, condition: {condition}}}" for d in depends) + "]")
    if health:
        lines.append(f"  healthcheck: {HEALTH}")
    if extra:
        lines.append(extra.rstrip("\n"))
    return "\n".join(lines) + "\n"


def three_tier(image: str, *, web_replicas: int = 1, web_env: Mapping[str, str] | None = None,
               api_entrypoint: str | None = None) -> str:
    return "---\n".join([
        service("db", image),
        service("api", image, depends=["db"], entrypoint=api_entrypoint),
        service("web", image, depends=["api"], replicas=web_replicas, env=web_env),
    ])


def make_workspace(root: Path, cluster: str, specs: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\n"
        f"metadata: {{name: {cluster}}}\nspec: {{specs: [specs], securityLevel: standard}}\n")
    write_specs(root, specs)
    return root


def write_specs(root: Path, specs: str) -> None:
    (root / "specs").mkdir(exist_ok=True)
    (root / "specs" / "app.yaml").write_text(specs)


def cli(harness: PodmanHarness, ws: Path, *args: str,
        timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "-C", str(ws)], env=harness.cli_env(), timeout=timeout)


def apply_ok(harness: PodmanHarness, ws: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = cli(harness, ws, "apply", "--auto-approve", *extra)
    assert done.returncode == 0, f"apply failed:\n{done.stdout}\n{done.stderr}"
    return done


def ids(harness: PodmanHarness, cluster: str) -> dict[str, str]:
    """name -> full container id of every container of `cluster`."""
    out = harness.podman("ps", "-a", "--no-trunc", "--filter",
                         f"label=io.docklock.cluster={cluster}",
                         "--format", "{{.Names}} {{.ID}}").stdout
    pairs = [line.split() for line in out.splitlines() if line.strip()]
    names = [p[0] for p in pairs]
    assert len(names) == len(set(names))
    return {p[0]: p[1] for p in pairs}


def statuses(harness: PodmanHarness, cluster: str) -> dict[str, str]:
    """name -> Podman state (running, exited, created, ...)."""
    out = harness.podman("ps", "-a", "--filter", f"label=io.docklock.cluster={cluster}",
                         "--format", "json").stdout
    return {c["Names"][0]: c["State"] for c in json.loads(out or "[]")}


def state(ws: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ws / ".docklock" / "state.json").read_text())
    return data


def recorded(ws: Path) -> dict[str, str]:
    """object key -> recorded Podman id."""
    out: dict[str, str] = {}
    for res in state(ws)["resources"].values():
        for key, obj in res["objects"].items():
            out[key] = obj["id"]
    return out


def cname(cluster: str, name: str, i: int = 1) -> str:
    return f"{cluster}-default-{name}-{i}"
