"""docklock.cage.sources (the table of non-determinism sources) and docs/determinism.md,
generated from it by tools/gen_determinism_docs.py; the last test fails when the page
is stale. The table itself is asserted on real Podman by
tests/integration/cage/test_probe_table.py."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import ModuleType

import pytest

from docklock.cage.levels import pinned_env
from docklock.cage.replay import MASKED, REPLAY_ENV, SYNTHETIC
from docklock.cage.sources import BY_ID, SOURCES, Source, SourceClass, sources_of

REPO = Path(__file__).resolve().parents[3]
PROBE = REPO / "examples" / "deterministic-probe" / "probes" / "probe_all.py"
DOC = REPO / "docs" / "determinism.md"

# The shared vocabulary of issue 13 (the probe's file names): class by class.
EXPECTED = {
    SourceClass.PINNED: {
        "urandom", "getrandom", "python-random", "python-uuid4", "python-urandom",
        "python-hash", "python-set-order", "python-tempfile", "python-object-ids", "aslr",
        "hostname", "pid", "env", "network", "uptime", "loadavg", "proc-stat", "meminfo",
        "vmstat", "cpuinfo", "cpu-count", "kernel-random"},
    SourceClass.PINNED_DYNAMIC: {"python-time", "busybox-date", "busybox-awk-srand"},
    # python-monotonic, python-boottime and busybox-shuf (seeded from the monotonic
    # clock): real unless spec.clock.monotonic is pinned (a faked monotonic clock hangs
    # timed waits).
    SourceClass.DETECTABLE: {
        "python-monotonic", "python-boottime", "busybox-shuf", "busybox-mktemp",
        "mountinfo", "cgroup", "sched", "inode", "file-mtime", "kernel-release",
        "cpu-affinity", "static-clock", "static-monotonic"},
    SourceClass.UNCONTROLLABLE: {"at-random", "rdtsc", "threads"},
}


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_determinism_docs",
                                                  REPO / "tools" / "gen_determinism_docs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_determinism_docs"] = module
    spec.loader.exec_module(module)
    return module


def test_every_id_is_in_its_class_once() -> None:
    ids = [s.id for s in SOURCES]
    assert len(ids) == len(set(ids)) == len(BY_ID)
    for klass, expected in EXPECTED.items():
        assert {s.id for s in sources_of(klass)} == expected, klass


@pytest.mark.parametrize("source", SOURCES, ids=lambda s: s.id)
def test_each_source_is_a_file_name_and_says_what_and_how(source: Source) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9-]*", source.id)  # outputs/<id>.txt, a plain name
    assert source.what.strip()
    assert source.how.strip()
    assert not source.how.endswith(".")  # table cells, not sentences


def test_sources_are_frozen_and_classes_know_their_promise() -> None:
    with pytest.raises(FrozenInstanceError):
        SOURCES[0].id = "x"  # type: ignore[misc]
    assert [k for k in SourceClass if k.promised] == [SourceClass.PINNED,
                                                      SourceClass.PINNED_DYNAMIC]
    assert SourceClass.PINNED_DYNAMIC.label == "pinned for dynamically linked programs only"
    assert SourceClass.UNCONTROLLABLE.label == "not controllable without ptrace"


def test_the_probe_covers_exactly_the_ids() -> None:
    """probe_all.py's table of probes (a dict literal of id → function) names every id;
    the integration test checks the files really appear."""
    tree = ast.parse(PROBE.read_text())
    func = next(n for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef) and n.name == "probes")
    table = next(n for n in ast.walk(func) if isinstance(n, ast.Dict))
    keys = [k.value for k in table.keys if isinstance(k, ast.Constant)]
    assert len(keys) == len(table.keys)
    assert sorted(keys) == sorted(BY_ID)


def test_the_page_has_every_source_env_and_file(gen: ModuleType) -> None:
    text = gen.render()
    for source in SOURCES:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{source.id}` |"))
        assert source.how in row
    for klass in SourceClass:
        heading = f"### {klass.label.capitalize()} ({len(sources_of(klass))})"
        assert heading in text
    # Sections appear in class order, each row under its own class's heading.
    positions = [text.index(f"### {k.label.capitalize()}") for k in SourceClass]
    assert positions == sorted(positions)
    for klass, start in zip(SourceClass, positions, strict=True):
        for source in sources_of(klass):
            assert text.index(f"| `{source.id}` |") > start
    for name, _value, why in REPLAY_ENV:
        assert f"- `{name}` = " in text
        assert why.split(": ")[-1] in text
    for env in pinned_env(0):
        assert env.name in gen.LEVEL_ENV_REASONS, f"no reason written for {env.name}"
        assert f"- `{env.name}` = " in text
    for path in [*SYNTHETIC, *MASKED]:
        assert f"- `{path}`: " in text
    for phrase in ("Inode numbers", "File timestamps", "Static programs' clocks",
                   "busybox `mktemp`, even dynamic", "Thread interleavings",
                   "environment", "spec:\n  clock:"):
        assert phrase in text


def test_a_pipe_in_a_cell_is_escaped(gen: ModuleType) -> None:
    assert gen._cell("a | b") == "a \\| b"


def test_check_mode_reports_a_stale_file_and_writes_nothing(
        gen: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "determinism.md"
    out.write_text("stale\n")
    assert gen.main(["--out", str(out), "--check"]) == 1
    assert out.read_text() == "stale\n"
    assert "out of date" in capsys.readouterr().err
    assert gen.main(["--out", str(out)]) == 0
    assert gen.main(["--out", str(out), "--check"]) == 0
    assert out.read_text() == gen.render()


def test_docs_determinism_md_is_up_to_date() -> None:
    """SOURCES, REPLAY_ENV, SYNTHETIC or MASKED changed without regenerating the page."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / "gen_determinism_docs.py"),
                           "--out", str(DOC), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, ("docs/determinism.md is stale: run "
                                  "`.venv/bin/python tools/gen_determinism_docs.py` "
                                  f"({done.stdout}{done.stderr})")
