"""The JSON Schemas of every kind: loading, compiling once per process, and judging documents.

`schemas/<kind>.schema.json` (Draft 2020-12) is canonical. A document is first checked by
a compiled predicate (docklock.load._fastschema); only a document that fails is walked by
jsonschema to explain why, so the common case costs microseconds. Problems are returned
as `SchemaProblem`s with the JSON path of the offending key; docklock.load turns the path
into file:line:col.

DockLock's validator differs from plain Draft 2020-12 in two deliberate ways, shared with
the CUE definitions: `integer` accepts only integers (not 1.0), and `pattern` uses
ECMA-262's `$`.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urldefrag, urljoin

from docklock.errors import SpecError
from docklock.load._fastschema import Predicate, Unsupported, compile_predicate, ecma_pattern
from docklock.model import Kind
from docklock.workspace import package_data

if TYPE_CHECKING:
    import jsonschema

PathItem = str | int
JsonPath = tuple[PathItem, ...]

KINDS: tuple[str, ...] = tuple(k.value for k in Kind)


def schema_file(kind: str) -> str:
    return f"{kind.lower()}.schema.json"


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        import jsonschema

        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


@functools.cache
def validator_class() -> Any:
    """DockLock's jsonschema validator class (imported on first use: only a document that
    fails the compiled predicate, or a schema the compiler cannot handle, needs it)."""
    import jsonschema
    from jsonschema import Draft202012Validator

    types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, instance: type(instance) is int)
    return jsonschema.validators.extend(
        Draft202012Validator, validators={"pattern": _pattern}, type_checker=types)


@dataclass(frozen=True)
class SchemaProblem:
    """Why a document does not match its kind's schema; `path` locates the key."""

    path: JsonPath
    message: str
    hint: str = ""


def format_path(path: Sequence[PathItem]) -> str:
    """`spec.ports[0].host` — the form shown to people and in --json output."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += f".{item}" if out else str(item)
    return out


class _KindSchema:
    """One kind's schema: its compiled predicate and a jsonschema validator (it explains
    why a document is invalid), each built on first use: a workspace with three kinds
    compiles three predicates, not eight."""

    def __init__(self, schema: dict[str, Any], owner: SchemaSet) -> None:
        self.schema = schema
        self._owner = owner
        self._validator: Any = None
        self._predicate: Predicate | None = None

    @property
    def predicate(self) -> Predicate:
        if self._predicate is None:
            try:
                self._predicate = compile_predicate(self.schema, _Documents(self._owner.by_uri))
            except Unsupported:
                self._predicate = lambda doc: bool(self.validator.is_valid(doc))
        return self._predicate

    @property
    def validator(self) -> Any:
        if self._validator is None:
            self._validator = validator_class()(self.schema, registry=self._owner.registry())
        return self._validator


@dataclass(frozen=True)
class _Found:
    contents: Any
    resolver: _Documents


class _Documents:
    """Resolves `$ref`s between the set's documents for the predicate compiler, without
    jsonschema's `referencing` (about 40 ms to import): absolute or relative URIs of a
    document's `$id` or file name, plus a JSON pointer. Anything else is Unsupported, and
    that schema falls back to jsonschema."""

    def __init__(self, by_uri: Mapping[str, dict[str, Any]], base_uri: str = "") -> None:
        self.by_uri = by_uri
        self.base_uri = base_uri

    def resolver(self, base_uri: str = "") -> _Documents:
        return _Documents(self.by_uri, base_uri)

    def lookup(self, ref: str) -> _Found:
        uri, fragment = urldefrag(urljoin(self.base_uri, ref) if self.base_uri else ref)
        doc = self.by_uri.get(uri)
        if doc is None:
            raise Unsupported(f"cannot resolve $ref {ref!r}")
        node: Any = doc
        if fragment:
            if not fragment.startswith("/"):
                raise Unsupported(f"$ref {ref!r}: only JSON pointers are compiled")
            for part in fragment[1:].split("/"):
                key = unquote(part).replace("~1", "/").replace("~0", "~")
                if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                    node = node[int(key)]
                elif isinstance(node, dict) and key in node:
                    node = node[key]
                else:
                    raise Unsupported(f"cannot resolve $ref {ref!r}")
        nested = node.get("$id") if isinstance(node, dict) and node is not doc else None
        if nested:
            raise Unsupported(f"$ref {ref!r} enters an embedded resource")
        return _Found(node, _Documents(self.by_uri, uri))


@dataclass
class SchemaSet:
    """Every kind's schema from one folder, compiled once."""

    directory: Path
    kinds: dict[str, _KindSchema] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name → schema
    by_uri: dict[str, dict[str, Any]] = field(default_factory=dict)  # $id or file URI → schema
    _registry: Any = None

    @classmethod
    def load(cls, directory: Path) -> SchemaSet:
        out = cls(directory)
        for path in sorted(directory.glob("*.schema.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SpecError(f"cannot read schema {path}: {exc}") from exc
            out.documents[path.name] = doc
            uri = doc.get("$id") or path.resolve().as_uri()
            out.by_uri[uri] = doc
            # Also reachable by file name, so `common.schema.json#/...` resolves from any $id.
            out.by_uri[path.name] = doc
        for kind in KINDS:
            doc = out.documents.get(schema_file(kind))
            if doc is not None:
                out.kinds[kind] = _KindSchema(doc, out)
        return out

    def registry(self) -> Any:
        """The set as a `referencing.Registry` for jsonschema (built on first use)."""
        if self._registry is None:
            import referencing
            from referencing.jsonschema import DRAFT202012

            registry: referencing.Registry[Any] = referencing.Registry().with_resources(
                (uri, referencing.Resource.from_contents(doc, default_specification=DRAFT202012))
                for uri, doc in self.by_uri.items())
            self._registry = registry
        return self._registry

    def schema(self, kind: str) -> dict[str, Any]:
        return self.kinds[kind].schema

    def check(self, doc: Any) -> list[SchemaProblem]:
        """Every problem of one document; [] when it is valid."""
        if not isinstance(doc, dict):
            return [SchemaProblem((), f"a document must be a mapping, not {json_type_name(doc)}",
                                  "each document has apiVersion, kind, metadata and spec")]
        kind = doc.get("kind")
        if kind is None:
            return [SchemaProblem((), "missing required field 'kind'",
                                  f"one of: {', '.join(KINDS)}")]
        entry = self.kinds.get(kind) if isinstance(kind, str) else None
        if entry is None:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"one of: {', '.join(KINDS)}"
            if isinstance(kind, str) and kind in KINDS:
                hint = f"the schema {schema_file(kind)} is missing from {self.directory}"
            return [SchemaProblem(("kind",), f"unknown kind {kind!r}", hint)]
        if entry.predicate(doc):
            return []
        problems: list[SchemaProblem] = []
        seen: set[tuple[JsonPath, str]] = set()
        errors = sorted(entry.validator.iter_errors(doc),
                        key=lambda e: [str(p) for p in e.absolute_path])
        for error in errors:
            for problem in _explain(error):
                key = (problem.path, problem.message)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
        if not problems:  # the predicate and jsonschema disagree: trust jsonschema
            return []
        secrets = sensitive_values(doc)
        if secrets:
            problems = [SchemaProblem(p.path, mask_values(p.message, secrets),
                                      mask_values(p.hint, secrets)) for p in problems]
        return problems


@functools.lru_cache(maxsize=8)
def load_schemas(directory: str | None = None) -> SchemaSet:
    """The schema set of a folder (default: DockLock's own `schemas/`), compiled once."""
    return SchemaSet.load(Path(directory) if directory else package_data("schemas"))


# ---------------------------------------------------------------- messages

SENSITIVE_MASK = "(sensitive)"
# Shorter values are masked only where a message quotes them: replacing every bare
# occurrence of, say, "ab" would garble the message without hiding anything more.
_BARE_MASK_MIN = 4


def sensitive_values(doc: Any) -> list[str]:
    """The env values a raw document marks sensitive (`NAME: {value: ..., sensitive: ...}`).

    Any `sensitive` key counts, even a malformed one (`sensitive: "yes"`): the author
    meant to hide the value, and the message that reports the mistake must not show it.
    """
    spec = doc.get("spec") if isinstance(doc, Mapping) else None
    found = _backend_connection(spec)
    env = spec.get("env") if isinstance(spec, Mapping) else None
    if not isinstance(env, Mapping):
        return found
    return found + [str(v["value"]) for v in env.values()
                    if isinstance(v, Mapping) and "sensitive" in v
                    and v.get("sensitive") is not False
                    and isinstance(v.get("value"), (str, int, float)) and str(v["value"])]


def _backend_connection(spec: Any) -> list[str]:
    """A Cluster's `backend.connectionEnv` when it is not a variable name: someone pasted
    the connection string (with its password) where the variable's name belongs — as a
    string, or inside a mapping or list (every string in it is masked)."""
    backend = spec.get("backend") if isinstance(spec, Mapping) else None
    value = backend.get("connectionEnv") if isinstance(backend, Mapping) else None
    if isinstance(value, str):
        return [value] if value and not value.replace("_", "a").isalnum() else []
    return [leaf for leaf in _string_leaves(value) if leaf]


def _string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in (*_string_leaves(k), *_string_leaves(v))]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _string_leaves(v)]
    return [str(value)] if isinstance(value, (int, float)) else []


def mask_values(text: str, secrets: Sequence[str]) -> str:
    """`text` with every quoted (repr or JSON) or long enough bare secret masked."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        for quoted in (repr(secret), json.dumps(secret), json.dumps(secret,
                                                                     ensure_ascii=False)):
            text = text.replace(quoted, SENSITIVE_MASK)
        if len(secret) >= _BARE_MASK_MIN:
            text = text.replace(secret, SENSITIVE_MASK)
    return text


def json_type_name(value: Any) -> str:
    """How a message names a value's type: `a string`, `an integer`, `a mapping`, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "object": "a mapping", "array": "a list",
               "null": "null"}


def _description(schema: Any) -> str:
    if isinstance(schema, Mapping):
        return str(schema.get("description", ""))
    return ""


def _explain(error: jsonschema.ValidationError) -> list[SchemaProblem]:
    path: JsonPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    instance = error.instance
    v = error.validator
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        return [SchemaProblem((*path, instance), f"invalid name {instance!r}",
                              _description(schema) or f"must match {schema.get('pattern', '')}")]
    if v == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        out = []
        for key in sorted(k for k in instance if k not in allowed):
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"allowed here: {', '.join(allowed)}" if allowed else "")
            out.append(SchemaProblem((*path, key), f"unknown field {key!r}", hint))
        return out
    if v == "required" and isinstance(instance, dict):
        props = schema.get("properties", {})
        return [SchemaProblem(path, f"missing required field {name!r}",
                              _description(props.get(name)))
                for name in error.validator_value if name not in instance]
    if v == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        want = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = ""
        if "string" in names and isinstance(instance, (int, float, bool)):
            hint = f'quote it: "{_yaml_scalar(instance)}"'
        elif isinstance(instance, float) and "integer" in names:
            hint = "write a whole number without a decimal point"
        elif isinstance(instance, str) and {"integer", "number"} & set(names):
            # A quoted number ("10") only needs its quotes removed; anything else ("ten")
            # needs a number, which the field's description explains.
            try:
                float(instance)
            except ValueError:
                hint = _description(schema) or f"write {want}"
            else:
                hint = f"remove the quotes: {instance.strip()}"
        else:
            hint = _description(schema)
        return [SchemaProblem(path, f"expected {want}, got {json_type_name(instance)} "
                                    f"{_short(instance)}", hint)]
    if v == "enum":
        options = [str(o) for o in error.validator_value]
        close = difflib.get_close_matches(str(instance), options, n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        return [SchemaProblem(path, f"{_short(instance)} is not one of: {', '.join(options)}",
                              hint)]
    if v == "const":
        return [SchemaProblem(path, f"expected {_short(error.validator_value)}, got "
                                    f"{_short(instance)}", _description(schema))]
    if v == "pattern":
        return [SchemaProblem(path, f"{_short(instance)} is not valid here "
                                    f"(must match {error.validator_value})",
                              _description(schema))]
    if v in ("oneOf", "anyOf"):
        return [SchemaProblem(path, f"{_short(instance)} is not valid here",
                              _description(schema))]
    if v == "uniqueItems":
        return [SchemaProblem(path, "the list has duplicate items", _description(schema))]
    if v in ("minItems", "minLength") and not instance:
        return [SchemaProblem(path, "must not be empty", _description(schema))]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return [SchemaProblem(path, _bounded(error.message, instance),
                              _range(schema) or _description(schema))]
    return [SchemaProblem(path, _bounded(error.message, instance), _description(schema))]


_MESSAGE_MAX = 300


def _range(schema: Mapping[str, Any]) -> str:
    """`allowed: > 0 and <= 1024` from a schema's numeric bounds."""
    parts = [f"{op} {schema[key]}" for key, op in (
        ("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
        ("exclusiveMaximum", "<")) if key in schema]
    return f"allowed: {' and '.join(parts)}" if parts else ""


def _bounded(message: str, instance: Any) -> str:
    """jsonschema's message with the offending value cut to a prefix: a 100,000-character
    string is reported, not echoed."""
    shown = repr(instance)
    if len(shown) > 80:
        message = message.replace(shown, _short(instance))
    if len(message) > _MESSAGE_MAX:
        message = message[:_MESSAGE_MAX - 3] + "..."
    return message


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
