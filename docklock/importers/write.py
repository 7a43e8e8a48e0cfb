"""Write an import's spec files into a workspace: all of them or none.

`target_settings(dir)` reads what an import needs from an existing docklock.yaml (its
first spec folder and its securityLevel). `check_addresses(target, documents, ...)`
refuses documents whose address the workspace already defines (outside the files being
replaced), so an import never leaves a workspace that fails to validate with
"duplicate Service/default/web". `write_all(files, force=...)` writes every
file into a temporary folder next to the targets first, then moves them into place;
an existing file is never replaced without `force`, and a failure while moving puts
back what was there, so on any error the workspace is as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docklock._fs import fsync_dir
from docklock.errors import DockLockError, Location, SpecError
from docklock.workspace import WORKSPACE_FILE

__all__ = ["ImportTarget", "check_addresses", "gitignore_text", "target_settings",
           "write_all"]

IGNORE_ENTRY = ".docklock/"


class ImportWriteError(DockLockError):
    """The converted specs could not be written (nothing was)."""


@dataclass(frozen=True)
class ImportTarget:
    """Where an import writes: the workspace root, its spec folder, its security floor."""

    root: Path
    spec_dir: Path
    floor: str
    has_workspace: bool
    folders: tuple[str, ...] = ("specs",)  # every spec folder docklock.yaml names


def target_settings(root: Path) -> ImportTarget:
    """The spec folder and floor of the workspace at `root` (defaults if it has none)."""
    config = root / WORKSPACE_FILE
    if not config.is_file():
        return ImportTarget(root, _confined(root, "specs", Location(str(root))),
                            "standard", False)
    from docklock.load.yaml import parse_yaml_precise

    display = str(config)
    parsed = parse_yaml_precise(config.read_text(encoding="utf-8"), display)
    errors = [d for d in parsed.diagnostics if d.severity == "error"]
    if errors:
        raise SpecError(errors[0].message, location=errors[0].location, hint=errors[0].hint)
    data = parsed.documents[0].data if parsed.documents else {}
    spec = data.get("spec") if isinstance(data, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    folders = spec.get("specs") or ["specs"]
    first = str(folders[0]) if isinstance(folders, list) and folders else "specs"
    spec_dir = _confined(root, first, Location(display))
    floor = str(spec.get("securityLevel") or "standard")
    every = tuple(str(f) for f in folders) if isinstance(folders, list) else (first,)
    return ImportTarget(root, spec_dir, floor, True, every or (first,))


def _confined(root: Path, folder: str, where: Location) -> Path:
    """`root/folder`, refused if, with symbolic links followed, it leaves `root`; given
    as `root` / the resolved path below it (so a relative root stays relative)."""
    try:
        inside = (root / folder).resolve().relative_to(root.resolve())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop (< 3.13)
        raise SpecError(f"spec folder {folder} cannot be resolved: {exc}", location=where,
                        hint="remove or fix the symbolic link") from None
    except ValueError:
        raise SpecError(f"spec folder {folder} is outside the workspace {root}",
                        location=where,
                        hint="fix the symbolic link or docklock.yaml, or --out another "
                             "folder") from None
    return root / inside


def _address(data: Any) -> tuple[str, str, str] | None:
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        return None
    meta = data.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    ns = meta.get("namespace")
    return data["kind"], ns if isinstance(ns, str) else "default", meta["name"]


def check_addresses(target: ImportTarget,
                    documents: Iterable[tuple[Path, Sequence[Mapping[str, Any]]]], *,
                    replacing: Collection[Path] = (), cue: str | None = None) -> None:
    """Raise a SpecError at the existing definition when a document to write (path, its
    documents) has the address (kind/namespace/name) of one the workspace's spec files
    already define; files in `replacing` (overwritten with --force) do not count."""
    from docklock.load import load_documents
    from docklock.model import ClusterSpec
    from docklock.workspace import WorkspacePaths

    if not any((target.root / f).is_dir() for f in target.folders):
        return
    loaded, locate = load_documents(WorkspacePaths(target.root), cue=cue,
                                    cluster_spec=ClusterSpec(specs=target.folders))
    gone = {p.resolve() for p in replacing}
    existing: dict[tuple[str, str, str], Location] = {}
    for doc in loaded.documents:
        address = _address(doc.data)
        if address is None or address[0] == "Cluster" or \
                (target.root / doc.file).resolve() in gone:
            continue
        where = locate(doc, ("metadata", "name"))
        existing.setdefault(address, Location(str(target.root / where.file), where.line,
                                              where.column))
    for path, docs in documents:
        for data in docs:
            address = _address(data)
            if address is not None and address in existing:
                kind, ns, name = address
                raise SpecError(
                    f"{kind}/{ns}/{name} is already defined here; the import would define "
                    f"it again in {path.name}", location=existing[address],
                    hint="rename or remove the existing one, or import with --out into "
                         "another folder")


def gitignore_text(root: Path) -> str | None:
    """The workspace's .gitignore with `.docklock/` added, or None if it has it."""
    ignore = root / ".gitignore"
    current = ignore.read_text(encoding="utf-8") if ignore.is_file() else ""
    if IGNORE_ENTRY in current.split():
        return None
    sep = "" if not current or current.endswith("\n") else "\n"
    return (f"{current}{sep}# DockLock's local state, ledger, keys and caches\n"
            f"{IGNORE_ENTRY}\n")


def write_all(files: Sequence[tuple[Path, str]], *, force: bool,
              amend: Collection[Path] = ()) -> list[Path]:
    """Write every (path, text) or none; returns the paths written, in order.

    Paths in `amend` may exist without `force`: their new text extends the old one
    (e.g. a .gitignore entry)."""
    if not files:
        return []
    existing = [p for p, _ in files if p.exists() and p not in amend]
    if existing and not force:
        names = ", ".join(str(p) for p in existing[:5])
        more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise ImportWriteError(f"would overwrite {names}{more}",
                               hint="pass --force to replace them, or --out another folder")
    for p, _ in files:
        if p.is_dir():
            raise ImportWriteError(f"{p} is a folder", hint="pass --out another folder")
    root = Path(os.path.commonpath([str(p.parent) for p, _ in files]))
    made: list[Path] = []  # folders we created, removed again on failure
    for folder in sorted({p.parent for p, _ in files}, key=lambda f: len(f.parts)):
        for part in [*reversed(folder.parents), folder]:
            if not part.exists():
                part.mkdir()
                made.append(part)
    stage = Path(tempfile.mkdtemp(prefix=".docklock-import-", dir=root))
    moved: list[tuple[Path, Path | None]] = []  # (target, its backup)
    try:
        staged: list[tuple[Path, Path]] = []
        for i, (target, text) in enumerate(files):
            tmp = stage / f"{i}.yaml"
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            staged.append((tmp, target))
        for tmp, target in staged:
            backup = None
            if target.exists():
                backup = stage / f"{len(moved)}.old"
                os.replace(target, backup)
            moved.append((target, backup))
            os.replace(tmp, target)
        for folder in {t.parent for _, t in staged}:
            fsync_dir(folder)
    except BaseException:
        for target, backup in reversed(moved):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink()
        shutil.rmtree(stage, ignore_errors=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [path for path, _ in files]
