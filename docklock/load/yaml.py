"""YAML spec files → plain documents (dict/list/str/int/float/bool/None), positions on demand.

Two readers give the same result for every file the fast one accepts:

* fast: libyaml's C parser (PyYAML's `yaml._yaml.CParser`) driven event by event, with
  YAML 1.2 scalar resolution copied from ruamel.yaml. It bails out ("suspicious") on
  anything it does not handle itself: anchors, aliases, merge keys, explicit tags,
  `%YAML` directives, tabs, duplicate or non-string keys, non-mapping documents and any
  parse error. No positions are kept except each document's start.
* precise: ruamel.yaml's round-trip loader, run only for files the fast reader refused
  or files with a problem to report. It records file:line:col of every key and item, and
  reports duplicate keys, tab indentation, anchors that loop, alias bombs, non-string keys
  and unsupported tags, each at its own position.

Both resolve plain scalars by YAML 1.2 (so `no` and `on` stay strings), except that
timestamps stay the strings they were written as (JSON has no dates).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from docklock.errors import Diagnostic, Location
from docklock.load.schema import json_type_name

try:  # PyYAML with libyaml: the fast reader. Without it every file takes the precise path.
    import yaml as _pyyaml  # type: ignore[import-untyped,unused-ignore]
    from yaml._yaml import CParser as _CParser  # type: ignore[import-untyped,unused-ignore]

    FAST_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the installation
    _pyyaml = None
    _CParser = None
    FAST_AVAILABLE = False

if TYPE_CHECKING:  # ruamel.yaml is imported by the precise reader only (house rule 12)
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

PathItem = str | int

# A document that expands (through aliases) to more nodes than this is refused.
MAX_NODES = 200_000
# Bounds that keep every reader linear and every later stage (schemas, policies, the
# model) far from Python's recursion limit. Specs nest about ten levels; a policy
# assert a few more. Without a bound a 5,000-deep flow list took 49 s in the precise
# reader and deeper ones never finished.
MAX_DEPTH = 64
# One string value: Linux's limit for one argument or env string (MAX_ARG_STRLEN) is
# 128 KiB, so a longer value could never reach a container anyway.
MAX_SCALAR_CHARS = 128 * 1024
# An integer literal: no field needs more than 20 digits (a uint64 seed); Python refuses
# to convert more than 4,300 (the limit against quadratic int parsing).
MAX_INT_CHARS = 40
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
STR_TAG = "tag:yaml.org,2002:str"
_STANDARD_TAGS = frozenset({
    STR_TAG, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq",
})


@dataclass(frozen=True)
class RawDocument:
    """One document as plain data; `line`/`column` (1-based) are where its content starts."""

    data: Any
    file: str
    index: int
    line: int = 0
    column: int = 0
    source: str = "yaml"  # yaml | cue

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.column)


@dataclass
class Positions:
    """(document index, JSON path) → (line, column), 1-based, from the precise reader."""

    table: dict[tuple[int, tuple[PathItem, ...]], tuple[int, int]] = field(default_factory=dict)

    def locate(self, index: int, path: Sequence[PathItem]) -> tuple[int, int] | None:
        """The position of `path`, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            hit = self.table.get((index, p))
            if hit is not None:
                return hit
            if not p:
                return None
            p = p[:-1]


@dataclass
class ParsedFile:
    file: str
    documents: list[RawDocument]
    diagnostics: list[Diagnostic]
    positions: Positions | None = None  # set when the precise reader ran


# ---------------------------------------------------------------- YAML 1.2 scalars

# ruamel.yaml's YAML 1.2 implicit resolvers (ruamel/yaml/resolver.py), copied so the fast
# reader does not import ruamel; tests/unit/load/test_load_yaml_lazy.py checks they are
# still the patterns ruamel.yaml uses.
_FLOAT_RX = re.compile("""^(?:
         [-+]?(?:[0-9][0-9_]*)\\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\\.(?:inf|Inf|INF)
        |\\.(?:nan|NaN|NAN))$""", re.X)
_INT_RX = re.compile("""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_NULL = frozenset({"~", "null", "Null", "NULL"})
_NUMERIC_START = frozenset("-+0123456789.")


class _Suspicious(Exception):
    """The fast reader met something only the precise reader handles."""


class _Refused(Exception):
    """The fast reader found a bound broken, with its position: no need to re-read."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def _long_int(text: str) -> bool:
    return len(text) > MAX_INT_CHARS and _INT_RX.match(text) is not None


def _to_int(text: str) -> int:
    """ruamel.yaml's YAML 1.2 integer construction (underscores allowed, 0o/0x/0b)."""
    s = text.replace("_", "")
    sign = 1
    if s[0] == "-":
        sign, s = -1, s[1:]
    elif s[0] == "+":
        s = s[1:]
    if s == "0":
        return 0
    if s.startswith("0b"):
        return sign * int(s[2:], 2)
    if s.startswith("0x"):
        return sign * int(s[2:], 16)
    if s.startswith("0o"):
        return sign * int(s[2:], 8)
    return sign * int(s)


def _to_float(text: str) -> float:
    s = text.replace("_", "").lower()
    sign = -1.0 if s[0] == "-" else 1.0
    if s[0] in "+-":
        s = s[1:]
    if s == ".inf":
        return sign * float("inf")
    if s == ".nan":
        return float("nan")
    return sign * float(s)


_CACHE: dict[str, Any] = {}
_CACHE_MAX = 200_000
_MISS = object()


def resolve_plain(text: str) -> Any:
    """Resolve an untagged plain scalar the way ruamel.yaml does for YAML 1.2."""
    # Keys and many values repeat across documents; remembering them halves the cost.
    hit = _CACHE.get(text, _MISS)
    if hit is not _MISS:
        return hit
    value = _resolve(text)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[text] = value
    return value


def _resolve(text: str) -> Any:
    if not text:
        return None
    c = text[0]
    if c in _NUMERIC_START:
        if _FLOAT_RX.match(text):
            return _to_float(text)
        if _INT_RX.match(text):
            if len(text) > MAX_INT_CHARS:
                raise _Suspicious("long integer")  # the precise reader locates it
            return _to_int(text)
        return text  # timestamps stay strings
    if c in "tTfF":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif c in "~nN":
        if text in _NULL:
            return None
    elif text in ("<<", "="):
        raise _Suspicious(text)
    return text


# ---------------------------------------------------------------- fast reader

_SUSPICIOUS_TEXT = re.compile("[\t\x85\u2028\u2029\ufeff]")
_NO_KEY = object()


def _fast(text: str) -> list[tuple[int, Any, int, int]]:
    """Documents as (index, data, line, column); raises _Suspicious or a PyYAML error.

    The index counts empty documents too, as the precise reader does, so positions
    found later by re-reading a file precisely belong to the same document.
    """
    if _SUSPICIOUS_TEXT.search(text):
        raise _Suspicious("special characters")
    assert _pyyaml is not None
    assert _CParser is not None
    ev = _pyyaml.events
    scalar_e, map_s, seq_s = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    map_e, seq_e, alias_e = ev.MappingEndEvent, ev.SequenceEndEvent, ev.AliasEvent
    doc_s, stream_e = ev.DocumentStartEvent, ev.StreamEndEvent
    get = _CParser(text).get_event
    docs: list[tuple[int, Any, int, int]] = []
    index = -1
    stack: list[tuple[Any, bool, Any]] = []
    cur: Any = None
    is_map = False
    key: Any = _NO_KEY
    start = (0, 0)
    resolve, cached, miss = resolve_plain, _CACHE.get, _MISS
    while True:
        e = get()
        cls = e.__class__
        if cls is scalar_e:
            if e.anchor is not None:
                raise _Suspicious("anchor")
            if len(e.value) > MAX_INT_CHARS and (  # one comparison for nearly every scalar
                    len(e.value) > MAX_SCALAR_CHARS or (e.implicit[0] and _long_int(e.value))):
                # Located here: re-reading megabytes precisely would take seconds.
                problem = _scalar_problem(e, "")
                if problem is not None:
                    raise _Refused(problem)
            if e.implicit[0]:
                value = cached(e.value, miss)  # inlined resolve_plain cache hit
                if value is miss:
                    value = resolve(e.value)
            elif e.tag is None:
                value = e.value
            else:
                raise _Suspicious("tag")
            if is_map:
                if key is _NO_KEY:
                    if type(value) is not str or value in cur:
                        raise _Suspicious("key")
                    key = value
                else:
                    cur[key] = value
                    key = _NO_KEY
            elif cur is not None:
                cur.append(value)
            elif value is not None:
                raise _Suspicious("scalar document")
        elif cls is map_s or cls is seq_s:
            if e.anchor is not None or e.tag is not None:
                raise _Suspicious("anchor or tag")
            if cur is None:
                if cls is seq_s:
                    raise _Suspicious("list document")
                start = (e.start_mark.line + 1, e.start_mark.column + 1)
            elif is_map and key is _NO_KEY:
                raise _Suspicious("complex key")
            stack.append((cur, is_map, key))
            if len(stack) > MAX_DEPTH:
                raise _Suspicious("deep nesting")  # the precise reader locates it
            if cls is map_s:
                cur, is_map = {}, True
            else:
                cur, is_map = [], False
            key = _NO_KEY
        elif cls is map_e or cls is seq_e:
            value = cur
            cur, is_map, key = stack.pop()
            if cur is None:
                docs.append((index, value, start[0], start[1]))
            elif is_map:
                cur[key] = value
                key = _NO_KEY
            else:
                cur.append(value)
        elif cls is alias_e:
            raise _Suspicious("alias")
        elif cls is doc_s:
            index += 1
            if e.version is not None or e.tags:
                raise _Suspicious("directive")
        elif cls is stream_e:
            return docs


def parse_yaml(text: str, file: str) -> ParsedFile:
    """All documents of one YAML file, fast when possible; problems as diagnostics."""
    if FAST_AVAILABLE:
        try:
            found = _fast(text)
        except _Refused as exc:
            d = exc.diagnostic
            where = Location(file, d.location.line, d.location.column) if d.location \
                else Location(file)
            return ParsedFile(file, [], [Diagnostic(d.message, where, hint=d.hint)])
        except (_Suspicious, _pyyaml.YAMLError, RecursionError):
            pass
        else:
            return ParsedFile(file, [RawDocument(d, file, i, line, col)
                                     for i, d, line, col in found], [])
    return parse_yaml_precise(text, file)


# ---------------------------------------------------------------- precise reader


@functools.cache
def _resolver_class() -> type:
    from ruamel.yaml.resolver import VersionedResolver

    class _Resolver(VersionedResolver):
        """YAML 1.2 resolution, except timestamps stay strings (as in the fast reader)."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            tag = super().resolve(kind, value, implicit)
            if getattr(tag, "value", None) == TIMESTAMP_TAG or str(tag) == TIMESTAMP_TAG:
                return self.DEFAULT_SCALAR_TAG
            return tag

    return _Resolver


def _round_trip() -> YAML:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.Resolver = _resolver_class()
    y.allow_duplicate_keys = False
    return y


def _loc(file: str, mark: Any) -> Location:
    if mark is None:
        return Location(file)
    return Location(file, int(mark.line) + 1, int(mark.column) + 1)


def _yaml_error(file: str, exc: YAMLError, text: str = "") -> Diagnostic:
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    if isinstance(exc, ReaderError):
        # A character YAML forbids (NUL, other control characters): ruamel gives only
        # its offset in the text, so the line and column are counted here.
        pos = max(0, min(int(exc.position), len(text)))
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        char = exc.character
        code = ord(char) if isinstance(char, str) and char else int(char or 0)
        return Diagnostic(f"invalid YAML: the character U+{code:04X} is not allowed here",
                          Location(file, line, col),
                          hint="remove it: YAML allows printable characters, tabs and line "
                               "breaks only (write control characters as \\uXXXX escapes "
                               "in a double-quoted string)")
    if isinstance(exc, MarkedYAMLError):
        problem = str(exc.problem or exc.context or "invalid YAML")
        mark = exc.problem_mark or exc.context_mark
        hint = ""
        if "\\t" in problem or "'\\t'" in problem:
            hint = "indent YAML with spaces, not tabs"
        elif "mapping values are not allowed" in problem:
            hint = "check the indentation, or quote a value that contains ': '"
        elif exc.context and exc.problem and str(exc.context) not in problem:
            hint = str(exc.context)
        return Diagnostic(f"invalid YAML: {problem}", _loc(file, mark), hint=hint)
    return Diagnostic(f"invalid YAML: {exc}", Location(file))


@dataclass
class _Scan:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    scalar_lines: set[int] = field(default_factory=set)  # 0-based continuation lines
    failed: bool = False
    stopped_at: int | None = None  # 0-based line of a parse error


def _scan(text: str, file: str) -> _Scan:
    """One pass over the event stream: loops, alias bombs, keys, multi-line scalar spans."""
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionStartEvent,
        DocumentStartEvent,
        MappingEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceEndEvent,
    )

    out = _Scan()
    anchors: dict[str, int] = {}
    open_anchors: set[str] = set()
    # frames: [anchor, node count, is mapping, expecting key, keys seen]
    frames: list[list[Any]] = []
    try:
        for e in _round_trip().parse(text):
            if isinstance(e, DocumentStartEvent):
                anchors.clear()
                open_anchors.clear()
                continue
            size = 0
            if isinstance(e, ScalarEvent):
                size = 1
                problem = _scalar_problem(e, file)
                if problem is not None:
                    out.diagnostics.append(problem)
                    break
                if e.end_mark is not None and e.end_mark.line > e.start_mark.line:
                    out.scalar_lines.update(range(e.start_mark.line + 1, e.end_mark.line + 1))
                if e.anchor:
                    anchors[e.anchor] = 1
                _key_check(out, frames, e, file)
            elif isinstance(e, AliasEvent):
                if e.anchor in open_anchors:
                    out.diagnostics.append(Diagnostic(
                        f"alias *{e.anchor} refers to a node that contains it (the anchor loops)",
                        _loc(file, e.start_mark), hint="YAML aliases must not form a loop"))
                    out.failed = True
                    size = 1
                else:
                    size = anchors.get(e.anchor, 1)
                if frames and frames[-1][2] and frames[-1][3]:
                    out.diagnostics.append(Diagnostic(
                        "an alias cannot be used as a mapping key", _loc(file, e.start_mark)))
                    frames[-1][3] = False
                elif frames and frames[-1][2]:
                    frames[-1][3] = True
            elif isinstance(e, CollectionStartEvent):
                if frames and frames[-1][2]:
                    if frames[-1][3]:
                        kind = "mapping" if isinstance(e, MappingStartEvent) else "list"
                        out.diagnostics.append(Diagnostic(
                            f"mapping keys must be strings, not a {kind}",
                            _loc(file, e.start_mark)))
                        frames[-1][3] = False
                    else:
                        frames[-1][3] = True
                if e.anchor:
                    open_anchors.add(e.anchor)
                frames.append([e.anchor, 1, isinstance(e, MappingStartEvent), True, {}])
                if len(frames) > MAX_DEPTH:
                    out.diagnostics.append(_too_deep(file, e.start_mark))
                    break
                continue
            elif isinstance(e, (MappingEndEvent, SequenceEndEvent)):
                anchor, size, _m, _k, _s = frames.pop()
                if anchor:
                    anchors[anchor] = size
                    open_anchors.discard(anchor)
                if not frames and size > MAX_NODES:
                    out.diagnostics.append(Diagnostic(
                        f"the document expands to more than {MAX_NODES} nodes through aliases",
                        _loc(file, e.start_mark), hint="avoid nested aliases (alias bombs)"))
                    out.failed = True
            else:
                continue
            if frames:
                frames[-1][1] += size
    except YAMLError as exc:
        out.diagnostics.append(_yaml_error(file, exc, text))
        mark = getattr(exc, "problem_mark", None)
        out.stopped_at = int(mark.line) if mark is not None else 0
    out.failed = bool(out.diagnostics)
    return out


def _too_deep(file: str, mark: Any) -> Diagnostic:
    return Diagnostic(f"the YAML nests more than {MAX_DEPTH} levels deep here",
                      _loc(file, mark),
                      hint="DockLock specs nest about ten levels; flatten the value")


def _scalar_problem(e: Any, file: str) -> Diagnostic | None:
    """A value too long to be a spec value, or an integer too long to convert."""
    value = e.value
    if len(value) > MAX_SCALAR_CHARS:
        return Diagnostic(
            f"a value of {len(value):,} characters (at most {MAX_SCALAR_CHARS:,}): "
            f"{value[:40]!r}...", _loc(file, e.start_mark),
            hint="spec values end up as arguments or env of a process, which Linux "
                 "limits to 128 KiB each")
    tag = getattr(e.tag, "value", e.tag)
    plain = not e.style and not tag  # ruamel: style None; PyYAML: ""
    if (plain or tag == "tag:yaml.org,2002:int") and _long_int(value):
        return Diagnostic(f"an integer of {len(value):,} characters (at most "
                          f"{MAX_INT_CHARS}): {value[:20]}...", _loc(file, e.start_mark),
                          hint="no DockLock field takes a number this large; quote it if "
                               "it is meant as a string")
    return None


def _key_check(out: _Scan, frames: list[list[Any]], e: Any, file: str) -> None:
    if not frames or not frames[-1][2]:
        return
    frame = frames[-1]
    if not frame[3]:
        frame[3] = True  # next scalar is a key
        return
    frame[3] = False
    tag = e.tag.value if e.tag is not None and hasattr(e.tag, "value") else e.tag
    if e.style is None and not tag:
        try:
            key = resolve_plain(e.value)
        except _Suspicious:
            return  # merge key `<<`, handled by the round-trip loader
    elif tag in (None, "!", STR_TAG):
        key = e.value
    else:
        out.diagnostics.append(Diagnostic(f"mapping keys must be plain strings, not tagged {tag}",
                                          _loc(file, e.start_mark)))
        return
    if not isinstance(key, str):
        shown = "null" if key is None else str(key).lower() if isinstance(key, bool) else key
        out.diagnostics.append(Diagnostic(
            f"mapping key {shown} is {json_type_name(key)}, keys must be strings",
            _loc(file, e.start_mark), hint=f'quote it: "{e.value}"'))
        return
    first = frame[4].get(key)
    if first is not None:
        out.diagnostics.append(Diagnostic(
            f"duplicate key {key!r} (first defined at line {first.line + 1})",
            _loc(file, e.start_mark), hint="each key may appear once per mapping"))
        out.failed = True
    else:
        frame[4][key] = e.start_mark


def _tab_lines(text: str, file: str, skip: set[int], last: int | None) -> list[Diagnostic]:
    out = []
    for number, line in enumerate(text.splitlines()):
        if last is not None and number > last:
            break  # past a parse error the scalar spans are unknown
        if "\t" not in line or number in skip:
            continue
        stripped = line.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent:
            out.append(Diagnostic("tab character in indentation",
                                  Location(file, number + 1, indent.index("\t") + 1),
                                  hint="indent YAML with spaces, not tabs"))
    return out


def parse_yaml_precise(text: str, file: str) -> ParsedFile:
    """The round-trip reader: documents, positions of every key/item, every problem found."""
    from ruamel.yaml.error import YAMLError

    deep = _nesting_problem(text, file)
    if deep is not None:  # ruamel's scanner is quadratic in flow depth: refuse first
        return ParsedFile(file, [], [deep], Positions())
    scan = _scan(text, file)
    diagnostics = list(scan.diagnostics)
    tabs = _tab_lines(text, file, scan.scalar_lines, scan.stopped_at)
    if tabs:
        tab_rows = {d.location.line for d in tabs if d.location}
        diagnostics = [d for d in diagnostics
                       if not (d.location and d.location.line in tab_rows)] + tabs
    positions = Positions()
    if tabs or scan.failed:
        return ParsedFile(file, [], diagnostics, positions)
    documents: list[RawDocument] = []
    try:
        for index, node in enumerate(_round_trip().load_all(text)):
            doc = _convert_document(node, file, index, positions, diagnostics)
            if doc is not None:
                documents.append(doc)
    except YAMLError as exc:
        diag = _yaml_error(file, exc, text)
        if not any(d.location == diag.location for d in diagnostics):
            diagnostics.append(diag)
    except RecursionError:
        diagnostics.append(Diagnostic("the YAML nests too deeply", Location(file)))
    return ParsedFile(file, documents, diagnostics, positions)


def _nesting_problem(text: str, file: str) -> Diagnostic | None:
    """Where `text` first nests deeper than MAX_DEPTH, found by libyaml's C parser.

    Streaming and linear, so a 100,000-deep flow list is refused in milliseconds. Other
    parse errors are left to the precise reader, which reports them with positions.
    """
    if not FAST_AVAILABLE:
        return None
    assert _pyyaml is not None
    assert _CParser is not None
    ev = _pyyaml.events
    opens = (ev.MappingStartEvent, ev.SequenceStartEvent)
    closes = (ev.MappingEndEvent, ev.SequenceEndEvent)
    depth = 0
    try:
        get = _CParser(text).get_event
        while True:
            e = get()
            if isinstance(e, opens):
                depth += 1
                if depth > MAX_DEPTH:
                    return _too_deep(file, e.start_mark)
            elif isinstance(e, closes):
                depth -= 1
            elif isinstance(e, ev.StreamEndEvent):
                return None
    except _pyyaml.YAMLError as exc:
        if "nesting depth" in str(getattr(exc, "problem", "")):  # libyaml's own limit
            return _too_deep(file, getattr(exc, "problem_mark", None))
        return None


def _convert_document(node: Any, file: str, index: int, positions: Positions,
                      diagnostics: list[Diagnostic]) -> RawDocument | None:
    if node is None:
        return None  # an empty document, e.g. after a trailing `---`
    line, col = 1, 1
    lc = getattr(node, "lc", None)
    if lc is not None and lc.line is not None:
        line, col = lc.line + 1, lc.col + 1
    positions.table[(index, ())] = (line, col)
    converter = _Converter(file, index, positions)
    data = converter.plain(node, (), (line, col))
    diagnostics.extend(converter.problems)
    if converter.problems:
        return None
    return RawDocument(data, file, index, line, col)


@dataclass
class _Converter:
    """Turns one round-trip document into plain data, recording positions and problems."""

    file: str
    index: int
    positions: Positions
    problems: list[Diagnostic] = field(default_factory=list)
    budget: int = MAX_NODES

    def plain(self, node: Any, path: tuple[PathItem, ...], here: tuple[int, int]) -> Any:
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        self.budget -= 1
        if self.budget < 0:
            if self.budget == -1:
                self.problems.append(Diagnostic(f"the document has more than {MAX_NODES} nodes",
                                                Location(self.file, *here)))
            return None
        if isinstance(node, CommentedMap):
            _check_tag(node, self.file, here, self.problems)
            out: dict[str, Any] = {}
            for key, value in node.items():
                pos = _child_pos(node, key, here, is_key=True)
                if not isinstance(key, str):
                    self.problems.append(Diagnostic(f"mapping key {key!r} is not a string",
                                                    Location(self.file, *pos),
                                                    hint="quote the key"))
                    continue
                k = str(key)
                self.positions.table[(self.index, (*path, k))] = pos
                out[k] = self.plain(value, (*path, k), pos)
            return out
        if isinstance(node, CommentedSeq):
            _check_tag(node, self.file, here, self.problems)
            items = []
            for i, value in enumerate(node):
                pos = _child_pos(node, i, here, is_key=False)
                self.positions.table[(self.index, (*path, i))] = pos
                items.append(self.plain(value, (*path, i), pos))
            return items
        return self.scalar(node, here)

    def scalar(self, node: Any, here: tuple[int, int]) -> Any:
        from ruamel.yaml.comments import TaggedScalar
        from ruamel.yaml.scalarbool import ScalarBoolean

        if isinstance(node, TaggedScalar):
            tag = node.tag.value if node.tag is not None else None
            if tag in _STANDARD_TAGS:
                return str(node.value) if tag == STR_TAG else resolve_plain(str(node.value))
            self.problems.append(Diagnostic(f"unsupported YAML tag {tag}",
                                            Location(self.file, *here),
                                            hint="DockLock specs use plain YAML values"))
            return None
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, ScalarBoolean):
            return bool(node)
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        self.problems.append(Diagnostic(
            f"unsupported YAML value of type {type(node).__name__}", Location(self.file, *here),
            hint="use strings, numbers, booleans, lists and mappings"))
        return None


def _check_tag(node: Any, file: str, here: tuple[int, int],
               problems: list[Diagnostic]) -> None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", None)
    if value and value not in _STANDARD_TAGS:
        problems.append(Diagnostic(f"unsupported YAML tag {value}", Location(file, *here),
                                   hint="DockLock specs use plain YAML values"))


def _child_pos(node: Any, key: Any, here: tuple[int, int], *, is_key: bool) -> tuple[int, int]:
    try:
        line, col = node.lc.key(key) if is_key else node.lc.item(key)
    except (KeyError, IndexError, TypeError, AttributeError):
        return here  # e.g. a key merged in with `<<`
    return (int(line) + 1, int(col) + 1)


LocateFn = Callable[[RawDocument, Sequence[PathItem]], Location]


def data_limit_problem(data: Any) -> tuple[tuple[PathItem, ...], str, str] | None:
    """(path, message, hint) of the first place plain data breaks the reader's bounds.

    For documents that did not come through the YAML readers (CUE exports): the same
    MAX_DEPTH, MAX_SCALAR_CHARS and MAX_INT_CHARS apply. Iterative, so any depth is safe.
    """
    stack: list[tuple[Any, tuple[PathItem, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return (path[:MAX_DEPTH], f"the value nests more than {MAX_DEPTH} levels deep",
                    "DockLock specs nest about ten levels; flatten the value")
        if isinstance(value, dict):
            stack.extend((v, (*path, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
        elif isinstance(value, str) and len(value) > MAX_SCALAR_CHARS:
            return (path, f"a value of {len(value):,} characters (at most "
                          f"{MAX_SCALAR_CHARS:,}): {value[:40]!r}...",
                    "spec values end up as arguments or env of a process, which Linux "
                    "limits to 128 KiB each")
        elif isinstance(value, int) and not isinstance(value, bool) \
                and value.bit_length() > MAX_INT_CHARS * 3:
            return (path, "an integer too large for any DockLock field",
                    "no DockLock field takes a number this large")
    return None
