"""Review findings on the compose importer (docs/notes review-findings 2, 8, 9, 10):
nested interpolation is bounded, `.env` and the spec folder are confined, and values
that come from the importing shell, `.env` or env files are not baked into specs."""

from __future__ import annotations

import json
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
