"""DockLock's own task pipeline (doit): `doit lint | test | bench | demo | docs`.

`./dev` sets the machine up and calls these; run them directly from the virtualenv
(`.venv/bin/doit test`) once the set-up is done. Every task runs from the repo root with
the interpreter doit runs under, so `.venv/bin/doit` uses the project's virtualenv.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doit.action import CmdAction

ROOT = Path(__file__).resolve().parent
PY = sys.executable

DOIT_CONFIG = {"default_tasks": ["lint", "test"], "verbosity": 2}


def _cmd(*args: str) -> CmdAction:
    return CmdAction(list(args), cwd=str(ROOT), shell=False)


def task_lint() -> dict[str, Any]:
    """ruff over the repo, mypy (strict) over the package."""
    return {
        "actions": [_cmd(PY, "-m", "ruff", "check", "."), _cmd(PY, "-m", "mypy")],
        "verbosity": 2,
    }


def task_test() -> dict[str, Any]:
    """The whole suite: unit tests and the Podman integration tests (never skipped)."""
    return {
        "actions": [_cmd(PY, "-m", "pytest", "-q", "-p", "no:cacheprovider")],
        "verbosity": 2,
    }


def task_bench() -> Iterator[dict[str, Any]]:
    """Every bench/bench_*.py; each prints its own figures."""
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    if not scripts:
        yield {"name": "none", "actions": ["echo 'no bench/bench_*.py scripts yet'"],
               "verbosity": 2}
    for script in scripts:
        yield {
            "name": script.stem,
            "actions": [_cmd(PY, str(script))],
            "file_dep": [str(script)],
            "uptodate": [False],  # figures are the point: always run
            "verbosity": 2,
        }


def task_demo() -> dict[str, Any]:
    """Plan and apply the default workspace (the repo root), then show its status."""
    docklock = (PY, "-m", "docklock", "-C", str(ROOT))
    return {
        "actions": [
            _cmd(*docklock, "plan"),
            _cmd(*docklock, "apply", "--auto-approve"),
            _cmd(*docklock, "status"),
        ],
        "verbosity": 2,
    }


def _write_docs() -> None:
    # Imported here so `doit list` works before the package is importable. Returns None:
    # doit would take write_docs()'s False ("unchanged") for a failure.
    from docklock.load.docs import write_docs

    changed = write_docs()
    print("docs/specs.md " + ("rewritten" if changed else "is up to date"))


def task_docs() -> dict[str, Any]:
    """Regenerate the generated reference docs: spec kinds from the JSON Schemas
    (docs/specs.md), the CLI reference from the parser (docs/cli.md) and the determinism
    table from docklock.cage.sources (docs/determinism.md)."""
    return {
        "actions": [(_write_docs,),
                    _cmd(PY, str(ROOT / "tools" / "gen_cli_docs.py"),
                         "--out", str(ROOT / "docs" / "cli.md")),
                    _cmd(PY, str(ROOT / "tools" / "gen_determinism_docs.py"),
                         "--out", str(ROOT / "docs" / "determinism.md"))],
        "verbosity": 2,
    }
