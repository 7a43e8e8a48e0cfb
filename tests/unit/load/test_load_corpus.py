"""The shared corpus: JSON Schema and the CUE definitions must judge every document alike.

tests/corpus/good/*.yaml must be accepted and tests/corpus/bad/*.yaml rejected, by the
JSON Schemas (docklock.load.schema) and by schemas/docklock.cue (`cue vet -c`), so the two
cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from docklock.load.cue import CHECK_FIELD, CueCommand, schema_cue
from docklock.load.schema import format_path, load_schemas
from docklock.load.yaml import parse_yaml

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def corpus() -> dict[str, tuple[bool, Any]]:
    out = {}
    for folder, good in (("good", True), ("bad", False)):
        for path in sorted((CORPUS / folder).glob("*.yaml")):
            parsed = parse_yaml(path.read_text(encoding="utf-8"), path.name)
            assert not parsed.diagnostics, path
            assert len(parsed.documents) == 1, path
            out[f"{folder}/{path.stem}"] = (good, parsed.documents[0].data)
    return out


def test_corpus_is_substantial() -> None:
    cases = corpus()
    assert sum(1 for g, _d in cases.values() if g) >= 20
    assert sum(1 for g, _d in cases.values() if not g) >= 100


@pytest.mark.parametrize("name", sorted(corpus()))
def test_json_schema_verdict(name: str) -> None:
    good, doc = corpus()[name]
    problems = load_schemas().check(doc)
    shown = [f"{format_path(p.path)}: {p.message}" for p in problems]
    assert (not problems) == good, shown


def _label(name: str) -> str:
    return "c_" + re.sub(r"\W", "_", name)


def _vet(command: CueCommand, cases: dict[str, Any], tmp: Path
         ) -> tuple[int, set[str], str]:
    """(exit code, corpus names cue's messages mention, output) of one `cue vet -c`."""
    body = "package docklock\n\nresources: {\n" + "".join(
        f"\t{_label(n)}: {json.dumps(doc)}\n" for n, doc in cases.items()) + "}\n"
    (tmp / "corpus.cue").write_text(body)
    result = subprocess.run([*command.argv, "vet", "-c", str(schema_cue()), "corpus.cue"],
                            cwd=tmp, capture_output=True, text=True, check=False,
                            env={**os.environ, **command.env}, timeout=300)
    output = result.stdout + result.stderr
    by_label = {_label(n): n for n in cases}
    named = {by_label[m] for m in re.findall(rf"{CHECK_FIELD}\.(c_\w+)", output)
             if m in by_label}
    return result.returncode, named, output


def _cue_verdicts(command: CueCommand, cases: dict[str, Any], tmp: Path) -> set[str]:
    """The corpus documents cue rejects.

    Batches first (one cue call for the whole corpus): cue reports missing (incomplete)
    fields only once no conflicts are left, and newer cue versions stop early or report
    an error without the document's path, so the documents not yet named are vetted
    again until a run passes cleanly; if a failing run names none of them, each is vetted
    on its own. Every document counted as accepted has been part of a clean run (or
    passed alone), so no rejection can hide behind another.
    """
    rejected: set[str] = set()
    pending = dict(cases)
    for _round in range(8):
        if not pending:
            return rejected
        code, named, _output = _vet(command, pending, tmp)
        if code == 0:
            return rejected
        if named:
            rejected |= named
            pending = {n: d for n, d in pending.items() if n not in named}
            continue
        break
    for name, doc in pending.items():
        code, _named, _output = _vet(command, {name: doc}, tmp)
        if code != 0:
            rejected.add(name)
    return rejected


@pytest.mark.cue
def test_cue_definitions_judge_the_corpus_like_the_json_schemas(
        cue_command: CueCommand, tmp_path: Path) -> None:
    cases = corpus()
    docs = {name: doc for name, (_good, doc) in cases.items()}
    rejected = _cue_verdicts(cue_command, docs, tmp_path)
    expected = {name for name, (good, _doc) in cases.items() if not good}
    assert sorted(rejected - expected) == [], "CUE rejects documents JSON Schema accepts"
    assert sorted(expected - rejected) == [], "CUE accepts documents JSON Schema rejects"
