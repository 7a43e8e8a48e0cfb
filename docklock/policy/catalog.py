"""Built-in policy packs shipped inside the package (docklock/policy/packs/*.yaml).

`baseline.yaml` is an ordinary `kind: Policy` document holding the ten hardening
checks and their control mappings. Every other file is a framework catalog: the
framework's control prefix (SOC2, ISO27001, HIPAA, CIS-Docker), the controls' titles,
and which packs it selects from; enabling `builtin:soc2` activates the selected packs'
rules that list at least one SOC2 control. The control mapping lives on the rules only,
so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from docklock.errors import Location, PolicyError
from docklock.load.yaml import parse_yaml
from docklock.model import Resource

BUILTIN_PREFIX = "builtin:"
RULE_PACKS = ("baseline",)


@dataclass(frozen=True)
class Framework:
    """A framework catalog: control id (without prefix) → title, in catalog order."""

    name: str  # pack name, e.g. soc2
    prefix: str  # control prefix, e.g. SOC2
    title: str
    selects: tuple[str, ...]
    controls: tuple[tuple[str, str], ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Framework:
        return cls(
            name=str(d["name"]),
            prefix=str(d["framework"]),
            title=str(d["title"]),
            selects=tuple(str(s) for s in d.get("selects", RULE_PACKS)),
            controls=tuple((str(c["id"]), str(c["title"])) for c in d.get("controls", ())),
        )


def _packs_dir() -> Any:
    return resources.files("docklock.policy") / "packs"


def _load_yaml(name: str) -> Any:
    """One pack file, read by the spec reader (libyaml, YAML 1.2; pure-Python ruamel took
    about 0.1 s for the catalogs every plan shows)."""
    text = (_packs_dir() / f"{name}.yaml").read_text(encoding="utf-8")
    parsed = parse_yaml(text, f"{BUILTIN_PREFIX}{name}")
    if parsed.diagnostics or len(parsed.documents) != 1:
        problem = parsed.diagnostics[0] if parsed.diagnostics else "not exactly one document"
        raise PolicyError(f"built-in pack {name} cannot be read: {problem}",
                          hint="reinstall DockLock")
    return parsed.documents[0].data


@cache
def pack_names() -> tuple[str, ...]:
    """Every built-in pack name (rule packs and framework packs), sorted."""
    names = [p.name.removesuffix(".yaml") for p in _packs_dir().iterdir()
             if p.name.endswith(".yaml")]
    return tuple(sorted(names))


@cache
def rule_pack(name: str) -> Resource:
    """A built-in rule pack as a Policy resource (location: the packaged file)."""
    doc = _load_yaml(name)
    return Resource.from_dict(doc, Location(f"{BUILTIN_PREFIX}{name}", 1, 1))


@cache
def frameworks() -> Mapping[str, Framework]:
    """Framework catalogs keyed by control prefix (SOC2, ISO27001, HIPAA, CIS-Docker)."""
    out: dict[str, Framework] = {}
    for name in pack_names():
        if name in RULE_PACKS:
            continue
        fw = Framework.from_dict(_load_yaml(name))
        out[fw.prefix] = fw
    return out


def framework_by_pack(name: str) -> Framework | None:
    for fw in frameworks().values():
        if fw.name == name:
            return fw
    return None
