"""Witnesses: what a job run did, as digests, and the field-by-field comparison of two runs.

A witness records everything that decides a job's result (image digest, command, env,
input digests, seed, cage digest) and everything it produced (stdout/stderr digests,
exit code, output digests). `COMPARED` lists the fields `docklock verify` compares;
`meta` (times, duration, run id) is recorded but never compared. Sensitive env values
are stored as a digest, never in clear (see `env_record`); witness files are 0600.

`environment` records what of the host can make a replay differ elsewhere (kernel, CPU
model and flags, Podman and OCI runtime versions, image and cage digests, plus what a
deterministic Job's cage adds: docklock.cage.replay.replay_environment). It is not in
COMPARED, so it never changes a witness's digest nor makes a verify fail:
`compare_environments` explains a mismatch, it is not one. Witnesses recorded before
it existed load with an empty environment.

Tree digests: a file's digest is SHA-256 of its bytes; a folder's is SHA-256 of the
canonical JSON of {relative path: entry digest} (symlinks as "symlink:<target>"), so
renaming, adding or changing any file changes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docklock._fs import atomic_write_bytes
from docklock.errors import DockLockError
from docklock.model import EnvVar
from docklock.objects import canonical_json, sha256_hex
from docklock.state.model import sensitive_digest

WITNESS_FORMAT = "docklock.io/witness/v1"
_ENV_DOMAIN = "docklock-witness-env-v1"  # separates these digests from any other use

COMPARED: tuple[str, ...] = (
    "image_digest", "command", "env", "inputs", "seed", "cage", "cage_digest",
    "seccomp_digest", "exit_code", "stdout_digest", "stderr_digest", "outputs",
)


def bytes_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def tree_entries(root: Path) -> dict[str, str]:
    """{posix relative path: digest} of every file and symlink under `root` (sorted)."""
    entries: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        # os.walk does not follow symlinked folders; record them as links.
        for name in sorted([*filenames, *(d for d in dirnames if (here / d).is_symlink())]):
            path = here / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[rel] = "symlink:" + os.readlink(path)
            elif path.is_file():
                entries[rel] = file_digest(path)
    return dict(sorted(entries.items()))


def path_digest(path: Path) -> str:
    """Digest of a file, or of a folder tree (see the module docstring)."""
    if path.is_file():
        return file_digest(path)
    if path.is_dir():
        return "sha256:" + sha256_hex(canonical_json(tree_entries(path)))
    raise DockLockError(f"{path} is neither a file nor a folder",
                        hint="job inputs must exist in the workspace")


def env_record(env: tuple[EnvVar, ...], *, key: bytes | None = None) -> dict[str, str]:
    """The env as recorded: a sensitive value as a digest, never in clear.

    Both forms are equal for the same value in the same workspace, so `verify` still
    compares them, and they differ between variables holding the same value:
    - with `key` (the workspace's secret, docklock.ledger.keys.witness_key): an
      HMAC-SHA256, `hmac-sha256:<hex>`; nobody without the key file can test guesses
      against it, from the witness or from the ledger;
    - without a key: the salted state digest (docklock.state.model.sensitive_digest,
      salted with the variable name). That defeats precomputed tables, not a guess of a
      weak value aimed at this one digest: pass the key.
    """
    return {e.name: _sensitive(e.name, e.value, key) if e.sensitive else e.value
            for e in sorted(env, key=lambda e: e.name)}


def _sensitive(name: str, value: str, key: bytes | None) -> str:
    if key is None:
        return sensitive_digest(_ENV_DOMAIN, f"env.{name}", value)
    message = "\0".join((_ENV_DOMAIN, name, value)).encode("utf-8")
    return "hmac-sha256:" + hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Witness:
    """One job run as digests. Round-trips through to_dict/from_dict."""

    job: str  # address, e.g. Job/default/report
    image: str
    image_digest: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    inputs: Mapping[str, str]  # container mount path -> digest
    seed: int | None
    cage: str
    cage_digest: str
    seccomp_digest: str | None
    exit_code: int
    stdout_digest: str
    stderr_digest: str
    outputs: Mapping[str, str]  # relative path -> digest
    outputs_digest: str | None
    meta: Mapping[str, Any] = field(default_factory=dict)  # never compared
    # Host and cage facts that can break replay elsewhere (see the module docstring).
    environment: Mapping[str, str] = field(default_factory=dict)  # never compared

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": WITNESS_FORMAT, "job": self.job, "image": self.image,
            "image_digest": self.image_digest, "command": list(self.command),
            "env": dict(self.env), "inputs": dict(self.inputs), "seed": self.seed,
            "cage": self.cage, "cage_digest": self.cage_digest,
            "seccomp_digest": self.seccomp_digest, "exit_code": self.exit_code,
            "stdout_digest": self.stdout_digest, "stderr_digest": self.stderr_digest,
            "outputs": dict(self.outputs), "outputs_digest": self.outputs_digest,
            "meta": dict(self.meta), "environment": dict(self.environment),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Witness:
        if d.get("format") != WITNESS_FORMAT:
            raise DockLockError(f"not a DockLock witness (format {d.get('format')!r})",
                                hint=f"expected format {WITNESS_FORMAT}")
        return cls(
            job=d["job"], image=d["image"], image_digest=d["image_digest"],
            command=tuple(d["command"]), env=dict(d["env"]), inputs=dict(d["inputs"]),
            seed=d.get("seed"), cage=d["cage"], cage_digest=d["cage_digest"],
            seccomp_digest=d.get("seccomp_digest"), exit_code=int(d["exit_code"]),
            stdout_digest=d["stdout_digest"], stderr_digest=d["stderr_digest"],
            outputs=dict(d["outputs"]), outputs_digest=d.get("outputs_digest"),
            meta=dict(d.get("meta", {})),
            environment={str(k): str(v) for k, v in (d.get("environment") or {}).items()},
        )

    @property
    def digest(self) -> str:
        """Digest of the compared fields only: equal digests mean identical runs."""
        body = {k: v for k, v in self.to_dict().items() if k in COMPARED}
        return "sha256:" + sha256_hex(canonical_json(body))


@dataclass(frozen=True)
class FieldDifference:
    field: str  # e.g. "stdout_digest", "outputs/result.txt", "env.TZ"
    expected: Any
    actual: Any

    def __str__(self) -> str:
        return f"{self.field}: {_short(self.expected)} → {_short(self.actual)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "expected": self.expected, "actual": self.actual}


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def compare_witnesses(expected: Witness, actual: Witness) -> list[FieldDifference]:
    """Every compared field that differs; mappings are compared key by key."""
    diffs: list[FieldDifference] = []
    want, got = expected.to_dict(), actual.to_dict()
    for name in COMPARED:
        a, b = want[name], got[name]
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    sep = "/" if name in ("outputs", "inputs") else "."
                    diffs.append(FieldDifference(f"{name}{sep}{key}", a.get(key), b.get(key)))
        else:
            diffs.append(FieldDifference(name, a, b))
    return diffs


def compare_environments(expected: Mapping[str, str],
                         actual: Mapping[str, str]) -> list[FieldDifference]:
    """Recorded environment facts the re-run's host does not share (`environment.<key>`).

    Only keys the recorded side has are compared: a fact recorded later (a newer
    DockLock, a new cage hook) is not a difference for an older witness, and an empty
    expected side (a witness from before environments) yields nothing. `cpu_flags`
    differ as a readable summary: expected "-flags only the recording host had",
    actual "+flags only this host has".
    """
    diffs: list[FieldDifference] = []
    for key in sorted(expected):
        want, got = expected[key], actual.get(key)
        if want == got:
            continue
        name = f"environment.{key}"
        if key == "cpu_flags" and got is not None:
            before, after = set(want.split()), set(got.split())
            removed = " ".join(f"-{f}" for f in sorted(before - after))
            added = " ".join(f"+{f}" for f in sorted(after - before))
            if removed or added:  # else: the same set written differently
                diffs.append(FieldDifference(name, removed or "(none removed)",
                                             added or "(none added)"))
            continue
        diffs.append(FieldDifference(name, want, got))
    return diffs


LINE_LIMIT = 200  # characters of a shown line (each side of a LineDifference)


@dataclass(frozen=True)
class LineDifference:
    """The first line where a kept stream (stdout/stderr) of two runs differs.

    `line` counts from 1; a side that ended before it is None. Texts are cut to
    LINE_LIMIT characters; `__str__` keeps the whole line within LINE_LIMIT too.
    """

    stream: str  # "stdout" | "stderr"
    line: int
    expected: str | None
    actual: str | None

    def __str__(self) -> str:
        head = f"{self.stream} line {self.line}: "
        room = max(10, (LINE_LIMIT - len(head) - 3) // 2 - 2)  # two quoted sides + " → "
        return f"{head}{_quoted(self.expected, room)} → {_quoted(self.actual, room)}"

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "line": self.line, "expected": self.expected,
                "actual": self.actual}


def _quoted(text: str | None, room: int) -> str:
    if text is None:
        return "(no line)"
    shown = repr(text)
    return shown if len(shown) <= room else shown[:room - 3] + "..."


def first_differing_line(stream: str, expected: bytes,
                         actual: bytes) -> LineDifference | None:
    """The first differing line of two outputs, or None when they are equal or either
    is not UTF-8 (a binary stream has no lines worth showing)."""
    try:
        want = expected.decode("utf-8").splitlines(keepends=True)
        got = actual.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None
    for index in range(max(len(want), len(got))):
        a = want[index] if index < len(want) else None
        b = got[index] if index < len(got) else None
        if a == b:
            continue
        if a is not None and b is not None and a.rstrip("\r\n") != b.rstrip("\r\n"):
            a, b = a.rstrip("\r\n"), b.rstrip("\r\n")  # line ends only matter if alone
        elif a is not None and b is None:
            a = a.rstrip("\r\n")
        elif b is not None and a is None:
            b = b.rstrip("\r\n")
        return LineDifference(stream, index + 1, _cut(a), _cut(b))
    return None


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= LINE_LIMIT:
        return text
    return text[:LINE_LIMIT - 3] + "..."


def witness_file_name(job: str) -> str:
    """`Job/default/report` → `Job.default.report.json` (names are DNS labels: no dots)."""
    return job.replace("/", ".") + ".json"


def save_witness(witness: Witness, folder: Path) -> Path:
    """Write the witness into `folder` (created if missing) as a 0600 file.

    0600 although sensitive values are digests: without the workspace key they are
    salted digests a guess can be checked against, and the env holds every value in
    clear that was not marked sensitive.
    """
    path = folder / witness_file_name(witness.job)
    data = json.dumps(witness.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data, mode=0o600)
    return path


def load_witness(job: str, folder: Path) -> Witness:
    path = folder / witness_file_name(job)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DockLockError(f"no witness recorded for {job}",
                            hint=f"run `docklock run {job}` first") from exc
    except (OSError, ValueError) as exc:
        raise DockLockError(f"cannot read the witness {path}: {exc}",
                            hint=f"`docklock run {job}` records a new one") from exc
    if not isinstance(data, dict):
        raise DockLockError(f"the witness {path} is not a JSON object",
                            hint=f"`docklock run {job}` records a new one")
    try:
        return Witness.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        what = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
        raise DockLockError(f"the witness {path} is malformed ({what})",
                            hint=f"`docklock run {job}` records a new one") from exc
