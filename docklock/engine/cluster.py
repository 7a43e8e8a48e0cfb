"""The `init` / `cluster init` use case: scaffold a workspace, and for `cluster init`
also its signing key, its ledger and (with `bpi_integration`) the ledger's external
audit by witnesses.

`init_workspace` writes DIR/docklock.yaml (the Cluster document), DIR/specs/ with the
chosen example agreements and a .gitignore entry for .docklock/; it refuses to overwrite
an existing docklock.yaml or spec file unless `force`.

`init_cluster` is `init_workspace` followed by what `docklock keys init` does (the
hybrid Ed25519 + ML-DSA key, docklock.pub, a signed checkpoint of the empty ledger),
with the same library calls. Keys are hybrid post-quantum or nothing: there is no
classical-only key to choose. `bpi_integration` ("the ledger's external audit") lists
witnesses in docklock.yaml `spec.ledger.witnesses` (docs/witnesses.md): the ones given,
or those of the docklock.yaml being overwritten with `force`; without any it is refused
before anything is written. An existing signing key is kept, never replaced.

On an existing workspace (DIR/docklock.yaml present) without `force`, `init_cluster`
scaffolds nothing: with `bpi_integration` it only adds the given witnesses to
docklock.yaml's `spec.ledger.witnesses`, editing the text in place (`add_witnesses`: every
other byte, comments and formatting included, stays as it was; specs/ is not touched),
then makes the key and starts the ledger as above; without it, it is refused.

Nothing here prints; the CLI (docklock/cli/cmd_init.py) renders the result.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docklock.errors import DockLockError, WorkspaceError
from docklock.workspace import DOT_DIR, WORKSPACE_FILE, WorkspacePaths, package_data

LEVELS = ("standard", "hardened", "deterministic", "military-grade")
# --add choice → (template file, file written under specs/)
TEMPLATES = {
    "service": ("service.yaml", "web.yaml"),
    "policy": ("policy-biso.yaml", "policy.yaml"),
    "job": ("job-deterministic.yaml", "report-job.yaml"),
    "cue": ("agreement.cue", "workers.cue"),
}
DEFAULT_ADD = ("service", "policy")
NETWORKLESS_LEVELS = ("deterministic", "military-grade")

NO_CLASSICAL_KEYS = ("DockLock signs only with hybrid post-quantum keys (Ed25519 + ML-DSA, "
                     "both must verify); there is no classical-only key to choose")
BPI_NEEDS_WITNESSES = ("--bpi-integration (the ledger's external audit) needs at least one "
                       "witness, and none is configured")
BPI_HINT = ("pass --witness URL VKEY (a witness's URL and verifier key, printed by `docklock "
            "witness init`; see docs/witnesses.md), or list them in docklock.yaml "
            "spec.ledger.witnesses and rerun")
EXISTING_HINT = ("`docklock keys init -C {dir}` creates its signing key and ledger; "
                 "`docklock cluster init {dir} --bpi-integration --witness URL VKEY` adds "
                 "witnesses to its docklock.yaml and keeps the rest; --force overwrites "
                 "docklock.yaml and specs/ with the templates (your changes are lost)")


def cluster_name(text: str) -> str:
    """A DNS label made from a folder name."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    return name or "docklock"


@dataclass(frozen=True)
class Witness:
    """A witness to list in docklock.yaml: its URL and cosigner verifier key."""

    url: str
    key: str

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "key": self.key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Witness:
        return cls(str(d["url"]), str(d["key"]))


@dataclass(frozen=True)
class InitResult:
    root: Path
    written: tuple[str, ...]


@dataclass(frozen=True)
class ClusterInitResult:
    """What `init_cluster` did. `key_created` False: an existing key was kept;
    `key_missing`: docklock.pub names a key this folder does not hold (a clone), so no
    key was made. `witnesses` are those now in docklock.yaml; `log_origin`/`log_vkey`
    what each witness needs (`docklock witness add-log --dir DIR ORIGIN VKEY`);
    `witness_problem` why the first checkpoint is not cosigned yet (expected until the
    ledger is registered on the witnesses). `existing`: DIR was already a workspace and
    was kept (`workspace.written` is then docklock.yaml when witnesses were added)."""

    workspace: InitResult
    key_id: str = ""
    algorithm: str = ""
    mldsa: str = ""
    key_created: bool = False
    key_missing: bool = False
    encrypted: bool = False
    ledger_started: bool = False
    witnesses: tuple[Witness, ...] = ()
    quorum: int | None = None
    log_origin: str = ""
    log_vkey: str = ""
    witness_problem: str | None = None
    existing: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.workspace.root), "written": list(self.workspace.written),
                "key_id": self.key_id, "algorithm": self.algorithm, "mldsa": self.mldsa,
                "key_created": self.key_created, "key_missing": self.key_missing,
                "encrypted": self.encrypted, "ledger_started": self.ledger_started,
                "witnesses": [w.to_dict() for w in self.witnesses], "quorum": self.quorum,
                "log_origin": self.log_origin, "log_vkey": self.log_vkey,
                "witness_problem": self.witness_problem, "existing": self.existing}


def check_witness(url: str, key: str) -> Witness:
    """A witness given on the command line: an http(s) URL and a parseable verifier key."""
    from urllib.parse import urlsplit

    from docklock.ledger.note import NoteError
    from docklock.witness.cosignature import CosignatureVerifier

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise WorkspaceError(f"--witness URL {url!r} is not an http(s) URL",
                             hint="e.g. --witness http://witness.example.org:8330 VKEY")
    try:
        CosignatureVerifier.parse(key)
    except (NoteError, ValueError) as exc:
        message = getattr(exc, "message", str(exc))
        raise WorkspaceError(f"--witness key {key!r} is not a witness verifier key: "
                             f"{message}",
                             hint="use the key `docklock witness init` printed "
                                  "(NAME+HASH+BASE64)") from exc
    return Witness(url, key)


def init_workspace(directory: Path, *, name: str | None = None,
                   security_level: str = "standard", add: tuple[str, ...] = DEFAULT_ADD,
                   force: bool = False, witnesses: Sequence[Witness] = (),
                   quorum: int | None = None) -> InitResult:
    """Create the workspace files; WorkspaceError if one exists and not `force`.
    `witnesses` (and `quorum`) go into docklock.yaml under spec.ledger."""
    try:
        root = directory.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise WorkspaceError(f"cannot use {directory} as the workspace folder: {exc}",
                             hint="pass a folder path") from exc
    name = name or cluster_name(root.name)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name):
        raise WorkspaceError(f"cluster name {name!r} is not a DNS label",
                             hint="use lower-case letters, digits and '-', at most 63")
    if security_level not in LEVELS:
        raise WorkspaceError(f"unknown security level {security_level!r}",
                             hint=f"one of: {', '.join(LEVELS)}")
    templates = package_data("templates")
    files: dict[Path, str] = {}
    body = (templates / "workspace" / WORKSPACE_FILE).read_text(encoding="utf-8")
    config = string.Template(body).substitute(name=name, security_level=security_level)
    if witnesses:
        config = _with_witnesses(config, witnesses, quorum)
    files[root / WORKSPACE_FILE] = config
    for key in dict.fromkeys(add):
        source, target = TEMPLATES[key]
        text = (templates / source).read_text(encoding="utf-8")
        if key == "service" and security_level in NETWORKLESS_LEVELS:
            # The floor's cage runs with network none: published ports would be a
            # validation error (crosscheck), so the scaffold publishes none.
            # The ports block is every deeper-indented line (items and comments) after it.
            text = re.sub(r"(?m)^  ports:\n(?:    .*\n)+",
                          "  # no ports: the deterministic cage has no network\n", text)
        files[root / "specs" / target] = text
    _check_folders(directory, root, files)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(root)) for p in existing)
        raise WorkspaceError(f"{shown} already exist{'s' if len(existing) == 1 else ''} in "
                             f"{root}", hint="pass --force to overwrite")
    written = []
    try:
        (root / "specs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # the first write: when it fails, nothing was changed
        raise WorkspaceError(f"cannot create the workspace folder {directory}: "
                             f"{exc.strerror or exc}",
                             hint="pass a folder path you can write") from exc
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        written.append(str(path.relative_to(root)))
    ignore = root / ".gitignore"
    entry = f"{DOT_DIR}/"
    current = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if entry not in current.split():
        lines = (templates / "workspace" / "gitignore").read_text(encoding="utf-8")
        sep = "" if not current or current.endswith("\n") else "\n"
        ignore.write_text(current + sep + lines, encoding="utf-8")
        written.append(".gitignore")
    return InitResult(root, tuple(written))


def _with_witnesses(config: str, witnesses: Sequence[Witness], quorum: int | None) -> str:
    """docklock.yaml text with a `spec.ledger` block listing `witnesses`.

    The scaffold's `spec:` mapping is the last top-level key, so the block is appended
    at its indentation; the result is parsed back and must hold exactly these witnesses
    (a template that changes shape fails here, not in the operator's workspace)."""
    from docklock.load.yaml import parse_yaml

    lines = ["", "  # External audit (cluster init --bpi-integration): witnesses cosign every",
             "  # ledger checkpoint, so a rolled-back or forked ledger is caught "
             "(docs/witnesses.md).", "  ledger:", "    witnesses:"]
    for w in witnesses:
        lines += [f"      - url: {_scalar(w.url)}", f"        key: {_scalar(w.key)}"]
    if quorum is not None:
        lines.append(f"    quorum: {quorum}")
    text = config.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    docs = parse_yaml(text, WORKSPACE_FILE).documents
    ledger = docs[0].data.get("spec", {}).get("ledger", {}) if docs else {}
    got = [Witness.from_dict(w) for w in ledger.get("witnesses", [])]
    if got != list(witnesses) or ledger.get("quorum") != quorum:
        raise WorkspaceError("internal: the docklock.yaml template does not end with its "
                             "spec mapping; cannot add spec.ledger.witnesses",
                             hint="report it; list the witnesses in docklock.yaml by hand")
    return text


def _scalar(text: str) -> str:
    import json

    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _check_folders(directory: Path, root: Path, files: dict[Path, str]) -> None:
    """Refuse, before writing anything, a DIR or specs/ that is a file and a target file
    that is a folder (so init never stops half-way on them)."""
    for folder in (root, root / "specs"):
        if folder.exists() and not folder.is_dir():
            shown = directory if folder == root else folder
            raise WorkspaceError(f"{shown} is a file, not a folder",
                                 hint="init creates docklock.yaml and specs/ inside a "
                                      "folder: pass a folder path")
    for path in files:
        if path.is_dir():
            raise WorkspaceError(f"{path} is a folder; init writes a file there",
                                 hint="move the folder away, or init another folder")


def existing_witnesses(directory: Path) -> tuple[tuple[Witness, ...], int | None]:
    """The witnesses (and quorum) listed in DIR/docklock.yaml, if it exists and says."""
    from docklock.load.yaml import parse_yaml

    config = directory / WORKSPACE_FILE
    if not config.is_file():
        return (), None
    try:
        docs = parse_yaml(config.read_text(encoding="utf-8"), str(config)).documents
        spec = docs[0].data.get("spec") if docs else None
        ledger = spec.get("ledger") if isinstance(spec, dict) else None
        if not isinstance(ledger, dict):
            return (), None
        witnesses = tuple(Witness.from_dict(w) for w in ledger.get("witnesses") or [])
        quorum = ledger.get("quorum")
        return witnesses, quorum if isinstance(quorum, int) else None
    except (DockLockError, OSError, UnicodeDecodeError, KeyError, TypeError,
            AttributeError):
        return (), None


def init_cluster(directory: Path, *, name: str | None = None,
                 security_level: str | None = None, add: tuple[str, ...] | None = None,
                 force: bool = False, bpi_integration: bool = False,
                 witnesses: Sequence[Witness] = ()) -> ClusterInitResult:
    """`init_workspace`, then the signing key and the ledger (see the module doc).
    `security_level` None is "standard", `add` None is DEFAULT_ADD; on an existing
    workspace without `force` giving any of name/security_level/add is refused."""
    quorum: int | None = None
    if witnesses and not bpi_integration:
        raise WorkspaceError("--witness configures the ledger's external audit, which "
                             "--bpi-integration turns on",
                             hint="add --bpi-integration")
    if (directory / WORKSPACE_FILE).is_file() and not force:
        return _existing_workspace(directory, bpi_integration=bpi_integration,
                                   witnesses=witnesses,
                                   scaffold=[flag for flag, value in (
                                       ("--name", name),
                                       ("--security-level", security_level),
                                       ("--add", add)) if value is not None])
    if bpi_integration and not witnesses:
        found, quorum = existing_witnesses(directory) if force else ((), None)
        if not found:
            raise WorkspaceError(BPI_NEEDS_WITNESSES, hint=BPI_HINT)
        witnesses = found
    workspace = init_workspace(directory, name=name,
                               security_level=security_level or "standard",
                               add=DEFAULT_ADD if add is None else add, force=force,
                               witnesses=witnesses, quorum=quorum)
    result = ClusterInitResult(workspace, witnesses=tuple(witnesses), quorum=quorum)
    return _keys_and_ledger(WorkspacePaths(workspace.root), result)


def _existing_workspace(directory: Path, *, bpi_integration: bool,
                        witnesses: Sequence[Witness], scaffold: list[str]) -> ClusterInitResult:
    """`cluster init` on DIR that has a docklock.yaml, without force: the workspace is
    kept; with `bpi_integration` the witnesses are added to docklock.yaml."""
    root = directory.resolve()
    if not bpi_integration:
        raise WorkspaceError(f"{root} is already a DockLock workspace ({WORKSPACE_FILE} "
                             "exists); cluster init leaves it as it is",
                             hint=EXISTING_HINT.format(dir=directory))
    if scaffold:
        raise WorkspaceError(f"{', '.join(scaffold)}: {root} is already a DockLock "
                             f"workspace ({WORKSPACE_FILE} exists); there "
                             "--bpi-integration only adds witnesses to its "
                             f"{WORKSPACE_FILE}",
                             hint=f"drop {', '.join(scaffold)} (edit {WORKSPACE_FILE} and "
                                  "specs/ yourself to change them)")
    if witnesses:
        listed, quorum, changed = add_witnesses(root, witnesses)
    else:
        listed, quorum = existing_witnesses(root)
        changed = False
        if not listed:
            raise WorkspaceError(BPI_NEEDS_WITNESSES, hint=BPI_HINT)
    workspace = InitResult(root, (WORKSPACE_FILE,) if changed else ())
    result = ClusterInitResult(workspace, witnesses=listed, quorum=quorum, existing=True)
    return _keys_and_ledger(WorkspacePaths(root), result)


def add_witnesses(root: Path, witnesses: Sequence[Witness]
                  ) -> tuple[tuple[Witness, ...], int | None, bool]:
    """Add `witnesses` to ROOT/docklock.yaml `spec.ledger.witnesses`, editing its text in
    place: a witness already listed (same URL and key) is left, one with a listed URL
    gets the new key, the others are appended. Every other line of the file is kept byte
    for byte (a block that must change is rewritten whole: a new `spec.ledger`, a new
    `witnesses` list, or the list when a key changes). Returns (the witnesses now listed,
    spec.ledger.quorum, whether the file changed). WorkspaceError (nothing written) for a
    docklock.yaml whose spec or spec.ledger is not a block mapping."""
    from docklock.errors import ValidationError
    from docklock.load.yaml import parse_yaml

    config = root / WORKSPACE_FILE
    try:
        text = config.read_bytes().decode("utf-8")  # as is: keep CRLF line ends
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkspaceError(f"cannot read {config}: {exc}",
                             hint=f"fix {WORKSPACE_FILE}, then rerun") from exc
    parsed = parse_yaml(text, str(config))
    if parsed.diagnostics:
        raise ValidationError(parsed.diagnostics)
    data = parsed.documents[0].data if parsed.documents else None
    spec = data.get("spec") if isinstance(data, dict) else None
    ledger = spec.get("ledger") if isinstance(spec, dict) else None
    try:
        current = [Witness.from_dict(w) for w in (ledger or {}).get("witnesses") or []]
    except (AttributeError, KeyError, TypeError) as exc:
        raise WorkspaceError(f"{config}: spec.ledger.witnesses is not a list of url/key "
                             "mappings", hint="fix it (docs/witnesses.md), then rerun") \
            from exc
    quorum = ledger.get("quorum") if isinstance(ledger, dict) else None
    quorum = quorum if isinstance(quorum, int) else None
    merged = list(current)
    rekeyed = False
    for w in witnesses:
        at = next((i for i, c in enumerate(merged) if c.url == w.url), None)
        if at is None:
            merged.append(w)
        elif merged[at] != w:
            merged[at], rekeyed = w, True
    if merged == current:
        return tuple(current), quorum, False
    new_text = _edit_witnesses(text, str(config), merged,
                               listed=0 if rekeyed else len(current))
    check = parse_yaml(new_text, str(config))
    got = check.documents[0].data if check.documents and not check.diagnostics else None
    got_ledger = got.get("spec", {}).get("ledger", {}) if isinstance(got, dict) else {}
    if ([Witness.from_dict(w) for w in got_ledger.get("witnesses", [])] != merged
            or _without_witnesses(got) != _without_witnesses(data)):
        raise WorkspaceError(f"cannot add spec.ledger.witnesses to {config} safely",
                             hint="list the witnesses in it by hand (docs/witnesses.md), "
                                  "then rerun without --witness")
    import stat

    from docklock._fs import atomic_write_bytes

    target = config.resolve()  # a symlinked docklock.yaml stays a symlink
    atomic_write_bytes(target, new_text.encode("utf-8"),
                       mode=stat.S_IMODE(target.stat().st_mode))
    return tuple(merged), quorum, True


def _without_witnesses(data: Any) -> Any:
    """The document minus spec.ledger.witnesses (and a spec.ledger left empty)."""
    import copy

    data = copy.deepcopy(data)
    spec = data.get("spec") if isinstance(data, dict) else None
    ledger = spec.get("ledger") if isinstance(spec, dict) else None
    if isinstance(ledger, dict):
        ledger.pop("witnesses", None)
    if isinstance(spec, dict) and "ledger" in spec and not spec["ledger"]:
        del spec["ledger"]
    return data


def _edit_witnesses(text: str, file: str, merged: Sequence[Witness], *, listed: int) -> str:
    """`text` whose spec.ledger.witnesses is `merged`, as whole lines inserted or
    replaced: the first `listed` are in the file as they are (so, in a block list, only
    the others are appended); with `listed` 0 the list is written whole."""
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    def refuse(what: str) -> WorkspaceError:
        return WorkspaceError(f"{file}: {what}; cannot add spec.ledger.witnesses to it",
                              hint="list the witnesses in it by hand (docs/witnesses.md), "
                                   "then rerun without --witness")

    def child(node: Any, key: str) -> tuple[Any, Any] | None:
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
        return None

    def last_line(node: Any) -> int:
        if isinstance(node, MappingNode | SequenceNode):
            if node.flow_style or not node.value:
                return int(node.end_mark.line)
            return max(last_line(n) for pair in node.value
                       for n in (pair if isinstance(pair, tuple) else (pair,)))
        end = node.end_mark
        if node.value == "" and node.style is None:
            return -1  # an empty value: its key's line counts
        if node.style in ("|", ">") and end.column == 0:
            return int(end.line) - 1
        return int(end.line)

    def block(node: Any) -> bool:
        return isinstance(node, MappingNode) and not node.flow_style

    nl = "\r\n" if "\r\n" in text else "\n"

    def entries(indent: int, items: Sequence[Witness] = merged) -> list[str]:
        pad = " " * indent
        out = []
        for w in items:
            out += [f"{pad}- url: {_scalar(w.url)}", f"{pad}  key: {_scalar(w.key)}"]
        return out

    root = next(iter(YAML(typ="rt").compose_all(text)), None)
    found = child(root, "spec") if block(root) else None
    if found is None or not block(found[1]):
        raise refuse("spec is not a block mapping")
    spec = found[1]
    lines = re.findall(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z", text)  # the parser's lines
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += nl
    at_ledger = child(spec, "ledger")
    if at_ledger is None:  # a new spec.ledger after spec's last line
        pad = " " * spec.start_mark.column
        new = [f"{pad}# External audit (cluster init --bpi-integration): witnesses "
               "cosign every", f"{pad}# ledger checkpoint, so a rolled-back or forked "
               "ledger is caught (docs/witnesses.md).", f"{pad}ledger:",
               f"{pad}  witnesses:", *entries(spec.start_mark.column + 4)]
        first = last = last_line(spec) + 1
    else:
        ledger_key, ledger = at_ledger
        empty = isinstance(ledger, ScalarNode) and ledger.value == "" and ledger.style is None
        if empty:  # `ledger:` with nothing under it: that line is replaced
            pad = " " * ledger_key.start_mark.column
            new = [f"{pad}ledger:", f"{pad}  witnesses:",
                   *entries(ledger_key.start_mark.column + 4)]
            first, last = ledger_key.start_mark.line, ledger_key.start_mark.line + 1
        elif not block(ledger):
            raise refuse("spec.ledger is not a block mapping")
        else:
            at_witnesses = child(ledger, "witnesses")
            if at_witnesses is None:
                pad = " " * ledger.start_mark.column
                new = [f"{pad}witnesses:", *entries(ledger.start_mark.column + 2)]
                first = last = last_line(ledger) + 1
            else:
                key, seq = at_witnesses
                if not listed or not isinstance(seq, SequenceNode) or seq.flow_style \
                        or not seq.value:
                    pad = " " * key.start_mark.column
                    new = [f"{pad}witnesses:", *entries(key.start_mark.column + 2)]
                    first, last = key.start_mark.line, max(last_line(seq),
                                                           key.start_mark.line) + 1
                else:
                    new = entries(seq.start_mark.column, merged[listed:])
                    first = last = last_line(seq) + 1
    return "".join([*lines[:first], *(line + nl for line in new), *lines[last:]])


def _keys_and_ledger(paths: WorkspacePaths, result: ClusterInitResult) -> ClusterInitResult:
    """What `docklock keys init` does, through the same library calls; an existing key
    is kept, and a docklock.pub without its private key (a clone) gets none."""
    from dataclasses import replace

    from docklock.errors import WitnessError
    from docklock.ledger import (
        DEFAULT_ALGORITHM,
        init_keys,
        keys_exist,
        load_signer,
        public_keyring_path,
    )
    from docklock.ledger.keys import passphrase_from_env
    from docklock.ledger.record import start_ledger
    from docklock.ledger.witnessing import log_identity

    if keys_exist(paths):
        signer = load_signer(paths)
        created = False
    elif public_keyring_path(paths).exists():
        return replace(result, key_missing=True)
    else:
        signer = init_keys(paths, DEFAULT_ALGORITHM)
        created = True
    result = replace(result, key_id=signer.keyid, algorithm=signer.alg.name,
                     mldsa=signer.alg.mldsa_name, key_created=created,
                     encrypted=passphrase_from_env() is not None)
    problem: str | None = None
    try:
        started = start_ledger(paths, signer) is not None
    except WitnessError as exc:  # the checkpoint is written; witnesses ask again later
        started, problem = True, exc.message
    result = replace(result, ledger_started=started, witness_problem=problem)
    if result.witnesses:
        origin, vkey = log_identity(paths)
        result = replace(result, log_origin=origin, log_vkey=vkey)
    return result
