"""`docklock import compose` over the corpus (tests/corpus/compose/), on real Podman.

Each project is copied to a temporary folder and imported with the real CLI; the
result must validate and plan (plan refreshes from the harness's Podman, and plan
refuses images that are not local, so the busybox test image is tagged under every
image name the corpus uses — nothing is pulled). The report must name exactly the keys
known not to map. One more project (busybox stand-ins for web, db and a migration job,
chained by service_healthy and service_completed_successfully) is applied and must run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PodmanHarness, run_cli
from ruamel.yaml import YAML

pytestmark = pytest.mark.podman

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "compose"

# project → (keys mapped, keys seen, keys not mapped without the `services.` prefix)
EXPECTED: dict[str, tuple[int, int, set[str]]] = {
    "anchors": (20, 23, {"api.logging", "consumer.logging", "scheduler.logging"}),
    "build": (4, 5, {"app.build"}),
    "env-file": (3, 6, {"app.env_file", "app.stdin_open", "app.tty"}),
    "extends": (29, 29, set()),
    "healthcheck-chain": (19, 21, {"api.healthcheck.start_interval", "gateway.depends_on"}),
    "legacy-v2": (6, 16, {"redis.container_name", "web_app.container_name", "web_app.dns",
                          "web_app.extra_hosts", "web_app.hostname",
                          "web_app.links", "web_app.logging", "web_app.stdin_open",
                          "web_app.stop_signal", "web_app.tty"}),
    "long-ports": (3, 4, {"proxy.ports"}),
    "monitoring": (21, 29, {"alertmanager.volumes", "cadvisor.devices", "cadvisor.privileged",
                            "cadvisor.volumes", "node-exporter.network_mode",
                            "node-exporter.pid", "node-exporter.volumes",
                            "prometheus.volumes"}),
    "networks": (12, 15, {"backend.networks", "networks.shared.external",
                          "networks.shared.name"}),
    "profiles": (4, 4, set()),
    "resources": (18, 22, {"api.mem_reservation", "search.deploy.resources.reservations",
                           "search.deploy.restart_policy.max_attempts",
                           "search.environment"}),
    "secrets": (9, 11, {"db.secrets", "secrets.db_password.file"}),
    "security": (14, 15, {"vpn.security_opt"}),
    "traefik-labels": (8, 11, {"blog.labels", "traefik.volumes", "whoami.deploy.labels"}),
    "ulimits-sysctls": (2, 7, {"kafka.shm_size", "kafka.sysctls", "kafka.tmpfs",
                               "kafka.ulimits", "kafka.volumes"}),
    "web-db-cache": (23, 24, {"web.environment"}),
    "wordpress-mysql": (11, 12, {"db.expose"}),
    "worker-migration": (23, 23, set()),
}


def compose_file(folder: Path) -> Path:
    return next(p for p in (folder / "compose.yaml", folder / "docker-compose.yml")
                if p.exists())


def test_the_corpus_is_complete() -> None:
    found = {p.name for p in CORPUS.iterdir() if p.is_dir()} - {"busybox-stack"}
    assert found == set(EXPECTED)
    assert len(found) >= 15


@pytest.fixture(scope="module")
def tagged(podman_harness: PodmanHarness) -> Iterator[set[str]]:
    """Image refs tagged onto the test image; untagged when the module ends."""
    names: set[str] = set()
    yield names
    if names:
        podman_harness.podman("untag", podman_harness.image, *sorted(names), check=False)


def _images(specs: Path) -> set[str]:
    """Image refs the converted specs run that no Image resource builds."""
    yaml = YAML(typ="safe")
    used: set[str] = set()
    built: set[str] = set()
    for f in specs.glob("*.yaml"):
        for doc in yaml.load_all(f.read_text()):
            if doc["kind"] == "Image":
                built.add(doc["spec"]["ref"])
            elif doc["kind"] in ("Service", "Job"):
                used.add(doc["spec"]["image"])
    return used - built


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_imported_project_validates_and_plans(podman: PodmanHarness, tagged: set[str],
                                              tmp_path: Path, project: str) -> None:
    ws = tmp_path / project
    shutil.copytree(CORPUS / project, ws)
    env = podman.cli_env()
    for name in ("LOG_LEVEL", "GITHUB_TOKEN", "COMPOSE_PROFILES", "DB_PASSWORD"):
        env.pop(name, None)
    done = run_cli(["import", "compose", str(compose_file(ws)), "--json"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    mapped, seen, missing = EXPECTED[project]
    not_mapped = {f["path"].removeprefix("services.") for f in report["findings"]
                  if f["kind"] == "key" and not f["mapped"]}
    assert not_mapped == missing
    assert (report["keys_mapped"], report["keys_seen"]) == (mapped, seen)
    for f in report["findings"]:  # every finding points into a compose file
        assert f["line"] > 0, f
    assert (ws / "docklock.yaml").is_file()
    assert ".docklock/" in (ws / ".gitignore").read_text().split()

    valid = run_cli(["validate", "-C", str(ws)], env=env)
    assert valid.returncode == 0, valid.stdout + valid.stderr

    new = _images(ws / "specs") - tagged
    if new:
        podman.podman("tag", podman.image, *sorted(new))
        tagged.update(new)
    plan = run_cli(["plan", "-C", str(ws)], env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "to add" in plan.stdout, plan.stdout


def test_text_report_and_refusal_to_overwrite(tmp_path: Path) -> None:
    ws = tmp_path / "wp"
    shutil.copytree(CORPUS / "wordpress-mysql", ws)
    first = run_cli(["import", "compose", str(ws / "compose.yaml")])
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert any(line.strip().startswith(f"{ws / 'compose.yaml'}:13:5: services.db.expose: "
                                       "not mapped (hint:") for line in lines), first.stdout
    assert lines[-2] == "mapped 11 of 12 keys (92%)"
    before = {p: p.read_text() for p in ws.rglob("*.yaml")}

    again = run_cli(["import", "compose", str(ws / "compose.yaml")])
    assert again.returncode == 1
    assert again.stderr.startswith("error: would overwrite"), again.stderr
    assert "--force" in again.stderr
    assert {p: p.read_text() for p in ws.rglob("*.yaml")} == before

    forced = run_cli(["import", "compose", str(ws / "compose.yaml"), "--force"])
    assert forced.returncode == 0, forced.stderr


def test_bad_compose_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: img\n    depends_on: [db]\n")
    out = tmp_path / "out"
    done = run_cli(["import", "compose", str(tmp_path / "compose.yaml"), "--out", str(out)])
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith(f"error: {tmp_path / 'compose.yaml'}:4:18: service web "
                                  "depends on undefined service db"), done.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]


def test_import_into_an_existing_workspace_uses_its_spec_folder(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "conf").mkdir(parents=True)
    (ws / "docklock.yaml").write_text("apiVersion: docklock.io/v1\nkind: Cluster\n"
                                      "metadata: {name: mine}\nspec: {specs: [conf], "
                                      "securityLevel: hardened}\n")
    (tmp_path / "compose.yaml").write_text("services:\n  web: {image: img, read_only: true}\n")
    done = run_cli(["import", "compose", str(tmp_path / "compose.yaml"), "--out", str(ws)])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (ws / "conf").iterdir()) == ["cages.yaml", "networks.yaml",
                                                               "web.yaml"]
    assert "securityLevel: hardened" in (ws / "docklock.yaml").read_text()
    assert "extends: hardened" in (ws / "conf" / "cages.yaml").read_text()
    valid = run_cli(["validate", "-C", str(ws)])
    assert valid.returncode == 0, valid.stdout + valid.stderr
