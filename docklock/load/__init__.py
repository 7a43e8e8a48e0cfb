"""Turning a workspace's spec files into a validated, typed resource set, or precise errors.

`load_workspace(paths)` runs the whole front of the pipeline, in this order:

1. read docklock.yaml (one `kind: Cluster` document) and validate it;
2. discover `*.yaml`/`*.yml`/`*.cue` under its spec folders (docklock.load.discovery);
3. parse YAML files (docklock.load.yaml: fast C reader, precise round-trip reader for
   files with problems) and vet/export CUE files (docklock.load.cue, cached);
4. check each document against its kind's JSON Schema (docklock.load.schema) and build
   model Resources from the valid ones;
5. cross-resource checks (docklock.load.crosscheck) and the dependency graph with its
   cycles (docklock.graph).

Every problem of every stage is collected; if any is an error, one ValidationError with
all of them is raised, each at file:line:col (workspace-relative). Positions of
documents read by the fast reader are found by re-reading just those files precisely.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from docklock._fs import gc_paused
from docklock.errors import (
    Diagnostic,
    DockLockError,
    Location,
    ValidationError,
    WorkspaceError,
)
from docklock.graph import ResourceGraph, address_key, analyse, format_cycle
from docklock.load.crosscheck import Item, crosscheck
from docklock.load.discovery import discover
from docklock.load.schema import SchemaSet, format_path, load_schemas
from docklock.load.values import value_problems
from docklock.load.yaml import (
    ParsedFile,
    PathItem,
    Positions,
    RawDocument,
    data_limit_problem,
    parse_yaml,
    parse_yaml_precise,
)
from docklock.model import Address, ClusterSpec, Kind, Resource
from docklock.objects import canonical_json, sha256_hex
from docklock.workspace import WORKSPACE_FILE, WorkspacePaths

__all__ = [
    "Workspace",
    "load_workspace",
    "load_cluster",
    "load_documents",
    "RawDocument",
    "LoadedFiles",
    "Locator",
    "spec_digest",
]


@dataclass(frozen=True)
class Workspace:
    """A validated workspace. `resources` excludes the Cluster and is sorted by address."""

    paths: WorkspacePaths
    cluster: Resource
    resources: tuple[Resource, ...]
    files: Mapping[str, str]  # workspace-relative path → sha256 of every spec file read
    spec_digest: str
    warnings: tuple[Diagnostic, ...] = ()
    graph: ResourceGraph | None = field(default=None, compare=False, repr=False)
    _index: dict[Address, Resource] = field(default_factory=dict, init=False, compare=False,
                                            repr=False)

    def __post_init__(self) -> None:
        self._index.update((r.address, r) for r in self.resources)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    @property
    def cluster_spec(self) -> ClusterSpec:
        assert isinstance(self.cluster.spec, ClusterSpec)
        return self.cluster.spec

    def by_address(self, address: Address | str) -> Resource:
        """The resource at `address` (`Kind/ns/name`, `Kind/name` or a service name)."""
        addr = Address.parse(address) if isinstance(address, str) else address
        try:
            return self._index[addr]
        except KeyError:
            raise KeyError(f"no resource {addr} in the workspace") from None

    def get(self, address: Address | str) -> Resource | None:
        try:
            return self.by_address(address)
        except KeyError:
            return None

    def of_kind(self, kind: Kind | str) -> tuple[Resource, ...]:
        k = kind.value if isinstance(kind, Kind) else kind
        return tuple(r for r in self.resources if r.kind == k)


def spec_digest(files: Mapping[str, str]) -> str:
    """sha256 over the sorted {path: sha256} map of the spec files."""
    return sha256_hex(canonical_json(dict(sorted(files.items()))))


class Locator:
    """file:line:col of a JSON path in a document; re-reads a file precisely on demand."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.texts = texts
        self._positions: dict[str, Positions] = {}

    def remember(self, parsed: ParsedFile) -> None:
        if parsed.positions is not None:
            self._positions[parsed.file] = parsed.positions

    def __call__(self, doc: RawDocument, path: Sequence[PathItem]) -> Location:
        if doc.source != "yaml" or doc.file not in self.texts:
            return doc.location
        positions = self._positions.get(doc.file)
        if positions is None:
            positions = parse_yaml_precise(self.texts[doc.file], doc.file).positions \
                or Positions()
            self._positions[doc.file] = positions
        hit = positions.locate(doc.index, path)
        if hit is None:
            return doc.location
        return Location(doc.file, hit[0], hit[1])


@dataclass
class LoadedFiles:
    """Every document read from the spec files, the problems found, and the files' digests."""

    documents: list[RawDocument] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    parsed: list[ParsedFile] = field(default_factory=list)


# One spec file: 10,000 services take about 3 MiB of YAML; a file past this bound is a
# mistake (a log or a dump in a spec folder), refused before any parser sees it.
MAX_FILE_BYTES = 32 * 1024 * 1024


def _read(paths: WorkspacePaths, rel: str, out: LoadedFiles) -> bytes | None:
    try:
        with (paths.root / rel).open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        out.diagnostics.append(Diagnostic(f"cannot read {rel}: {exc.strerror or exc}",
                                          Location(rel)))
        return None
    if len(data) > MAX_FILE_BYTES:
        out.diagnostics.append(Diagnostic(
            f"{rel} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB", Location(rel, 1, 1),
            hint="split it into several spec files, or move non-spec files out of the "
                 "spec folders"))
        return None
    out.files[rel] = hashlib.sha256(data).hexdigest()
    return data


def _not_utf8(rel: str, data: bytes, exc: UnicodeDecodeError) -> Diagnostic:
    """Where the first byte that is not UTF-8 is (column counted in bytes)."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return Diagnostic(f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x})",
                      Location(rel, line, column), hint="save spec files as UTF-8")


def _read_yaml(paths: WorkspacePaths, rel: str, out: LoadedFiles) -> None:
    data = _read(paths, rel, out)
    if data is None:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.diagnostics.append(_not_utf8(rel, data, exc))
        return
    out.texts[rel] = text
    parsed = parse_yaml(text, rel)
    out.parsed.append(parsed)
    out.documents.extend(parsed.documents)
    out.diagnostics.extend(parsed.diagnostics)


def load_documents(paths: WorkspacePaths, *, cue: str | None = None,
                   cluster_spec: ClusterSpec | None = None,
                   where: Location | Callable[[], Location] | None = None,
                   ) -> tuple[LoadedFiles, Locator]:
    """Discover and read every spec file (not docklock.yaml); no schema checks."""
    spec = cluster_spec or ClusterSpec()
    out = LoadedFiles()
    found = discover(paths, spec.specs, where)
    out.diagnostics.extend(found.diagnostics)
    for rel in found.yaml:
        _read_yaml(paths, rel, out)
    if found.cue:
        contents = {}
        for rel in found.cue:
            data = _read(paths, rel, out)
            if data is not None:
                contents[rel] = data
                out.texts.setdefault(rel, data.decode("utf-8", errors="replace"))
        from docklock.load.cue import export_cue  # only a workspace with .cue files

        result = export_cue(paths, contents, cue=cue)
        out.documents.extend(result.documents)
        out.diagnostics.extend(result.diagnostics)
    locator = Locator(out.texts)
    for parsed in out.parsed:
        locator.remember(parsed)
    return out, locator


def _check(doc: RawDocument, schemas: SchemaSet, locate: Locator,
           diagnostics: list[Diagnostic]) -> Resource | None:
    if doc.source != "yaml":  # the YAML readers enforce these bounds as they read
        limit = data_limit_problem(doc.data)
        if limit is not None:
            path, message, hint = limit
            diagnostics.append(Diagnostic(message, locate(doc, path),
                                          path=format_path(path), hint=hint))
            return None
    problems = schemas.check(doc.data)
    if problems:
        for p in problems:
            diagnostics.append(Diagnostic(p.message, locate(doc, p.path),
                                          path=format_path(p.path), hint=p.hint))
        return None
    unusable = value_problems(doc.data)  # valid shapes Podman still could not apply
    if unusable:
        for path, message, hint in unusable:
            diagnostics.append(Diagnostic(message, locate(doc, path), path=format_path(path),
                                          hint=hint))
        return None
    try:
        return Resource.from_dict(doc.data, doc.location)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # The schema accepted what the model cannot hold: a schema/model mismatch.
        diagnostics.append(Diagnostic(f"internal: the document passed its schema but "
                                      f"cannot be modelled ({type(exc).__name__}: {exc})",
                                      doc.location, hint="please report this"))
        return None


def _cluster(paths: WorkspacePaths, schemas: SchemaSet, out: LoadedFiles,
             locator_texts: dict[str, str],
             ) -> tuple[Resource | None, Callable[[], Location] | None]:
    """docklock.yaml's Cluster, and where its `spec.specs` is written (found only when
    asked: that re-reads the file with the precise YAML reader)."""
    rel = WORKSPACE_FILE
    data = _read(paths, rel, out)
    if data is None:
        return None, None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.diagnostics.append(_not_utf8(rel, data, exc))
        return None, None
    locator_texts[rel] = text
    parsed = parse_yaml(text, rel)
    out.diagnostics.extend(parsed.diagnostics)
    locate = Locator({rel: text})
    locate.remember(parsed)
    if parsed.diagnostics:
        return None, None
    docs = parsed.documents
    if len(docs) != 1:
        out.diagnostics.append(Diagnostic(
            f"{rel} must hold exactly one document (kind: Cluster), found {len(docs)}",
            docs[1].location if len(docs) > 1 else Location(rel),
            hint="run `docklock init` to create one"))
        return None, None
    doc = docs[0]
    if isinstance(doc.data, dict) and doc.data.get("kind") not in (None, Kind.CLUSTER.value):
        out.diagnostics.append(Diagnostic(
            f"{rel} must be a kind: Cluster document, not {doc.data.get('kind')!r}",
            locate(doc, ("kind",)), path="kind"))
        return None, None
    cluster = _check(doc, schemas, locate, out.diagnostics)
    return cluster, lambda: locate(doc, ("spec", "specs"))


def load_cluster(paths: WorkspacePaths) -> Resource:
    """Only docklock.yaml: parsed and checked against the Cluster schema, specs unread.

    The light reader for callers that need the cluster (its name, its nodes) but not the
    specs, e.g. the ledger's origin. The file gets the same parse and schema checks as in
    `load_workspace` (the spec folders it names are not looked at); a ValidationError
    lists every problem found in it.
    """
    if not paths.config.is_file():
        raise WorkspaceError(f"{paths.root} is not a DockLock workspace (no {WORKSPACE_FILE})",
                             hint="run `docklock init` there")
    out = LoadedFiles()
    cluster, _ = _cluster(paths, load_schemas(), out, {})
    if cluster is None:
        raise ValidationError([d for d in out.diagnostics if d.severity == "error"]
                              or [Diagnostic(f"{WORKSPACE_FILE} holds no Cluster document",
                                             Location(WORKSPACE_FILE))])
    return cluster


def load_workspace(paths: WorkspacePaths, *, cue: str | None = None) -> Workspace:
    """Load, validate, cross-check and graph a workspace; ValidationError lists every problem."""
    with gc_paused():  # millions of small acyclic objects; see docklock._fs.gc_paused
        return _load_workspace(paths, cue=cue)


def _load_workspace(paths: WorkspacePaths, *, cue: str | None) -> Workspace:
    if not paths.config.is_file():
        raise WorkspaceError(f"{paths.root} is not a DockLock workspace (no {WORKSPACE_FILE})",
                             hint="run `docklock init` there")
    schemas = load_schemas()
    head = LoadedFiles()
    cluster_texts: dict[str, str] = {}
    cluster, specs_where = _cluster(paths, schemas, head, cluster_texts)
    cluster_spec = cluster.spec if cluster is not None else ClusterSpec()
    assert isinstance(cluster_spec, ClusterSpec)
    try:
        body, locate = load_documents(paths, cue=cue, cluster_spec=cluster_spec,
                                      where=specs_where or Location(WORKSPACE_FILE))
    except DockLockError as exc:  # e.g. CUE files but no cue: report with the rest
        body, locate = LoadedFiles(), Locator({})
        body.diagnostics.append(Diagnostic(exc.message, exc.location, hint=exc.hint))
    diagnostics = head.diagnostics + body.diagnostics
    files = {**head.files, **body.files}
    items: list[Item] = []
    invalid: set[Address] = set()
    for doc in body.documents:
        resource = _check(doc, schemas, locate, diagnostics)
        if resource is not None:
            items.append(Item(resource, doc))
        else:
            invalid.update(_address_of(doc.data))
    resources = sorted({it.resource.address: it.resource for it in reversed(items)}.values(),
                       key=lambda r: address_key(r.address))
    graph, found, dangling = analyse(resources)
    diagnostics.extend(crosscheck(items, cluster, paths, locate, invalid=frozenset(invalid),
                                  dangling=dangling))
    by_address = {it.resource.address: it for it in items}
    for cycle in found:
        first = by_address[cycle[0]]
        nxt = cycle[1]
        path = _dependency_path(first.resource, nxt)
        diagnostics.append(Diagnostic(f"dependency cycle: {format_cycle(cycle)}",
                                      locate(first.doc, path), path=format_path(path),
                                      hint="remove one dependsOn entry of the cycle"))
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors or cluster is None:
        raise ValidationError(errors or [Diagnostic(f"{WORKSPACE_FILE} is invalid",
                                                    Location(WORKSPACE_FILE))])
    return Workspace(
        paths=paths,
        cluster=cluster,
        resources=tuple(r for r in resources if r.kind != Kind.CLUSTER.value),
        files=dict(sorted(files.items())),
        spec_digest=spec_digest(files),
        warnings=tuple(d for d in diagnostics if d.severity != "error"),
        graph=graph,
    )


def _address_of(data: Any) -> list[Address]:
    """The address an invalid document was meant to have, when it can be told."""
    if isinstance(data, dict) and isinstance(data.get("kind"), str):
        meta = data.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            ns = meta.get("namespace", "default")
            return [Address(data["kind"], ns if isinstance(ns, str) else "default",
                            meta["name"])]
    return []


def _dependency_path(resource: Resource, target: Address) -> tuple[PathItem, ...]:
    deps: Any = getattr(resource.spec, "dependsOn", ())
    for i, dep in enumerate(deps):
        if dep.name == target.name and dep.kind == target.kind:
            return ("spec", "dependsOn", i, "name")
    return ("spec",)
