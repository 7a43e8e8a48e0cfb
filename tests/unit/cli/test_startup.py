"""Start-up cost of the CLI (issue 12 item 9): what `docklock --version` and the parser
import, checked in fresh interpreters (no timing: the imports are what costs)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from docklock import __version__
from docklock.cli import build_parser, command_modules, main

HEAVY = ("ruamel", "jsonschema", "referencing", "networkx", "podman", "requests",
         "urllib3", "cryptography", "re2", "yaml")


def _fresh(code: str) -> dict[str, Any]:
    script = code + (
        "\nimport sys\nloaded = list(sys.modules)\nimport json\n"  # json imports re
        "print(json.dumps({'docklock': sorted(m for m in loaded if m.startswith("
        "'docklock')), 'top': sorted({m.split('.')[0] for m in loaded})}))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    data: dict[str, Any] = json.loads(lines[-1])
    data["stdout"] = "\n".join(lines[:-1])
    return data


def test_version_imports_nothing_but_the_cli_package() -> None:
    data = _fresh("import sys\nsys.argv = ['docklock', '--version']\n"
                  "from docklock.cli import main\nmain()")
    assert data["stdout"] == f"docklock {__version__}"
    assert data["docklock"] == ["docklock", "docklock.cli"]
    top = set(data["top"])
    assert not top & {"argparse", "typing", "re", "dataclasses", "pathlib", *HEAVY}


def test_version_fast_path_prints_what_argparse_prints(capsys: pytest.CaptureFixture[str],
                                                       ) -> None:
    assert main(["--version"]) == 0
    fast = capsys.readouterr().out
    assert main(["--no-color", "--version"]) == 0  # not the fast path: argparse's action
    assert capsys.readouterr().out == fast == f"docklock {__version__}\n"


def test_building_the_parser_imports_no_engine_and_no_heavy_library() -> None:
    data = _fresh("from docklock.cli import build_parser\nbuild_parser()")
    assert not set(data["top"]) & set(HEAVY)
    engine = [m for m in data["docklock"]
              if not m.startswith(("docklock.cli", "docklock.engine"))
              and m not in ("docklock", "docklock.errors", "docklock.units",
                            "docklock.workspace")]
    assert engine == []


def test_every_command_module_is_discovered() -> None:
    names = command_modules()
    assert names == sorted(names)
    assert {"cmd_apply", "cmd_plan", "cmd_validate", "cmd_init"} <= set(names)
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sub.choices is not None
    assert {"apply", "plan", "validate", "init", "force-unlock"} <= set(sub.choices)
