"""file:line:col of a JSON path inside a loaded resource's document, found after loading.

The loader keeps only each document's start (the fast reader records no more). When a
later stage has something to report about one key, e.g. a policy failure at
`spec.user` or a bad exception at `spec.exceptions[0].rule`, `PositionLookup` re-reads
just that resource's YAML file with the precise (ruamel round-trip) reader, once per
file, and returns the key's position. Nothing here runs unless there is something to
report, so loading stays on its fast path. The precise reader costs tens of
milliseconds per file, so a lookup re-reads at most `max_files` files (default 25);
beyond that it answers None and reports keep their document's location, which bounds
the cost when thousands of resources fail the same rule.

Paths are dotted JSON paths as diagnostics write them (`spec.rules[0].assert.$ref`) or
sequences of keys and indexes. A path that is not in the file (a default, a computed
`effective.*` field) resolves to its nearest ancestor that is. Documents from CUE
agreements and built-in packs have no YAML to re-read: the lookup returns None and
callers keep the document's own location.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from docklock.errors import DockLockError, Location
from docklock.load.yaml import ParsedFile, PathItem, parse_yaml_precise
from docklock.model import Resource
from docklock.workspace import WorkspacePaths

__all__ = ["MAX_FILES", "PositionLookup", "parse_path"]

_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_YAML_SUFFIXES = (".yaml", ".yml")


def parse_path(path: str) -> tuple[PathItem, ...]:
    """`spec.rules[0].assert` → ("spec", "rules", 0, "assert")."""
    return tuple(int(index) if index else name for index, name in _PART.findall(path))


MAX_FILES = 25


class PositionLookup:
    """`lookup(resource, path) -> Location | None`, re-reading each file at most once.

    Deterministic: which files get re-read depends only on the order of the calls.
    """

    def __init__(self, paths: WorkspacePaths, *, max_files: int = MAX_FILES) -> None:
        self.paths = paths
        self.max_files = max_files
        self._parsed: dict[str, ParsedFile | None] = {}

    def __call__(self, resource: Resource, path: str | Sequence[PathItem]) -> Location | None:
        where = resource.location
        if where is None or not where.file.endswith(_YAML_SUFFIXES):
            return None
        parsed = self._parse(where.file)
        if parsed is None or parsed.positions is None:
            return None
        # The loader's document start is the same for both readers, so it identifies the
        # document inside a multi-document file.
        index = next((d.index for d in parsed.documents
                      if (d.line, d.column) == (where.line, where.column)), None)
        if index is None:
            return None
        items = parse_path(path) if isinstance(path, str) else tuple(path)
        hit = parsed.positions.locate(index, items)
        return Location(where.file, hit[0], hit[1]) if hit is not None else None

    def _parse(self, rel: str) -> ParsedFile | None:
        if rel not in self._parsed:
            if len(self._parsed) >= self.max_files:
                return None
            self._parsed[rel] = self._read(rel)
        return self._parsed[rel]

    def _read(self, rel: str) -> ParsedFile | None:
        try:
            text = self.paths.confine(rel, what="spec file").read_text(encoding="utf-8")
        except (DockLockError, OSError, UnicodeDecodeError):
            # The file changed or vanished since loading: keep the document's location.
            return None
        return parse_yaml_precise(text, rel)
