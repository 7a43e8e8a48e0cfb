"""BISO policy engine: rules as JSON Schema, matched to resources, with exceptions.

A rule (Polaris style) is an `assert` JSON Schema plus metadata: which resources it
matches and excludes (Kyverno style: kinds, namespaces, names, label selector), whether a
failure denies or warns (Conftest style), the compliance controls it evidences (Trivy
compliance style) and time-boxed exceptions. Rules come from built-in packs named in
docklock.yaml (`spec.policies`, `builtin:<pack>` names only) and from `kind: Policy`
documents in the spec folders, which are always active. Exceptions sit on a rule
(`rules[].exceptions`) or in any Policy document's `spec.exceptions`, which names the
rule by id: the way to except a built-in pack rule without copying it.

Each rule's assert is checked against the resource *view*: `resource.to_dict()` plus,
for Service and Job, an `effective` object computed from the resource's effective cage
(`effective_view`). Invariants: the engine never prints, never touches Podman or files
outside the package; `evaluate` is a pure function of its arguments (`today` included),
so the report digest is reproducible; each assert is compiled once and each distinct
projection of a view is validated once per rule (see `_projection`).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from typing import Any, cast
from urllib.parse import unquote

from docklock.cage import STANDARD, resolve_cage
from docklock.errors import CageError, Diagnostic, Location, PolicyError, raise_if_errors
from docklock.load.schema import format_path, mask_values
from docklock.model import (
    Address,
    CageProfileSpec,
    ClusterSpec,
    JobSpec,
    Kind,
    PolicySpec,
    Resource,
    ServiceSpec,
)
from docklock.objects import CageSettings, canonical_json, sha256_hex
from docklock.policy import catalog
from docklock.policy._projection import FULL, ReadTree, key_function, project, read_set
from docklock.policy._regex import PatternError, pattern_problem, policy_validator_class
from docklock.policy.frameworks import framework_views
from docklock.policy.results import (
    ExceptionRef,
    PolicyReport,
    RuleInfo,
    RuleResult,
    Status,
)
from docklock.workspace import package_data

SEVERITIES = ("low", "medium", "high", "critical")
ENFORCEMENTS = ("deny", "warn")
POLICY_SCHEMA_ID = "https://docklock.io/schemas/policy.schema.json"
_GLOB_CHARS = frozenset("*?[")
_PINNED_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

Locate = Callable[[Resource, str], Location | None]


# ---------------------------------------------------------------- selectors


@dataclass(frozen=True)
class LabelRequirement:
    """One matchExpressions entry: In / NotIn / Exists / DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelRequirement:
        return cls(str(d["key"]), str(d["operator"]), tuple(str(v) for v in d.get("values", ())))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "operator": self.operator}
        if self.values:
            out["values"] = list(self.values)
        return out

    def holds(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        # NotIn: like Kubernetes, a missing label satisfies NotIn.
        return not present or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    """`match` / `exclude`: every given criterion must hold; list entries are alternatives."""

    kinds: tuple[str, ...]
    namespaces: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    match_labels: Mapping[str, str] = field(default_factory=dict)
    expressions: tuple[LabelRequirement, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Selector:
        labels = d.get("labels") or {}
        return cls(
            kinds=tuple(str(k) for k in d.get("kinds", ("*",))),
            namespaces=tuple(str(n) for n in d.get("namespaces", ())),
            names=tuple(str(n) for n in d.get("names", ())),
            match_labels={str(k): str(v) for k, v in (labels.get("matchLabels") or {}).items()},
            expressions=tuple(LabelRequirement.from_dict(e)
                              for e in labels.get("matchExpressions", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kinds": list(self.kinds)}
        if self.namespaces:
            out["namespaces"] = list(self.namespaces)
        if self.names:
            out["names"] = list(self.names)
        labels: dict[str, Any] = {}
        if self.match_labels:
            labels["matchLabels"] = dict(self.match_labels)
        if self.expressions:
            labels["matchExpressions"] = [e.to_dict() for e in self.expressions]
        if labels:
            out["labels"] = labels
        return out

    @property
    def any_kind(self) -> bool:
        return "*" in self.kinds

    def kind_matches(self, kind: str) -> bool:
        return self.any_kind or kind in self.kinds

    @property
    def trivial(self) -> bool:
        """Only kinds are given: every resource of those kinds is selected."""
        return not (self.namespaces or self.names or self.match_labels or self.expressions)

    def selects(self, resource: Resource) -> bool:
        """Namespace, name and label criteria (the kind is checked separately)."""
        if self.namespaces and not _glob_any(resource.namespace, self.namespaces):
            return False
        if self.names and not _glob_any(resource.name, self.names):
            return False
        labels = resource.metadata.labels
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        return all(e.holds(labels) for e in self.expressions)

    def covers(self, resource: Resource) -> bool:
        return self.kind_matches(resource.kind) and self.selects(resource)


def _glob_any(text: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(text, p) if _GLOB_CHARS & set(p) else text == p
               for p in patterns)


# ---------------------------------------------------------------- exceptions


@dataclass(frozen=True)
class PolicyException:
    """An accepted risk for one address (or an address glob), valid through `expires`.

    `source` is the Policy document that granted it through `spec.exceptions` (empty for
    an exception written on the rule itself).
    """

    address: str
    reason: str
    expires: date | None = None
    source: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "") -> PolicyException:
        return cls(str(d["address"]), str(d["reason"]), _parse_date(d.get("expires")),
                   source)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address, "reason": self.reason}
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        if self.source:
            out["source"] = self.source
        return out

    def covers(self, address: Address) -> bool:
        if _GLOB_CHARS & set(self.address):
            return fnmatch.fnmatchcase(str(address), self.address)
        try:
            return Address.parse(self.address, default_kind=address.kind) == address
        except ValueError:
            return False

    def expired_on(self, today: date) -> bool:
        """Expiry dates are inclusive: an exception expiring today still applies."""
        return self.expires is not None and today > self.expires

    def ref(self, today: date) -> ExceptionRef:
        return ExceptionRef(self.address, self.reason, self.expires, self.expired_on(today),
                            self.source)


def _parse_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# ---------------------------------------------------------------- rules


@dataclass(frozen=True)
class Rule:
    """One validated rule. `source` is `builtin:<pack>` or the Policy document's address."""

    id: str
    assert_schema: Any
    match: Selector
    exclude: Selector | None = None
    title: str = ""
    severity: str = "medium"
    message: str = ""
    enforcement: str = "deny"
    controls: tuple[str, ...] = ()
    exceptions: tuple[PolicyException, ...] = ()
    source: str = ""
    location: Location | None = field(default=None, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "",
                  location: Location | None = None) -> Rule:
        """Build from a rule that passed `check_policies_valid` (defaults applied here)."""
        d = _plain(d)
        exclude = d.get("exclude")
        return cls(
            id=d["id"],
            assert_schema=d["assert"],
            match=Selector.from_dict(d["match"]),
            exclude=Selector.from_dict(exclude) if exclude is not None else None,
            title=d.get("title", ""),
            severity=d.get("severity", "medium"),
            message=d.get("message", ""),
            enforcement=d.get("enforcement", "deny"),
            controls=tuple(d.get("controls", ())),
            exceptions=tuple(PolicyException.from_dict(e) for e in d.get("exceptions", ())),
            source=source,
            location=location,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "title": self.title, "severity": self.severity,
            "message": self.message, "enforcement": self.enforcement,
            "match": self.match.to_dict(), "assert": self.assert_schema,
            "controls": list(self.controls),
            "exceptions": [e.to_dict() for e in self.exceptions],
        }
        if self.exclude is not None:
            out["exclude"] = self.exclude.to_dict()
        return out

    @property
    def digest(self) -> str:
        return "sha256:" + sha256_hex(canonical_json(self.to_dict()))

    def frameworks(self) -> set[str]:
        return {c.split(":", 1)[0] for c in self.controls}

    def info(self) -> RuleInfo:
        return RuleInfo(self.id, self.title or self.id, self.severity, self.enforcement,
                        self.message, self.controls, self.source, self.digest,
                        self.location)


def _plain(value: Any) -> Any:
    """JSON-ready copy: YAML mappings → dict, sequences → list, dates → ISO strings."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def policy_rules(policy: Resource) -> list[Rule]:
    """The rules of one (valid) Policy resource."""
    spec = policy.spec
    if not isinstance(spec, PolicySpec):
        raise PolicyError(f"{policy.address} is not a Policy", location=policy.location)
    source = _source_of(policy)
    return [Rule.from_dict(r, source=source, location=policy.location) for r in spec.rules]


def _source_of(policy: Resource) -> str:
    if policy.location is not None and policy.location.file.startswith(catalog.BUILTIN_PREFIX):
        return policy.location.file
    return str(policy.address)


# ---------------------------------------------------------------- validation of policies


@cache
def _policy_schema() -> dict[str, Any]:
    path = package_data("schemas") / "policy.schema.json"
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


@cache
def _spec_validator() -> Any:
    # jsonschema and referencing are imported where a rule or a Policy document is
    # checked: a workspace without policies never loads them (house rule 12).
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing import Resource as SchemaResource

    schema = _policy_schema()
    registry: Registry = Registry().with_resource(
        POLICY_SCHEMA_ID, SchemaResource.from_contents(schema))
    return Draft202012Validator({"$ref": f"{POLICY_SCHEMA_ID}#/properties/spec"},
                                registry=registry)


def check_policies_valid(policies: Sequence[Resource], *,
                         locate: Locate | None = None) -> list[Diagnostic]:
    """Every problem in the given Policy resources, as error diagnostics.

    Checks each document's spec against schemas/policy.schema.json, then what a schema
    cannot: each assert is itself a valid JSON Schema with only local references,
    In/NotIn expressions have values, exception dates are real dates, exception
    addresses parse, and rule ids are unique across documents. Whether a `spec.exceptions`
    entry names an active rule depends on the packs too: `active_rules` checks that.
    `locate(resource, path)` may map a JSON path inside the document to its file:line
    (the loader knows); otherwise diagnostics point at the document.
    """
    diags: list[Diagnostic] = []
    seen: dict[str, str] = {}
    for policy in policies:
        def where(path: str, policy: Resource = policy) -> Location | None:
            return _where(locate, policy, path)

        if not isinstance(policy.spec, PolicySpec):
            diags.append(Diagnostic(f"{policy.address} is not a Policy document",
                                    where(""), hint="only kind: Policy holds rules"))
            continue
        spec = _plain(policy.spec.to_dict())
        for err in sorted(_spec_validator().iter_errors(spec), key=lambda e: list(e.path)):
            path = format_path(("spec", *err.absolute_path))
            diags.append(Diagnostic(f"{policy.address}: {err.message}", where(path), path,
                                    hint="see schemas/policy.schema.json for the rule format"))
        for index, raw in enumerate(spec.get("rules", [])):
            if not isinstance(raw, dict):
                continue
            base = f"spec.rules[{index}]"
            rule_id = str(raw.get("id", f"#{index}"))
            for path, message, hint in _rule_problems(raw, rule_id):
                full = f"{base}.{path}" if path else base
                diags.append(Diagnostic(f"{policy.address}: rule {rule_id}: {message}",
                                        where(full), full, hint=hint))
            if "id" in raw:
                if rule_id in seen:
                    diags.append(Diagnostic(
                        f"{policy.address}: rule id {rule_id} is already defined in "
                        f"{seen[rule_id]}", where(f"{base}.id"), f"{base}.id",
                        hint="rule ids are unique across every Policy and built-in pack"))
                else:
                    seen[rule_id] = str(policy.address)
        for index, exc in enumerate(spec.get("exceptions") or []):
            if not isinstance(exc, dict):
                continue
            about = f"exception for rule {exc.get('rule', '?')}"
            for path, message, hint in _exception_problems(exc, f"spec.exceptions[{index}]"):
                diags.append(Diagnostic(f"{policy.address}: {about}: {message}", where(path),
                                        path, hint=hint))
    return diags


def _where(locate: Locate | None, resource: Resource, path: str) -> Location | None:
    found = locate(resource, path) if locate is not None else None
    return found or resource.location


def _rule_problems(rule: Mapping[str, Any], rule_id: str) -> list[tuple[str, str, str]]:
    problems: list[tuple[str, str, str]] = []
    if "assert" in rule:
        problems.extend(_assert_problems(rule["assert"]))
    for part in ("match", "exclude"):
        sel = rule.get(part)
        if not isinstance(sel, Mapping):
            continue
        labels = sel.get("labels")
        exprs = labels.get("matchExpressions", []) if isinstance(labels, Mapping) else []
        for i, expr in enumerate(exprs if isinstance(exprs, list) else []):
            if not isinstance(expr, Mapping):
                continue
            op, values = expr.get("operator"), expr.get("values")
            path = f"{part}.labels.matchExpressions[{i}]"
            if op in ("In", "NotIn") and not values:
                problems.append((path, f"operator {op} needs a non-empty `values` list",
                                 "list the label values to compare with"))
            if op in ("Exists", "DoesNotExist") and values:
                problems.append((path, f"operator {op} takes no `values`",
                                 "remove `values`, or use In/NotIn"))
    exceptions = rule.get("exceptions")
    for i, exc in enumerate(exceptions if isinstance(exceptions, list) else []):
        if isinstance(exc, Mapping):
            problems.extend(_exception_problems(exc, f"exceptions[{i}]"))
    return problems


def _exception_problems(exc: Mapping[str, Any], path: str) -> list[tuple[str, str, str]]:
    """The date and address of one exception entry (the schema checks its shape)."""
    problems: list[tuple[str, str, str]] = []
    try:
        _parse_date(exc.get("expires"))
    except ValueError:
        problems.append((f"{path}.expires", f"{exc.get('expires')!r} is not a date",
                         "write the last day the exception applies as YYYY-MM-DD"))
    address = str(exc.get("address", ""))
    if address and not _GLOB_CHARS & set(address):
        try:
            Address.parse(address)
        except ValueError as err:
            problems.append((f"{path}.address", str(err),
                             "write the address as Kind/namespace/name, e.g. "
                             "Service/default/web, or use a glob"))
    return problems


def _assert_problems(schema: Any) -> list[tuple[str, str, str]]:
    hint = "an assert is a JSON Schema (Draft 2020-12) the resource view must satisfy"
    if not isinstance(schema, (Mapping, bool)):
        return []  # the document schema already reports the wrong type
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for
    from referencing.exceptions import Unresolvable

    cls: Any = Draft202012Validator
    if isinstance(schema, Mapping) and "$schema" in schema:
        cls = validator_for(schema, default=None)
        if cls is None:
            return [("assert.$schema",
                     f"unknown JSON Schema dialect {schema['$schema']!r}",
                     "omit $schema (Draft 2020-12 is the default) or name a published draft")]
    try:
        cls.check_schema(schema)
    except SchemaError as err:
        path = format_path(("assert", *err.absolute_path))
        return [(path, f"assert is not a valid JSON Schema: {err.message}", hint)]
    problems: list[tuple[str, str, str]] = []
    problems.extend(_regex_problems(schema, ("assert",)))
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        problems.append(("assert", "assert combines unevaluatedProperties with "
                         "patternProperties, which DockLock cannot evaluate in linear time",
                         "use additionalProperties next to the patternProperties instead"))
    refs = list(_refs(schema, ("assert",)))
    # Nested $id changes what a local reference means; only then skip the lookup.
    resolver = None if _has_nested_id(schema) else _local_resolver(schema)
    loop = _ref_loop(schema)
    if loop is not None:
        problems.append((format_path(("assert", *loop[0])),
                         f"assert refers to itself without end ({' -> '.join(loop[1])})",
                         "a $ref may recurse only through a keyword that moves into the "
                         "resource (properties, items, ...)"))
    for path, ref in refs:
        if not ref.startswith("#"):
            problems.append((path, f"assert refers to {ref!r}; only local references "
                             "(#/$defs/...) are allowed",
                             "copy the referenced schema into the assert's $defs"))
            continue
        if resolver is None:
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            problems.append((path, f"assert refers to {ref!r}, which does not exist "
                             "in the assert", "add it under $defs or fix the reference"))
    return problems


_ASSERT_URI = "urn:docklock:assert"
# Keys whose values are data, not subschemas: never walked for regexes or references.
_DATA_KEYS = frozenset({"const", "enum", "default", "examples"})
# Keywords that apply their subschemas to the same instance (no descent into it).
_IN_PLACE_ONE = ("not", "if", "then", "else", "$ref", "$dynamicRef")
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")


def _uses(schema: Any, keyword: str) -> bool:
    if isinstance(schema, Mapping):
        return any(k == keyword or (k not in _DATA_KEYS and _uses(v, keyword))
                   for k, v in schema.items())
    if isinstance(schema, list):
        return any(_uses(v, keyword) for v in schema)
    return False


def _regex_problems(schema: Any, at: tuple[Any, ...]) -> Iterable[tuple[str, str, str]]:
    """Every `pattern` and `patternProperties` regex RE2 refuses (docklock.policy._regex)."""
    hint = ("policy regexes run on RE2, in linear time: no lookaround (?=, (?!, (?<=) "
            "and no backreferences (\\1); repeat counts up to 1000")
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in _DATA_KEYS:
                continue
            if key == "pattern" and isinstance(value, str):
                why = pattern_problem(value)
                if why:
                    yield (format_path((*at, key)),
                           f"pattern {value[:80]!r} cannot be evaluated safely ({why})", hint)
            elif key == "patternProperties" and isinstance(value, Mapping):
                for regex in value:
                    why = pattern_problem(str(regex))
                    if why:
                        yield (format_path((*at, key, str(regex))),
                               f"patternProperties regex {str(regex)[:80]!r} cannot be "
                               f"evaluated safely ({why})", hint)
            yield from _regex_problems(value, (*at, key))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _regex_problems(value, (*at, i))


def _pointer(schema: Any, ref: str) -> tuple[Any, ...] | None:
    """The path of a local `#/...` JSON pointer inside `schema`, if it resolves."""
    if ref == "#":
        return ()
    if not ref.startswith("#/"):
        return None
    path: list[Any] = []
    node = schema
    for raw in ref[2:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            path.append(int(part))
        else:
            return None
    return tuple(path)


def _at(schema: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        schema = schema[part]
    return schema


def _ref_loop(schema: Any) -> tuple[tuple[Any, ...], list[str]] | None:
    """A cycle of `$ref`s that never moves into the instance (infinite recursion for
    every resource), as (path of the first `$ref`, the references in order); or None.

    A reference may recurse through `properties`/`items` (the resource is finite and
    its depth bounded by the YAML reader); one reached again through in-place keywords
    alone (allOf/anyOf/oneOf/not/if/then/else/$ref) never ends.
    """
    def successors(path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str | None]]:
        node = _at(schema, path)
        if not isinstance(node, Mapping):
            return []
        out: list[tuple[tuple[Any, ...], str | None]] = []
        for key in _IN_PLACE_ONE:
            value = node.get(key)
            if key in ("$ref", "$dynamicRef"):
                target = _pointer(schema, value) if isinstance(value, str) else None
                if target is not None:
                    out.append((target, f"{format_path(('assert', *path, key))} = {value}"))
            elif isinstance(value, Mapping):
                out.append(((*path, key), None))
        for key in _IN_PLACE_MANY:
            value = node.get(key)
            if isinstance(value, list):
                out.extend(((*path, key, i), None) for i in range(len(value)))
        return out

    # Iterative DFS over in-place edges; grey nodes are on the current chain.
    state: dict[tuple[Any, ...], int] = {}
    for start in _all_schema_paths(schema):
        if start in state:
            continue
        stack: list[tuple[tuple[Any, ...], Iterator[Any], list[str]]] = [
            (start, iter(successors(start)), [])]
        state[start] = 1
        while stack:
            node, edges, refs = stack[-1]
            step = next(edges, None)
            if step is None:
                state[node] = 2
                stack.pop()
                continue
            target, label = step
            chain = [*refs, label] if label else refs
            if state.get(target) == 1:
                first = next((p for p, _e, _r in stack if p == target), target)
                return (first, chain or ["$ref"])
            if target not in state:
                state[target] = 1
                stack.append((target, iter(successors(target)), chain))
    return None


def _all_schema_paths(schema: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(schema, Mapping):
        yield at
        for key, value in schema.items():
            if key not in _DATA_KEYS:
                yield from _all_schema_paths(value, (*at, key))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _all_schema_paths(value, (*at, i))


def _local_resolver(schema: Any) -> Any:
    from referencing import Registry
    from referencing import Resource as SchemaResource
    from referencing.jsonschema import DRAFT202012

    resource = SchemaResource.from_contents(schema, default_specification=DRAFT202012)
    return Registry().with_resource(_ASSERT_URI, resource).resolver(base_uri=_ASSERT_URI)


def _has_nested_id(schema: Any) -> bool:
    if isinstance(schema, Mapping):
        return "$id" in schema or any(_has_nested_id(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_nested_id(v) for v in schema)
    return False


def _refs(schema: Any, at: tuple[Any, ...]) -> Iterable[tuple[str, str]]:
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield format_path((*at, key)), value
            elif key not in ("const", "enum", "default", "examples"):
                yield from _refs(value, (*at, key))
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _refs(value, (*at, i))


# ---------------------------------------------------------------- packs


PackWhere = Callable[[int], Location | None]


def resolve_packs(packs: Sequence[str], *, where: PackWhere | None = None,
                  ) -> tuple[list[Rule], list[Diagnostic]]:
    """The rules enabled by `spec.policies` names, deduplicated, and the errors found.

    Only `builtin:<pack>` names are accepted: an unknown pack or any other entry (such as
    a file path) is an error. Policy documents need no entry, since every one in the
    spec folders is always active. `where(i)` locates entry `i` (docklock.yaml's
    spec.policies[i]) when the caller knows the file.
    """
    rules: dict[str, Rule] = {}
    diags: list[Diagnostic] = []
    available = ", ".join(f"{catalog.BUILTIN_PREFIX}{n}" for n in catalog.pack_names())
    for index, name in enumerate(packs):
        path = f"spec.policies[{index}]"
        at = where(index) if where is not None else None
        if not name.startswith(catalog.BUILTIN_PREFIX):
            diags.append(Diagnostic(
                f"spec.policies entry {name!r} is not a built-in pack: spec.policies names "
                "built-in packs only; Policy documents in the spec folders are always "
                "active", at, path,
                hint=f"move the Policy documents into a spec folder (spec.specs) and remove "
                     f"this entry; built-in packs are {available}"))
            continue
        bare = name.removeprefix(catalog.BUILTIN_PREFIX)
        if bare not in catalog.pack_names():
            diags.append(Diagnostic(
                f"unknown policy pack {name!r}", at, path,
                hint=f"built-in packs are {available}; write your own rules as "
                     "kind: Policy documents in the spec folders"))
            continue
        framework = catalog.framework_by_pack(bare)
        sources = framework.selects if framework is not None else (bare,)
        for source in sources:
            for rule in policy_rules(catalog.rule_pack(source)):
                if framework is None or framework.prefix in rule.frameworks():
                    rules.setdefault(rule.id, rule)
    return list(rules.values()), diags


def active_rules(packs: Sequence[str], policies: Sequence[Resource], *,
                 locate: Locate | None = None,
                 cluster_doc: Resource | None = None) -> list[Rule]:
    """Pack rules plus every Policy document's rules, sorted by id; raises on any problem.

    Each rule carries its own exceptions plus those granted to its id by any Policy
    document's `spec.exceptions`; an exception naming no active rule is an error.
    `cluster_doc` (docklock.yaml's Cluster) lets pack errors point at spec.policies[i].
    """
    diags = check_policies_valid(policies, locate=locate)
    where: PackWhere | None = None
    if cluster_doc is not None:
        def where(index: int) -> Location | None:
            return _where(locate, cluster_doc, f"spec.policies[{index}]")
    pack_rules, pack_diags = resolve_packs(packs, where=where)
    # Malformed documents cannot be turned into rules; bad pack entries only leave
    # their rules out, so the checks below still run and report with them.
    if diags:
        raise_if_errors([*diags, *pack_diags])
    diags.extend(pack_diags)
    by_id = {r.id: r for r in pack_rules}
    for policy in policies:
        for rule in policy_rules(policy):
            if rule.id in by_id:
                diags.append(Diagnostic(
                    f"{policy.address}: rule id {rule.id} is already defined in "
                    f"{by_id[rule.id].source}", rule.location, "spec.rules",
                    hint="rule ids are unique across every Policy and built-in pack; "
                         "rename the rule"))
                continue
            by_id[rule.id] = rule
    granted: dict[str, list[PolicyException]] = {}
    for policy in policies:
        for index, raw, exc in _document_exceptions(policy):
            rule_id = str(raw["rule"])
            if rule_id in by_id:
                granted.setdefault(rule_id, []).append(exc)
                continue
            path = f"spec.exceptions[{index}].rule"
            diags.append(Diagnostic(
                f"{policy.address}: exception for {exc.address} names rule {rule_id}, "
                "which is not an active rule", _where(locate, policy, path), path,
                hint=_unknown_rule_hint(rule_id)))
    raise_if_errors(diags)
    for rule_id, extra in granted.items():
        rule = by_id[rule_id]
        by_id[rule_id] = replace(rule, exceptions=(*rule.exceptions, *extra))
    return sorted(by_id.values(), key=lambda r: r.id)


def _document_exceptions(policy: Resource,
                         ) -> Iterable[tuple[int, Mapping[str, Any], PolicyException]]:
    """(index, raw entry, exception) for each `spec.exceptions` entry of a valid Policy."""
    spec = policy.spec
    if not isinstance(spec, PolicySpec):
        return
    source = _source_of(policy)
    for index, raw in enumerate(spec.exceptions):
        plain = _plain(raw)
        yield index, plain, PolicyException.from_dict(plain, source=source)


def _unknown_rule_hint(rule_id: str) -> str:
    for pack in catalog.RULE_PACKS:
        if any(r.id == rule_id for r in policy_rules(catalog.rule_pack(pack))):
            return (f"{rule_id} is in {catalog.BUILTIN_PREFIX}{pack}, which is not enabled: "
                    f"add {catalog.BUILTIN_PREFIX}{pack} (or a framework pack selecting it) "
                    "to docklock.yaml spec.policies, or remove the exception")
    return ("name the id of a rule in a Policy document or an enabled built-in pack "
            "(`docklock policy check` lists them), or remove the exception")


# ---------------------------------------------------------------- compiled asserts


class _Compiled:
    """A rule's assert compiled once, with a verdict cache keyed by the view projection."""

    __slots__ = ("cache", "key", "tree", "validator")
    _MAX_CACHE = 100_000

    def __init__(self, schema: Any) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.validators import validator_for
        from referencing import Registry

        cls = (validator_for(schema, default=Draft202012Validator)
               if isinstance(schema, Mapping) else Draft202012Validator)
        # An empty registry: asserts may only use local references, and jsonschema must
        # never try to fetch a remote one.
        # Regex keywords run on RE2 (linear time): asserts are untrusted input.
        self.validator = policy_validator_class(cls)(schema, registry=Registry())
        self.tree: ReadTree = read_set(schema)
        self.key = key_function(self.tree)
        self.cache: dict[Any, tuple[bool, str, str]] = {}

    def check(self, view: Mapping[str, Any]) -> tuple[bool, str, str]:
        """(passed, detail message, JSON path of the failing part)."""
        if self.tree is FULL:
            return self._run(view)
        key = self.key(view)
        hit = self.cache.get(key)
        if hit is None:
            # Validate the projection, not the view, so the detail message is a function
            # of the key alone and a cache hit can never show another resource's data.
            hit = self._run(project(view, self.tree))
            if len(self.cache) >= self._MAX_CACHE:
                self.cache.clear()
            self.cache[key] = hit
        return hit

    def _run(self, instance: Any) -> tuple[bool, str, str]:
        from jsonschema.exceptions import best_match
        from referencing.exceptions import Unresolvable

        try:
            if self.validator.is_valid(instance):
                return (True, "", "")
            err = best_match(self.validator.iter_errors(instance))
        except Unresolvable as exc:
            raise PolicyError(f"a policy assert has an unresolvable reference: {exc}",
                              hint="use local references (#/$defs/...) only") from exc
        except RecursionError as exc:  # validation refuses in-place loops; this is the net
            raise PolicyError("a policy assert recurses without end",
                              hint="a $ref may recurse only through a keyword that moves "
                                   "into the resource (properties, items, ...)") from exc
        except PatternError as exc:  # validation refuses these first; this is the net
            raise PolicyError(f"a policy assert has a regex RE2 cannot run: {exc}",
                              hint="no lookaround or backreferences in policy regexes") from exc
        path = format_path(err.absolute_path)
        where = f"{path}: " if path else ""
        return (False, f"{where}{err.message}", path)


@cache
def _compiled_for(schema_json: str) -> _Compiled:
    return _Compiled(json.loads(schema_json))


def _compile(rule: Rule) -> _Compiled:
    return _compiled_for(json.dumps(rule.assert_schema, sort_keys=True))


# ---------------------------------------------------------------- the resource view

def resolve_cage_settings(name: str | None, *, floor: str,
                          profiles: Mapping[str, CageProfileSpec],
                          seed: int | None = None) -> CageSettings | None:
    """The effective cage of a workload, or None when it cannot be resolved at all.

    The one place the policy engine depends on docklock.cage. A cage weaker than the
    floor is a CageError that validation reports on its own; the policy view then shows
    the cage as asked (so cage-hardened says why), resolved against the weakest floor.
    An unknown cage or a broken profile gives None: the most pessimistic view.
    """
    try:
        return resolve_cage(name, floor=floor, profiles=profiles, seed=seed)
    except CageError:
        pass
    try:
        return resolve_cage(name or floor, floor=STANDARD, profiles=profiles, seed=seed)
    except CageError:
        return None


def image_pinned(ref: str) -> bool:
    """Pinned by digest (`@sha256:<64 hex>`) or by an explicit tag that is not `latest`."""
    if "@" in ref:
        return bool(_PINNED_DIGEST.search(ref))
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.rsplit(":", 1)[1]
    return tag not in ("", "latest")


def runs_as_non_root(user: str | None) -> bool:
    """A spec `user` naming someone other than root/UID 0 (no user: the image's, i.e. root)."""
    if not user:
        return False
    name = user.split(":", 1)[0].strip()
    return name not in ("", "root", "0")


# Which document key each `effective` field comes from, so a failure on a computed field
# can point at what the author wrote (or would write). Fields DockLock offers no way to
# set (privileged, host namespaces) point at the cage, which decides the rest.
_EFFECTIVE_SOURCE = {
    "cageName": "spec.cage", "cageLevel": "spec.cage", "readOnlyRoot": "spec.cage",
    "noNewPrivileges": "spec.cage", "capDrop": "spec.cage", "capAdd": "spec.capAdd",
    "seccompProfile": "spec.cage", "seccomp": "spec.cage", "networkNone": "spec.cage",
    "privileged": "spec.cage", "hostNetwork": "spec.cage", "hostPid": "spec.cage",
    "hostIpc": "spec.cage", "user": "spec.user", "runAsNonRoot": "spec.user",
    "memoryLimit": "spec.resources.memory", "cpuLimit": "spec.resources.cpus",
    "pidsLimit": "spec.resources.pids", "image": "spec.image", "imagePinned": "spec.image",
    "healthcheck": "spec.healthcheck",
}


def document_path(view_path: str) -> str:
    """The document path behind a resource-view path (`effective.imagePinned` →
    `spec.image`); other paths are document paths already. For locating failures."""
    head, _, rest = view_path.partition(".")
    if head != "effective":
        return view_path
    field_name = rest.split(".", 1)[0].split("[", 1)[0]
    return _EFFECTIVE_SOURCE.get(field_name, "spec")


def _cap(name: str) -> str:
    return name.upper().removeprefix("CAP_")


def effective_view(resource: Resource, cluster_spec: ClusterSpec,
                   profiles: Mapping[str, CageProfileSpec], *,
                   cages: dict[tuple[str | None, int | None], CageSettings | None] | None = None,
                   ) -> dict[str, Any]:
    """The document a rule's assert sees: `resource.to_dict()` plus `effective`.

    `effective` (Service and Job only) holds what the container will really get:
    cageName, cageLevel (standard|hardened|deterministic, "unknown" if unresolvable),
    readOnlyRoot, noNewPrivileges, capDrop, capAdd (cage + spec, CAP_ prefix dropped),
    seccompProfile (a profile is applied; Podman's default counts), seccomp
    (default|generated|none), privileged/hostNetwork/hostPid/hostIpc (always false:
    DockLock offers no way to ask for them), networkNone, user, runAsNonRoot,
    memoryLimit/cpuLimit/pidsLimit (spec resources, else the cage's defaults), image,
    imagePinned and healthcheck. `cages` memoises cage resolution across resources.
    """
    view = resource.to_dict()
    spec = resource.spec
    if not isinstance(spec, (ServiceSpec, JobSpec)):
        return view
    seed = spec.seed if isinstance(spec, JobSpec) else None
    key = (spec.cage, seed)
    if cages is not None and key in cages:
        settings = cages[key]
    else:
        settings = resolve_cage_settings(spec.cage, floor=cluster_spec.securityLevel,
                                         profiles=profiles, seed=seed)
        if cages is not None:
            cages[key] = settings
    spec_caps = {_cap(c.name) for c in spec.capAdd} if isinstance(spec, ServiceSpec) else set()
    limits = spec.resources
    if settings is None:
        effective: dict[str, Any] = {
            "cageName": spec.cage or cluster_spec.securityLevel, "cageLevel": "unknown",
            "readOnlyRoot": False, "noNewPrivileges": False, "capDrop": [],
            "capAdd": sorted(spec_caps), "seccompProfile": False, "seccomp": "none",
            "networkNone": False, "memoryLimit": limits.memory, "cpuLimit": limits.cpus,
            "pidsLimit": limits.pids,
        }
    else:
        effective = {
            "cageName": settings.name, "cageLevel": settings.level,
            "readOnlyRoot": settings.read_only,
            "noNewPrivileges": settings.no_new_privileges,
            "capDrop": sorted(_cap(c) for c in settings.cap_drop),
            "capAdd": sorted({_cap(c) for c in settings.cap_add} | spec_caps),
            # No DockLock cage runs unconfined: without a generated profile Podman's
            # default seccomp profile applies, which CIS 5.21 accepts.
            "seccompProfile": True,
            "seccomp": "generated" if settings.denied_syscalls else "default",
            "networkNone": settings.network_none,
            "memoryLimit": limits.memory or settings.memory,
            "cpuLimit": limits.cpus,
            "pidsLimit": limits.pids or settings.pids_limit,
        }
    effective.update({
        "privileged": False, "hostNetwork": False, "hostPid": False, "hostIpc": False,
        "user": spec.user, "runAsNonRoot": runs_as_non_root(spec.user),
        "image": spec.image, "imagePinned": image_pinned(spec.image),
        "healthcheck": isinstance(spec, ServiceSpec) and spec.healthcheck is not None,
    })
    view["effective"] = effective
    return view


# ---------------------------------------------------------------- evaluation


def evaluate(resources: Sequence[Resource], *, cluster: ClusterSpec, packs: Sequence[str],
             policies: Sequence[Resource], today: date,
             locate: Locate | None = None,
             cluster_doc: Resource | None = None) -> PolicyReport:
    """Check every resource against every active rule.

    `packs` are docklock.yaml's `spec.policies` names (builtin:baseline, builtin:soc2...);
    `policies` the workspace's Policy documents (always active). Policy documents among
    `resources` are not checked. Raises ValidationError listing every malformed rule or
    exception, unknown pack or non-builtin entry; otherwise returns the report (deny
    failures are data, not exceptions). `locate` and `cluster_doc` only sharpen where
    those errors point (see `active_rules`).
    """
    rules = active_rules(packs, policies, locate=locate, cluster_doc=cluster_doc)
    targets = sorted((r for r in resources if r.kind != Kind.POLICY.value),
                     key=lambda r: (str(r.address), r.kind))
    addresses = [r.address for r in targets]
    address_text = [str(a) for a in addresses]
    profiles = {r.name: r.spec for r in targets if isinstance(r.spec, CageProfileSpec)}
    cages: dict[tuple[str | None, int | None], CageSettings | None] = {}
    compiled = [_compile(rule) for rule in rules]
    failed_status = [Status.FAIL if r.enforcement == "deny" else Status.WARN for r in rules]
    rules_for_kind: dict[str, list[int]] = {}
    buckets: list[list[RuleResult]] = [[] for _ in rules]
    # Enum member lookups are slow in a 100,000-iteration loop; bind them once.
    passed_, skip, excepted = Status.PASS, Status.SKIP, Status.EXCEPTED
    # Resource by resource, so each view is built once and dropped when its rules are
    # done: fewer live objects keeps the garbage collector's passes cheap at 10k+.
    for i, res in enumerate(targets):
        wanted = rules_for_kind.get(res.kind)
        if wanted is None:
            wanted = rules_for_kind[res.kind] = [
                j for j, r in enumerate(rules) if r.match.kind_matches(res.kind)]
        view: dict[str, Any] | None = None
        text = address_text[i]
        for j in wanted:
            rule = rules[j]
            out = buckets[j]
            if not rule.match.trivial and not rule.match.selects(res):
                out.append(RuleResult(rule.id, text, skip,
                                      "not selected by match (namespaces, names or labels)",
                                      location=res.location))
                continue
            if rule.exclude is not None and rule.exclude.covers(res):
                out.append(RuleResult(rule.id, text, skip, "excluded by the rule's exclude",
                                      location=res.location))
                continue
            if view is None:
                view = effective_view(res, cluster, profiles, cages=cages)
            passed, detail, path = compiled[j].check(view)
            if passed:
                out.append(RuleResult(rule.id, text, passed_, location=res.location))
                continue
            status = failed_status[j]
            secrets = [e.value for e in getattr(res.spec, "env", ()) if e.sensitive]
            if secrets:  # jsonschema quotes the failing value; a sensitive one is masked
                detail = mask_values(detail, secrets)
            exc = _exception_for(rule, addresses[i], today) if rule.exceptions else None
            if exc is not None and not exc.expired:
                status = excepted
            out.append(RuleResult(rule.id, text, status, rule.message or rule.title,
                                  detail, path, exc, res.location))
    results = [result for bucket in buckets for result in bucket]
    frameworks = framework_views(rules, results)
    return PolicyReport.build(on=today, packs=tuple(packs),
                              rules=tuple(r.info() for r in rules), results=tuple(results),
                              frameworks=frameworks)


def evaluate_workspace(resources: Sequence[Resource], cluster: ClusterSpec, *,
                       today: date | None = None, locate: Locate | None = None,
                       cluster_doc: Resource | None = None) -> PolicyReport:
    """`evaluate` for a loaded workspace: Policy documents are taken from `resources`,
    packs from `cluster.policies`, `today` defaults to the local date.

    What validate and plan call: `report.to_diagnostics()` gives deny failures as errors
    and warnings as warnings; `report.digest` is what the plan and ledger record.
    Pass the workspace's Cluster resource as `cluster_doc` so that pack errors point at
    docklock.yaml's spec.policies[i].
    """
    policies = [r for r in resources if r.kind == Kind.POLICY.value]
    return evaluate(resources, cluster=cluster, packs=cluster.policies, policies=policies,
                    today=today or date.today(), locate=locate, cluster_doc=cluster_doc)


def _exception_for(rule: Rule, address: Address, today: date) -> ExceptionRef | None:
    """The unexpired exception covering `address`, else the latest expired one, else None."""
    best: PolicyException | None = None
    for exc in rule.exceptions:
        if not exc.covers(address):
            continue
        if not exc.expired_on(today):
            return exc.ref(today)
        if best is None or (best.expires or date.min) < (exc.expires or date.min):
            best = exc
    return best.ref(today) if best is not None else None
