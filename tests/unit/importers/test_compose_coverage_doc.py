"""bench/compose_coverage.py over the corpus gives the figures docs/compose-import.md
and ADR 0015 quote (so a converter change that moves them updates the docs)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_documented_coverage_matches_the_bench() -> None:
    spec = importlib.util.spec_from_file_location("compose_coverage",
                                                  REPO / "bench" / "compose_coverage.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert module.main([]) == 0
    text = out.getvalue()
    ours = re.search(r"docklock, all keys:\s+(\d+)/(\d+) = ([\d.]+)%", text)
    listed = re.search(r"  docklock:\s+(\d+)/(\d+) = ([\d.]+)%", text)
    kompose = re.search(r"kompose \(table says converts\):\s+(\d+)/(\d+) = ([\d.]+)%", text)
    assert ours, text
    assert listed, text
    assert kompose, text
    doc = (REPO / "docs" / "compose-import.md").read_text()
    for m in (ours, listed, kompose):
        assert f"{m.group(1)} / {m.group(2)} = **{m.group(3)} %**" in doc, m.group(0)
    adr = (REPO / "docs" / "adr" / "0015-compose-import.md").read_text()
    assert f"{ours.group(3)} %" in adr
