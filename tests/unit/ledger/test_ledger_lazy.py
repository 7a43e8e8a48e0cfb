"""The ledger facade imports lazily (issue 12 item 9): recording a plan entry loads the
store and the keys, not the verifier, the DSSE envelopes or (without
witnesses in docklock.yaml) the witnessing code."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import docklock.ledger as ledger


def test_every_public_name_resolves_to_its_module() -> None:
    assert sorted(ledger.__all__) == sorted(ledger._WHERE)
    for name in ledger.__all__:
        value = getattr(ledger, name)
        module = sys.modules[f"docklock.ledger.{ledger._WHERE[name]}"]
        assert getattr(module, name) is value
    assert set(ledger.__all__) <= set(dir(ledger))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        ledger.no_such_name  # noqa: B018


def test_recording_loads_neither_verifier_nor_witnessing(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "docklock.yaml").write_text(
        "apiVersion: docklock.io/v1\nkind: Cluster\nmetadata: {name: lazy}\n"
        "spec: {securityLevel: standard}\n")
    code = textwrap.dedent(f"""
        from pathlib import Path
        from docklock.ledger import EntryType, init_keys
        from docklock.ledger.record import record_if_possible
        from docklock.workspace import WorkspacePaths
        paths = WorkspacePaths(Path({str(root)!r}))
        init_keys(paths)
        rec = record_if_possible(paths, EntryType.PLAN, {{"x": 1}}, cluster="lazy")
        import sys, json
        loaded = sorted(m for m in sys.modules if m.startswith("docklock.ledger."))
        print(json.dumps({{"ok": rec.entry is not None and rec.problem is None,
                          "loaded": loaded}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["ok"] is True
    loaded = set(data["loaded"])
    assert {"docklock.ledger.store", "docklock.ledger.keys", "docklock.ledger.record",
            "docklock.ledger.settings"} <= loaded
    assert not loaded & {"docklock.ledger.verify", "docklock.ledger.dsse",
                         "docklock.ledger.witnessing"}
