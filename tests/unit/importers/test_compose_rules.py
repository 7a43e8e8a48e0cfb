"""Each compose → DockLock mapping rule, as data: a compose file, the documents expected
(a subset of each named document) and the keys expected not mapped. Plus the error
paths: bad compose input is one located SpecError."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from docklock.errors import SpecError
from docklock.importers.compose import PODMAN_DEFAULT_CAPS, ComposeImport, convert_compose


def convert(tmp_path: Path, compose: str, *, files: dict[str, str] | None = None,
            env: dict[str, str] | None = None, **kw: Any) -> ComposeImport:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return convert_compose(tmp_path / "compose.yaml", environ=env or {}, **kw)


def docs(result: ComposeImport) -> dict[str, dict[str, Any]]:
    """'Kind/name' → document, over every file."""
    return {f"{d['kind']}/{d['metadata']['name']}": d
            for f in result.files for d in f.documents}


def unmapped(result: ComposeImport) -> set[str]:
    return {f.path for f in result.findings if f.counted and not f.mapped}


def subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


# name → (compose text, {address: expected subset of its document}, unmapped key paths)
RULES: dict[str, tuple[str, dict[str, Any], set[str]]] = {
    "command string is split like a shell": ("""
        services:
          web: {image: img, command: 'sh -c "echo hi && sleep 1"'}
        """, {"Service/web": {"spec": {"command": ["sh", "-c", "echo hi && sleep 1"]}}}, set()),
    "replicas with a fixed host port: one replica, reported (every replica would bind it)": ("""
        services:
          web: {image: img, ports: ["8080:80"], deploy: {replicas: 3}}
          api: {image: img, deploy: {replicas: 2}}
        """, {"Service/api": {"spec": {"replicas": 2}}},
        {"services.web.deploy.replicas"}),
    "command and entrypoint lists": ("""
        services:
          web: {image: img, entrypoint: [tini, --], command: [run, 8080]}
        """, {"Service/web": {"spec": {"entrypoint": ["tini", "--"],
                                       "command": ["run", "8080"]}}}, set()),
    "environment list and map; a bare name (from the environment at start) is not copied": ("""
        services:
          a: {image: img, environment: [A=1, FROM_ENV, MISSING]}
          b: {image: img, environment: {B: 2, FLAG: true, FROM_ENV: null}}
        """, {"Service/a": {"spec": {"env": {"A": "1"}}},
              "Service/b": {"spec": {"env": {"B": "2", "FLAG": "true"}}}},
        {"services.a.environment", "services.b.environment"}),
    "secret-looking env names are marked sensitive": ("""
        services:
          db: {image: img, environment: {POSTGRES_PASSWORD: pw, API_TOKEN: t, USER: u}}
        """, {"Service/db": {"spec": {"env": {
            "POSTGRES_PASSWORD": {"value": "pw", "sensitive": True},
            "API_TOKEN": {"value": "t", "sensitive": True}, "USER": "u"}}}}, set()),
    "ports: host ip, udp, range, default all interfaces": ("""
        services:
          web:
            image: img
            ports: ["127.0.0.1:8080:80", "5353:53/udp", "9000-9001:9000-9001", "443:443"]
        """, {"Service/web": {"spec": {"ports": [
            {"container": 80, "host": 8080, "hostIp": "127.0.0.1"},
            {"container": 53, "host": 5353, "protocol": "udp", "hostIp": "0.0.0.0"},
            {"container": 9000, "host": 9000, "hostIp": "0.0.0.0"},
            {"container": 9001, "host": 9001, "hostIp": "0.0.0.0"},
            {"container": 443, "host": 443, "hostIp": "0.0.0.0"}]}}}, set()),
    "ports: long syntax": ("""
        services:
          dns:
            image: img
            ports:
              - {target: 53, published: "1053", protocol: udp, host_ip: 127.0.0.1, mode: host}
        """, {"Service/dns": {"spec": {"ports": [
            {"container": 53, "host": 1053, "protocol": "udp", "hostIp": "127.0.0.1"}]}}},
        set()),
    "ports: no host port is reported": ("""
        services:
          web: {image: img, ports: ["3000"]}
        """, {}, {"services.web.ports"}),
    "named volume, read-only, and an anonymous one": ("""
        services:
          db: {image: img, volumes: ["data:/var/lib/db", "conf:/etc/db:ro", /scratch]}
        volumes: {data: {}, conf: {labels: {tier: db}}}
        """, {"Service/db": {"spec": {"volumes": [
            {"name": "data", "path": "/var/lib/db"},
            {"name": "conf", "path": "/etc/db", "readOnly": True},
            {"name": "db-anon-1", "path": "/scratch"}]}},
            "Volume/data": {}, "Volume/conf": {"metadata": {"labels": {"tier": "db"}}},
            "Volume/db-anon-1": {}}, set()),
    "bind mount on a service is reported": ("""
        services:
          web: {image: img, volumes: ["./site:/usr/share/nginx/html:ro"]}
        """, {}, {"services.web.volumes"}),
    "networks, default network when none is named": ("""
        services:
          web: {image: img, networks: [front, back]}
          db: {image: img}
        networks:
          front: {driver: bridge, labels: {zone: dmz}}
          back: {internal: true, ipam: {config: [{subnet: 10.9.0.0/24}]}}
        """, {"Service/web": {"spec": {"networks": ["front", "back"]}},
              "Service/db": {"spec": {"networks": ["default"]}},
              "Network/front": {"spec": {"driver": "bridge"},
                                "metadata": {"labels": {"zone": "dmz"}}},
              "Network/back": {"spec": {"internal": True, "subnet": "10.9.0.0/24"}},
              "Network/default": {}}, set()),
    "external network and aliases are reported": ("""
        services:
          web: {image: img, networks: {shared: {aliases: [www]}}}
        networks:
          shared: {external: true}
        """, {"Network/shared": {}}, {"services.web.networks", "networks.shared.external"}),
    "healthcheck CMD with compose's defaults filled in": ("""
        services:
          db: {image: img, healthcheck: {test: [CMD, pg_isready], start_period: 5s}}
        """, {"Service/db": {"spec": {"healthcheck": {
            "command": ["pg_isready"], "interval": "30s", "timeout": "30s", "retries": 3,
            "startPeriod": "5s"}}}}, set()),
    "healthcheck CMD-SHELL and string run in a shell": ("""
        services:
          a: {image: img, healthcheck: {test: [CMD-SHELL, "curl -f localhost || exit 1"],
                                        interval: 1s, timeout: 2s, retries: 4}}
          b: {image: img, healthcheck: {test: "nc -z localhost 80"}}
        """, {"Service/a": {"spec": {"healthcheck": {
            "command": ["/bin/sh", "-c", "curl -f localhost || exit 1"], "interval": "1s",
            "timeout": "2s", "retries": 4}}},
            "Service/b": {"spec": {"healthcheck": {
                "command": ["/bin/sh", "-c", "nc -z localhost 80"]}}}}, set()),
    "healthcheck NONE and disable set none": ("""
        services:
          a: {image: img, healthcheck: {test: [NONE]}}
          b: {image: img, healthcheck: {disable: true}}
        """, {}, set()),
    "depends_on list and conditions; completed makes a Job": ("""
        services:
          db: {image: img, healthcheck: {test: [CMD, ok]}}
          migrate: {image: img, depends_on: {db: {condition: service_healthy}}}
          cache: {image: img}
          app:
            image: img
            depends_on:
              migrate: {condition: service_completed_successfully}
              cache: {condition: service_started}
          side: {image: img, depends_on: [app]}
        """, {"Job/migrate": {"spec": {"dependsOn": [{"name": "db", "condition": "healthy"}]}},
              "Service/app": {"spec": {"dependsOn": [
                  {"name": "migrate", "kind": "Job", "condition": "completed"},
                  {"name": "cache", "condition": "started"}]}},
              "Service/side": {"spec": {"dependsOn": [{"name": "app",
                                                       "condition": "started"}]}}}, set()),
    "service_healthy on a service without a healthcheck waits for started": ("""
        services:
          db: {image: img}
          app: {image: img, depends_on: {db: {condition: service_healthy}}}
        """, {"Service/app": {"spec": {"dependsOn": [{"name": "db", "condition": "started"}]}}},
        {"services.app.depends_on"}),
    "job keys a Job cannot take are reported": ("""
        services:
          migrate: {image: img, ports: ["1:1"], restart: always}
          app: {image: img, depends_on: {migrate: {condition: service_completed_successfully}}}
        """, {"Job/migrate": {}}, {"services.migrate.ports", "services.migrate.restart"}),
    "deploy replicas, limits, restart_policy; scale": ("""
        services:
          a:
            image: img
            deploy:
              replicas: 3
              resources: {limits: {cpus: "0.5", memory: 256M, pids: 100},
                          reservations: {memory: 64M}}
              restart_policy: {condition: on-failure}
          b: {image: img, scale: 2, cpus: 1.5, mem_limit: 1g, pids_limit: 50}
        """, {"Service/a": {"spec": {"replicas": 3, "restart": "on-failure", "resources": {
            "cpus": 0.5, "memory": "256m", "pids": 100}}},
            "Service/b": {"spec": {"replicas": 2, "resources": {
                "cpus": 1.5, "memory": "1g", "pids": 50}}}},
        {"services.a.deploy.resources.reservations"}),
    "restart with a retry count keeps the policy": ("""
        services:
          a: {image: img, restart: "on-failure:5"}
          b: {image: img, restart: "no"}
        """, {"Service/a": {"spec": {"restart": "on-failure"}},
              "Service/b": {"spec": {"restart": "no"}}}, set()),
    "user, working_dir, stop_grace_period, labels, annotations": ("""
        services:
          a:
            image: img
            user: 1000:1000
            working_dir: /srv
            stop_grace_period: 1m30s
            labels: [com.example.team=core]
            annotations: {note: hello}
        """, {"Service/a": {"metadata": {"labels": {"com.example.team": "core"},
                                         "annotations": {"note": "hello"}},
                            "spec": {"user": "1000:1000", "workdir": "/srv",
                                     "stopTimeout": 90}}}, set()),
    "default caps come from the compose-default cage": ("""
        services:
          a: {image: img, cap_add: [NET_ADMIN, CHOWN]}
        """, {"Service/a": {"spec": {"cage": "compose-default", "capAdd": ["NET_ADMIN"]}},
              "CageProfile/compose-default": {"spec": {"extends": "standard"}}}, set()),
    "cap_drop ALL keeps only cap_add": ("""
        services:
          a: {image: img, cap_drop: [ALL], cap_add: [NET_BIND_SERVICE]}
        """, {"Service/a": {"spec": {"capAdd": ["NET_BIND_SERVICE"]}}}, set()),
    "read_only asks for the hardened cage; no-new-privileges is implied": ("""
        services:
          a: {image: img, read_only: true, cap_drop: [ALL],
              security_opt: ["no-new-privileges:true"]}
        """, {"Service/a": {"spec": {"cage": "hardened"}}}, set()),
    "seccomp unconfined, privileged, ulimits, sysctls are reported": ("""
        services:
          a:
            image: img
            privileged: true
            security_opt: [seccomp:unconfined]
            ulimits: {nofile: 1024}
            sysctls: {net.core.somaxconn: 1024}
            stdin_open: true
            no_such_key: 1
        """, {}, {"services.a.privileged", "services.a.security_opt", "services.a.ulimits",
                  "services.a.sysctls", "services.a.stdin_open", "services.a.no_such_key"}),
    "anchors and merge keys": ("""
        x-base: &base
          image: img
          environment: &env {A: "1"}
        services:
          a:
            <<: *base
            environment:
              <<: *env
              B: "2"
        """, {"Service/a": {"spec": {"image": "img", "env": {"A": "1", "B": "2"}}}}, set()),
    "extends in the same file merges environment": ("""
        services:
          base: {image: img, environment: {A: "1"}, ports: ["1:1"]}
          child: {extends: base, environment: {B: "2"}, ports: ["2:2"]}
        """, {"Service/child": {"spec": {"image": "img", "env": {"A": "1", "B": "2"},
                                         "ports": [{"container": 1, "host": 1, "hostIp": "0.0.0.0"},
                                                   {"container": 2, "host": 2,
                                                    "hostIp": "0.0.0.0"}]}}}, set()),
    "interpolation from the environment with defaults": ("""
        services:
          a: {image: "img:${TAG:-1}", environment: {P: "${FROM_ENV}", Q: "$$HOME"}}
        """, {"Service/a": {"spec": {"image": "img:1", "env": {"P": "here", "Q": "$HOME"}}}},
        set()),
    "service names become DNS labels": ("""
        services:
          Web_App: {image: img}
        """, {"Service/web-app": {}}, set()),
    "project name is the cluster name": ("""
        name: My_Shop
        services:
          a: {image: img}
        """, {}, set()),
}


@pytest.mark.parametrize(("compose", "expected", "missing"), RULES.values(), ids=RULES.keys())
def test_rule(tmp_path: Path, compose: str, expected: dict[str, Any], missing: set[str]) -> None:
    result = convert(tmp_path, compose, env={"FROM_ENV": "here"})
    got = docs(result)
    for address, want in expected.items():
        assert address in got, f"{address} not in {sorted(got)}"
        assert subset(want, got[address]), f"{address}: {got[address]}"
    assert unmapped(result) == missing
    # every counted key is reported once per service using it, with a line
    keys = [f for f in result.findings if f.counted]
    assert len({(f.location.file, f.path, f.message) for f in keys}) == len(keys)
    assert all(f.location.line > 0 for f in result.findings)


def test_project_name(tmp_path: Path) -> None:
    result = convert(tmp_path, "name: My_Shop\nservices:\n  a: {image: img}\n")
    assert result.project == "my-shop"


def test_default_caps_can_be_dropped(tmp_path: Path) -> None:
    result = convert(tmp_path, "services:\n  a: {image: img}\n", keep_default_caps=False)
    got = docs(result)
    assert "cage" not in got["Service/a"]["spec"]
    assert "CageProfile/compose-default" not in got


def test_default_cage_lists_podman_defaults(tmp_path: Path) -> None:
    got = docs(convert(tmp_path, "services:\n  a: {image: img}\n"))
    caps = [c["name"] for c in got["CageProfile/compose-default"]["spec"]["capAdd"]]
    assert tuple(caps) == PODMAN_DEFAULT_CAPS


def test_cap_drop_of_some_defaults(tmp_path: Path) -> None:
    got = docs(convert(tmp_path, "services:\n  a: {image: img, cap_drop: [NET_RAW, KILL]}\n"))
    caps = [c["name"] for c in got["Service/a"]["spec"]["capAdd"]]
    assert "KILL" not in caps
    assert "CHOWN" in caps
    assert "cage" not in got["Service/a"]["spec"]


def test_env_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          a:
            image: img
            env_file: [app.env, {path: opt.env, required: false}]
            environment: {MODE: override}
        """, files={"app.env": "MODE=prod\nPORT=80\n"})
    assert docs(result)["Service/a"]["spec"]["env"] == {"MODE": "override", "PORT": "80"}


def test_dotenv_fills_interpolation_and_environment_overrides_it(tmp_path: Path) -> None:
    result = convert(tmp_path, "services:\n  a: {image: 'img:${TAG}', user: '${UID}'}\n",
                     files={".env": "TAG=2\nUID=7\n"}, env={"UID": "9"})
    spec = docs(result)["Service/a"]["spec"]
    assert (spec["image"], spec["user"]) == ("img:2", "9")


def test_extends_another_file(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          web:
            extends: {file: base/common.yaml, service: app}
            command: [serve]
        """, files={"base/common.yaml": """
        services:
          app:
            image: base-img
            environment: {A: "1"}
            volumes_from: [x]
        """})
    spec = docs(result)["Service/web"]["spec"]
    assert spec["image"] == "base-img"
    assert spec["env"] == {"A": "1"}
    assert spec["command"] == ["serve"]
    # an inherited unmapped key is reported at its own file and line
    where = {f.path: (str(f.location), f.message) for f in result.findings if not f.mapped}
    assert where["services.app.volumes_from"] == ("base/common.yaml:6:5",
                                                  "(inherited by web) not mapped")


def test_profiles_select_services(tmp_path: Path) -> None:
    compose = """
        services:
          app: {image: img}
          debug: {image: img, profiles: [debug]}
        """
    off = convert(tmp_path, compose)
    assert "Service/debug" not in docs(off)
    assert off.skipped == ("debug",)
    on = convert(tmp_path, compose, profiles=["debug"])
    assert "Service/debug" in docs(on)
    env = convert(tmp_path, compose, env={"COMPOSE_PROFILES": "debug"})
    assert "Service/debug" in docs(env)


def test_job_gets_file_secrets_as_inputs(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          backup: {image: img, secrets: [pw, {source: key, target: /etc/key}]}
          after: {image: img, depends_on: {backup: {condition: service_completed_successfully}}}
        secrets:
          pw: {file: ./pw.txt}
          key: {file: ./key.txt}
        """, files={"pw.txt": "x", "key.txt": "y"})
    spec = docs(result)["Job/backup"]["spec"]
    assert spec["inputs"] == [{"path": "pw.txt", "mount": "/run/secrets/pw"},
                              {"path": "key.txt", "mount": "/etc/key"}]
    assert unmapped(result) == set()


def test_service_secrets_are_reported(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          db: {image: img, secrets: [pw]}
        secrets:
          pw: {file: ./pw.txt}
        """, files={"pw.txt": "x"})
    assert unmapped(result) == {"services.db.secrets", "secrets.pw.file"}


def test_build_becomes_an_image_resource(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          app:
            build: {context: ./app, dockerfile: Dockerfile.prod, args: {V: "1"}}
            image: localhost/app:dev
        """, files={"app/Dockerfile.prod": "FROM scratch\n"})
    got = docs(result)
    assert got["Image/app"]["spec"] == {"ref": "localhost/app:dev", "context": "app",
                                        "containerfile": "Dockerfile.prod",
                                        "buildArgs": {"V": "1"}}
    assert got["Service/app"]["spec"]["image"] == "localhost/app:dev"


def test_fraction_counts_keys_not_items(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          a: {image: img, ports: ["3000", "4000"], tty: true}
        """)
    assert (result.keys_mapped, result.keys_seen) == (1, 3)
    assert result.summary() == "mapped 1 of 3 keys (33%)"
    items = [f for f in result.findings if f.kind == "item"]
    assert [f.path for f in items] == ["services.a.ports[0]", "services.a.ports[1]"]


def test_round_trip_of_the_result(tmp_path: Path) -> None:
    result = convert(tmp_path, "services:\n  a: {image: img, tty: true}\n")
    assert ComposeImport.from_dict(result.to_dict()) == result


# Bad input: (name, compose, extra files, env, expected message part, expected location)
ERRORS = {
    "yaml syntax": ("services:\n  a: {image: img\n", {}, "", "compose.yaml:3:1"),
    "no services": ("volumes: {}\n", {}, "no services", "compose.yaml:1:1"),
    "undefined dependency": ("services:\n  a: {image: img, depends_on: [b]}\n", {},
                             "undefined service b", "compose.yaml:2:32"),
    "undefined volume": ("services:\n  a:\n    image: img\n    volumes: [data:/d]\n", {},
                         "undefined volume data", "compose.yaml:4:15"),
    "undefined network": ("services:\n  a:\n    image: img\n    networks: [x]\n", {},
                          "undefined network x", "compose.yaml:4:16"),
    "required variable": ("services:\n  a:\n    image: '${TAG:?set TAG}'\n", {},
                          "set TAG", "compose.yaml:3:5"),
    "lone dollar": ("services:\n  a:\n    image: img\n    command: echo $ 5\n", {},
                    "lone $", "compose.yaml:4:5"),
    "env_file outside the folder": ("services:\n  a:\n    image: img\n"
                                    "    env_file: ../secret.env\n", {},
                                    "outside the compose file's folder", "compose.yaml:4:5"),
    "env_file missing": ("services:\n  a:\n    image: img\n    env_file: nope.env\n", {},
                         "env_file nope.env not found", "compose.yaml:4:5"),
    "bad env_file line": ("services:\n  a:\n    image: img\n    env_file: bad.env\n",
                          {"bad.env": "OK=1\n!!\n"}, "not an environment line", "bad.env:2:1"),
    "extends loop": ("services:\n  a: {image: i, extends: b}\n  b: {image: i, extends: a}\n",
                     {}, "extends loops", "compose.yaml:"),
    "no image": ("services:\n  a: {command: [x]}\n", {}, "neither image nor build",
                 "compose.yaml:2:3"),
    "bad port": ("services:\n  a:\n    image: img\n    ports: ['80:http']\n", {},
                 "not a port", "compose.yaml:4:13"),
    "bad duration": ("services:\n  a:\n    image: img\n    healthcheck:\n"
                     "      test: [CMD, x]\n      interval: soon\n", {},
                     "not a duration", "compose.yaml:6:7"),
    "disabled dependency": ("services:\n  a: {image: i, depends_on: [b]}\n"
                            "  b: {image: i, profiles: [x]}\n", {}, "profiles are not enabled",
                            "compose.yaml:2:30"),
    "empty image": ("services:\n  a:\n    image: ${TAG}\n", {}, "empty or malformed image",
                    "compose.yaml:3:5"),
    "name clash": ("services:\n  web_a: {image: i}\n  web-a: {image: i}\n", {},
                   "both become", "compose.yaml:3:3"),
}


@pytest.mark.parametrize(("compose", "files", "message", "where"), ERRORS.values(),
                         ids=ERRORS.keys())
def test_bad_input_is_one_located_error(tmp_path: Path, compose: str, files: dict[str, str],
                                        message: str, where: str) -> None:
    sub = tmp_path / "project"
    sub.mkdir()
    (tmp_path / "secret.env").write_text("X=1\n")
    for name, text in files.items():
        (sub / name).write_text(text)
    (sub / "compose.yaml").write_text(compose)
    with pytest.raises(SpecError) as info:
        convert_compose(sub / "compose.yaml", environ={})
    assert message in info.value.message
    assert str(info.value.location).startswith(where), str(info.value.location)


def test_service_healthy_on_a_job_is_reported(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          job: {image: img, healthcheck: {test: [CMD, ok]}}
          a: {image: img, depends_on: {job: {condition: service_completed_successfully}}}
          b: {image: img, depends_on: {job: {condition: service_healthy}}}
        """)
    spec = docs(result)["Service/b"]["spec"]
    assert spec["dependsOn"] == [{"name": "job", "kind": "Job", "condition": "started"}]
    assert unmapped(result) == {"services.b.depends_on", "services.job.healthcheck"}


def test_optional_dependency_on_a_disabled_profile_is_dropped(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          app: {image: img, depends_on: {tools: {condition: service_started, required: false}}}
          tools: {image: img, profiles: [debug]}
        """)
    assert "dependsOn" not in docs(result)["Service/app"]["spec"]
    notes = [f.message for f in result.findings if f.kind == "note"]
    assert any("optional dependency tools" in n for n in notes), notes


def test_replicas_sharing_a_fixed_host_port_are_not_written(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          web: {image: img, scale: 2, ports: ["127.0.0.1:8080:80"]}
        """)
    assert "replicas" not in docs(result)["Service/web"]["spec"]
    assert unmapped(result) == {"services.web.scale"}
