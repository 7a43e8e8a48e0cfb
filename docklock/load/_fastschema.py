"""Compile a JSON Schema (the keyword subset DockLock's schemas use) into one Python predicate.

Why: jsonschema's validator walks the schema for every document (about 0.5 ms for a
service); loading 10,000 services must take well under a second. The predicate answers
only "valid or not"; the error messages of an invalid document come from jsonschema
itself (docklock.load.schema), so the two must agree on what is valid — a property test
(tests/unit/load/test_load_fastschema.py) checks that on generated documents.

Semantics match DockLock's jsonschema validator class exactly: `integer` means a Python
int (not 1.0), and `pattern` is matched with ECMA-262's `$` (end of text, not before a
trailing newline). A schema using a keyword outside the subset raises `Unsupported`; the
caller then falls back to jsonschema for that schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

Predicate = Callable[[Any], bool]


class Resolver(Protocol):
    """Resolves `$ref`s from one base URI (a `referencing` Resolver fits): `lookup`
    returns what the ref points at, with `.contents` and `.resolver`."""

    def lookup(self, ref: str) -> Any: ...


class Registry(Protocol):
    """Where `$ref`s are looked up (a `referencing.Registry` fits; so does
    docklock.load.schema's own document table, which imports nothing)."""

    def resolver(self, base_uri: str = "") -> Any: ...


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not implement."""


# Annotations: no effect on validity (format is an annotation by default in 2020-12).
_IGNORED = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "$anchor", "title", "description",
    "default", "examples", "deprecated", "readOnly", "writeOnly", "format",
    "contentMediaType", "contentEncoding",
})
_HANDLED = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "uniqueItems", "pattern", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "oneOf", "anyOf", "allOf", "not",
    "$ref", "propertyNames", "minProperties", "maxProperties", "if", "then", "else",
})

_TYPE_TESTS = {
    "string": "type(x) is str",
    "integer": "type(x) is int",
    "number": "(type(x) is int or type(x) is float)",
    "boolean": "type(x) is bool",
    "null": "x is None",
    "object": "type(x) is dict",
    "array": "type(x) is list",
}


def ecma_pattern(pattern: str) -> str:
    """Translate ECMA-262 `$` (end of input) to Python's `\\Z` outside character classes.

    Python's `$` also matches before a trailing newline, so `^[a-z]+$` would accept
    "web\\n"; JSON Schema (ECMA-262) and CUE (RE2) do not.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "$":
            ch = r"\Z"
        out.append(ch)
        i += 1
    return "".join(out)


def freeze(value: Any) -> Any:
    """A hashable form with JSON equality: 1 == 1.0, but True != 1."""
    t = type(value)
    if t is bool:
        return ("b", value)
    if t is int or t is float:
        return ("n", value)
    if t is dict:
        return ("o", frozenset((k, freeze(v)) for k, v in value.items()))
    if t is list:
        return ("a", tuple(freeze(v) for v in value))
    return ("s", value) if t is str else ("z", repr(value))


def json_equal(a: Any, b: Any) -> bool:
    return bool(freeze(a) == freeze(b))


def unique(items: list[Any]) -> bool:
    return len({freeze(v) for v in items}) == len(items)


class _Compiler:
    def __init__(self) -> None:
        self.env: dict[str, Any] = {"_unique": unique, "_eq": json_equal}
        self.sources: list[str] = []
        self.names: dict[int, str] = {}
        self.keep: list[Any] = []  # keep schema objects alive so id() stays unique

    def const(self, value: Any, prefix: str = "_c") -> str:
        name = f"{prefix}{len(self.env)}"
        self.env[name] = value
        return name

    def function(self, schema: Any, resolver: Resolver) -> str:
        if schema is True:
            return "_true"
        if schema is False:
            return "_false"
        if not isinstance(schema, Mapping):
            raise Unsupported(f"not a schema: {schema!r}")
        key = id(schema)
        if key in self.names:
            return self.names[key]
        name = f"_v{len(self.names)}"
        self.names[key] = name
        self.keep.append(schema)
        self.sources.append(self._body(name, schema, resolver))
        return name

    def _body(self, name: str, s: Mapping[str, Any], resolver: Resolver) -> str:
        unknown = set(s) - _IGNORED - _HANDLED
        if unknown:
            raise Unsupported(f"keywords {sorted(unknown)}")
        lines = [f"def {name}(x):"]
        add = lines.append
        known: str | None = None
        types = s.get("type")
        if types is not None:
            tlist = [types] if isinstance(types, str) else list(types)
            tests = [_TYPE_TESTS[t] for t in tlist]
            add(f"    if not ({' or '.join(tests)}): return False")
            if len(tlist) == 1:
                known = tlist[0]
                if known == "integer":
                    known = "number"
        if "$ref" in s:
            resolved = resolver.lookup(s["$ref"])
            target = self.function(resolved.contents, resolved.resolver)
            add(f"    if not {target}(x): return False")
        if "const" in s:
            c = s["const"]
            if type(c) is str:
                add(f"    if x != {c!r}: return False")
            else:
                add(f"    if not _eq(x, {self.const(c)}): return False")
        if "enum" in s:
            values = list(s["enum"])
            if all(type(v) is str for v in values):
                add(f"    if type(x) is not str or x not in {self.const(frozenset(values))}:"
                    " return False")
            else:
                add(f"    if not any(_eq(x, e) for e in {self.const(tuple(values))}): return False")
        self._strings(s, known, add)
        self._numbers(s, known, add)
        self._objects(s, known, add, resolver)
        self._arrays(s, known, add, resolver)
        for keyword in ("allOf", "anyOf", "oneOf"):
            if keyword in s:
                fns = [self.function(sub, resolver) for sub in s[keyword]]
                calls = [f"{f}(x)" for f in fns]
                if keyword == "allOf":
                    add(f"    if not ({' and '.join(calls)}): return False")
                elif keyword == "anyOf":
                    add(f"    if not ({' or '.join(calls)}): return False")
                else:
                    add(f"    if ({' + '.join(calls)}) != 1: return False")
        if "not" in s:
            add(f"    if {self.function(s['not'], resolver)}(x): return False")
        if "if" in s:  # `then`/`else` without `if` mean nothing (JSON Schema 2020-12)
            cond = self.function(s["if"], resolver)
            then = self.function(s.get("then", True), resolver)
            other = self.function(s.get("else", True), resolver)
            add(f"    if not ({then}(x) if {cond}(x) else {other}(x)): return False")
        add("    return True")
        return "\n".join(lines)

    @staticmethod
    def _guard(known: str | None, kind: str, test: str, body: list[str],
               add: Callable[[str], None]) -> None:
        if not body:
            return
        if known == kind:
            for line in body:
                add("    " + line)
        else:
            add(f"    if {test}:")
            for line in body:
                add("        " + line)

    def _strings(self, s: Mapping[str, Any], known: str | None,
                 add: Callable[[str], None]) -> None:
        body = []
        if "minLength" in s:
            body.append(f"if len(x) < {int(s['minLength'])}: return False")
        if "maxLength" in s:
            body.append(f"if len(x) > {int(s['maxLength'])}: return False")
        if "pattern" in s:
            rx = self.const(re.compile(ecma_pattern(s["pattern"])), "_re")
            body.append(f"if {rx}.search(x) is None: return False")
        self._guard(known, "string", "type(x) is str", body, add)

    def _numbers(self, s: Mapping[str, Any], known: str | None,
                 add: Callable[[str], None]) -> None:
        body = []
        for keyword, op in (("minimum", "<"), ("maximum", ">"), ("exclusiveMinimum", "<="),
                            ("exclusiveMaximum", ">=")):
            if keyword in s:
                body.append(f"if x {op} {self.const(s[keyword])}: return False")
        self._guard(known, "number", "(type(x) is int or type(x) is float)", body, add)

    def _objects(self, s: Mapping[str, Any], known: str | None, add: Callable[[str], None],
                 resolver: Resolver) -> None:
        body = []
        for req in s.get("required", ()):
            body.append(f"if {req!r} not in x: return False")
        if "minProperties" in s:
            body.append(f"if len(x) < {int(s['minProperties'])}: return False")
        if "maxProperties" in s:
            body.append(f"if len(x) > {int(s['maxProperties'])}: return False")
        if "propertyNames" in s:
            fn = self.function(s["propertyNames"], resolver)
            body.append("for k in x:")
            body.append(f"    if not {fn}(k): return False")
        props = s.get("properties")
        extra = s.get("additionalProperties", True)
        if props is not None:
            table = {k: self.function(v, resolver) for k, v in props.items()}
            name = self.const(None, "_p")
            self.env[name] = table  # filled with functions after exec (see compile)
            body.append("for k, v in x.items():")
            body.append(f"    f = {name}.get(k)")
            body.append("    if f is None:")
            if extra is False:
                body.append("        return False")
            elif extra is True:
                body.append("        continue")
            else:
                body.append(f"        if not {self.function(extra, resolver)}(v): return False")
            body.append("    elif not f(v): return False")
        elif extra is False:
            body.append("if x: return False")
        elif extra is not True:
            fn = self.function(extra, resolver)
            body.append("for v in x.values():")
            body.append(f"    if not {fn}(v): return False")
        self._guard(known, "object", "type(x) is dict", body, add)

    def _arrays(self, s: Mapping[str, Any], known: str | None, add: Callable[[str], None],
                resolver: Resolver) -> None:
        body = []
        if "minItems" in s:
            body.append(f"if len(x) < {int(s['minItems'])}: return False")
        if "maxItems" in s:
            body.append(f"if len(x) > {int(s['maxItems'])}: return False")
        if "items" in s:
            if isinstance(s["items"], list):
                raise Unsupported("array-form items (use prefixItems)")
            fn = self.function(s["items"], resolver)
            body.append("for e in x:")
            body.append(f"    if not {fn}(e): return False")
        if s.get("uniqueItems"):
            body.append("if not _unique(x): return False")
        self._guard(known, "array", "type(x) is list", body, add)


def compile_predicate(schema: Mapping[str, Any], registry: Registry,
                      base_uri: str = "") -> Predicate:
    """One predicate for `schema`; `registry` resolves its `$ref`s. Raises Unsupported."""
    compiler = _Compiler()
    resolver = registry.resolver(base_uri=base_uri or str(schema.get("$id", "")))
    entry = compiler.function(schema, resolver)
    namespace: dict[str, Any] = dict(compiler.env)
    namespace["_true"] = lambda _x: True
    namespace["_false"] = lambda _x: False
    source = "\n\n".join(compiler.sources)
    exec(compile(source, "<docklock-schema>", "exec"), namespace)  # noqa: S102 - generated
    # Property tables hold function names until the functions exist.
    for key, value in list(namespace.items()):
        if key.startswith("_p") and isinstance(value, dict):
            namespace[key] = {k: namespace[fn] for k, fn in value.items()}
    # Functions look globals up at call time, so the rebound tables are seen.
    return namespace[entry]  # type: ignore[no-any-return]
