"""Review findings on the compose importer (docs/notes review-findings 2, 8, 9, 10):
nested interpolation is bounded, `.env` and the spec folder are confined, and values
that come from the importing shell, `.env` or env files are not baked into specs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from docklock.errors import SpecError
from docklock.importers.compose import (
    MAX_INTERPOLATION_DEPTH,
    ComposeImport,
    InterpolationError,
    convert_compose,
    interpolate,
)
from docklock.importers.write import target_settings


def convert(folder: Path, compose: str, *, files: dict[str, str] | None = None,
            env: dict[str, str] | None = None) -> ComposeImport:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(textwrap.dedent(compose))
    for name, text in (files or {}).items():
        (folder / name).write_text(textwrap.dedent(text))
    return convert_compose(folder / "compose.yaml", environ=env or {})


def everything(result: ComposeImport) -> str:
    """Every byte an import shows or writes: the spec files and the report (JSON)."""
    texts = [f.text() for f in result.files]
    report = result.to_dict()
    report.pop("files")
    return "\n".join([*texts, json.dumps(report), *(str(f) for f in result.findings)])


# ---------------------------------------------------------------- finding 10

def test_deeply_nested_interpolation_is_a_located_error(tmp_path: Path) -> None:
    deep = "${A:-" * 3000 + "x" + "}" * 3000
    with pytest.raises(SpecError) as info:
        convert(tmp_path, f"services:\n  a:\n    image: img\n    command: \"{deep}\"\n")
    assert "nests more than" in info.value.message
    assert str(info.value.location) == "compose.yaml:4:5"


def test_nesting_up_to_the_limit_still_works() -> None:
    ok = "${A:-" * MAX_INTERPOLATION_DEPTH + "x" + "}" * MAX_INTERPOLATION_DEPTH
    assert interpolate(ok, {}) == "x"
    too_deep = "${A:-" * (MAX_INTERPOLATION_DEPTH + 2) + "x" + "}" * (MAX_INTERPOLATION_DEPTH + 2)
    with pytest.raises(InterpolationError):
        interpolate(too_deep, {})


# ---------------------------------------------------------------- finding 9

def test_dotenv_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.env").write_text("TAG=from-outside\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").symlink_to(tmp_path / "outside.env")
    with pytest.raises(SpecError) as info:
        convert(project, "services:\n  a: {image: 'img:${TAG}'}\n")
    assert "outside the compose file's folder" in info.value.message
    assert info.value.location is not None
    assert "from-outside" not in str(info.value)


def test_dotenv_symlink_inside_the_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "real.env").write_text("TAG=2\n")
    (tmp_path / ".env").symlink_to(tmp_path / "real.env")
    result = convert(tmp_path, "services:\n  a: {image: 'img:${TAG}'}\n")
    assert result.files[0].documents[0]["spec"]["image"] == "img:2"


# ---------------------------------------------------------------- finding 8

def test_symlinked_spec_folder_out_of_the_target_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "specs").symlink_to(elsewhere)
    with pytest.raises(SpecError, match="outside the workspace") as info:
        target_settings(out)
    assert info.value.location is not None


def test_symlinked_spec_folder_in_a_workspace_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "docklock.yaml").write_text("kind: Cluster\nspec: {specs: [specs]}\n")
    (out / "specs").symlink_to(elsewhere)
    with pytest.raises(SpecError, match="outside the workspace"):
        target_settings(out)


def docklock(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docklock") or str(Path(sys.executable).parent / "docklock")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **env}, timeout=120)


def test_cli_import_with_a_relative_out_and_a_symlinked_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("services:\n  web: {image: img}\n")
    done = docklock(["import", "compose", "c.yml", "--out", "o"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "specs" / "web.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "specs").symlink_to(elsewhere)
    refused = docklock(["import", "compose", "c.yml", "--out", "p"], tmp_path)
    assert refused.returncode == 1
    assert "outside the workspace" in refused.stderr, refused.stderr
    assert list(elsewhere.iterdir()) == []
    assert not (tmp_path / "p" / "docklock.yaml").exists()


# ---------------------------------------------------------------- finding 2

SECRET = "AKIAxSHELLVALUE42"


def withheld(result: ComposeImport) -> list[str]:
    """The text of each not-mapped item."""
    return [str(f) for f in result.findings if f.kind == "item" and not f.mapped]


def test_a_bare_name_never_takes_the_importing_shells_value(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          web:
            image: img
            environment: [AWS_SECRET_ACCESS_KEY, PLAIN=1]
          api:
            image: img
            environment: {LOG_LEVEL: null}
        """, env={"AWS_SECRET_ACCESS_KEY": SECRET, "LOG_LEVEL": "debug"})
    assert SECRET not in everything(result)
    assert "debug" not in "".join(f.text() for f in result.files)
    specs = {d["metadata"]["name"]: d["spec"] for f in result.files for d in f.documents
             if d["kind"] == "Service"}
    assert specs["web"]["env"] == {"PLAIN": "1"}
    assert "env" not in specs["api"]
    items = "\n".join(withheld(result))
    assert ("compose.yaml:5:19: services.web.environment[0]: not mapped: AWS_SECRET_ACCESS_KEY "
            "takes its value from the environment at start") in items, items
    assert "services.api.environment.LOG_LEVEL: not mapped: LOG_LEVEL takes its value" in items
    # the key is not counted as mapped, and the spec file says what to set
    unmapped = {f.path for f in result.findings if f.counted and not f.mapped}
    assert {"services.web.environment", "services.api.environment"} <= unmapped
    web = next(f for f in result.files if f.name == "web.yaml").text()
    assert "#   AWS_SECRET_ACCESS_KEY (from the environment at start)" in web


def test_secret_looking_values_from_env_files_and_dotenv_are_not_copied(
        tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          app:
            image: img
            env_file: app.env
            environment:
              DB_PASSWORD: ${DB_PASSWORD}
              DATABASE_URL: postgres://app:${DB_PASS}@db/app
              LEVEL: ${LEVEL}
              LITERAL_TOKEN: written-in-compose
        """, files={
            "app.env": "MODE=production\nSMTP_PASSWORD='envfile-secret-1'\n"
                       "API_KEY=envfile-secret-2\nHOOK=https://x/${WEBHOOK_TOKEN}\n",
            ".env": "DB_PASSWORD=dotenv-secret-3\nDB_PASS=dotenv-secret-4\nLEVEL=info\n"
                    "WEBHOOK_TOKEN=dotenv-secret-5\n",
        })
    text = everything(result)
    for n in range(1, 6):
        assert f"secret-{n}" not in text, n
    env = result.files[0].documents[0]["spec"]["env"]
    assert env == {"MODE": "production", "LEVEL": "info",
                   "LITERAL_TOKEN": {"value": "written-in-compose", "sensitive": True}}
    items = "\n".join(withheld(result))
    assert "SMTP_PASSWORD looks secret and its value comes from outside the compose file " \
           "(app.env:2)" in items
    assert "API_KEY" in items
    assert "HOOK looks secret" in items
    assert "${WEBHOOK_TOKEN}" in items
    assert "compose.yaml:7:7: services.app.environment.DB_PASSWORD: not mapped: " \
           "DB_PASSWORD looks secret" in items
    assert "DATABASE_URL looks secret" in items
    assert "${DB_PASS}" in items
    unmapped = {f.path for f in result.findings if f.counted and not f.mapped}
    assert unmapped == {"services.app.env_file", "services.app.environment"}


def test_an_extended_services_interpolated_secret_is_not_copied(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          base:
            image: img
            environment: ["DB_PASSWORD=${DB_PASSWORD}", BARE]
          app:
            extends: base
            environment: {OTHER: x}
        """, files={".env": "DB_PASSWORD=dotenv-secret-6\n"}, env={"BARE": SECRET})
    text = everything(result)
    assert "dotenv-secret-6" not in text
    assert SECRET not in text
    app = next(f for f in result.files if f.name == "app.yaml").documents[0]["spec"]
    assert app["env"] == {"OTHER": "x"}


def test_cli_repro_the_shell_value_is_not_in_the_spec(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text(
        "services:\n  web:\n    image: img\n    environment: [AWS_SECRET_ACCESS_KEY]\n")
    done = docklock(["import", "compose", "c.yml", "--out", "o"], tmp_path,
                    AWS_SECRET_ACCESS_KEY=SECRET)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "AWS_SECRET_ACCESS_KEY takes its value from the environment at start" in done.stdout
    for f in (tmp_path / "o").rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(), f


def test_a_bad_env_file_line_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        convert(tmp_path, "services:\n  a: {image: img, env_file: bad.env}\n",
                files={"bad.env": "my-token=ghp_secretvalue7\n"})
    assert str(info.value.location) == "bad.env:1:1"
    assert "secretvalue7" not in str(info.value)
    assert "secretvalue7" not in (info.value.hint or "")


# ---------------------------------------------------------------- finding 4

CLUSTER = "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: shop}\nspec: {}\n"
EXISTING_WEB = ("apiVersion: docklock.io/v1\nkind: Service\nmetadata:\n  name: web\n"
                "spec: {image: img}\n")


def test_import_refuses_an_address_the_workspace_defines(tmp_path: Path) -> None:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "all.yaml").write_text(EXISTING_WEB)
    (tmp_path / "c.yml").write_text("services:\n  web: {image: img}\n  db: {image: img}\n")
    before = sorted(p.name for p in (tmp_path / "specs").iterdir())
    done = docklock(["import", "compose", "c.yml", "-C", "."], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith(
        "error: specs/all.yaml:4:3: Service/default/web is already defined here; the import "
        "would define it again in web.yaml"), done.stderr
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == before
    # --force does not help: all.yaml is not a file the import replaces
    forced = docklock(["import", "compose", "c.yml", "-C", ".", "--force"], tmp_path)
    assert forced.returncode == 1
    assert sorted(p.name for p in (tmp_path / "specs").iterdir()) == before


def test_reimport_with_force_replaces_its_own_files(tmp_path: Path) -> None:
    (tmp_path / "docklock.yaml").write_text(CLUSTER)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "web.yaml").write_text(EXISTING_WEB)
    (tmp_path / "specs" / "other.yaml").write_text(
        EXISTING_WEB.replace("name: web", "name: web\n  namespace: team"))
    (tmp_path / "c.yml").write_text("services:\n  web: {image: img2}\n")
    done = docklock(["import", "compose", "c.yml", "-C", ".", "--force"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "img2" in (tmp_path / "specs" / "web.yaml").read_text()
    valid = docklock(["validate", "-C", "."], tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr


def test_a_bare_build_arg_never_takes_the_importing_shells_value(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    result = convert(tmp_path, """
        services:
          web:
            image: shop/web:1
            build:
              context: app
              args: [NPM_TOKEN, VERSION=2]
        """, env={"NPM_TOKEN": SECRET})
    assert SECRET not in everything(result)
    image = next(d for f in result.files for d in f.documents if d["kind"] == "Image")
    assert image["spec"]["buildArgs"] == {"VERSION": "2"}
    assert any("build arg NPM_TOKEN takes its value from the environment at build" in w
               for w in withheld(result))


def test_a_secret_substituted_elsewhere_is_written_but_said(tmp_path: Path) -> None:
    result = convert(tmp_path, """
        services:
          cache:
            image: redis
            command: redis-server --requirepass ${REDIS_PASSWORD}
        """, files={".env": "REDIS_PASSWORD=dotenv-secret-8\n"})
    notes = [str(f) for f in result.findings if f.kind == "note" and not f.mapped]
    assert any(n.startswith("compose.yaml:5:5: services.cache.command: holds the value of "
                            "${REDIS_PASSWORD}") for n in notes), notes
    assert all("dotenv-secret-8" not in n for n in notes)
