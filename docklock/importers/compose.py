"""docker-compose file → DockLock spec documents, plus a report of every key.

`convert_compose(path)` reads a compose file (with its `.env`, `env_file`s and the files
`extends` names, all confined to the compose file's folder), and returns a
`ComposeImport`: the spec files to write (one per service or job, `networks.yaml`,
`volumes.yaml`, `cages.yaml`) and one `Finding` per compose key seen, each with the
compose file's line:col, saying what it became or why it could not be mapped.

Order of work, as compose does it: parse (positions kept), interpolate `${VAR}` from
the environment and `.env`, resolve `extends`, select services by profile, then map
each service. Invariants:

* The function only reads files; it never writes, never talks to Podman.
* Every counted key is reported exactly once, mapped or not. A key is "mapped" only if
  all of it is (one unmappable port makes `ports` not mapped; its item is reported too).
* A value not written in the compose file is copied into a spec only when it cannot be
  a secret: a bare `environment` NAME (value from the environment at start) never is,
  and a value from an env file or substituted from the shell / `.env` is not when its
  name or a substituted variable looks secret (ADR 0015). No finding or error holds a
  value read from an env file.
* Bad input (YAML errors, unknown services in `depends_on`, undefined volumes or
  networks, `${VAR:?err}` unset, an env_file outside the folder) raises SpecError with
  the file:line:col of the offending key; nothing is returned.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docklock.errors import Location, SpecError
from docklock.load.yaml import PathItem, Positions, parse_yaml_precise

__all__ = ["ComposeImport", "Finding", "SpecFile", "cluster_document", "convert_compose",
           "dns_name", "parse_dotenv", "parse_duration", "parse_memory", "parse_port",
           "interpolate"]

API = "docklock.io/v1"
MAX_EXTENDS_DEPTH = 16
MAX_PORT_RANGE = 256
MAX_INTERPOLATION_DEPTH = 32  # ${A:-${B:-...}} nesting; deeper is refused, not recursed
# Podman's default capability set (containers.conf default_capabilities): compose
# containers keep these; DockLock's cages drop ALL and add back what is listed.
PODMAN_DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                       "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
                       "SYS_CHROOT")
DEFAULT_CAGE = "compose-default"
COMPOSE_HEALTH_DEFAULTS = {"interval": "30s", "timeout": "30s", "retries": 3}
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SENSITIVE = re.compile(r"PASSW(OR)?D|(^|_)PASS(_|$)|SECRET|TOKEN|PRIVATE|API_?KEY|"
                        r"ACCESS_?KEY|(^|_)KEY$|CREDENTIAL", re.I)
_GO_DURATION = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([bkmgt]?)b?$", re.I)

# Keys DockLock cannot express, with the hint each finding carries.
NO_EQUIVALENT = "DockLock has no equivalent yet"
_UNMAPPED_SERVICE: dict[str, str] = {
    "container_name": "DockLock names containers <cluster>-<namespace>-<service>-<replica>; "
                      "other services reach it by its service name",
    "hostname": "DockLock sets container hostnames itself",
    "domainname": "DockLock sets container hostnames itself",
    "stdin_open": "services run detached; use `podman exec -it` for a shell",
    "tty": "services run detached; use `podman exec -it` for a shell",
    "links": "services on a shared Network reach each other by service name",
    "external_links": "services on a shared Network reach each other by service name",
    "expose": "containers on a shared Network reach every port of each other; only "
              "published ports need `ports`",
    "dns": NO_EQUIVALENT, "dns_search": NO_EQUIVALENT, "dns_opt": NO_EQUIVALENT,
    "extra_hosts": NO_EQUIVALENT, "mac_address": NO_EQUIVALENT,
    "logging": "Podman's default log driver is used; read logs with `podman logs`",
    "pid": "cages never share the host's namespaces",
    "ipc": "cages never share the host's namespaces",
    "uts": "cages never share the host's namespaces",
    "userns_mode": "cages never share the host's namespaces",
    "cgroup": NO_EQUIVALENT, "cgroup_parent": NO_EQUIVALENT,
    "devices": NO_EQUIVALENT, "device_cgroup_rules": NO_EQUIVALENT, "gpus": NO_EQUIVALENT,
    "ulimits": NO_EQUIVALENT + " (spec.resources.pids bounds processes)",
    "sysctls": NO_EQUIVALENT,
    "tmpfs": NO_EQUIVALENT + " (the hardened cage mounts a tmpfs /tmp)",
    "shm_size": NO_EQUIVALENT,
    "stop_signal": NO_EQUIVALENT + " (DockLock stops with SIGTERM, then SIGKILL)",
    "platform": "DockLock runs local images or builds them with an Image resource",
    "pull_policy": "DockLock runs local images or builds them with an Image resource",
    "volumes_from": "mount the same Volume resources in both services",
    "network_mode": "services attach to DockLock Networks (or none in a deterministic cage)",
    "group_add": NO_EQUIVALENT, "oom_score_adj": NO_EQUIVALENT,
    "oom_kill_disable": NO_EQUIVALENT, "mem_reservation": NO_EQUIVALENT,
    "memswap_limit": NO_EQUIVALENT, "mem_swappiness": NO_EQUIVALENT,
    "cpu_shares": NO_EQUIVALENT + " (spec.resources.cpus limits CPU)",
    "cpu_quota": NO_EQUIVALENT + " (spec.resources.cpus limits CPU)",
    "cpu_period": NO_EQUIVALENT + " (spec.resources.cpus limits CPU)",
    "cpu_count": NO_EQUIVALENT + " (spec.resources.cpus limits CPU)",
    "cpu_percent": NO_EQUIVALENT + " (spec.resources.cpus limits CPU)",
    "cpu_rt_runtime": NO_EQUIVALENT, "cpu_rt_period": NO_EQUIVALENT,
    "cpuset": NO_EQUIVALENT, "blkio_config": NO_EQUIVALENT, "storage_opt": NO_EQUIVALENT,
    "runtime": "DockLock picks the OCI runtime of the Podman it talks to",
    "isolation": "Windows only", "credential_spec": "Windows only",
    "attach": NO_EQUIVALENT, "develop": "compose watch has no DockLock equivalent",
    "post_start": NO_EQUIVALENT, "pre_stop": NO_EQUIVALENT, "label_file": NO_EQUIVALENT,
    "configs": "DockLock has no file configs for services yet (Jobs get workspace files "
               "as read-only inputs)",
    "secrets": "DockLock has no file secrets for services yet; an env entry with "
               "`sensitive: true` keeps a value out of every output",
}
_JOB_LACKS = {
    "ports": "a Job publishes no ports",
    "healthcheck": "a Job has no healthcheck; dependents wait for it to complete",
    "restart": "a Job runs once; DockLock does not restart it",
    "stop_grace_period": "a Job has a run timeout (spec.timeout), not a stop timeout",
    "cap_add": "a Job has no capAdd; give it a CageProfile with capAdd",
    "init": "a Job runs its command as PID 1 in its cage (no init)",
}


# ---------------------------------------------------------------- result types

@dataclass(frozen=True)
class Finding:
    """One compose key (or item) and what became of it."""

    location: Location
    path: str
    mapped: bool
    message: str
    hint: str = ""
    kind: str = "key"  # key (counted) | item (part of a key) | note (not counted)

    @property
    def counted(self) -> bool:
        return self.kind == "key"

    def __str__(self) -> str:
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.location}: {self.path}: {self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.location.file, "line": self.location.line,
                "column": self.location.column, "path": self.path, "mapped": self.mapped,
                "message": self.message, "hint": self.hint, "kind": self.kind}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(Location(str(d["file"]), int(d["line"]), int(d["column"])),
                   str(d["path"]), bool(d["mapped"]), str(d["message"]),
                   str(d.get("hint", "")), str(d.get("kind", "key")))


@dataclass(frozen=True)
class SpecFile:
    """One spec file to write: a name (`web.yaml`) and its documents, in order."""

    name: str
    documents: tuple[dict[str, Any], ...]
    comment: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "documents": list(self.documents), "comment": self.comment}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpecFile:
        return cls(str(d["name"]), tuple(d["documents"]), str(d.get("comment", "")))

    def text(self) -> str:
        """The file's YAML text (documents separated by `---`)."""
        from io import StringIO

        from ruamel.yaml import YAML

        yaml = YAML(typ="rt")
        yaml.default_flow_style = False
        yaml.width = 100
        yaml.indent(mapping=2, sequence=4, offset=2)
        out = StringIO()
        if self.comment:
            out.write("".join(f"# {line}\n" if line else "#\n"
                              for line in self.comment.splitlines()))
        for i, doc in enumerate(self.documents):
            if i:
                out.write("---\n")
            yaml.dump(doc, out)
        return out.getvalue()


@dataclass(frozen=True)
class ComposeImport:
    """What `convert_compose` found: spec files, findings, the services it skipped."""

    source: str
    project: str
    files: tuple[SpecFile, ...]
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...] = ()

    @property
    def keys_seen(self) -> int:
        return sum(1 for f in self.findings if f.counted)

    @property
    def keys_mapped(self) -> int:
        return sum(1 for f in self.findings if f.counted and f.mapped)

    @property
    def fraction(self) -> float:
        return self.keys_mapped / self.keys_seen if self.keys_seen else 1.0

    @property
    def not_mapped(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.mapped)

    def summary(self) -> str:
        return (f"mapped {self.keys_mapped} of {self.keys_seen} keys "
                f"({100 * self.fraction:.0f}%)")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "project": self.project,
                "files": [f.to_dict() for f in self.files],
                "findings": [f.to_dict() for f in self.findings],
                "skipped": list(self.skipped), "keys_seen": self.keys_seen,
                "keys_mapped": self.keys_mapped}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ComposeImport:
        return cls(str(d["source"]), str(d["project"]),
                   tuple(SpecFile.from_dict(f) for f in d["files"]),
                   tuple(Finding.from_dict(f) for f in d["findings"]),
                   tuple(d.get("skipped", ())))


def cluster_document(name: str) -> SpecFile:
    """The docklock.yaml of a workspace made by an import (securityLevel standard)."""
    doc = {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name},
           "spec": {"specs": ["specs"], "securityLevel": "standard", "policies": []}}
    return SpecFile("docklock.yaml", (doc,), comment=(
        "DockLock workspace made by `docklock import compose`.\n"
        "securityLevel standard is the closest to compose (writable root, Podman's\n"
        "default seccomp); raise it once the services run in a stronger cage."))


# ---------------------------------------------------------------- small parsers

def dns_name(name: str) -> str:
    """A compose name as a DNS label: lower case, `_` and other characters → `-`."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return re.sub(r"-{2,}", "-", out)[:63].strip("-")


def parse_dotenv(text: str, file: str) -> dict[str, str]:
    """`.env` / env_file syntax: KEY=VALUE, `export`, `#` comments, quotes; a bare KEY is
    skipped (compose takes it from the environment; we only read files here)."""
    return {name: value for name, (value, _line) in parse_dotenv_lines(text, file).items()}


def parse_dotenv_lines(text: str, file: str) -> dict[str, tuple[str, int]]:
    """parse_dotenv with each value's line number. An error never shows the line (it
    may hold a secret)."""
    out: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, eq, value = line.partition("=")
        name = name.strip()
        if not _ENV_NAME.match(name):
            raise SpecError("not an environment line (not shown: it may hold a secret)",
                            location=Location(file, number, 1),
                            hint="write NAME=value, one per line; names are "
                                 "[A-Za-z_][A-Za-z0-9_]*")
        if not eq:
            continue
        value = value.strip()
        if value[:1] in ("'", '"') and len(value) >= 2 and value.rfind(value[0]) > 0:
            quote = value[0]
            value = value[1:value.rfind(quote)]
            if quote == '"':
                value = (value.replace("\\n", "\n").replace('\\"', '"')
                         .replace("\\\\", "\\"))
        else:
            cut = value.find(" #")
            if cut >= 0:
                value = value[:cut].rstrip()
        out[name] = (value, number)
    return out


_NAME_AT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_BRACED = re.compile(r"^(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$",
                     re.S)


class InterpolationError(ValueError):
    """A `${...}` compose cannot resolve; the message is the one-line reason."""


def interpolate(text: str, env: Mapping[str, str], missing: list[str] | None = None,
                used: list[str] | None = None, *, _depth: int = 0) -> str:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
    ${VAR?e}, ${VAR:+a}, ${VAR+a} (defaults may nest `${...}`, at most
    MAX_INTERPOLATION_DEPTH deep), and $$ for a literal $. Unset names without a default
    become "" and are appended to `missing`; names whose value was used are appended to
    `used`. Raises InterpolationError."""
    if _depth > MAX_INTERPOLATION_DEPTH:
        raise InterpolationError(f"${{...}} nests more than {MAX_INTERPOLATION_DEPTH} deep")
    out: list[str] = []
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        nxt = text[j + 1:j + 2]
        if nxt == "$":
            out.append("$")
            i = j + 2
            continue
        if nxt == "{":
            depth, k = 1, j + 2
            while k < len(text) and depth:
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                k += 1
            if depth:
                raise InterpolationError(f"invalid interpolation format in {text!r}: "
                                         "unclosed ${")
            out.append(_braced(text[j + 2:k - 1], env, missing, used, _depth))
            i = k
            continue
        m = _NAME_AT.match(text, j + 1)
        if m is None:
            raise InterpolationError(f"invalid interpolation format in {text!r}: "
                                     "a lone $ (write $$ for a literal $)")
        out.append(_lookup(m.group(0), env, missing, used))
        i = m.end()


def _braced(inner: str, env: Mapping[str, str], missing: list[str] | None,
            used: list[str] | None, depth: int) -> str:
    b = _BRACED.match(inner)
    if b is None:
        raise InterpolationError(f"invalid interpolation format ${{{inner}}}")
    name, op, arg = b.group("name"), b.group("op"), b.group("arg") or ""
    if op is None:
        return _lookup(name, env, missing, used)
    value = env.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    kind = op[-1]
    if kind == "-":
        if not unset:
            if used is not None:
                used.append(name)
            return str(value)
        return interpolate(arg, env, missing, used, _depth=depth + 1)
    if kind == "+":
        return "" if unset else interpolate(arg, env, missing, used, _depth=depth + 1)
    if unset:  # "?"
        reason = arg or f"variable {name} is required"
        raise InterpolationError(f"required variable {name} is missing a value: {reason}")
    if used is not None:
        used.append(name)
    return str(value)


def _lookup(name: str, env: Mapping[str, str], missing: list[str] | None,
            used: list[str] | None = None) -> str:
    value = env.get(name)
    if value is None:
        if missing is not None:
            missing.append(name)
        return ""
    if used is not None:
        used.append(name)
    return value


def parse_duration(value: Any) -> str:
    """A compose duration (Go syntax, e.g. `1m30s`, `500ms`, `10us`) as a DockLock one."""
    text = str(value).strip()
    if isinstance(value, bool) or not _GO_DURATION.match(text):
        raise ValueError(f"not a duration: {value!r} (use e.g. 10s, 1m30s, 500ms)")
    if not re.search(r"ns|us|µs", text):
        return text
    total_ms = 0.0
    for number, unit in _DURATION_PART.findall(text):
        scale = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4,
                 "h": 3.6e6}[unit]
        total_ms += float(number) * scale
    return f"{max(1, math.ceil(total_ms))}ms"


def duration_seconds(value: str) -> float:
    return sum(float(n) * {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[u]
               for n, u in _DURATION_PART.findall(value))


def parse_memory(value: Any) -> str:
    """A compose byte size (`512m`, `1.5g`, `256MB`, 1073741824) as a DockLock memory."""
    if isinstance(value, bool):
        raise ValueError(f"not a memory size: {value!r}")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"not a memory size: {value!r}")
        return str(value)
    m = _MEMORY.match(str(value).strip())
    if m is None:
        raise ValueError(f"not a memory size: {value!r} (use e.g. 512m, 1g, 256MB)")
    number, unit = m.group(1), m.group(2).lower()
    if "." not in number and int(number) > 0:
        return f"{int(number)}{unit}"
    power = "bkmgt".index(unit or "b")
    total = int(float(number) * 1024 ** power)
    if total <= 0:
        raise ValueError(f"not a memory size: {value!r}")
    for suffix, p in (("Ti", 4), ("Gi", 3), ("Mi", 2), ("Ki", 1)):
        if total % 1024 ** p == 0:
            return f"{total // 1024 ** p}{suffix}"
    return str(total)


@dataclass(frozen=True)
class PortSpec:
    """One compose port entry, parsed (ranges kept as first/last)."""

    container: tuple[int, int]
    host: tuple[int, int] | None
    host_ip: str | None
    protocol: str


def _range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    a = int(first)
    b = int(last) if last else a
    if not (1 <= a <= b <= 65535):
        raise ValueError(f"not a port or port range: {text!r}")
    return a, b


def parse_port(value: Any) -> PortSpec:
    """Compose short syntax: [HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTOCOL]."""
    if isinstance(value, bool):
        raise ValueError(f"not a port: {value!r}")
    if isinstance(value, int):
        return PortSpec(_range(str(value)), None, None, "tcp")
    text = str(value).strip()
    text, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    host_ip: str | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"not a port: {value!r} (unclosed [)")
        host_ip, text = text[1:end], text[end + 1:].lstrip(":")
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return PortSpec(_range(parts[0]), None, host_ip, protocol)
        if len(parts) == 2:
            host = _range(parts[0]) if parts[0] else None
            return PortSpec(_range(parts[1]), host, host_ip, protocol)
        if len(parts) == 3 and host_ip is None:
            host = _range(parts[1]) if parts[1] else None
            return PortSpec(_range(parts[2]), host, parts[0], protocol)
        if len(parts) > 3 and host_ip is None:  # a bare IPv6 address
            host = _range(parts[-2]) if parts[-2] else None
            return PortSpec(_range(parts[-1]), host, ":".join(parts[:-2]), protocol)
    except ValueError as exc:
        raise ValueError(f"not a port: {value!r} ({exc})") from None
    raise ValueError(f"not a port: {value!r}")


# ---------------------------------------------------------------- sources and findings

@dataclass
class _Source:
    """One parsed compose file: its data (interpolated) and key positions."""

    path: Path
    display: str
    data: dict[str, Any]
    positions: Positions
    index: int = 0  # the document's index in the file (empty documents count)

    def loc(self, path: Sequence[PathItem]) -> Location:
        hit = self.positions.locate(self.index, path)
        line, col = hit if hit is not None else (0, 0)
        return Location(self.display, line, col)


@dataclass
class _Where:
    """Where a service key came from (its own file, or the file it extends)."""

    source: _Source
    path: tuple[PathItem, ...]

    def at(self, *rest: PathItem) -> tuple[_Source, tuple[PathItem, ...]]:
        return self.source, (*self.path, *rest)

    def loc(self, *rest: PathItem) -> Location:
        return self.source.loc((*self.path, *rest))


def _dotted(path: Sequence[PathItem]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass
class _Key:
    location: Location
    path: str
    mapped: bool
    message: str
    hint: str = ""


@dataclass
class _Report:
    keys: dict[tuple[str, str, str], _Key] = field(default_factory=dict)
    extra: list[Finding] = field(default_factory=list)
    # The compose service being mapped: a key it inherits through `extends` is written in
    # another service's mapping, so the owner keeps one finding per service using it.
    owner: str = ""
    # Variables (from the shell or .env) substituted into each services.*.environment
    # entry, by (file, path); and by the entry's NAME over all files (extends merges).
    env_vars: dict[tuple[str, tuple[PathItem, ...]], list[str]] = field(default_factory=dict)
    env_vars_by_name: dict[str, set[str]] = field(default_factory=dict)

    def _prefix(self, dotted: str) -> str:
        if self.owner and not dotted.startswith(f"services.{self.owner}."):
            return f"(inherited by {self.owner}) "
        return ""

    def key(self, where: tuple[_Source, tuple[PathItem, ...]], *, mapped: bool,
            message: str, hint: str = "") -> None:
        source, path = where
        ident = (source.display, _dotted(path), self.owner)
        old = self.keys.get(ident)
        if old is not None and not old.mapped:
            return  # an item already made it unmapped
        self.keys[ident] = _Key(source.loc(path), ident[1], mapped,
                                self._prefix(ident[1]) + message, hint)

    def item(self, parent: tuple[_Source, tuple[PathItem, ...]],
             where: tuple[_Source, tuple[PathItem, ...]], message: str,
             hint: str = "") -> None:
        """An item of `parent` that could not be mapped: reported, and the key is not."""
        source, path = where
        dotted = _dotted(path)
        self.extra.append(Finding(source.loc(path), dotted, False,
                                  self._prefix(dotted) + message, hint, kind="item"))
        psource, ppath = parent
        ident = (psource.display, _dotted(ppath), self.owner)
        old = self.keys.get(ident)
        loc = psource.loc(ppath)
        self.keys[ident] = _Key(loc, ident[1], False,
                                self._prefix(ident[1]) + "partly mapped (see its items)"
                                if old is None or old.mapped else old.message,
                                old.hint if old else "")

    def note(self, where: tuple[_Source, tuple[PathItem, ...]], message: str,
             hint: str = "", *, mapped: bool = True) -> None:
        source, path = where
        dotted = _dotted(path)
        self.extra.append(Finding(source.loc(path), dotted, mapped,
                                  self._prefix(dotted) + message, hint, kind="note"))

    def findings(self) -> tuple[Finding, ...]:
        out = [Finding(k.location, k.path, k.mapped, k.message, k.hint)
               for k in self.keys.values()]
        out.extend(self.extra)
        return tuple(sorted(out, key=lambda f: (f.location.file, f.location.line,
                                                f.location.column, not f.counted, f.path)))


def _fail(message: str, location: Location, hint: str = "") -> SpecError:
    return SpecError(message, location=location, hint=hint)


def _read_text(path: Path, location: Location, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _fail(f"{what} {path.name} not found", location,
                    "check the path (relative to the compose file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(f"cannot read {what} {path.name}: {exc}", location) from None


def _confined(base: Path, relative: str, location: Location, what: str,
              root: Path | None = None) -> Path:
    """`relative` resolved from `base`; a path leaving `root` (default `base`) is an error."""
    target = (base / os.path.expanduser(relative)).resolve()
    try:
        target.relative_to((root or base).resolve())
    except ValueError:
        raise _fail(f"{what} {relative!r} is outside the compose file's folder", location,
                    "keep the files a compose project reads next to its compose file"
                    ) from None
    return target


def _load_source(path: Path, display: str, env: Mapping[str, str],
                 report: _Report) -> _Source:
    text = _read_text(path, Location(display), "compose file")
    parsed = parse_yaml_precise(text, display)
    errors = [d for d in parsed.diagnostics if d.severity == "error"]
    if errors:
        d = errors[0]
        raise SpecError(d.message, location=d.location, hint=d.hint)
    docs = parsed.documents
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise _fail("a compose file holds one mapping (services, networks, volumes, ...)",
                    Location(display, 1, 1))
    source = _Source(path, display, {}, parsed.positions or Positions(), docs[0].index)
    source.data = _interpolate_tree(docs[0].data, (), source, env, report)
    return source


def _interpolate_tree(value: Any, path: tuple[PathItem, ...], source: _Source,
                      env: Mapping[str, str], report: _Report) -> Any:
    if isinstance(value, dict):
        return {k: (v if k.startswith("x-") and not path else
                    _interpolate_tree(v, (*path, k), source, env, report))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate_tree(v, (*path, i), source, env, report)
                for i, v in enumerate(value)]
    used: list[str] = []
    out = value
    if isinstance(value, str) and "$" in value:
        missing: list[str] = []
        try:
            out = interpolate(value, env, missing, used)
        except InterpolationError as exc:
            raise _fail(str(exc), source.loc(path),
                        "set the variable in the environment or in .env") from None
        for name in missing:
            report.note((source, path), f"variable {name} is not set; using an empty "
                        "string (as compose does)", "set it in the environment or .env",
                        mapped=False)
    if len(path) == 4 and path[0] == "services" and path[2] == "environment":
        report.env_vars[(source.display, path)] = used
        name = path[3] if isinstance(path[3], str) else str(out).partition("=")[0]
        report.env_vars_by_name.setdefault(name, set()).update(used)
    else:  # elsewhere the value must be written; say so when it looks secret
        for var in dict.fromkeys(v for v in used if _SENSITIVE.search(v)):
            report.note((source, path), f"holds the value of ${{{var}}} (the shell or .env "
                        "at import), which looks secret: the spec file now holds it too",
                        "keep that spec private, or pass the secret through a sensitive "
                        "spec.env entry instead", mapped=False)
    return out


# ---------------------------------------------------------------- the converter

@dataclass
class _Service:
    name: str  # compose name
    data: dict[str, Any]
    where: dict[str, _Where]  # key → where it was written
    home: _Where  # the service's own mapping

    def at(self, key: str, *rest: PathItem) -> tuple[_Source, tuple[PathItem, ...]]:
        w = self.where.get(key, self.home)
        return w.at(*rest) if key in self.where else w.at(key, *rest)

    def loc(self, key: str, *rest: PathItem) -> Location:
        source, path = self.at(key, *rest)
        return source.loc(path)


def convert_compose(path: str | Path, *, workspace: str | Path | None = None,
                    profiles: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                    project: str | None = None, keep_default_caps: bool = True,
                    display: str | None = None, floor: str = "standard") -> ComposeImport:
    """Convert the compose file at `path` (see the module docstring).

    `workspace` is the folder the specs are written for (default: the compose file's
    folder); build contexts and job inputs are made relative to it. `environ` defaults
    to os.environ; `.env` next to the compose file fills what it lacks. `profiles` (and
    COMPOSE_PROFILES) enable services with those profiles, `*` all of them.
    `keep_default_caps` gives every workload Podman's default capabilities, as compose
    does (a `compose-default` CageProfile); False keeps DockLock's cap-drop ALL.
    `floor` is the target workspace's securityLevel: the generated CageProfile extends
    it, and `read_only: true` asks for `hardened` only where that is not weaker.
    """
    return _Converter(Path(path), workspace, profiles=profiles, environ=environ,
                      project=project, keep_default_caps=keep_default_caps, display=display,
                      floor=floor).run()


class _Converter:
    def __init__(self, path: Path, workspace: str | Path | None, *, profiles: Sequence[str],
                 environ: Mapping[str, str] | None, project: str | None,
                 keep_default_caps: bool, display: str | None, floor: str = "standard") -> None:
        self.floor = floor
        self.path = path.resolve() if path.exists() else path
        self.base = self.path.parent
        self.workspace = Path(workspace).resolve() if workspace else self.base
        self.display = display or path.name
        self.report = _Report()
        self.keep_default_caps = keep_default_caps
        base_env = dict(os.environ if environ is None else environ)
        self.env: dict[str, str] = {}
        self.dotenv: dict[str, str] = {}
        dotenv = self.base / ".env"
        if dotenv.is_file():  # a symbolic link may not lead out of the folder
            dotenv = _confined(self.base, ".env", Location(".env"), "file")
            self.dotenv = parse_dotenv(_read_text(dotenv, Location(".env"), "file"), ".env")
            self.env.update(self.dotenv)
        self.env.update(base_env)
        active = set(profiles)
        active.update(p.strip() for p in self.env.get("COMPOSE_PROFILES", "").split(",")
                      if p.strip())
        self.profiles = active
        self.project_override = project
        self.sources: dict[Path, _Source] = {}
        self.networks_used: dict[str, Location] = {}
        self.volumes_used: dict[str, Location] = {}
        self.files: list[SpecFile] = []
        self.uses_default_cage = False

    # ---------------------------------------------------------------- top level

    def run(self) -> ComposeImport:
        if not self.path.is_file():
            raise _fail(f"compose file {self.display} not found", Location(self.display),
                        "pass the path of a compose.yaml / docker-compose.yml")
        root = self._source(self.path, self.display)
        data = root.data
        services_raw = data.get("services")
        if not isinstance(services_raw, dict) or not services_raw:
            raise _fail("the compose file has no services", root.loc(("services",)),
                        "a compose file needs a `services:` mapping")
        project = self._project(root)
        self._top_level(root)
        services = self._services(root)
        enabled, skipped = self._select(services)
        jobs = self._jobs(enabled)
        names = self._names(root, enabled)
        for svc in enabled.values():
            self.report.owner = svc.name
            self._service(svc, names, jobs, services)
        self.report.owner = ""
        self._resources(root, "networks")
        self._resources(root, "volumes")
        self._file_refs(root, enabled, jobs)
        if self.uses_default_cage:
            self.files.append(SpecFile("cages.yaml", (self._default_cage(),), comment=(
                "Podman's default capabilities, which compose containers keep; DockLock\n"
                "cages drop ALL unless a profile adds them back.")))
        files = tuple(sorted(self.files, key=lambda f: f.name))
        return ComposeImport(self.display, project, files, self.report.findings(),
                             tuple(sorted(skipped)))

    def _source(self, path: Path, display: str) -> _Source:
        key = path.resolve()
        if key not in self.sources:
            self.sources[key] = _load_source(path, display, self.env, self.report)
        return self.sources[key]

    def _project(self, root: _Source) -> str:
        raw = self.project_override or root.data.get("name") or self.env.get(
            "COMPOSE_PROJECT_NAME") or self.base.name
        if "name" in root.data:
            self.report.key((root, ("name",)), mapped=True,
                            message="→ the cluster name (metadata.name of docklock.yaml)")
        name = dns_name(str(raw))
        if not name:
            raise _fail(f"project name {raw!r} has no letters or digits",
                        root.loc(("name",)), "pass --cluster-name")
        return name

    def _top_level(self, root: _Source) -> None:
        for key in root.data:
            where = (root, (key,))
            if key in ("services", "networks", "volumes", "secrets", "configs", "name"):
                continue
            if key.startswith("x-"):
                self.report.note(where, "extension field: read for anchors, not mapped "
                                 "itself (not counted)")
            elif key == "version":
                self.report.note(where, "obsolete; ignored, as compose does (not counted)")
            elif key == "include":
                self.report.key(where, mapped=False, message="not mapped",
                                hint="import each included file on its own")
            else:
                self.report.key(where, mapped=False, message="not mapped (unknown key)")

    # ---------------------------------------------------------------- services

    def _services(self, root: _Source) -> dict[str, _Service]:
        raw = root.data["services"]
        out: dict[str, _Service] = {}
        for name in raw:
            out[name] = self._resolve(root, name, [])
        return out

    def _resolve(self, source: _Source, name: str, chain: list[tuple[str, str]]) -> _Service:
        services = source.data.get("services")
        home = _Where(source, ("services", name))
        if not isinstance(services, dict) or name not in services:
            raise _fail(f"extends names service {name!r}, which {source.display} does not "
                        "define", source.loc(("services",)))
        data = services[name]
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _fail(f"service {name!r} is not a mapping", home.loc())
        ident = (source.display, name)
        if ident in chain:
            loop = " → ".join(f"{f}:{n}" for f, n in [*chain, ident])
            raise _fail(f"extends loops: {loop}", home.loc("extends"))
        if len(chain) > MAX_EXTENDS_DEPTH:
            raise _fail("extends nests too deeply", home.loc("extends"))
        where = {k: _Where(source, ("services", name, k)) for k in data}
        svc = _Service(name, dict(data), where, home)
        ext = data.get("extends")
        if ext is None:
            return svc
        if isinstance(ext, str):
            ext = {"service": ext}
        if not isinstance(ext, dict) or not isinstance(ext.get("service"), str):
            raise _fail("extends takes a service name or {service, file}", home.loc("extends"))
        base_source = source
        if "file" in ext:
            file_loc = home.loc("extends", "file")
            target = _confined(source.path.parent, str(ext["file"]), file_loc, "extends file",
                               self.base)
            if not target.is_file():
                raise _fail(f"extends file {ext['file']!r} not found", file_loc)
            rel = os.path.relpath(target, self.base)
            base_source = self._source(target, rel)
        parent = self._resolve(base_source, ext["service"], [*chain, ident])
        self.report.key(home.at("extends"), mapped=True,
                        message=f"resolved: inherits {base_source.display}:{ext['service']}")
        return _merge(parent, svc)

    def _select(self, services: dict[str, _Service]) -> tuple[dict[str, _Service], list[str]]:
        enabled: dict[str, _Service] = {}
        skipped: list[str] = []
        for name, svc in services.items():
            profs = svc.data.get("profiles")
            if profs is None:
                enabled[name] = svc
                continue
            if not isinstance(profs, list):
                raise _fail("profiles takes a list of names", svc.loc("profiles"))
            on = "*" in self.profiles or any(str(p) in self.profiles for p in profs)
            listed = ", ".join(str(p) for p in profs)
            if on:
                enabled[name] = svc
                self.report.key(svc.at("profiles"), mapped=True,
                                message=f"profile enabled ({listed}): service imported")
            else:
                skipped.append(name)
                self.report.note(svc.at("profiles"),
                                 f"service {name} skipped: its profiles ({listed}) are not "
                                 "enabled", "pass --profile NAME to import it",
                                 mapped=False)
        for svc in enabled.values():
            for dep, where in _depends(svc):
                if dep not in services:
                    raise _fail(f"service {svc.name} depends on undefined service {dep}",
                                where[0].loc(where[1]))
                if dep not in enabled and _optional(svc, dep):
                    self.report.note(where, f"optional dependency {dep} is not imported "
                                     "(its profiles are not enabled): dropped, as compose does")
                elif dep not in enabled:
                    raise _fail(f"service {svc.name} depends on {dep}, whose profiles are "
                                "not enabled", where[0].loc(where[1]),
                                f"pass --profile for {dep}")
        if not enabled:
            raise _fail("no service is enabled (every service has a profile)",
                        Location(self.display), "pass --profile NAME")
        return enabled, skipped

    def _jobs(self, enabled: dict[str, _Service]) -> set[str]:
        jobs: set[str] = set()
        for svc in enabled.values():
            for dep, _where in _depends(svc):
                cond = _condition(svc, dep)
                if cond == "service_completed_successfully":
                    jobs.add(dep)
        return jobs

    def _names(self, root: _Source, enabled: dict[str, _Service]) -> dict[str, str]:
        names: dict[str, str] = {}
        seen: dict[str, str] = {}
        for name, svc in enabled.items():
            dl = dns_name(name)
            if not dl:
                raise _fail(f"service name {name!r} has no letters or digits", svc.home.loc())
            if dl in seen:
                raise _fail(f"services {seen[dl]!r} and {name!r} both become {dl!r}",
                            svc.home.loc(), "rename one of them")
            if dl != name:
                self.report.note(svc.home.at(), f"service {name!r} is named {dl!r} "
                                 "(DockLock names are DNS labels)")
            seen[dl] = name
            names[name] = dl
        return names

    def _service(self, svc: _Service, names: Mapping[str, str], jobs: set[str],
                 all_services: Mapping[str, _Service]) -> None:
        is_job = svc.name in jobs
        kind = "Job" if is_job else "Service"
        dl = names[svc.name]
        spec: dict[str, Any] = {}
        meta: dict[str, Any] = {"name": dl}
        docs: list[dict[str, Any]] = []
        r = self.report
        data = svc.data
        handled: set[str] = set()

        def done(key: str, message: str, hint: str = "") -> None:
            handled.add(key)
            r.key(svc.at(key), mapped=True, message=message, hint=hint)

        def miss(key: str, hint: str, message: str = "not mapped") -> None:
            handled.add(key)
            r.key(svc.at(key), mapped=False, message=message, hint=hint)

        # image / build
        if "build" in data:
            image_doc = self._build(svc, dl)
            if image_doc is not None:
                docs.append(image_doc)
                spec["image"] = image_doc["spec"]["ref"]
            handled.add("build")
        if "image" in data:
            if not str(data["image"] or "").strip() or any(c.isspace() for c in
                                                          str(data["image"])):
                raise _fail(f"service {svc.name} has an empty or malformed image "
                            f"{str(data['image'] or '')!r}", svc.loc("image"),
                            "set the variables it uses, or fix the name")
            spec["image"] = str(data["image"])
            done("image", "→ spec.image" + (" (the ref the Image resource builds)"
                                           if "build" in data else ""))
        if "image" not in spec:
            raise _fail(f"service {svc.name} has neither image nor build", svc.home.loc(),
                        "give it an image: name")

        for key in ("command", "entrypoint"):
            if key in data:
                value = data[key]
                if value is None:
                    done(key, f"empty: the image's default {key}")
                    continue
                argv = self._argv(svc, key, value)
                spec[key] = argv
                form = "string split like a shell (shlex)" if isinstance(value, str) else "list"
                done(key, f"→ spec.{key} ({form})")

        withheld: list[str] = []
        env = self._environment(svc, handled, withheld)
        if env:
            spec["env"] = env

        if "working_dir" in data:
            wd = str(data["working_dir"])
            if wd.startswith("/"):
                spec["workdir"] = wd
                done("working_dir", "→ spec.workdir")
            else:
                miss("working_dir", "DockLock needs an absolute working directory")
        if "user" in data:
            spec["user"] = str(data["user"])
            done("user", "→ spec.user")
        if "init" in data and not is_job:  # a Job's init is reported with _JOB_LACKS
            spec["init"] = data["init"] is True
            done("init", "→ spec.init (DockLock's default is true)")

        labels, annotations = self._labels(svc, handled)
        if labels:
            meta["labels"] = labels
        if annotations:
            meta["annotations"] = annotations

        # networks
        nets = self._service_networks(svc, names, handled)
        if nets:
            spec["networks"] = nets

        vols, inputs = self._service_volumes(svc, is_job, handled)
        if vols:
            spec["volumes"] = vols
        if inputs:
            spec["inputs"] = inputs

        deps = self._depends_on(svc, names, jobs, all_services, handled)
        if deps:
            spec["dependsOn"] = deps

        resources = self._resources_of(svc, handled)
        if resources:
            spec["resources"] = resources

        cage, caps = self._caps(svc, is_job, handled)
        if cage:
            spec["cage"] = cage
        if caps:
            spec["capAdd"] = caps

        if "read_only" in data:
            if data["read_only"] is True and self.floor not in ("standard", "hardened"):
                done("read_only", f"the cluster floor ({self.floor}) has a read-only root")
            elif data["read_only"] is True:
                if spec.get("cage") == DEFAULT_CAGE:  # the profile's caps move to the service
                    spec["capAdd"] = [*_default_caps(), *spec.get("capAdd", [])]
                spec["cage"] = "hardened"
                done("read_only", "→ cage: hardened (read-only root, tmpfs /tmp; the "
                     "cage also denies risky syscalls and sets memory/pids limits)")
            else:
                done("read_only", "false: a writable root, as in the standard cage")
        if "privileged" in data:
            if data["privileged"] is True:
                miss("privileged", "cages never run privileged; add the capabilities "
                     "it needs with cap_add")
            else:
                done("privileged", "false: cages never run privileged")
        if "security_opt" in data:
            self._security_opt(svc, handled)

        handled.update(k for k in ("secrets", "configs") if k in data)  # see _file_refs
        if "profiles" in data:
            handled.add("profiles")
        if "extends" in data:
            handled.add("extends")

        if is_job and str(data.get("restart", "")) in ("no", "False"):
            done("restart", "no: a Job runs once")
        if is_job:
            for key, hint in _JOB_LACKS.items():
                if key in data and key not in handled:
                    miss(key, f"{svc.name} becomes a Job (another service waits for it to "
                         f"complete): {hint}")
            for key in ("deploy", "scale"):
                if key in data and key not in handled:
                    self._deploy_for_job(svc, key, handled)
        else:
            self._service_only(svc, spec, handled)

        for key in data:
            if key in handled or key.startswith("x-"):
                if key.startswith("x-"):
                    r.note(svc.at(key), "extension field: not mapped (not counted)")
                continue
            known = _UNMAPPED_SERVICE.get(key)
            if known is None:
                r.key(svc.at(key), mapped=False, message="not mapped (unknown key)",
                      hint="check the spelling against the compose specification")
            else:
                r.key(svc.at(key), mapped=False, message="not mapped", hint=known)

        if is_job:
            r.note(svc.home.at(), "a Job's run timeout is DockLock's default (spec.timeout, "
                   "300 s); compose sets none", "raise spec.timeout for long runs")
        doc = {"apiVersion": API, "kind": kind, "metadata": meta, "spec": spec}
        docs.append(doc)
        comment = f"From {svc.home.source.display}: services.{svc.name}"
        if is_job:
            comment += (" (a Job: a service waits for it with "
                        "condition service_completed_successfully)")
        if withheld:
            comment += ("\nNot copied (set them in spec.env; {value: ..., sensitive: true} "
                        "for a secret):\n" + "\n".join(f"  {w}" for w in withheld))
        self.files.append(SpecFile(f"{dl}.yaml", tuple(docs), comment=comment))

    def _argv(self, svc: _Service, key: str, value: Any) -> list[str]:
        if isinstance(value, str):
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise _fail(f"{key} is not a valid command line: {exc}", svc.loc(key)) from None
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and
                                           not isinstance(v, bool) for v in value):
            return [str(v) for v in value]
        raise _fail(f"{key} takes a string or a list of strings", svc.loc(key))

    def _build(self, svc: _Service, dl: str) -> dict[str, Any] | None:
        build = svc.data["build"]
        parent = svc.at("build")
        if isinstance(build, str):
            build = {"context": build}
        if not isinstance(build, dict):
            raise _fail("build takes a path or a mapping", svc.loc("build"))
        base = svc.where.get("build", svc.home).source.path.parent
        context = str(build.get("context", "."))
        ctx_loc = svc.loc("build", "context") if "context" in build else svc.loc("build")
        if re.match(r"^[a-z]+://|^git@", context):
            self.report.key(parent, mapped=False, message="not mapped",
                            hint="a remote build context: DockLock builds from a "
                                 "workspace folder")
            return None
        target = (base / context).resolve()
        rel = os.path.relpath(target, self.workspace)
        if rel.startswith(".."):
            self.report.key(parent, mapped=False, message="not mapped",
                            hint=f"the build context {context} is outside the workspace "
                                 f"{self.workspace}; import into a folder that holds it")
            return None
        if not target.is_dir():
            raise _fail(f"build context {context} is not a folder", ctx_loc)
        ref = str(svc.data.get("image") or f"localhost/{dl}:latest")
        spec: dict[str, Any] = {"ref": ref, "context": rel if rel != "." else "."}
        if "dockerfile" in build:
            spec["containerfile"] = str(build["dockerfile"])
        args = build.get("args")
        bare: list[tuple[str, PathItem]] = []
        if args is not None:
            # a bare NAME takes its value from the environment at build: never copied
            if isinstance(args, list):
                bare = [(str(a), i) for i, a in enumerate(args) if "=" not in str(a)]
            elif isinstance(args, dict):
                bare = [(str(k), k) for k, v in args.items() if v is None]
            given = {k: v for k, v in _kv(args, {}).items()
                     if k not in {name for name, _ in bare}}
            if given:
                spec["buildArgs"] = given
        self.report.key(parent, mapped=True, message=f"→ an Image resource {dl} "
                        f"(context {spec['context']})")
        for name, step in bare:
            self.report.item(parent, svc.at("build", "args", step), f"not mapped: build "
                             f"arg {name} takes its value from the environment at build",
                             f"set spec.buildArgs.{name} in the Image resource; the "
                             "importing shell's value is never copied")
        for k in build:
            if k not in ("context", "dockerfile", "args"):
                self.report.item(parent, svc.at("build", k), "not mapped",
                                 "an Image resource takes context, containerfile and "
                                 "buildArgs")
        return {"apiVersion": API, "kind": "Image", "metadata": {"name": dl}, "spec": spec}

    def _environment(self, svc: _Service, handled: set[str],
                     withheld: list[str]) -> dict[str, Any]:
        """spec.env from env_file and environment. Values that are not written in the
        compose file are not always copied (ADR 0015, "Values from outside"): a bare
        NAME (its value comes from the environment at start) never is, and a value read
        from an env file or substituted from the shell / .env is not when its name, or
        a variable substituted into it, looks secret. Those are reported by name (never
        by value) and appended to `withheld`."""
        env: dict[str, str] = {}
        outside: dict[str, tuple[str, list[str], tuple[_Source, tuple[PathItem, ...]],
                                 tuple[_Source, tuple[PathItem, ...]]]] = {}
        data = svc.data
        r = self.report
        if "env_file" in data:
            handled.add("env_file")
            files = data["env_file"]
            items = files if isinstance(files, list) else [files]
            base = svc.where["env_file"].source.path.parent
            for i, entry in enumerate(items):
                idx: tuple[PathItem, ...] = (i,) if isinstance(files, list) else ()
                loc = svc.loc("env_file", *idx)
                required = True
                item = entry
                if isinstance(entry, dict):
                    required = entry.get("required", True) is not False
                    item = entry.get("path")
                if not isinstance(item, str):
                    raise _fail("env_file takes a path or {path, required}", loc)
                target = _confined(base, item, loc, "env_file", self.base)
                if not target.is_file():
                    if required:
                        raise _fail(f"env_file {item} not found", loc,
                                    "create it, or mark it `required: false`")
                    continue
                rel = os.path.relpath(target, self.base)
                text = _read_text(target, loc, "env_file")
                for k, (v, line) in parse_dotenv_lines(text, rel).items():
                    used: list[str] = []
                    env[k] = interpolate_safe(v, self.env, used)
                    outside[k] = (f"{rel}:{line}", used, svc.at("env_file"),
                                  svc.at("env_file", *idx))
            r.key(svc.at("env_file"), mapped=True,
                  message="read now; its values → spec.env (secret-looking names are not "
                          "copied)", hint="re-run the import when the env file changes")
        if "environment" in data:
            handled.add("environment")
            raw = data["environment"]
            if isinstance(raw, list):
                pairs: list[tuple[str, str | None, PathItem]] = []
                for i, entry in enumerate(raw):
                    name, eq, value = str(entry).partition("=")
                    pairs.append((name, value if eq else None, i))
            elif isinstance(raw, dict):
                pairs = [(str(n), None if v is None else _scalar_text(v), n)
                         for n, v in raw.items()]
            else:
                raise _fail("environment takes a list of NAME=value or a mapping",
                            svc.loc("environment"))
            for name, given, step in pairs:
                where = svc.at("environment", step)
                if given is None:
                    if name in env:
                        continue  # an env file gives it a value, as compose does
                    withheld.append(f"{name} (from the environment at start)")
                    r.item(svc.at("environment"), where, f"not mapped: {name} takes its "
                           "value from the environment at start",
                           f"set spec.env.{name} in the spec ({{value: ..., sensitive: "
                           "true} for a secret); the importing shell's value is never "
                           "copied")
                    continue
                env[name] = given
                exact = r.env_vars.get((where[0].display, where[1]))
                used = exact if exact is not None else sorted(
                    r.env_vars_by_name.get(name, ()))
                if used:
                    outside[name] = ("", used, svc.at("environment"), where)
                else:
                    outside.pop(name, None)
        out: dict[str, Any] = {}
        bad = [n for n in env if not _ENV_NAME.match(n)]
        for name, value in env.items():
            if name in bad:
                continue
            origin = outside.get(name)
            if origin is not None and _looks_secret(name, origin[1]):
                file_line, used, parent, where = origin
                vars_ = ", ".join(f"${{{v}}}" for v in dict.fromkeys(used))
                source = (f"{file_line}" + (f" with {vars_}" if vars_ else "")
                          if file_line else f"{vars_}, the shell or .env at import")
                withheld.append(f"{name} (from {source})")
                r.item(parent, where, f"not mapped: {name} looks secret and its value comes "
                       f"from outside the compose file ({source}); not copied into the spec",
                       f"set spec.env.{name} as {{value: ..., sensitive: true}} in a spec "
                       "kept out of version control")
                continue
            out[name] = {"value": value, "sensitive": True} if _SENSITIVE.search(name) \
                else value
        if "environment" in data:
            sensitive = sorted(n for n, v in out.items() if isinstance(v, dict))
            note = f"; marked sensitive: {', '.join(sensitive)}" if sensitive else ""
            r.key(svc.at("environment"), mapped=True, message=f"→ spec.env{note}")
            for name in bad:
                r.item(svc.at("environment"), svc.at("environment"),
                       f"variable name {name!r}: not mapped",
                       "DockLock env names are [A-Za-z_][A-Za-z0-9_]*")
        return out

    def _labels(self, svc: _Service, handled: set[str]) -> tuple[dict[str, str],
                                                                 dict[str, str]]:
        out: list[dict[str, str]] = []
        for key, target in (("labels", "metadata.labels"),
                            ("annotations", "metadata.annotations")):
            values: dict[str, str] = {}
            if key in svc.data:
                handled.add(key)
                values = _kv(svc.data[key], {})
                self.report.key(svc.at(key), mapped=True, message=f"→ {target}")
                if key == "labels":
                    for name in list(values):
                        if not _LABEL_KEY.match(name):
                            del values[name]
                            self.report.item(svc.at(key), svc.at(key, name)
                                             if isinstance(svc.data[key], dict)
                                             else svc.at(key),
                                             f"label {name!r}: not mapped",
                                             "DockLock label keys are [prefix/]name")
            out.append(values)
        return out[0], out[1]

    def _service_networks(self, svc: _Service, names: Mapping[str, str],
                          handled: set[str]) -> list[str]:
        data = svc.data
        if "network_mode" in data:
            return []
        if "networks" not in data:
            self.networks_used.setdefault("default", svc.home.loc())
            return ["default"]
        handled.add("networks")
        raw = data["networks"]
        declared = self._declared("networks")
        nets: list[str] = []
        parent = svc.at("networks")
        entries: list[tuple[str, Any, tuple[PathItem, ...]]]
        if isinstance(raw, list):
            entries = [(str(n), None, (i,)) for i, n in enumerate(raw)]
        elif isinstance(raw, dict):
            entries = [(str(n), v, (n,)) for n, v in raw.items()]
        else:
            raise _fail("networks takes a list or a mapping", svc.loc("networks"))
        for name, opts, sub in entries:
            if name != "default" and name not in declared:
                raise _fail(f"service {svc.name} refers to undefined network {name}",
                            svc.loc("networks", *sub),
                            "declare it under the top-level networks:")
            self.networks_used.setdefault(name, svc.loc("networks", *sub))
            dl = dns_name(name)
            if dl not in nets:
                nets.append(dl)
            if isinstance(opts, dict):
                for k in opts:
                    hint = ("DockLock gives each replica its service name as an alias; "
                            "other aliases are not supported yet") if k == "aliases" \
                        else NO_EQUIVALENT
                    self.report.item(parent, svc.at("networks", *sub, k),
                                     "not mapped", hint)
        self.report.key(parent, mapped=True, message="→ spec.networks")
        return nets

    def _declared(self, kind: str) -> dict[str, Any]:
        root = next(iter(self.sources.values()))
        raw = root.data.get(kind)
        return raw if isinstance(raw, dict) else {}

    def _service_volumes(self, svc: _Service, is_job: bool,
                         handled: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if "volumes" not in svc.data:
            return [], []
        handled.add("volumes")
        raw = svc.data["volumes"]
        if not isinstance(raw, list):
            raise _fail("volumes takes a list", svc.loc("volumes"))
        parent = svc.at("volumes")
        declared = self._declared("volumes")
        base = svc.where["volumes"].source.path.parent
        mounts: list[dict[str, Any]] = []
        inputs: list[dict[str, Any]] = []
        anon = 0
        notes: list[str] = []
        for i, entry in enumerate(raw):
            loc = svc.loc("volumes", i)
            vtype, source, target, read_only, extra = _volume_entry(entry, loc)
            if not target.startswith("/"):
                raise _fail(f"volume target {target!r} is not an absolute path", loc)
            item = svc.at("volumes", i)
            for k in extra:
                self.report.item(parent, item, f"option {k}: not mapped", NO_EQUIVALENT)
            if vtype == "volume":
                if source is None:
                    anon += 1
                    name = dns_name(f"{svc.name}-anon-{anon}")
                    self.volumes_used.setdefault(f"\0{name}", loc)
                    notes.append(f"anonymous volume at {target} → Volume {name} (shared by "
                                 "every replica)")
                else:
                    if source not in declared:
                        raise _fail(f"service {svc.name} refers to undefined volume {source}",
                                    loc, "declare it under the top-level volumes:")
                    self.volumes_used.setdefault(source, loc)
                    name = dns_name(source)
                mount: dict[str, Any] = {"name": name, "path": target}
                if read_only:
                    mount["readOnly"] = True
                mounts.append(mount)
            elif vtype == "bind":
                assert source is not None
                if not is_job:
                    self.report.item(parent, item, f"bind mount {source}: not "
                                     f"mapped", NO_EQUIVALENT + " for services (Jobs get "
                                     "workspace files as read-only inputs)")
                    continue
                host = (base / os.path.expanduser(source)).resolve()
                rel = os.path.relpath(host, self.workspace)
                if rel.startswith("..") or rel == ".":
                    self.report.item(parent, item, f"bind mount {source}: not "
                                     "mapped", "a Job input must be a file or folder inside "
                                     "the workspace")
                elif not read_only:
                    self.report.item(parent, item, "writable bind mount "
                                     f"{source}: not mapped", "Job inputs are read-only; "
                                     "add :ro if the job only reads it")
                else:
                    inputs.append({"path": rel, "mount": target})
            else:
                self.report.item(parent, item, f"{vtype} mount: not mapped",
                                 NO_EQUIVALENT)
        message = "→ spec.volumes" + ("" if not inputs else " and spec.inputs")
        if notes:
            message += "; " + "; ".join(notes)
        self.report.key(parent, mapped=True, message=message)
        return mounts, inputs

    def _depends_on(self, svc: _Service, names: Mapping[str, str], jobs: set[str],
                    services: Mapping[str, _Service], handled: set[str]) -> list[dict[str, Any]]:
        if "depends_on" not in svc.data:
            return []
        handled.add("depends_on")
        parent = svc.at("depends_on")
        raw = svc.data["depends_on"]
        out: list[dict[str, Any]] = []
        for dep, where in _depends(svc):
            if dep not in names:
                continue  # an optional dependency that is not imported (see _select)
            cond = _condition(svc, dep)
            entry: dict[str, Any] = {"name": names[dep]}
            if dep in jobs:
                entry["kind"] = "Job"
                entry["condition"] = "completed" if cond == \
                    "service_completed_successfully" else "started"
                if cond == "service_healthy":
                    self.report.item(parent, where, "service_healthy: not "
                                     "mapped (waits for started)", f"{dep} becomes a Job "
                                     "(another service waits for it to complete), and a "
                                     "Job has no healthcheck")
            elif cond == "service_healthy":
                target = services[dep].data.get("healthcheck")
                disabled = isinstance(target, dict) and (
                    target.get("disable") is True or _test_none(target.get("test")))
                if target is None or disabled:
                    self.report.item(parent, where, "service_healthy: "
                                     "not mapped (waits for started)",
                                     f"{dep} has no healthcheck in the compose file (the "
                                     "image's own HEALTHCHECK is not read); add one")
                    entry["condition"] = "started"
                else:
                    entry["condition"] = "healthy"
            elif cond == "service_started":
                entry["condition"] = "started"
            elif cond == "service_completed_successfully":
                entry["kind"] = "Job"
                entry["condition"] = "completed"
            else:
                raise _fail(f"depends_on condition {cond!r} is not one compose knows",
                            where[0].loc(where[1]),
                            "use service_started, service_healthy or "
                            "service_completed_successfully")
            out.append(entry)
            if isinstance(raw, dict) and isinstance(raw.get(dep), dict):
                for k, v in raw[dep].items():
                    if k == "condition" or (k == "required" and v is not False) or \
                            (k == "restart" and v is not True):
                        continue
                    self.report.item(parent, svc.at("depends_on", dep, k),
                                     "not mapped", NO_EQUIVALENT)
        conds = ", ".join(f"{e['name']}: {e['condition']}" for e in out)
        self.report.key(parent, mapped=True, message=f"→ spec.dependsOn ({conds})" if out
                        else "nothing imported to wait for")
        return out

    def _resources_of(self, svc: _Service, handled: set[str]) -> dict[str, Any]:
        data = svc.data
        res: dict[str, Any] = {}

        def put(key: str, field_name: str, where: tuple[_Source, tuple[PathItem, ...]],
                value: Any, top: bool) -> None:
            try:
                converted = _resource_value(field_name, value)
            except ValueError as exc:
                raise _fail(str(exc), where[0].loc(where[1])) from None
            if converted is not None:
                res[field_name] = converted
            msg = f"→ spec.resources.{field_name}" if converted is not None else \
                "unlimited: nothing to set"
            if top:
                handled.add(key)
            self.report.key(where, mapped=True, message=msg)

        for key, field_name in (("cpus", "cpus"), ("mem_limit", "memory"),
                                ("pids_limit", "pids")):
            if key in data:
                put(key, field_name, svc.at(key), data[key], True)
        deploy = data.get("deploy")
        if isinstance(deploy, dict):
            resources = deploy.get("resources")
            if isinstance(resources, dict):
                limits = resources.get("limits")
                if isinstance(limits, dict):
                    for k, v in limits.items():
                        where = svc.at("deploy", "resources", "limits", k)
                        name = {"cpus": "cpus", "memory": "memory", "pids": "pids"}.get(k)
                        if name is None:
                            self.report.key(where, mapped=False, message="not mapped",
                                            hint=NO_EQUIVALENT)
                        else:
                            put(k, name, where, v, False)
                for k in resources:
                    if k != "limits":
                        self.report.key(svc.at("deploy", "resources", k), mapped=False,
                                        message="not mapped",
                                        hint="DockLock sets limits, not reservations"
                                        if k == "reservations" else NO_EQUIVALENT)
        return res

    def _caps(self, svc: _Service, is_job: bool, handled: set[str]) -> tuple[str, list[Any]]:
        data = svc.data
        adds = [str(c).upper().removeprefix("CAP_") for c in data.get("cap_add") or []]
        drops = {str(c).upper().removeprefix("CAP_") for c in data.get("cap_drop") or []}
        cage = ""
        caps: list[Any] = []
        if "cap_drop" in data:
            handled.add("cap_drop")
        if "cap_add" in data and not is_job:
            handled.add("cap_add")
        if "ALL" in adds:
            if not is_job:
                self.report.item(svc.at("cap_add"), svc.at("cap_add"), "cap_add ALL: not "
                                 "mapped", "name the capabilities the service needs")
            adds = [c for c in adds if c != "ALL"]
        if "ALL" in drops or not self.keep_default_caps:
            base: list[str] = []
        elif drops:
            base = [c for c in PODMAN_DEFAULT_CAPS if c not in drops]
        else:
            base = list(PODMAN_DEFAULT_CAPS)
            cage = DEFAULT_CAGE
            self.uses_default_cage = True
        if is_job:
            if drops and "ALL" not in drops and self.keep_default_caps:
                self.report.key(svc.at("cap_drop"), mapped=False, message="not mapped",
                                hint="a Job has no capAdd: it runs with the cage's "
                                     "capabilities (compose-default keeps Podman's)")
                cage = DEFAULT_CAGE
                self.uses_default_cage = True
            elif "cap_drop" in data:
                self.report.key(svc.at("cap_drop"), mapped=True,
                                message="→ the job's cage" + (" (no capabilities)"
                                                              if not cage else ""))
            return cage, []
        if cage:
            caps = [c for c in adds if c not in PODMAN_DEFAULT_CAPS]
        else:
            caps = [c for c in _default_caps() if c["name"] in base] + \
                [c for c in adds if c not in base]
        if "cap_add" in data:
            self.report.key(svc.at("cap_add"), mapped=True, message="→ spec.capAdd")
        if "cap_drop" in data:
            kept = f" (keeps {', '.join(base)})" if base else " (no capabilities added back)"
            self.report.key(svc.at("cap_drop"), mapped=True,
                            message="→ the capabilities added back after cap-drop ALL" + kept)
        return cage, caps

    def _security_opt(self, svc: _Service, handled: set[str]) -> None:
        handled.add("security_opt")
        raw = svc.data["security_opt"]
        parent = svc.at("security_opt")
        if not isinstance(raw, list):
            raise _fail("security_opt takes a list", svc.loc("security_opt"))
        for i, opt in enumerate(raw):
            text = str(opt)
            name, value = ([*re.split(r"[:=]", text, maxsplit=1), ""])[:2]
            if name == "no-new-privileges" and value in ("", "true"):
                continue
            if name == "no-new-privileges":
                hint = "cages always set no-new-privileges"
            elif name == "seccomp":
                hint = ("cages always apply a seccomp profile; deny or allow syscalls with "
                        "a CageProfile (denySyscalls / allowSyscalls)")
            else:
                hint = NO_EQUIVALENT
            self.report.item(parent, svc.at("security_opt", i),
                             f"{text}: not mapped", hint)
        self.report.key(parent, mapped=True,
                        message="no-new-privileges: every cage sets it")

    def _service_only(self, svc: _Service, spec: dict[str, Any], handled: set[str]) -> None:
        data = svc.data
        r = self.report
        if "ports" in data:
            handled.add("ports")
            spec_ports = self._ports(svc)
            if spec_ports:
                spec["ports"] = spec_ports
        if "healthcheck" in data:
            handled.add("healthcheck")
            hc = self._healthcheck(svc)
            if hc:
                spec["healthcheck"] = hc
        replicas = None
        replicas_at: list[Any] = []  # where replicas came from: reported once ports are known
        if "scale" in data:
            handled.add("scale")
            replicas = _int(data["scale"], svc.loc("scale"), "scale")
            replicas_at.append(svc.at("scale"))
        deploy = data.get("deploy")
        restart: str | None = None
        if "deploy" in data:
            handled.add("deploy")
            if not isinstance(deploy, dict):
                raise _fail("deploy takes a mapping", svc.loc("deploy"))
            for k, v in deploy.items():
                where = svc.at("deploy", k)
                if k == "replicas":
                    replicas = _int(v, svc.loc("deploy", k), "deploy.replicas")
                    replicas_at.append(where)
                elif k == "resources":
                    continue  # reported by _resources_of
                elif k == "mode":
                    if v in ("replicated", None):
                        r.key(where, mapped=True, message="replicated: DockLock's only mode")
                    else:
                        r.key(where, mapped=False, message="not mapped",
                              hint="DockLock runs `replicas` containers; set it")
                elif k == "restart_policy" and isinstance(v, dict):
                    for rk, rv in v.items():
                        rwhere = svc.at("deploy", k, rk)
                        if rk == "condition":
                            restart = {"none": "no", "on-failure": "on-failure",
                                       "any": "always"}.get(str(rv))
                            if restart is None:
                                raise _fail(f"restart_policy condition {rv!r} is not none, "
                                            "on-failure or any", svc.loc("deploy", k, rk))
                            r.key(rwhere, mapped=True, message=f"→ spec.restart: {restart}")
                        else:
                            r.key(rwhere, mapped=False, message="not mapped",
                                  hint=NO_EQUIVALENT + " (Podman restarts without delay "
                                       "or attempt limit)")
                else:
                    hint = {"labels": "service labels go on the containers: use labels",
                            "placement": "DockLock places every replica on its node",
                            "update_config": "DockLock replaces replicas one at a time, "
                                             "health-gated",
                            "rollback_config": "DockLock does not roll back; apply the "
                                               "previous specs"}.get(k, NO_EQUIVALENT)
                    r.key(where, mapped=False, message="not mapped", hint=hint)
        fixed = sorted({str(p["host"]) for p in spec.get("ports") or []
                        if isinstance(p, dict) and p.get("host")})
        for at in replicas_at:
            if replicas is not None and replicas > 1 and fixed:
                # Every replica would bind the same host port: compose cannot start the
                # second one either, and DockLock's validate refuses it.
                r.key(at, mapped=False,
                      message=f"not mapped: {replicas} replicas cannot all publish host "
                              f"port {', '.join(fixed)}; imported with one replica",
                      hint="drop the host port (other services reach the service by "
                           "name) or publish it from one replica, then raise replicas")
            else:
                r.key(at, mapped=True, message="→ spec.replicas")
        if replicas is not None and not (replicas > 1 and fixed):
            spec["replicas"] = replicas
        if "restart" in data:
            handled.add("restart")
            raw = data["restart"]
            text = "no" if raw is False else str(raw)
            policy, _, count = text.partition(":")
            if policy not in ("no", "always", "on-failure", "unless-stopped"):
                raise _fail(f"restart {text!r} is not no, always, on-failure or "
                            "unless-stopped", svc.loc("restart"))
            spec["restart"] = policy
            r.key(svc.at("restart"), mapped=True, message=f"→ spec.restart: {policy}"
                  + (f" (the limit of {count} retries is dropped)" if count else ""))
        elif restart is not None:
            spec["restart"] = restart
        if "stop_grace_period" in data:
            handled.add("stop_grace_period")
            try:
                seconds = duration_seconds(parse_duration(data["stop_grace_period"]))
            except ValueError as exc:
                raise _fail(str(exc), svc.loc("stop_grace_period")) from None
            spec["stopTimeout"] = min(3600, math.ceil(seconds))
            r.key(svc.at("stop_grace_period"), mapped=True, message="→ spec.stopTimeout")

    def _deploy_for_job(self, svc: _Service, key: str, handled: set[str]) -> None:
        handled.add(key)
        if key == "scale":
            ok = svc.data["scale"] == 1
            self.report.key(svc.at("scale"), mapped=ok,
                            message="1: a Job runs once" if ok else "not mapped",
                            hint="" if ok else "a Job runs one container")
            return
        deploy = svc.data["deploy"]
        if not isinstance(deploy, dict):
            raise _fail("deploy takes a mapping", svc.loc("deploy"))
        for k, v in deploy.items():
            if k == "resources":
                continue
            ok = k == "replicas" and v == 1
            self.report.key(svc.at("deploy", k), mapped=ok,
                            message="1: a Job runs once" if ok else "not mapped",
                            hint="" if ok else f"{svc.name} becomes a Job, which runs once")

    def _ports(self, svc: _Service) -> list[dict[str, Any]]:
        raw = svc.data["ports"]
        parent = svc.at("ports")
        if not isinstance(raw, list):
            raise _fail("ports takes a list", svc.loc("ports"))
        out: list[dict[str, Any]] = []
        all_ifaces = False
        for i, entry in enumerate(raw):
            loc = svc.loc("ports", i)
            item = svc.at("ports", i)
            if isinstance(entry, dict):
                if "target" not in entry:
                    raise _fail("a long-syntax port needs target", loc)
                published = entry.get("published")
                try:
                    container = _range(str(entry["target"]))
                    host = _range(str(published)) if published not in (None, "") else None
                except ValueError as exc:
                    raise _fail(str(exc), loc) from None
                port = PortSpec(container, host, entry.get("host_ip"),
                                str(entry.get("protocol", "tcp")))
                for k in entry:
                    if k not in ("target", "published", "host_ip", "protocol", "mode",
                                 "name", "app_protocol"):
                        self.report.item(parent, svc.at("ports", i, k),
                                         "not mapped", NO_EQUIVALENT)
            else:
                try:
                    port = parse_port(entry)
                except ValueError as exc:
                    raise _fail(str(exc), loc) from None
            if port.protocol not in ("tcp", "udp"):
                self.report.item(parent, item, f"protocol {port.protocol}: not "
                                 "mapped", "DockLock publishes tcp and udp")
                continue
            c0, c1 = port.container
            n = c1 - c0 + 1
            if n > MAX_PORT_RANGE:
                self.report.item(parent, item, f"a range of {n} ports: not "
                                 "mapped", f"at most {MAX_PORT_RANGE} ports per range")
                continue
            if port.host is None:
                self.report.item(parent, item, "no host port: not published",
                                 "compose picks a random host port; DockLock publishes "
                                 "only fixed ones: give it a host port")
                continue
            h0, h1 = port.host
            if h1 - h0 + 1 != n:
                self.report.item(parent, item, f"host range {h0}-{h1} for "
                                 f"{n} container port(s): not mapped",
                                 "give one host port per container port")
                continue
            for k in range(n):
                p: dict[str, Any] = {"container": c0 + k, "host": h0 + k}
                if port.protocol != "tcp":
                    p["protocol"] = port.protocol
                ip = port.host_ip or "0.0.0.0"  # noqa: S104 - compose's default, reported
                if not port.host_ip:
                    all_ifaces = True
                p["hostIp"] = ip
                out.append(p)
        message = "→ spec.ports"
        if all_ifaces:
            message += " (hostIp 0.0.0.0 where none is given: every interface, as compose)"
        self.report.key(parent, mapped=True, message=message,
                        hint="set hostIp: 127.0.0.1 to keep a port local" if all_ifaces
                        else "")
        return out

    def _healthcheck(self, svc: _Service) -> dict[str, Any] | None:
        raw = svc.data["healthcheck"]
        if not isinstance(raw, dict):
            raise _fail("healthcheck takes a mapping", svc.loc("healthcheck"))
        r = self.report
        if raw.get("disable") is True or _test_none(raw.get("test")):
            for k in raw:
                r.key(svc.at("healthcheck", k), mapped=True,
                      message="healthcheck disabled: none set")
            return None
        hc: dict[str, Any] = {}
        for k, v in raw.items():
            where = svc.at("healthcheck", k)
            loc = svc.loc("healthcheck", k)
            if k == "test":
                hc["command"] = _health_command(v, loc)
                form = (v[0] if isinstance(v, list) and v else "string (CMD-SHELL)")
                r.key(where, mapped=True, message=f"→ spec.healthcheck.command ({form})")
            elif k in ("interval", "timeout", "start_period"):
                try:
                    hc["startPeriod" if k == "start_period" else k] = parse_duration(v)
                except ValueError as exc:
                    raise _fail(str(exc), loc) from None
                field_name = "startPeriod" if k == "start_period" else k
                r.key(where, mapped=True, message=f"→ spec.healthcheck.{field_name}")
            elif k == "retries":
                n = _int(v, loc, "retries")
                hc["retries"] = max(1, min(1000, n))
                r.key(where, mapped=True, message="→ spec.healthcheck.retries")
            elif k == "disable":
                r.key(where, mapped=True, message="false: the healthcheck runs")
            else:
                r.key(where, mapped=False, message="not mapped", hint=NO_EQUIVALENT)
        if "command" not in hc:
            r.note(svc.at("healthcheck"), "healthcheck without test: not set (the image's "
                   "HEALTHCHECK is not read)", "add a test", mapped=False)
            return None
        for k, v in COMPOSE_HEALTH_DEFAULTS.items():
            hc.setdefault(k, v)
        return hc

    # ---------------------------------------------------------------- top-level resources

    def _resources(self, root: _Source, kind: str) -> None:
        declared = root.data.get(kind)
        if declared is not None and not isinstance(declared, dict):
            raise _fail(f"{kind} takes a mapping", root.loc((kind,)))
        declared = declared or {}
        used = self.networks_used if kind == "networks" else self.volumes_used
        docs: list[dict[str, Any]] = []
        resource_kind = "Network" if kind == "networks" else "Volume"
        dl_seen: dict[str, str] = {}
        for name, opts in declared.items():
            if name not in used:
                self.report.note((root, (kind, name)), f"{kind[:-1]} {name} is used by no "
                                 "imported service: not created (as compose)")
                continue
            if opts is not None and not isinstance(opts, dict):
                raise _fail(f"{kind}.{name} takes a mapping", root.loc((kind, name)))
            docs.append(self._resource(root, kind, name, resource_kind=resource_kind,
                                       opts=opts or {}, dl_seen=dl_seen))
        for name in used:
            if name in declared:
                continue
            plain = name.lstrip("\0")
            docs.append({"apiVersion": API, "kind": resource_kind,
                         "metadata": {"name": dns_name(plain)}})
            if name == "default":
                self.report.note((root, ("services",)), "services without networks join "
                                 "the Network default, as compose's project network")
        if docs:
            self.files.append(SpecFile(f"{kind}.yaml", tuple(docs),
                                       comment=f"From {root.display}: {kind}"))

    def _resource(self, root: _Source, kind: str, name: str, *, resource_kind: str,
                  opts: dict[str, Any], dl_seen: dict[str, str]) -> dict[str, Any]:
        dl = dns_name(name)
        if not dl:
            raise _fail(f"{kind[:-1]} name {name!r} has no letters or digits",
                        root.loc((kind, name)))
        if dl in dl_seen:
            raise _fail(f"{kind} {dl_seen[dl]!r} and {name!r} both become {dl!r}",
                        root.loc((kind, name)))
        dl_seen[dl] = name
        meta: dict[str, Any] = {"name": dl}
        spec: dict[str, Any] = {}
        r = self.report
        for k, v in opts.items():
            where = (root, (kind, name, k))
            if k == "labels":
                labels = {lk: lv for lk, lv in _kv(v, {}).items() if _LABEL_KEY.match(lk)}
                if labels:
                    meta["labels"] = labels
                r.key(where, mapped=True, message="→ metadata.labels")
            elif k == "driver":
                allowed = ("bridge", "macvlan", "ipvlan") if kind == "networks" else ("local",)
                if v in allowed:
                    spec["driver"] = v
                    r.key(where, mapped=True, message="→ spec.driver")
                else:
                    r.key(where, mapped=False, message="not mapped",
                          hint=f"DockLock {kind} drivers: {', '.join(allowed)}")
            elif k == "internal" and kind == "networks":
                spec["internal"] = bool(v)
                r.key(where, mapped=True, message="→ spec.internal")
            elif k == "ipam" and kind == "networks" and isinstance(v, dict):
                self._ipam(root, name, v, spec)
            elif k == "external":
                r.key(where, mapped=v is False, message="not mapped" if v is not False
                      else "false: DockLock creates it",
                      hint="DockLock creates and owns its networks and volumes; this one "
                           "is created new, not joined" if v is not False else "")
            elif k == "name":
                r.key(where, mapped=False, message="not mapped",
                      hint=f"DockLock names the Podman {kind[:-1]} after the cluster "
                           "and resource")
            else:
                r.key(where, mapped=False, message="not mapped", hint=NO_EQUIVALENT)
        doc: dict[str, Any] = {"apiVersion": API, "kind": resource_kind, "metadata": meta}
        if spec:
            doc["spec"] = spec
        return doc

    def _ipam(self, root: _Source, name: str, ipam: dict[str, Any],
              spec: dict[str, Any]) -> None:
        r = self.report
        for k, v in ipam.items():
            where = (root, ("networks", name, "ipam", k))
            if k == "config" and isinstance(v, list):
                subnets = [c.get("subnet") for c in v if isinstance(c, dict)]
                ok = len(v) == 1 and subnets and subnets[0] and set(v[0]) == {"subnet"}
                if subnets and subnets[0]:
                    spec["subnet"] = str(subnets[0])
                r.key(where, mapped=bool(ok), message="→ spec.subnet" if ok else
                      "not mapped (only one subnet is)",
                      hint="" if ok else "DockLock networks take one subnet")
            elif k == "driver" and v == "default":
                r.key(where, mapped=True, message="default: Podman's IPAM")
            else:
                r.key(where, mapped=False, message="not mapped", hint=NO_EQUIVALENT)

    def _file_refs(self, root: _Source, enabled: Mapping[str, _Service], jobs: set[str]) -> None:
        """Top-level secrets/configs, and jobs' use of them (read-only inputs)."""
        for kind in ("secrets", "configs"):
            declared = root.data.get(kind) or {}
            if not isinstance(declared, dict):
                raise _fail(f"{kind} takes a mapping", root.loc((kind,)))
            by_job: set[str] = set()
            by_service: set[str] = set()
            for svc in enabled.values():
                refs = svc.data.get(kind)
                if refs is None:
                    continue
                self.report.owner = svc.name
                if not isinstance(refs, list):
                    raise _fail(f"{kind} takes a list", svc.loc(kind))
                for i, ref in enumerate(refs):
                    source = ref.get("source") if isinstance(ref, dict) else ref
                    if source not in declared:
                        raise _fail(f"service {svc.name} refers to undefined {kind[:-1]} "
                                    f"{source}", svc.loc(kind, i))
                    if svc.name in jobs and self._job_file(root, svc, kind, i, ref=ref,
                                                           definition=declared[source]):
                        by_job.add(str(source))
                    else:
                        by_service.add(str(source))
                if svc.name not in jobs:
                    self.report.key(svc.at(kind), mapped=False, message="not mapped",
                                    hint=_UNMAPPED_SERVICE[kind])
            self.report.owner = ""
            for name, opts in declared.items():
                if name not in by_job and name not in by_service:
                    self.report.note((root, (kind, name)), f"{kind[:-1]} {name} is used by "
                                     "no imported service (not counted)")
                    continue
                for k in (opts or {}):
                    ok = name in by_job and name not in by_service and k == "file"
                    self.report.key((root, (kind, name, k)), mapped=ok,
                                    message="→ read-only job inputs" if ok else "not mapped",
                                    hint="" if ok else _UNMAPPED_SERVICE[kind])

    def _job_file(self, root: _Source, svc: _Service, kind: str, i: int, *, ref: Any,
                  definition: Any) -> bool:
        """A job's secret/config reference as a read-only input; False if it cannot be."""
        source = ref.get("source") if isinstance(ref, dict) else ref
        target = ref.get("target") if isinstance(ref, dict) else None
        if not isinstance(definition, dict) or "file" not in definition:
            self.report.item(svc.at(kind), svc.at(kind, i), "not mapped",
                             "only file-based secrets and configs become job inputs")
            return False
        host = (root.path.parent / str(definition["file"])).resolve()
        rel = os.path.relpath(host, self.workspace)
        if rel.startswith(".."):
            self.report.item(svc.at(kind), svc.at(kind, i), "not mapped",
                             "the file is outside the workspace")
            return False
        default_dir = "/run/secrets/" if kind == "secrets" else "/"
        mount = str(target) if target and str(target).startswith("/") else \
            default_dir + str(target or source)
        for f in self.files:
            if f.name == f"{dns_name(svc.name)}.yaml":
                doc = f.documents[-1]
                doc["spec"].setdefault("inputs", []).append({"path": rel, "mount": mount})
        self.report.key(svc.at(kind), mapped=True, message="→ spec.inputs (read-only)")
        return True

    def _default_cage(self) -> dict[str, Any]:
        return {"apiVersion": API, "kind": "CageProfile", "metadata": {"name": DEFAULT_CAGE},
                "spec": {"extends": self.floor, "capAdd": _default_caps()}}


# ---------------------------------------------------------------- helpers

def _default_caps() -> list[dict[str, str]]:
    return [{"name": c, "reason": "Podman default, kept as compose does"}
            for c in PODMAN_DEFAULT_CAPS]


def interpolate_safe(value: str, env: Mapping[str, str],
                     used: list[str] | None = None) -> str:
    """env_file values are taken literally except for ${VAR} references (compose)."""
    try:
        return interpolate(value, env, None, used) if "${" in value else value
    except InterpolationError:
        return value


def _looks_secret(name: str, variables: Iterable[str]) -> bool:
    """A secret by its name, or by a variable substituted into its value."""
    return bool(_SENSITIVE.search(name)) or any(_SENSITIVE.search(v) for v in variables)


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _kv(raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    """A compose list of `k=v` or a mapping, as a mapping of strings."""
    out: dict[str, str] = {}
    if isinstance(raw, list):
        for entry in raw:
            k, eq, v = str(entry).partition("=")
            if eq:
                out[k] = v
            elif k in env:
                out[k] = env[k]
            else:
                out[k] = ""
    elif isinstance(raw, dict):
        out = {str(k): ("" if v is None else _scalar_text(v)) for k, v in raw.items()}
    return out


def _int(value: Any, loc: Location, what: str) -> int:
    if isinstance(value, bool):
        raise _fail(f"{what} takes a whole number", loc)
    try:
        n = int(str(value))
    except ValueError:
        raise _fail(f"{what} takes a whole number, not {value!r}", loc) from None
    if n < 0:
        raise _fail(f"{what} may not be negative", loc)
    return n


def _resource_value(field_name: str, value: Any) -> Any:
    if field_name == "cpus":
        try:
            cpus = float(str(value))
        except ValueError:
            raise ValueError(f"cpus takes a number, not {value!r}") from None
        if cpus <= 0:
            return None
        return int(cpus) if cpus.is_integer() else cpus
    if field_name == "memory":
        if value in (0, "0", -1, "-1"):
            return None
        return parse_memory(value)
    try:
        pids = int(str(value))
    except ValueError:
        raise ValueError(f"pids takes a whole number, not {value!r}") from None
    return pids if pids > 0 else None


def _test_none(test: Any) -> bool:
    if isinstance(test, list):
        return bool(test) and test[0] == "NONE"
    return bool(test == "NONE")


def _health_command(test: Any, loc: Location) -> list[str]:
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if not isinstance(test, list) or not test:
        raise _fail("healthcheck test takes a string or a list", loc)
    head, rest = str(test[0]), [str(t) for t in test[1:]]
    if head == "CMD" and rest:
        return rest
    if head == "CMD-SHELL" and rest:
        return ["/bin/sh", "-c", " ".join(rest)]
    raise _fail(f"healthcheck test starts with {head!r}", loc,
                "use [CMD, ...], [CMD-SHELL, command], [NONE] or a string")


def _volume_entry(entry: Any, loc: Location) -> tuple[str, str | None, str, bool, list[str]]:
    """(type, source, target, read_only, unmapped option names) of one volume entry."""
    if isinstance(entry, dict):
        vtype = str(entry.get("type", "volume"))
        target = entry.get("target")
        if not isinstance(target, str):
            raise _fail("a long-syntax volume needs a target", loc)
        source = entry.get("source")
        extra = [k for k in entry if k not in ("type", "source", "target", "read_only",
                                               "bind", "volume", "consistency", "tmpfs")]
        for sub in ("bind", "volume"):
            opts = entry.get(sub)
            if isinstance(opts, dict):
                extra.extend(f"{sub}.{k}" for k in opts if k not in (
                    "create_host_path", "nocopy", "selinux"))
        return vtype, (str(source) if source else None), target, entry.get("read_only") is \
            True, extra
    text = str(entry)
    parts = text.split(":")
    mode = ""
    if len(parts) == 1:
        return "volume", None, parts[0], False, []
    if len(parts) >= 3:
        mode = parts[-1]
        source, target = ":".join(parts[:-2]), parts[-2]
    else:
        source, target = parts
        if not target.startswith("/") and source.startswith("/"):
            source, target, mode = "", source, target  # "/data:ro": anonymous, read-only
    opts = mode.split(",") if mode else []
    unknown = [o for o in opts if o not in ("ro", "rw", "z", "Z", "nocopy", "cached",
                                             "delegated", "consistent")]
    read_only = "ro" in opts
    if not source:
        return "volume", None, target, read_only, unknown
    is_path = source.startswith((".", "/", "~"))
    return ("bind" if is_path else "volume"), source, target, read_only, unknown


def _depends(svc: _Service) -> list[tuple[str, tuple[_Source, tuple[PathItem, ...]]]]:
    raw = svc.data.get("depends_on")
    if raw is None:
        return []
    if isinstance(raw, list):
        return [(str(d), svc.at("depends_on", i)) for i, d in enumerate(raw)]
    if isinstance(raw, dict):
        return [(str(d), svc.at("depends_on", d)) for d in raw]
    raise _fail("depends_on takes a list or a mapping", svc.loc("depends_on"))


def _optional(svc: _Service, dep: str) -> bool:
    """`depends_on: {dep: {required: false}}`."""
    raw = svc.data.get("depends_on")
    opts = raw.get(dep) if isinstance(raw, dict) else None
    return isinstance(opts, dict) and opts.get("required") is False


def _condition(svc: _Service, dep: str) -> str:
    raw = svc.data.get("depends_on")
    if isinstance(raw, dict):
        opts = raw.get(dep)
        if isinstance(opts, dict):
            return str(opts.get("condition", "service_started"))
    return "service_started"


_APPEND_KEYS = frozenset({"ports", "expose", "external_links", "dns", "dns_search",
                          "tmpfs", "cap_add", "cap_drop", "security_opt", "devices",
                          "volumes", "secrets", "configs", "env_file"})
_MERGE_MAP_KEYS = frozenset({"environment", "labels", "annotations", "sysctls", "ulimits",
                             "extra_hosts", "depends_on", "networks", "deploy",
                             "healthcheck", "build", "logging"})


def _merge(base: _Service, child: _Service) -> _Service:
    """compose's extends merge: child wins; mappings merge; lists of values append."""
    data = dict(base.data)
    where = dict(base.where)
    for key, value in child.data.items():
        if key == "extends":
            continue
        old = data.get(key)
        if key in _MERGE_MAP_KEYS and old is not None:
            data[key] = _merge_value(key, old, value)
        elif key in _APPEND_KEYS and isinstance(old, list) and isinstance(value, list):
            data[key] = old + [v for v in value if v not in old]
        else:
            data[key] = value
        where[key] = child.where[key]
    if "extends" in child.data:
        data["extends"] = child.data["extends"]
        where["extends"] = child.where["extends"]
    else:
        data.pop("extends", None)
        where.pop("extends", None)
    return _Service(child.name, data, where, child.home)


def _merge_value(key: str, old: Any, new: Any) -> Any:
    if key == "environment":  # a bare NAME stays bare (None): no value to copy
        def env_map(v: Any) -> dict[str, Any]:
            if isinstance(v, dict):
                return dict(v)
            pairs = (str(e).partition("=") for e in v) if isinstance(v, list) else ()
            return {k: (x if eq else None) for k, eq, x in pairs}
        return {**env_map(old), **env_map(new)}
    if key in ("environment", "labels", "annotations", "sysctls", "extra_hosts"):
        merged = _kv(old, {}) if not isinstance(old, dict) else dict(old)
        merged.update(_kv(new, {}) if not isinstance(new, dict) else new)
        return merged
    if key in ("depends_on", "networks"):
        def as_map(v: Any) -> dict[str, Any]:
            return {str(x): None for x in v} if isinstance(v, list) else dict(v)
        if isinstance(old, list) and isinstance(new, list):
            return old + [x for x in new if x not in old]
        merged_map = as_map(old)
        merged_map.update(as_map(new))
        if key == "depends_on":
            return {k: (v if v is not None else {"condition": "service_started"})
                    for k, v in merged_map.items()}
        return merged_map
    if isinstance(old, dict) and isinstance(new, dict):
        out = dict(old)
        for k, v in new.items():
            out[k] = _merge_value(k, out[k], v) if isinstance(out.get(k), dict) and \
                isinstance(v, dict) else v
        return out
    return new


def known_service_keys() -> Iterable[str]:
    """Service keys the converter knows (mapped or with a reason it cannot be)."""
    mapped = ("image", "build", "command", "entrypoint", "environment", "env_file", "ports",
              "volumes", "networks", "healthcheck", "depends_on", "deploy", "scale",
              "restart", "user", "working_dir", "cap_add", "cap_drop", "security_opt",
              "labels", "annotations", "profiles", "extends", "stop_grace_period", "cpus",
              "mem_limit", "pids_limit", "read_only", "privileged")
    return (*mapped, *_UNMAPPED_SERVICE)
