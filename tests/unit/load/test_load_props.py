"""Bad input never escapes as a traceback: every case is a DockLockError with a location."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from test_load_fastschema import SEEDS, mutated

from docklock.errors import DockLockError, ValidationError
from docklock.load import load_workspace
from docklock.workspace import WorkspacePaths

YAML_CHARS = st.sampled_from([*"ab:-[]{},'\"#&*!|>?\n\t 01.~%@`\\", "kind: Service\n",
                              "metadata:\n", "  name: x\n", "---\n", "\xff", "\u2028"])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> WorkspacePaths:
    root = tmp_path_factory.mktemp("props")
    (root / "specs").mkdir()
    (root / "docklock.yaml").write_text("kind: Cluster\nmetadata: {name: p}\n")
    return WorkspacePaths(root)


def _load(paths: WorkspacePaths, text: str) -> None:
    target = paths.root / "specs" / "doc.yaml"
    target.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_workspace(paths)
    except ValidationError as exc:
        diagnostics = exc.diagnostics
    except DockLockError as exc:  # pragma: no cover - reported with the failing input
        pytest.fail(f"a DockLockError that is not a ValidationError: {exc!r}")
    else:
        return
    assert diagnostics
    for d in diagnostics:
        assert d.location is not None, d
        assert d.location.file in ("specs/doc.yaml", "docklock.yaml"), d
        assert d.location.line >= 1, d
        assert d.message


def _dump(doc: Any) -> str:
    import io
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture],
          deadline=None)
@given(mutated())
def test_mutated_documents(workspace: WorkspacePaths, doc: Any) -> None:
    _load(workspace, _dump(doc))


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.lists(YAML_CHARS, max_size=40).map("".join))
def test_random_yaml(workspace: WorkspacePaths, text: str) -> None:
    _load(workspace, text)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow,
                                                   HealthCheck.function_scoped_fixture],
          deadline=None)
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_seed_text_with_one_character_changed(workspace: WorkspacePaths, kind: str,
                                              data: st.DataObject) -> None:
    text = _dump(copy.deepcopy(SEEDS[kind]))
    pos = data.draw(st.integers(0, len(text) - 1))
    ch = data.draw(YAML_CHARS)
    _load(workspace, text[:pos] + ch + text[pos + 1:])


def test_a_valid_seed_loads(workspace: WorkspacePaths) -> None:
    (workspace.root / "specs" / "doc.yaml").write_text(_dump(SEEDS["Network"]))
    assert [r.name for r in load_workspace(workspace).resources] == ["n"]
    assert json.dumps(SEEDS["Network"])
