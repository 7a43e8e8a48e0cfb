"""The CLI holds no orchestration: it reaches Podman, state and the ledger only through
the engine (docklock/engine), and loads nothing heavy when it is imported.

1. No module under docklock/cli imports docklock.runtime or docklock.state: not at the
   top, not inside a function, not under TYPE_CHECKING, not through importlib.
2. Importing each CLI module in a fresh interpreter loads none of the heavy libraries
   or engine stages (so `docklock --version` and the parser stay fast: issue 12 item 9).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import docklock.cli

CLI_DIR = Path(docklock.cli.__file__).parent
CLI_FILES = sorted(CLI_DIR.glob("*.py"))
FORBIDDEN_IMPORTS = ("docklock.runtime", "docklock.state")
HEAVY = ("networkx", "podman", "jsonschema", "docklock.plan", "docklock.apply")


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def forbidden_imports(source: str, filename: str = "<cli>") -> list[str]:
    """`line: module` for every import of a forbidden package in `source`."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:  # `from .x import y` inside docklock/cli
                module = "docklock.cli" + (f".{module}" if module else "")
            elif node.level == 2:  # `from ..runtime import x`, `from .. import state`
                module = "docklock" + (f".{module}" if module else "")
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            func = node.func
            called = (func.attr if isinstance(func, ast.Attribute)
                      else func.id if isinstance(func, ast.Name) else "")
            if called in ("import_module", "__import__"):
                names = [node.args[0].value]
        for name in names:
            if any(_is_under(name, pkg) for pkg in FORBIDDEN_IMPORTS):
                found.append(f"{node.lineno}: {name}")
    return found


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: p.name)
def test_cli_module_does_not_import_runtime_or_state(path: Path) -> None:
    hits = forbidden_imports(path.read_text(encoding="utf-8"), str(path))
    assert hits == [], (f"{path.name} imports {', '.join(hits)}: go through an engine "
                        "function in docklock/engine instead")


def test_cli_folder_is_not_empty() -> None:
    # A moved package would make the parametrized test above vacuous.
    names = {p.name for p in CLI_FILES}
    assert {"cmd_apply.py", "cmd_plan.py", "cmd_drift.py", "cmd_run.py",
            "_common.py"} <= names


@pytest.mark.parametrize("source", [
    "from docklock.state import StateStore",
    "import docklock.runtime.podman",
    "from docklock import state",
    "from docklock.runtime import podman as p",
    "if TYPE_CHECKING:\n    from docklock.state.store import LockInfo",
    "def f():\n    from docklock.runtime.podman import connect",
    "import importlib\nimportlib.import_module('docklock.state.store')",
    "from ..runtime import podman",
    "from .. import state",
], ids=["from-state", "import-runtime", "from-docklock-import-state", "alias",
        "type-checking", "inside-function", "importlib", "relative", "relative-package"])
def test_the_checker_catches_every_form(source: str) -> None:
    assert forbidden_imports(source) != []


@pytest.mark.parametrize("source", [
    "from docklock.engine.apply import apply",
    "from docklock.statements import x",  # a name that only starts like a package
    "import docklock.status",
])
def test_the_checker_allows_the_engine(source: str) -> None:
    assert forbidden_imports(source) == []


@pytest.fixture(scope="module")
def loaded_by_module() -> dict[str, list[str]]:
    """For each CLI module: the heavy modules importing it (alone, fresh) loads."""
    modules = [f"docklock.cli.{p.stem}" for p in CLI_FILES if p.stem != "__init__"]
    script = (
        "import json, subprocess, sys\n"
        "heavy = json.loads(sys.argv[1])\n"
        "out = {}\n"
        "for name in json.loads(sys.argv[2]):\n"
        "    code = ('import importlib, json, sys; importlib.import_module(%r); '\n"
        "            'print(json.dumps(sorted(sys.modules)))' % name)\n"
        "    loaded = json.loads(subprocess.run([sys.executable, '-c', code], check=True,\n"
        "                        capture_output=True, text=True).stdout)\n"
        "    out[name] = sorted({h for h in heavy for m in loaded\n"
        "                        if m == h or m.startswith(h + '.')})\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(HEAVY),
                           json.dumps(modules)], check=True, capture_output=True, text=True,
                          timeout=120)
    result: dict[str, list[str]] = json.loads(proc.stdout)
    return result


def test_importing_a_cli_module_loads_nothing_heavy(
        loaded_by_module: dict[str, list[str]]) -> None:
    assert "docklock.cli.cmd_apply" in loaded_by_module
    heavy = {name: mods for name, mods in loaded_by_module.items() if mods}
    assert heavy == {}, ("CLI modules load these at import time (move the imports into "
                         f"the handlers): {heavy}")


def test_the_subprocess_check_sees_a_heavy_import() -> None:
    """The fresh-interpreter probe does detect a heavy import (so the test above can fail)."""
    code = ("import importlib, json, sys; importlib.import_module('docklock.plan'); "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
    assert "docklock.plan" in loaded
