"""docklock.load.positions: the file:line:col policy errors point at, found after loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from docklock.errors import Location
from docklock.load.positions import PositionLookup, parse_path
from docklock.model import Resource
from docklock.policy import document_path
from docklock.workspace import WorkspacePaths

TWO_DOCS = """\
# leading comment
apiVersion: docklock.io/v1
kind: Service
metadata: {name: web}
spec:
  image: localhost/web:1
---

apiVersion: docklock.io/v1
kind: Policy
metadata: {name: p}
spec:
  rules:
    - id: r1
      match: {kinds: [Service]}
      assert:
        type: objekt
"""


@pytest.mark.parametrize(("text", "parts"), [
    ("", ()),
    ("spec", ("spec",)),
    ("spec.rules[0].assert.$ref", ("spec", "rules", 0, "assert", "$ref")),
    ("spec.exceptions[12].rule", ("spec", "exceptions", 12, "rule")),
    ("spec.policies[1]", ("spec", "policies", 1)),
])
def test_parse_path(text: str, parts: tuple[object, ...]) -> None:
    assert parse_path(text) == parts


def resource(kind: str, name: str, loc: Location) -> Resource:
    spec = {"image": "x:1"} if kind == "Service" else {"rules": [
        {"id": "r1", "match": {"kinds": ["Service"]}, "assert": True}]}
    return Resource.from_dict({"kind": kind, "metadata": {"name": name}, "spec": spec}, loc)


@pytest.fixture
def lookup(tmp_path: Path) -> PositionLookup:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "two.yaml").write_text(TWO_DOCS)
    return PositionLookup(WorkspacePaths(tmp_path))


@pytest.mark.parametrize(("kind", "start", "path", "expected"), [
    ("Service", (2, 1), "spec.image", "specs/two.yaml:6:3"),
    ("Service", (2, 1), ("spec", "image"), "specs/two.yaml:6:3"),
    ("Service", (2, 1), "spec.user", "specs/two.yaml:5:1"),  # absent: its parent
    ("Service", (2, 1), "", "specs/two.yaml:2:1"),
    ("Policy", (9, 1), "spec.rules[0].assert.type", "specs/two.yaml:17:9"),
    ("Policy", (9, 1), "spec.rules[0].id", "specs/two.yaml:14:7"),
], ids=["key", "sequence-path", "missing-key", "document", "second-doc", "list-item"])
def test_lookup_finds_the_key_in_the_right_document(
        lookup: PositionLookup, kind: str, start: tuple[int, int], path: str,
        expected: str) -> None:
    res = resource(kind, "web", Location("specs/two.yaml", *start))
    assert str(lookup(res, path)) == expected


@pytest.mark.parametrize("loc", [
    Location("specs/agreement.cue", 1, 1),  # CUE: no YAML to re-read
    Location("builtin:baseline", 1, 1),
    Location("specs/missing.yaml", 1, 1),
    Location("specs/two.yaml", 3, 1),  # no document starts there
], ids=["cue", "builtin", "missing-file", "no-document"])
def test_lookup_gives_none_when_it_cannot_tell(lookup: PositionLookup,
                                               loc: Location) -> None:
    assert lookup(resource("Service", "web", loc), "spec.image") is None


def test_outside_file_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "outside.yaml").write_text(TWO_DOCS)
    lookup = PositionLookup(WorkspacePaths(tmp_path / "ws"))
    res = resource("Service", "web", Location("../outside.yaml", 2, 1))
    assert lookup(res, "spec.image") is None


def test_each_file_is_parsed_once(lookup: PositionLookup, tmp_path: Path) -> None:
    res = resource("Service", "web", Location("specs/two.yaml", 2, 1))
    assert str(lookup(res, "spec.image")) == "specs/two.yaml:6:3"
    (tmp_path / "specs" / "two.yaml").write_text("changed: true\n")
    assert str(lookup(res, "spec.image")) == "specs/two.yaml:6:3"


@pytest.mark.parametrize(("view_path", "expected"), [
    ("effective.imagePinned", "spec.image"),
    ("effective.runAsNonRoot", "spec.user"),
    ("effective.memoryLimit", "spec.resources.memory"),
    ("effective.capAdd[0]", "spec.capAdd"),
    ("effective.cageLevel", "spec.cage"),
    ("effective.somethingNew", "spec"),
    ("spec.ports[0].host", "spec.ports[0].host"),
    ("metadata.labels", "metadata.labels"),
    ("", ""),
])
def test_document_path_maps_computed_fields_to_what_the_author_writes(
        view_path: str, expected: str) -> None:
    assert document_path(view_path) == expected


def test_at_most_max_files_are_re_read(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "specs" / f"{name}.yaml").write_text(TWO_DOCS)
    lookup = PositionLookup(WorkspacePaths(tmp_path), max_files=2)
    found = [lookup(resource("Service", "web", Location(f"specs/{n}.yaml", 2, 1)), "spec.image")
             for n in ("a", "b", "c", "a")]
    assert [str(f) if f else None for f in found] == [
        "specs/a.yaml:6:3", "specs/b.yaml:6:3", None, "specs/a.yaml:6:3"]
